"""The model summary: one row per layer (Keras/torchinfo-like), the totals under it, and
the same totals in brief in the window's status bar.

Rows come from `core.summary.summary_rows`, the same rows the CLI prints. Clicking a row
selects its node; the table follows the document's selection.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QStatusBar,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.shapes import ERROR
from cnnstudio.core.summary import SummaryRow, human_bytes, summary_rows
from cnnstudio.ui.document import Document, deferred
from cnnstudio.ui.icons import icon

COLUMNS = ("Layer", "Type", "Output shape", "Params", "MACs")
NODE_ROLE = Qt.ItemDataRole.UserRole  # the row's node id
_Index = QModelIndex | QPersistentModelIndex


def compact(n: float) -> str:
    """1234567 → '1.23 M': short counts for the totals line."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:g}"


class SummaryModel(QAbstractTableModel):
    """The summary rows of a document's graph."""

    def __init__(self, document: Document) -> None:
        super().__init__()
        self.doc = document
        self.rows: list[SummaryRow] = []
        self.severity: dict[str, str] = {}  # node id → worst problem severity

    def refresh(self) -> None:
        """Re-read the rows; a reset only when the layers themselves changed."""
        inference = self.doc.inference
        rows = summary_rows(self.doc.graph, inference)
        severity: dict[str, str] = {}
        for p in inference.problems:
            if p.node and severity.get(p.node) != ERROR:
                severity[p.node] = p.severity
        same_layers = [r.id for r in rows] == [r.id for r in self.rows]
        old_severity, self.severity = self.severity, severity
        if not same_layers:
            self.beginResetModel()
            self.rows = rows
            self.endResetModel()
            return
        # Repaint only the rows whose numbers changed (an edit deep in a long net touches few).
        changed = [i for i, (old, new) in enumerate(zip(self.rows, rows, strict=True))
                   if old != new or old_severity.get(new.id) != severity.get(new.id)]
        self.rows = rows
        if changed:
            last = len(COLUMNS) - 1
            self.dataChanged.emit(self.index(changed[0], 0), self.index(changed[-1], last))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt signature)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.TextAlignmentRole and section >= 3:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return row.id
            if col == 1:
                return f"{row.type}  {row.caption}".strip()
            if col == 2:
                return fmt_shape(row.shape) if row.shape is not None else "?"
            return f"{row.params:,}" if col == 3 else f"{row.macs:,}"
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.DecorationRole and col == 0 and row.id in self.severity:
            return icon("error" if self.severity[row.id] == ERROR else "warning")
        if role == Qt.ItemDataRole.ToolTipRole:
            problems = self.doc.inference.problems_for(row.id)
            lines = [f"{row.id} · {row.type} {row.caption}".strip(),
                     f"activation memory: {human_bytes(row.memory)} per sample"]
            return "\n".join(lines + [f"{p.severity}: {p.message}" for p in problems])
        if role == NODE_ROLE:
            return row.id
        return None


class SummaryTable(QTableView):
    """The summary table (objectName `modelSummary`)."""

    node_activated = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelSummary")
        self.doc = document
        self.summary = SummaryModel(document)
        self.setModel(self.summary)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        for col, mode in enumerate((QHeaderView.ResizeMode.Interactive,
                                    QHeaderView.ResizeMode.Stretch,
                                    QHeaderView.ResizeMode.Interactive,
                                    QHeaderView.ResizeMode.Interactive,
                                    QHeaderView.ResizeMode.Interactive)):
            header.setSectionResizeMode(col, mode)
        chars = self.fontMetrics().horizontalAdvance("0")
        for col, width in ((0, 16), (2, 13), (3, 11), (4, 14)):
            header.resizeSection(col, width * chars + 16)
        self.clicked.connect(self._on_clicked)
        self.activated.connect(self._on_clicked)
        self._syncing = False
        document.selection_changed.connect(self._follow_selection)

    def refresh(self) -> None:
        self.summary.refresh()
        self._follow_selection(self.doc.selection)

    def _on_clicked(self, index: QModelIndex) -> None:
        ids = [self.summary.rows[i.row()].id for i in self.selectionModel().selectedRows()]
        node = self.summary.rows[index.row()].id
        self._syncing = True
        try:
            self.doc.set_selection(ids if node in ids else [node])
        finally:
            self._syncing = False
        self.node_activated.emit(node)

    def _follow_selection(self, ids: list[str]) -> None:
        if self._syncing:
            return
        wanted = set(ids)
        selection = QItemSelection()
        for r, row in enumerate(self.summary.rows):
            if row.id in wanted:
                selection.select(self.summary.index(r, 0),
                                 self.summary.index(r, len(COLUMNS) - 1))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        self.selectionModel().select(selection, flags)
        if len(ids) == 1 and not selection.isEmpty():
            self.scrollTo(selection.indexes()[0], QAbstractItemView.ScrollHint.EnsureVisible)


