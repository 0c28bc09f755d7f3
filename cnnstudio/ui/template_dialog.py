"""New project: pick a template (or a blank canvas) with a preview of its summary."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.graph import Graph
from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.shapes import Inference, infer_shapes
from cnnstudio.core.summary import summary_rows
from cnnstudio.core.templates import TEMPLATES
from cnnstudio.project.model import Project
from cnnstudio.project.schema import project_from_dict
from cnnstudio.ui.icons import icon

BLANK = ""  # the list entry for a blank canvas
NAME_ROLE = Qt.ItemDataRole.UserRole


def blank_project() -> Project:
    """A new project holding just an Input node."""
    project = Project(name="Untitled")
    project.graph.add_node("Input", {"shape": [1, 28, 28]}, id="input", pos=(0.0, 0.0))
    return project


def template_project(name: str) -> Project:
    """A new project from template `name` (raises KeyError for an unknown one)."""
    return project_from_dict(TEMPLATES[name].project_dict())


@lru_cache(maxsize=32)
def _preview(name: str) -> tuple[Graph, Inference]:
    template = TEMPLATES[name]
    graph = template.graph()
    return graph, infer_shapes(graph, task=template.task, num_classes=template.classes)


class TemplateDialog(QDialog):
    """Lists the templates; `selected()` is the chosen template name, BLANK for none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("templateDialog")
        self.setWindowTitle("New Project")
        self.resize(860, 540)
        self.list = QListWidget()
        self.list.setObjectName("templateList")
        self.list.setIconSize(self.list.iconSize().expandedTo(self.list.iconSize()))
        blank = QListWidgetItem(icon("new"), "Blank canvas")
        blank.setData(NAME_ROLE, BLANK)
        self.list.addItem(blank)
        for name, template in TEMPLATES.items():
            item = QListWidgetItem(icon("template"), template.title)
            item.setData(NAME_ROLE, name)
            item.setToolTip(template.description)
            self.list.addItem(item)
        self.list.setFixedWidth(220)
        self.list.currentItemChanged.connect(lambda *_: self._show())
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())

        self.title = QLabel()
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setWeight(QFont.Weight.DemiBold)
        self.title.setFont(font)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.facts = QLabel()
        self.facts.setObjectName("templateFacts")
        self.facts.setWordWrap(True)
        self.table = QTreeWidget()
        self.table.setObjectName("templatePreview")
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setHeaderLabels(["Layer", "Type", "Output shape", "Params"])
        self.table.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.header().setStretchLastSection(False)
        right = QVBoxLayout()
        right.addWidget(self.title)
        right.addWidget(self.description)
        right.addWidget(self.facts)
        right.addWidget(self.table, 1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        body = QHBoxLayout()
        body.addWidget(self.list)
        body.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(buttons)
        self.list.setCurrentRow(1 if len(TEMPLATES) else 0)

    def selected(self) -> str:
        """The chosen template's name, or BLANK for a blank canvas."""
        item = self.list.currentItem()
        return str(item.data(NAME_ROLE)) if item is not None else BLANK

    def select(self, name: str) -> None:
        """Make template `name` (or BLANK) the current entry."""
        for row in range(self.list.count()):
            if self.list.item(row).data(NAME_ROLE) == name:
                self.list.setCurrentRow(row)
                return

    def _show(self) -> None:
        name = self.selected()
        self.table.clear()
        if name == BLANK:
            self.title.setText("Blank canvas")
            self.description.setText("Start from a single Input node and drag layers from the"
                                     " palette.")
            self.facts.setText("")
            return
        template = TEMPLATES[name]
        graph, inference = _preview(name)
        output = inference.nodes[inference.output].shape if inference.output else None
        self.title.setText(template.title)
        self.description.setText(template.description)
        self.facts.setText(
            f"Dataset: <b>{template.dataset}</b> ({template.classes} classes) · "
            f"task: {template.task}"
            f"<br><b>{len(graph)}</b> layers · <b>{inference.total_params:,}</b> params · "
            f"output <b>{fmt_shape(output) if output else '?'}</b>")
        items = []
        for row in summary_rows(graph, inference):
            shape = fmt_shape(row.shape) if row.shape is not None else "?"
            item = QTreeWidgetItem([row.id, f"{row.type} {row.caption}".strip(), shape,
                                    f"{row.params:,}"])
            item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            items.append(item)
        self.table.addTopLevelItems(items)
        for col in (0, 2, 3):
            self.table.resizeColumnToContents(col)


def choose_template(parent: QWidget | None = None) -> str | None:
    """Ask for a template: its name, BLANK for a blank canvas, None if cancelled."""
    dialog = TemplateDialog(parent)
    try:
        return dialog.selected() if dialog.exec() == QDialog.DialogCode.Accepted else None
    finally:
        dialog.deleteLater()
