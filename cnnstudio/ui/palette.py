"""The layer palette: every registry layer type by category, plus the blocks.

Dragging an entry carries MIME_LAYER (the type name) or MIME_BLOCK (the block name), which
the canvas turns into nodes. Double-click or Enter inserts the entry after the selected
node instead, connected, as one undo entry (`insert_entry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QMimeData, QRectF, Qt, Signal
from PySide6.QtGui import QIcon, QKeyEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core import registry
from cnnstudio.core.blocks import BLOCKS
from cnnstudio.core.edits import insert_block
from cnnstudio.core.errors import ParameterError, ShapeError
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import COLUMN_WIDTH, ROW_HEIGHT
from cnnstudio.ui.canvas import style
from cnnstudio.ui.commands import push_snapshot
from cnnstudio.ui.document import Document
from cnnstudio.ui.mime import MIME_BLOCK, MIME_LAYER

KIND_ROLE = Qt.ItemDataRole.UserRole  # "layer" or "block"; absent on category rows
NAME_ROLE = Qt.ItemDataRole.UserRole + 1  # the layer type or block name
LAYER, BLOCK = "layer", "block"
BLOCKS_CATEGORY = "Blocks"


def chip_icon(category: str, stacked: bool = False) -> QIcon:
    """A small node card in the canvas's colours for `category` (two cards for a block)."""
    size = 32
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    cards = [QRectF(3, 4, 22, 15), QRectF(8, 13, 22, 15)] if stacked else [QRectF(3, 8, 26, 16)]
    for rect in cards:
        painter.setPen(QPen(style.border_color(category), 1.6))
        painter.setBrush(style.body_color(category))
        painter.drawRoundedRect(rect, 3.5, 3.5)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(style.category_color(category))
        painter.drawRoundedRect(QRectF(rect.left(), rect.top(), 5, rect.height()), 2.5, 2.5)
    painter.end()
    return QIcon(pixmap)


def match_rank(query: str, name: str) -> int:
    """How well an entry's `name` matches a search `query` (lower is better): 0 the exact
    name, 1 a name prefix, 2 inside the name, 3 only in its help text or category.

    Names first: "relu" must find ReLU, not GELU (whose help says "smooth ReLU").
    """
    query, name = " ".join(query.lower().split()), name.lower()
    if query == name:
        return 0
    if name.startswith(query):
        return 1
    return 2 if query in name else 3