class SummaryPanel(QWidget):
    """The summary dock's content: the table and a totals line under it."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.table = SummaryTable(document, self)
        self.totals = QLabel(self)
        self.totals.setObjectName("summaryTotals")
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.table)
        layout.addWidget(self.totals)
        self._stale = False
        self._timer = deferred(self, self.refresh, document.inference_invalidated,
                               document.project_replaced)
        self.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def refresh(self) -> None:
        """Re-read rows and totals from the document (later, if the panel is hidden in a
        shown window: tabbed away or closed)."""
        self._timer.stop()
        if self.window().isVisible() and not self.isVisible():
            self._stale = True
            return
        self._stale = False
        self.table.refresh()
        inf = self.doc.inference
        self.totals.setText(
            f"<b>{len(self.doc.graph)}</b> layers · <b>{inf.total_params:,}</b> trainable"
            f" params · <b>{compact(inf.total_macs)}</b> multiply-adds"
            f" · <b>{human_bytes(inf.total_memory)}</b> activations per sample")


class ModelStatusBar(QStatusBar):
    """The window's status bar: the summary's totals in brief, problems, and the device.

    The device reads "not loaded yet" until torch is loaded (`set_device`); finding out
    would mean importing torch, which the window must not wait for.
    """

    problems_clicked = Signal()

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.params = self._label("statusParams", "Trainable parameters of the whole network")
        self.macs = self._label("statusMacs", "Multiply-adds per sample")
        self.problems = QToolButton(self)
        self.problems.setObjectName("statusProblems")
        self.problems.setAutoRaise(True)
        self.problems.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.problems.setToolTip("Show the problems list")
        self.problems.clicked.connect(self.problems_clicked)
        self.addPermanentWidget(self.problems)
        self.device = self._label("statusDevice", "Where training runs")
        self.set_device(None)
        self._timer = deferred(self, self.refresh, document.inference_invalidated,
                               document.project_replaced)
        self.refresh()

    def _label(self, name: str, tip: str) -> QLabel:
        label = QLabel(self)
        label.setObjectName(name)
        label.setToolTip(tip)
        label.setContentsMargins(8, 0, 8, 0)
        self.addPermanentWidget(label)
        return label

    def set_device(self, device: str | None) -> None:
        """Show the training device (None: torch is not loaded yet)."""
        self.device.setText(f"device: {device or 'not loaded yet'}")

    def refresh(self) -> None:
        """Re-read the totals and problem counts."""
        self._timer.stop()
        inference = self.doc.inference
        self.params.setText(f"params: {inference.total_params:,}")
        self.macs.setText(f"multiply-adds: {compact(inference.total_macs)}")
        errors = len(inference.errors)
        warnings = len(inference.problems) - errors
        if errors or warnings:
            parts = [f"{n} {word}{'s' if n != 1 else ''}"
                     for n, word in ((errors, "error"), (warnings, "warning")) if n]
            self.problems.setIcon(icon("error" if errors else "warning"))
            self.problems.setText(", ".join(parts))
        else:
            self.problems.setIcon(icon("ok"))
            self.problems.setText("no problems")
