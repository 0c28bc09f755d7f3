"""The model summary: one row per layer (Keras/torchinfo-like), or with "Fold blocks" one
row per outermost block that expands in place; the totals under it, and the same totals in
brief in the window's status bar.

Rows come from `summary_model.SummaryModel`. Clicking a row selects its node (a block's
row: all the block's nodes); the table follows the document's selection.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QStatusBar,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.summary import human_bytes
from cnnstudio.ui.document import Document, deferred
from cnnstudio.ui.icons import icon
from cnnstudio.ui.settings import app_settings
from cnnstudio.ui.summary_model import COLUMNS, NODE_ROLE, ROOT, SummaryModel

__all__ = ["COLUMNS", "NODE_ROLE", "ModelStatusBar", "SummaryModel", "SummaryPanel",
           "SummaryTable", "compact"]

FOLD_KEY = "summary/fold_blocks"
SHAPE_CHARS, SHAPE_CHARS_FOLDED = 13, 24  # the shape column's width, in digits


def compact(n: float) -> str:
    """1234567 → '1.23 M': short counts for the totals line."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:g}"


def _remembered_fold() -> bool:
    value = app_settings().value(FOLD_KEY, False)
    return value is True or str(value).lower() == "true"  # INI files give back "true"


class SummaryTable(QTreeView):
    """The summary table (objectName `modelSummary`): a flat list of layers, or a tree of
    blocks when `set_folded(True)`."""

    node_activated = Signal(str)
    group_activated = Signal(str)  # a block's row was clicked: its group id

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelSummary")
        self.doc = document
        self.summary = SummaryModel(document)
        self.setModel(self.summary)
        self.summary.is_open = self.isExpanded
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(True)  # a 1,000-row tree lays out without measuring rows
        self.setAllColumnsShowFocus(True)
        self.setWordWrap(False)
        self.setRootIsDecorated(False)
        self.setIndentation(self.fontMetrics().horizontalAdvance("0") * 2 + 4)
        # Unlike a table, a tree ignores clicks while its viewport has no height (as in a
        # window not shown yet): never less than a few rows.
        self.setMinimumHeight(self.fontMetrics().height() * 6 + 8)
        header = self.header()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setSectionsMovable(False)
        for col, mode in enumerate((QHeaderView.ResizeMode.Interactive,
                                    QHeaderView.ResizeMode.Stretch,
                                    QHeaderView.ResizeMode.Interactive,
                                    QHeaderView.ResizeMode.Interactive,
                                    QHeaderView.ResizeMode.Interactive)):
            header.setSectionResizeMode(col, mode)
        chars = self.fontMetrics().horizontalAdvance("0")
        for col, width in ((0, 18), (2, SHAPE_CHARS), (3, 11), (4, 14)):
            header.resizeSection(col, width * chars + 16)
        self._flat_shape_width = header.sectionSize(2)
        self.clicked.connect(self._on_clicked)
        self.activated.connect(self._on_clicked)
        self._syncing = False
        # Blocks the user expanded, by group id: kept across the resets an edit may cause.
        self._expanded: set[str] = set()
        self.expanded.connect(lambda index: self._expanded.add(index.data(NODE_ROLE)))
        self.collapsed.connect(lambda index: self._expanded.discard(index.data(NODE_ROLE)))
        self.summary.modelReset.connect(self._restore_expanded)
        document.selection_changed.connect(self._follow_selection)

    @property
    def folded(self) -> bool:
        return self.summary.folded

    def set_folded(self, folded: bool) -> None:
        """Show blocks as one row each (True) or every layer as a row (False)."""
        self.setRootIsDecorated(folded)
        # A block's "in → out" needs about twice a layer's shape: widen the column while
        # blocks show (unless the user made it wider), and give back its width after.
        header = self.header()
        if folded and not self.summary.folded:
            self._flat_shape_width = header.sectionSize(2)
            wide = SHAPE_CHARS_FOLDED * self.fontMetrics().horizontalAdvance("0") + 16
            header.resizeSection(2, max(wide, self._flat_shape_width))
        elif not folded and self.summary.folded:
            header.resizeSection(2, self._flat_shape_width)
        self.summary.set_folded(folded)
        self._follow_selection(self.doc.selection)

    def refresh(self) -> None:
        self.summary.refresh()
        self._follow_selection(self.doc.selection)

    def _restore_expanded(self) -> None:
        model = self.summary
        wanted = [model.index_of(key) for key in self._expanded]
        self._expanded = set()
        for index in wanted:
            if index.isValid() and model.is_group(index):
                self.expand(index)  # re-adds its key through `expanded`

    def _on_clicked(self, index: QModelIndex) -> None:
        model = self.summary
        ids = [nid for i in self.selectionModel().selectedRows() for nid in model.nodes_of(i)]
        clicked = model.nodes_of(index)
        self._syncing = True
        try:
            chosen = set(ids)
            self.doc.set_selection(list(dict.fromkeys(ids)) if chosen.issuperset(clicked)
                                   else clicked)
        finally:
            self._syncing = False
        key = index.data(NODE_ROLE)
        if model.is_group(index):
            self.group_activated.emit(key)
        else:
            self.node_activated.emit(key)

    def _follow_selection(self, ids: list[str]) -> None:
        """Select the rows of the selected nodes, and of each block whose nodes all are."""
        if self._syncing:
            return
        model = self.summary
        wanted = set(ids)
        entries = [model.entry_of[nid] for nid in ids if nid in model.entry_of]
        for entry in model.group_entries():
            nodes = model.group_nodes(model.keys[entry])
            if nodes and wanted.issuperset(nodes):
                entries.append(entry)
        # One range per run of neighbouring rows: Select All on 1,000 layers is one range.
        runs: dict[int, list[int]] = {}
        for entry in entries:
            runs.setdefault(model.parent_entry(entry), []).append(model.row_of(entry))
        selection = QItemSelection()
        last = len(COLUMNS) - 1
        for parent_entry, rows in runs.items():
            parent = model.index_of_entry(parent_entry)
            rows.sort()
            start = previous = rows[0]
            for row in [*rows[1:], None]:
                if row is not None and row == previous + 1:
                    previous = row
                    continue
                selection.select(model.index(start, 0, parent), model.index(previous, last, parent))
                if row is not None:
                    start = previous = row
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        self.selectionModel().select(selection, flags)
        if len(ids) == 1 and entries:
            shown = self._shown_row(model.index_of_entry(entries[0]))
            self.scrollTo(shown, QAbstractItemView.ScrollHint.EnsureVisible)

    def _shown_row(self, index: QModelIndex) -> QModelIndex:
        """The row that shows `index` now: itself, or its outermost collapsed block (so
        selecting a node on the canvas does not unfold the summary's blocks)."""
        model, shown = self.summary, index
        entry = model.parent_entry(index.internalId())
        while entry != ROOT:
            block = model.index_of_entry(entry)
            if not self.isExpanded(block):
                shown = block
            entry = model.parent_entry(entry)
        return shown