class LayerPalette(QTreeWidget):
    """The tree of layer types and blocks (objectName `layerPalette`).

    `mimeData(items)` gives the drag payload of the first draggable item, so tests and
    other widgets can get exactly what a drag would carry.
    """

    entry_activated = Signal(str, str)  # kind ("layer" | "block"), name

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("layerPalette")
        self.setHeaderHidden(True)
        self.setColumnCount(1)
        self.setRootIsDecorated(True)
        self.setIndentation(14)
        self.setUniformRowHeights(True)
        self.setAnimated(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        # Whether a layer type fits after the layer a new entry follows (the window sets
        # it): among equally good name matches, Enter takes one that fits ("conv" after a
        # 2-D layer is Conv2d, not Conv1d, the first in the list).
        self.fits: Callable[[str], bool] = lambda _name: True
        self._populate()
        # Double-click, not itemActivated: some desktops activate items on a single click,
        # which would insert a layer whenever the user only meant to start a drag.
        self.itemDoubleClicked.connect(self.activate)

    def _populate(self) -> None:
        for category, layers in registry.by_category().items():
            group = self._group(category)
            chip = chip_icon(category)
            for layer in layers:
                self._entry(group, LAYER, layer.name, layer.help, chip)
        group = self._group(BLOCKS_CATEGORY)
        block_icon = chip_icon("Convolution", stacked=True)
        for name, (help_text, _build) in BLOCKS.items():
            self._entry(group, BLOCK, name, help_text, block_icon)
        self.expandAll()

    def _group(self, title: str) -> QTreeWidgetItem:
        group = QTreeWidgetItem(self, [title])
        group.setFlags(Qt.ItemFlag.ItemIsEnabled)  # a heading: not draggable, not selectable
        font = group.font(0)
        font.setBold(True)
        group.setFont(0, font)
        return group

    @staticmethod
    def _entry(group: QTreeWidgetItem, kind: str, name: str, help_text: str, item_icon) -> None:
        item = QTreeWidgetItem(group, [name])
        item.setData(0, KIND_ROLE, kind)
        item.setData(0, NAME_ROLE, name)
        item.setToolTip(0, f"<b>{name}</b><br>{help_text}")
        item.setStatusTip(0, help_text)
        item.setIcon(0, item_icon)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                      | Qt.ItemFlag.ItemIsDragEnabled)

    # ---- drag data ---------------------------------------------------------------------

    def mimeTypes(self) -> list[str]:
        return [MIME_LAYER, MIME_BLOCK]

    def mimeData(self, items: Sequence[QTreeWidgetItem]) -> QMimeData:
        """The drag payload for `items`: MIME_LAYER or MIME_BLOCK with the entry's name."""
        data = QMimeData()
        for item in items:
            kind = item.data(0, KIND_ROLE)
            if kind in (LAYER, BLOCK):
                name = str(item.data(0, NAME_ROLE))
                data.setData(MIME_LAYER if kind == LAYER else MIME_BLOCK, name.encode("utf-8"))
                data.setText(name)
                break
        return data

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # ---- lookup, filter, activation ----------------------------------------------------

    def entry(self, name: str) -> QTreeWidgetItem | None:
        """The item for layer type or block `name`."""
        for item in self.entries():
            if item.data(0, NAME_ROLE) == name:
                return item
        return None

    def entries(self) -> list[QTreeWidgetItem]:
        """Every layer and block item, in display order."""
        out = []
        for i in range(self.topLevelItemCount()):
            group = self.topLevelItem(i)
            out.extend(group.child(j) for j in range(group.childCount()))
        return out

    def set_filter(self, text: str) -> None:
        """Show only entries whose name, help or category contains every word of `text`;
        make the best match (see `match_rank`) current, so Enter inserts it."""
        words = text.lower().split()
        for i in range(self.topLevelItemCount()):
            group = self.topLevelItem(i)
            visible = 0
            for j in range(group.childCount()):
                item = group.child(j)
                haystack = f"{item.text(0)} {item.toolTip(0)} {group.text(0)}".lower()
                match = all(w in haystack for w in words)
                item.setHidden(not match)
                visible += match
            group.setHidden(visible == 0)
            if words:
                group.setExpanded(True)
        if words:  # let Enter in the search box insert the best match
            shown = [it for it in self.entries() if not it.isHidden()]
            if shown:
                best = self._best_match(text, shown)
                self.setCurrentItem(best)
                self.scrollToItem(best)
            else:
                self.clearSelection()

    def _best_match(self, text: str, shown: list[QTreeWidgetItem]) -> QTreeWidgetItem:
        """The best-ranked entry (see `match_rank`); among equals the first, in display
        order, whose layer fits where it would be inserted (else simply the first)."""
        ranks = [match_rank(text, str(it.data(0, NAME_ROLE))) for it in shown]
        tied = [it for it, rank in zip(shown, ranks, strict=True) if rank == min(ranks)]
        return next((it for it in tied if it.data(0, KIND_ROLE) != LAYER
                     or self.fits(str(it.data(0, NAME_ROLE)))), tied[0])

    def activate(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        """Insert `item`'s layer or block (emits `entry_activated`); headings do nothing."""
        kind = item.data(0, KIND_ROLE)
        if kind in (LAYER, BLOCK):
            self.entry_activated.emit(kind, str(item.data(0, NAME_ROLE)))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentItem():
            self.activate(self.currentItem())
        else:
            super().keyPressEvent(event)


class _SearchBox(QLineEdit):
    """Search field: arrows move in the tree, Enter inserts the current entry."""

    def __init__(self, tree: LayerPalette) -> None:
        super().__init__()
        self.tree = tree

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
            self.tree.setFocus()
            self.tree.keyPressEvent(event)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.tree.currentItem():
            self.tree.activate(self.tree.currentItem())
        else:
            super().keyPressEvent(event)


class PalettePanel(QWidget):
    """The palette dock's content: a search field above the tree."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = LayerPalette(self)
        self.search = _SearchBox(self.tree)
        self.search.setObjectName("paletteSearch")
        self.search.setPlaceholderText("Search layers…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.tree.set_filter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)


# ---- inserting an entry after the selection ---------------------------------------------


def _anchor(doc: Document) -> str | None:
    """The node a new layer should follow: the selection's last node, else the output."""
    selection = doc.selection
    if selection:
        return selection[-1]
    inference = doc.inference
    if inference.output is not None:
        return inference.output
    return inference.order[-1] if inference.order else None


def _rows(graph: Graph, source: str, new_ids: list[str]) -> int:
    """How many layout rows the new nodes take below `source`."""
    top = graph.node(source).pos
    ys = [graph.node(nid).pos[1] for nid in new_ids if graph.node(nid).pos is not None]
    if top is None or not ys:
        return 1
    return max(1, round((max(ys) - top[1]) / ROW_HEIGHT))


def _below(graph: Graph, source: str | None) -> tuple[float, float]:
    """Where a new layer goes: under `source`, or left of everything for a new chain."""
    if source is not None and graph.node(source).pos is not None:
        x, y = graph.node(source).pos  # type: ignore[misc]
        return (x, y + ROW_HEIGHT)
    placed = [n.pos for n in graph if n.pos is not None]
    if not placed:
        return (0.0, 0.0)
    return (min(p[0] for p in placed) - COLUMN_WIDTH, min(p[1] for p in placed))


def _shift_down(graph: Graph, start: str, rows: int, skip: set[str]) -> None:
    """Move every node downstream of `start` (not in `skip`) down by `rows` rows."""
    seen, stack = set(skip), [start]
    while stack:
        for user in graph.consumers(stack.pop()):
            if user not in seen:
                seen.add(user)
                stack.append(user)
                node = graph.node(user)
                if node.pos is not None:
                    graph.move_node(user, (node.pos[0], node.pos[1] + rows * ROW_HEIGHT))


def fits_after_anchor(doc: Document, name: str) -> bool:
    """Whether a new `name` layer with its initial params takes the output of the layer
    `insert_entry` would put it after; True when there is no shape to check against."""
    source = _anchor(doc)
    info = doc.inference.nodes.get(source) if source else None
    layer = registry.get(name)
    if info is None or info.shape is None or layer.max_inputs == 0:
        return True
    try:
        layer.rule([info.shape], layer.resolve(initial_params(name)))
    except (ParameterError, ShapeError):
        return False
    return True


def initial_params(type_name: str) -> dict[str, Any]:
    """Params for a new node: the required ones, plus any with a suggested `initial` value
    (Upsample needs a scale_factor to be valid at all)."""
    layer = registry.get(type_name)
    return {p.name: p.initial for p in layer.params if p.required or p.initial is not None}


def insert_entry(doc: Document, kind: str, name: str) -> list[str]:
    """Insert a layer type or block after the selected node (or the model's output), wired
    in between it and its consumers, as one undo entry. Return the new node ids.

    Raises GraphError (nothing changed) if the graph refuses the edit, and ValueError for
    a block with no node to follow.
    """
    source = _anchor(doc)
    if kind == LAYER and registry.get(name).max_inputs == 0:
        source = None  # an Input starts a new chain
    if kind == BLOCK and source is None:
        raise ValueError("add a layer first: a block follows the selected layer")
    info = doc.inference.nodes.get(source) if source else None
    channels = info.shape[0] if info is not None and info.shape else 16

    def edit(graph: Graph) -> list[str]:
        cut = [(c, i) for c in graph.consumers(source)
               for i, s in enumerate(graph.node(c).inputs) if s == source] if source else []
        if kind == BLOCK:
            new_ids = insert_block(graph, BLOCKS[name][1], source, channels, name)
            last = new_ids[-1]
        else:
            pos = _below(graph, source)
            last = graph.add_node(name, initial_params(name), inputs=[source] if source else [],
                                  pos=pos).id
            new_ids = [last]
        for consumer, index in cut:
            graph.disconnect(source, consumer, index)
            graph.connect(last, consumer, index)
        if cut:
            _shift_down(graph, last, _rows(graph, source, new_ids), set(new_ids))
        return new_ids

    return push_snapshot(doc, f"Add {name}", edit)
