"""The inspector: the selected node's id, type, parameters and the arithmetic behind it.

Every edit is validated with `LayerType.resolve` before a command is pushed; a value the
layer cannot take is shown in red under its field and not applied.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.errors import GraphError, ParameterError
from cnnstudio.core.ids import check_id
from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.shapes import ERROR
from cnnstudio.core.summary import human_bytes
from cnnstudio.ui.canvas.style import CATEGORY_COLORS
from cnnstudio.ui.commands import SetParamsCommand, push_snapshot, set_trainable
from cnnstudio.ui.document import Document, deferred
from cnnstudio.ui.icons import icon
from cnnstudio.ui.param_editors import DEFAULT, ERROR_COLOR, ParamField, ParseError
from cnnstudio.ui.problems import apply_fix

_DETAILS = (("inputs", "Input"), ("output", "Output"), ("params", "Param count"),
            ("macs", "Multiply-adds"), ("memory", "Activation memory"),
            ("rf", "Receptive field"))


def formulas_html(formulas: list[str]) -> str:
    """The arithmetic as rich text: a line whose result is impossible (`… = −7 < 1`) and
    the lines saying why are red, so the student sees where the shape breaks."""
    if not formulas:
        return "—"
    impossible = any(line.endswith("< 1") for line in formulas)
    lines = []
    for line in formulas:
        text = html.escape(line)
        if impossible and (line.endswith("< 1") or " = " not in line):  # or why not
            text = f'<span style="color: {ERROR_COLOR};">{text}</span>'
        lines.append(text)
    return "<br>".join(lines)


def _muted(label: QLabel) -> QLabel:
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def _heading(text: str) -> QLabel:
    label = QLabel(text.upper())
    font = label.font()
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 0.85)
    font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 108)
    label.setFont(font)
    label.setContentsMargins(0, 10, 0, 2)
    return _muted(label)


class Inspector(QScrollArea):
    """Edits the single selected node (objectName `inspector`)."""

    node_activated = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspector")
        self.doc = document
        self.node_id: str | None = None
        self.fields: dict[str, ParamField] = {}
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # The details once per edit, not once per graph event.
        self._timer = deferred(self, self._refresh_details, document.inference_invalidated)
        document.selection_changed.connect(lambda _ids: self._rebuild())
        document.graph_reset.connect(self._rebuild)
        document.params_changed.connect(self._params_changed)
        document.node_renamed.connect(self._node_renamed)
        document.trainable_changed.connect(self._trainable_changed)
        self._rebuild()

    # ---- building -------------------------------------------------------------------------

    def _rebuild(self) -> None:
        """Show the selected node (or a hint when none or several are selected)."""
        selection = self.doc.selection
        self.node_id = selection[0] if len(selection) == 1 else None
        self.fields = {}
        page = QWidget()
        page.setObjectName("inspectorPage")
        layout = QVBoxLayout(page)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(4)
        if self.node_id is None:
            text = (f"{len(selection)} layers selected." if selection else
                    "Select a layer on the canvas to see and edit its parameters, shapes and"
                    " the arithmetic behind them.")
            hint = _muted(QLabel(text))
            hint.setWordWrap(True)
            hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addStretch(1)
            layout.addWidget(hint)
            layout.addStretch(2)
        else:
            self._build_node(layout)
        old = self.takeWidget()
        self.setWidget(page)
        if old is not None:
            # Later, not now: the rebuild may run inside a signal of one of its widgets.
            old.hide()
            old.deleteLater()

    def _build_node(self, layout: QVBoxLayout) -> None:
        node = self.doc.graph.node(self.node_id)  # type: ignore[arg-type]
        layer = node.layer
        title = QLabel(f"<b>{layer.name}</b>")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        title.setFont(font)
        category = QLabel(layer.category)
        category.setStyleSheet(f"color: {CATEGORY_COLORS.get(layer.category, '#7f7f7f')};")
        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(category)
        layout.addLayout(top)
        help_label = _muted(QLabel(layer.help))
        help_label.setWordWrap(True)
        layout.addWidget(help_label)

        # One form for id, parameters and numbers: one label column, aligned.
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        form.setContentsMargins(0, 6, 0, 0)
        form.setHorizontalSpacing(10)
        self.id_edit = QLineEdit(node.id)
        self.id_edit.setObjectName("nodeIdEdit")
        self.id_edit.setToolTip("The node's id: its name in the file, the summary and the"
                                " generated PyTorch code.")
        edit = self.id_edit
        self.id_edit.editingFinished.connect(lambda: self._rename(edit))
        self.id_error = QLabel()
        self.id_error.setObjectName("error_id")
        self.id_error.setWordWrap(True)
        self.id_error.setStyleSheet(f"color: {ERROR_COLOR};")
        self.id_error.hide()
        holder = QWidget()
        box = QVBoxLayout(holder)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(self.id_edit)
        box.addWidget(self.id_error)
        form.addRow("id", holder)
        self.trainable_check = QCheckBox("Train this layer's parameters")
        self.trainable_check.setObjectName("trainableCheck")
        self.trainable_check.setToolTip(
            "Unchecked, the layer is frozen: training leaves its parameters (and a BatchNorm's"
            " running statistics) as they are, e.g. a pretrained backbone while fine-tuning.")
        self.trainable_check.setChecked(node.trainable)
        self.trainable_check.toggled.connect(self._set_trainable)
        form.addRow("trainable", self.trainable_check)

        if layer.params:
            form.addRow(_heading("Parameters"))
            for param in layer.params:
                field = ParamField(param)
                field.committed.connect(lambda name, f=field: self._commit(f, name))
                label = QLabel(param.name)
                label.setToolTip(param.help)
                form.addRow(label, field)
                self.fields[param.name] = field
            self._show_values()

        form.addRow(_heading("Shape and cost"))
        self.details: dict[str, QLabel] = {}
        for key, text in _DETAILS:
            value = QLabel()
            value.setObjectName(f"detail_{key}")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            form.addRow(_muted(QLabel(text)), value)
            self.details[key] = value
        layout.addLayout(form)
        layout.addWidget(_heading("Arithmetic"))
        self.formulas = QLabel()
        self.formulas.setObjectName("formulas")
        self.formulas.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.formulas.setTextFormat(Qt.TextFormat.RichText)
        self.formulas.setWordWrap(True)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPointSizeF(self.font().pointSizeF() * 0.95)
        self.formulas.setFont(mono)
        self.formulas.setFrameShape(QFrame.Shape.StyledPanel)
        self.formulas.setContentsMargins(6, 4, 6, 4)
        self.formulas.setBackgroundRole(QPalette.ColorRole.AlternateBase)
        self.formulas.setAutoFillBackground(True)
        layout.addWidget(self.formulas)
        self._shown_problems: list = []
        self.problems_box = QVBoxLayout()
        self.problems_box.setSpacing(4)
        layout.addLayout(self.problems_box)
        layout.addStretch(1)
        self._refresh_details()

    # ---- showing values -------------------------------------------------------------------

    def _show_values(self) -> None:
        node = self.doc.graph.node(self.node_id)  # type: ignore[arg-type]
        for name, field in self.fields.items():
            present = name in node.params
            value = node.params[name] if present else field.param.default
            if field.param.required and not present:
                value = None
            field.set_value(value, present)
            field.set_error(None)

    def _params_changed(self, node_id: str) -> None:
        if node_id == self.node_id:
            self._show_values()

    def _trainable_changed(self, node_ids: list) -> None:
        if self.node_id in node_ids:
            check = self.trainable_check
            blocked = check.blockSignals(True)  # showing the graph's flag is no edit
            check.setChecked(self.doc.graph.node(self.node_id).trainable)
            check.blockSignals(blocked)
            self._refresh_details()

    def _set_trainable(self, checked: bool) -> None:
        """Freeze or unfreeze the shown node (one undo entry)."""
        if self.node_id is not None:
            set_trainable(self.doc, [self.node_id], checked)

    def _node_renamed(self, old: str, new: str) -> None:
        if old == self.node_id:
            self.node_id = new
            self.id_edit.setText(new)

    def _refresh_details(self) -> None:
        self._timer.stop()
        if self.node_id is None or self.node_id not in self.doc.graph:
            return
        inference = self.doc.inference
        info = inference.nodes.get(self.node_id)
        if info is None:
            return
        node = self.doc.graph.node(self.node_id)
        if len(info.input_shapes) > 1:
            inputs = "<br>".join(f"{src}: {fmt_shape(s)}"
                                 for src, s in zip(node.inputs, info.input_shapes, strict=False))
        else:
            inputs = fmt_shape(info.input_shapes[0]) if info.input_shapes else "—"
        unknown = info.shape is None
        values = {
            "inputs": inputs,
            "output": "?" if unknown else f"<b>{fmt_shape(info.shape)}</b>",
            "params": "—" if unknown else f"{info.params:,}" + (
                " (frozen)" if not node.trainable and info.params else ""),
            "macs": "—" if unknown else f"{info.macs:,}",
            "memory": "—" if unknown else f"{human_bytes(info.memory)} per sample",
            "rf": info.receptive_field.text() if info.receptive_field else "—",
        }
        for key, label in self.details.items():
            label.setText(values[key])
        self.formulas.setText(formulas_html(info.formulas))
        self._show_problems()

    def _show_problems(self) -> None:
        problems = self.doc.inference.problems_for(self.node_id)  # type: ignore[arg-type]
        if problems == self._shown_problems:
            return  # rebuilding would relayout the page on every edit elsewhere
        self._shown_problems = problems
        while self.problems_box.count():
            item = self.problems_box.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        if not problems:
            return
        self.problems_box.addWidget(_heading("Problems"))
        for problem in problems:
            row = QWidget()
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            badge = QLabel()
            badge.setPixmap(icon("error" if problem.severity == ERROR else "warning").pixmap(16))
            badge.setAlignment(Qt.AlignmentFlag.AlignTop)
            text = QLabel(problem.message)
            text.setWordWrap(True)
            line.addWidget(badge)
            line.addWidget(text, 1)
            self.problems_box.addWidget(row)
            for fix in problem.fixes:  # one button a line: long labels stay whole
                button = QPushButton(icon("fix"), f"Fix: {fix.label}")
                button.setObjectName("inspectorFix")
                button.setToolTip(f"{fix.label} (one undo step)")
                button.clicked.connect(lambda _c=False, f=fix: apply_fix(self.doc, f))
                self.problems_box.addWidget(button)

    # ---- editing --------------------------------------------------------------------------

    def field(self, name: str) -> ParamField:
        """The field editing parameter `name` of the shown node."""
        return self.fields[name]

    def _commit(self, field: ParamField, name: str) -> None:
        """Validate the field's value with the layer, then apply it as a command."""
        if self.fields.get(name) is not field or self.node_id is None:
            return  # a field of a page being replaced (it lost focus on the way out)
        node = self.doc.graph.node(self.node_id)
        try:
            value = field.value()
        except ParseError as err:
            field.set_error(str(err))
            return
        params = dict(node.params)
        if value is DEFAULT:
            params.pop(name, None)
        else:
            params[name] = value
        try:
            node.layer.resolve(params, node=node.id)
        except ParameterError as err:
            where = "" if err.param in (None, name) else f"{err.param}: "
            field.set_error(where + err.message)
            return
        field.set_error(None)
        field.accept_shown()
        if params != node.params:
            self.doc.undo_stack.push(SetParamsCommand(self.doc, node.id, params, field=name))

    def _rename(self, edit: QLineEdit) -> None:
        """Rename the node from the id field (one undo entry); bad ids show an error."""
        if self.node_id is None or edit is not self.id_edit:
            return
        old, new = self.node_id, self.id_edit.text().strip()
        if new == old:
            self.id_error.hide()
            return
        try:
            check_id(new)
            if new in self.doc.graph:
                raise GraphError(f"the id {new!r} is already used by another layer")
            push_snapshot(self.doc, f"Rename {old} → {new}", lambda g: g.rename_node(old, new))
        except GraphError as err:
            self.id_error.setText(err.message[:1].upper() + err.message[1:])
            self.id_error.show()
            return
        self.id_error.hide()
        self.doc.set_selection([new])