class SummaryPanel(QWidget):
    """The summary dock's content: the table, and under it the totals line and the
    "Fold blocks" switch (remembered between sessions)."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.table = SummaryTable(document, self)
        self.totals = QLabel(self)
        self.totals.setObjectName("summaryTotals")
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fold_blocks = QCheckBox("Fold blocks", self)
        self.fold_blocks.setObjectName("summaryFoldBlocks")
        self.fold_blocks.setToolTip("Show each block (a group of layers) as one row with its"
                                    " in → out shape and totals; ▸ opens it")
        self.fold_blocks.setChecked(_remembered_fold())
        self.table.set_folded(self.fold_blocks.isChecked())
        self.fold_blocks.toggled.connect(self._on_fold_toggled)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.table)
        bottom = QHBoxLayout()
        bottom.addWidget(self.totals, 1)
        bottom.addWidget(self.fold_blocks)
        layout.addLayout(bottom)
        self._stale = False
        # The inference the rows were read from, None when they must be read again (a
        # group added, removed or renamed, another project). Folding or moving on the
        # canvas announces an invalidation but keeps the inference: nothing to re-read
        # (summary_rows took ~5 ms of each fold on a 1,000-layer network).
        self._shown: object | None = None
        self._timer = deferred(self, self.refresh, document.inference_invalidated)
        for signal in (document.project_replaced, document.group_added,
                       document.group_removed):
            signal.connect(self._rows_changed)
        # Folding a block on the canvas changes nothing here; only a new name does.
        document.group_changed.connect(self._on_group_changed)
        self.refresh()

    def _rows_changed(self, *_args: object) -> None:
        self._shown = None
        self._timer.start()

    def _on_fold_toggled(self, folded: bool) -> None:
        settings = app_settings()
        settings.setValue(FOLD_KEY, folded)
        settings.sync()
        self.table.set_folded(folded)

    def _on_group_changed(self, group_id: str) -> None:
        index = self.table.summary.index_of(group_id)
        if index.isValid() and group_id in self.doc.graph.groups and (
                index.data() != self.doc.graph.groups.get(group_id).name):
            self._rows_changed()

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
        inf = self.doc.inference
        if inf is self._shown:
            return
        self._shown = inf
        self.table.refresh()
        params = (f"<b>{inf.total_params:,}</b> params (<b>{inf.trainable_params:,}</b>"
                  f" trainable, <b>{inf.frozen_params:,}</b> frozen)" if inf.frozen
                  else f"<b>{inf.total_params:,}</b> trainable params")
        self.totals.setText(
            f"<b>{len(self.doc.graph)}</b> layers · {params}"
            f" · <b>{compact(inf.total_macs)}</b> multiply-adds"
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
        self.params = self._label("statusParams", "Parameters of the whole network (and how"
                                                  " many of them are frozen)")
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
        frozen = f" ({inference.frozen_params:,} frozen)" if inference.frozen else ""
        self.params.setText(f"params: {inference.total_params:,}{frozen}")
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
