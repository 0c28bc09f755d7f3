"""The model summary's rows: one per layer, or, with blocks folded, one per outermost block
that expands in place into its layers and inner blocks (a tree).

Rows come from `core.summary` (the same rows the CLI prints; `group_summary` for a block).
A refresh after an edit that keeps the rows (a parameter change) repaints only the rows
whose numbers changed; only a change of the rows themselves resets the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont

from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.shapes import ERROR
from cnnstudio.core.summary import (
    GroupSummary,
    SummaryRow,
    group_summary,
    human_bytes,
    summary_rows,
)
from cnnstudio.ui.document import Document
from cnnstudio.ui.icons import icon

COLUMNS = ("Layer", "Type", "Output shape", "Params", "MACs")
FROZEN = "  ❄ frozen"  # after a frozen layer's type (as its card shows ❄)
FROZEN_COLOR = "#4a86b4"  # a frozen layer's parameter count: icy blue
NODE_ROLE = Qt.ItemDataRole.UserRole  # the row's node id (a block's row: its group id)
NODES_ROLE = Qt.ItemDataRole.UserRole + 1  # the node ids the row stands for
GROUP_ROLE = Qt.ItemDataRole.UserRole + 2  # True on a block's row
ROOT = -1  # the parent "entry" of top-level rows
MAX_TIP_PROBLEMS = 8
_Index = QModelIndex | QPersistentModelIndex


def _shape(shape: tuple[int, ...] | list[int] | None) -> str:
    return fmt_shape(shape) if shape is not None else "?"


class SummaryModel(QAbstractItemModel):
    """The summary rows of a document's graph. Each row is an entry (its number is the
    index's internal id): a node, or with `folded`, a block (group) holding rows."""

    def __init__(self, document: Document) -> None:
        super().__init__()
        self.doc = document
        self.folded = False
        self.rows: list[SummaryRow] = []  # every layer, in the summary's order
        self.severity: dict[str, str] = {}  # node id → its worst problem's severity
        self.keys: list[str] = []  # entry → node or group id
        self._groups: set[int] = set()  # entries that are blocks
        self._parent: list[int] = []  # entry → its parent entry (ROOT at top)
        self._row: list[int] = []  # entry → its row under its parent
        self._children: dict[int, list[int]] = {ROOT: []}
        self._values: list[Any] = []  # entry → its SummaryRow, or a block's name
        self._nodes_of: dict[str, list[str]] = {}  # group id → every node inside
        self._facts: dict[str, GroupSummary] = {}  # group id → its facts, when asked
        self.entry_of: dict[str, int] = {}
        # Whether a block's row is open in the view (the view sets this): a change inside
        # a closed block is not announced, Qt's views handling each announcement slowly.
        self.is_open: Callable[[QModelIndex], bool] = lambda index: True

    # ---- building -----------------------------------------------------------------------

    def set_folded(self, folded: bool) -> None:
        if folded != self.folded:
            self.folded = folded
            self.refresh()

    def refresh(self) -> None:
        """Re-read the rows; a reset only when the rows themselves changed."""
        graph, inference = self.doc.graph, self.doc.inference
        rows = summary_rows(graph, inference)
        severity: dict[str, str] = {}
        for p in inference.problems:
            if p.node and severity.get(p.node) != ERROR:
                severity[p.node] = p.severity
        keys: list[str] = []
        parents: list[int] = []
        values: list[Any] = []
        groups: set[int] = set()
        nodes_of: dict[str, list[str]] = {}
        entry_of: dict[str, int] = {}
        blocks = self.folded and len(graph.groups) > 0
        chains: dict[str | None, tuple[str, ...]] = {None: ()}
        for row in rows:
            parent = ROOT
            for group_id in self._chain(graph.node(row.id).group, chains) if blocks else ():
                if group_id not in entry_of:  # first met at its first layer: rows keep order
                    entry_of[group_id] = len(keys)
                    groups.add(len(keys))
                    keys.append(group_id)
                    parents.append(parent)
                    values.append(graph.groups.get(group_id).name)
                    nodes_of[group_id] = graph.groups.nodes(group_id)
                parent = entry_of[group_id]
            entry_of[row.id] = len(keys)
            keys.append(row.id)
            parents.append(parent)
            values.append(row)
        old_values, old_severity = self._values, self.severity
        same_rows = keys == self.keys and parents == self._parent
        self.rows, self.severity, self._nodes_of, self.entry_of = rows, severity, nodes_of, entry_of
        # A block's facts are summed when its row is drawn: a 1,000-node net has ~150 blocks,
        # most of them inside closed ones.
        self._facts = {}
        if not same_rows:
            self.beginResetModel()
            self._set_entries(keys, parents, values, groups)
            self.endResetModel()
            return
        self._values = values
        # Repaint only the rows whose numbers changed (an edit deep in a long net touches
        # few), and the blocks' rows (what they sum may have changed).
        changed: dict[int, list[int]] = {}
        for entry, (old, new) in enumerate(zip(old_values, values, strict=True)):
            key = keys[entry]
            if (entry in groups or old != new
                    or old_severity.get(key) != severity.get(key)):
                changed.setdefault(parents[entry], []).append(self._row[entry])
        last = len(COLUMNS) - 1
        for parent_entry, changed_rows in changed.items():
            parent = self.index_of_entry(parent_entry)
            if parent.isValid() and not self.is_open(parent):
                continue  # rows inside a closed block are read afresh when it opens
            self.dataChanged.emit(self.index(min(changed_rows), 0, parent),
                                  self.index(max(changed_rows), last, parent))

    def _chain(self, group_id: str | None,
               chains: dict[str | None, tuple[str, ...]]) -> tuple[str, ...]:
        """The groups holding a node whose innermost group is `group_id`, outermost first
        (`groups.ancestors`, remembered per group: one walk per group, not per node)."""
        chain = chains.get(group_id)
        if chain is None:
            groups = self.doc.graph.groups
            if group_id not in groups:
                return ()
            chain = chains[group_id] = (*self._chain(groups.get(group_id).parent, chains),
                                        group_id)
        return chain

    def facts(self, group_id: str) -> GroupSummary:
        """The block's in → out shapes, sums and problems (computed once per refresh)."""
        facts = self._facts.get(group_id)
        if facts is None:
            facts = self._facts[group_id] = group_summary(self.doc.graph, self.doc.inference,
                                                          group_id)
        return facts

    def _set_entries(self, keys: list[str], parents: list[int], values: list[Any],
                     groups: set[int]) -> None:
        self.keys, self._parent, self._values, self._groups = keys, parents, values, groups
        children: dict[int, list[int]] = {ROOT: []}
        rows: list[int] = []
        for entry, parent in enumerate(parents):
            siblings = children.setdefault(parent, [])
            rows.append(len(siblings))
            siblings.append(entry)
        self._children, self._row = children, rows

    # ---- reading ------------------------------------------------------------------------

    def entry(self, index: _Index) -> int:
        return index.internalId() if index.isValid() else ROOT

    def is_group(self, index: _Index) -> bool:
        return index.isValid() and index.internalId() in self._groups

    def nodes_of(self, index: _Index) -> list[str]:
        """The node ids a row stands for: its node, or every node of its block."""
        if not index.isValid():
            return []
        key = self.keys[index.internalId()]
        return list(self._nodes_of[key]) if key in self._nodes_of else [key]

    def group_nodes(self, group_id: str) -> list[str]:
        """Every node of a block shown as a row (not a copy: do not change it)."""
        return self._nodes_of.get(group_id, [])

    def group_entries(self) -> list[int]:
        return sorted(self._groups)

    def index_of_entry(self, entry: int, column: int = 0) -> QModelIndex:
        if entry == ROOT:
            return QModelIndex()
        return self.createIndex(self._row[entry], column, entry)

    def index_of(self, key: str, column: int = 0) -> QModelIndex:
        """The row of a node or block id (invalid when it has none)."""
        entry = self.entry_of.get(key)
        return QModelIndex() if entry is None else self.index_of_entry(entry, column)

    def parent_entry(self, entry: int) -> int:
        return self._parent[entry]

    def row_of(self, entry: int) -> int:
        return self._row[entry]

    # ---- QAbstractItemModel -------------------------------------------------------------

    def index(self, row: int, column: int,
              parent: _Index = QModelIndex()) -> QModelIndex:  # noqa: B008 (Qt signature)
        siblings = self._children.get(self.entry(parent), [])
        if not 0 <= row < len(siblings) or not 0 <= column < len(COLUMNS):
            return QModelIndex()
        return self.createIndex(row, column, siblings[row])

    def parent(self, index: _Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid():
            return QModelIndex()
        return self.index_of_entry(self._parent[index.internalId()])

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() and parent.column() > 0:
            return 0
        return len(self._children.get(self.entry(parent), ()))

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

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
        entry, col = index.internalId(), index.column()
        key = self.keys[entry]
        if role == NODE_ROLE:
            return key
        if role == GROUP_ROLE:
            return entry in self._groups
        if role == NODES_ROLE:
            return self.nodes_of(index)
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if entry in self._groups:
            return self._group_data(key, self._values[entry], self.facts(key), col, role)
        if role == Qt.ItemDataRole.DecorationRole and col == 0 and key in self.severity:
            return icon("error" if self.severity[key] == ERROR else "warning")
        row: SummaryRow = self._values[entry]
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return row.id
            if col == 1:
                return f"{row.type}  {row.caption}".strip() + ("" if row.trainable else FROZEN)
            if col == 2:
                return _shape(row.shape)
            return f"{row.params:,}" if col == 3 else f"{row.macs:,}"
        if role == Qt.ItemDataRole.ForegroundRole and not row.trainable and col == 3:
            return QColor(FROZEN_COLOR)  # frozen parameters: not trained
        if role == Qt.ItemDataRole.ToolTipRole:
            problems = self.doc.inference.problems_for(row.id)
            lines = [f"{row.id} · {row.type} {row.caption}".strip(),
                     f"activation memory: {human_bytes(row.memory)} per sample"]
            if not row.trainable:
                lines.append("frozen: training leaves its parameters as they are")
            return "\n".join(lines + [f"{p.severity}: {p.message}" for p in problems])
        return None

    def _group_data(self, group_id: str, name: str, facts: GroupSummary, col: int,
                    role: int) -> Any:
        if role == Qt.ItemDataRole.DecorationRole and col == 0 and facts.severity:
            return icon("error" if facts.severity == ERROR else "warning")
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return name
            if col == 1:
                frozen = ("" if not facts.frozen_layers else FROZEN
                          if facts.frozen_layers == facts.layers
                          else f"  · {facts.frozen_layers} frozen")
                return f"block · {facts.layers} layer{'s' if facts.layers != 1 else ''}{frozen}"
            if col == 2:
                return f"{_shape(facts.in_shape)} → {_shape(facts.out_shape)}"
            return f"{facts.params:,}" if col == 3 else f"{facts.macs:,}"
        if role == Qt.ItemDataRole.FontRole and col == 0:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            ins = ", ".join(_shape(s) for s in facts.in_shapes) or "?"
            outs = ", ".join(_shape(s) for s in facts.out_shapes) or "?"
            lines = [f"{name} ({group_id}) · block of {facts.layers} layers",
                     f"in: {ins} · out: {outs}",
                     f"activation memory: {human_bytes(facts.memory)} per sample"]
            lines += [f"{p.severity}: {p}" for p in facts.problems[:MAX_TIP_PROBLEMS]]
            if len(facts.problems) > MAX_TIP_PROBLEMS:
                lines.append(f"… and {len(facts.problems) - MAX_TIP_PROBLEMS} more")
            return "\n".join(lines)
        return None
