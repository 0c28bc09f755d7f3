"""Find on the canvas (Ctrl+F): a bar at the top of the view that jumps to a layer.

The query matches node ids, layer types and block (group) names, case-insensitively, as a
substring. Ids come first (an exact id before the rest), then layers of a matching type,
then blocks, each in graph order. Enter jumps to the first match and, pressed again, to the
next (Shift+Enter or Shift+F3: the previous one, F3: the next one); a match hidden inside a
folded block is revealed (the block unfolds, one undo entry) and selected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QRectF, QStringListModel, Qt
from PySide6.QtGui import QKeyEvent, QPalette
from PySide6.QtWidgets import (
    QCompleter,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
)

from cnnstudio.core.graph import Graph
from cnnstudio.ui.canvas import editing, style
from cnnstudio.ui.document import deferred

if TYPE_CHECKING:
    from cnnstudio.ui.canvas.view import GraphView

NO_MATCH = "no layer matches"
BAR_WIDTH = 380
MARGIN = 8


def find_matches(graph: Graph, query: str) -> list[str]:
    """Node ids whose id contains `query` (an exact id first), then nodes whose layer type
    contains it, then the ids of non-empty groups whose name or id contains it."""
    text = query.strip().lower()
    if not text:
        return []
    by_id = [node.id for node in graph if text in node.id.lower()]
    by_id.sort(key=lambda node_id: node_id.lower() != text)  # stable: graph order stays
    by_type = [node.id for node in graph
               if text not in node.id.lower() and text in node.type.lower()]
    groups = graph.groups
    blocks = [g.id for g in groups if not groups.is_empty(g.id)
              and (text in g.name.lower() or text in g.id.lower())]
    return by_id + by_type + blocks


def completions(graph: Graph) -> list[str]:
    """What the field offers while typing: every node id, layer type and block name."""
    types = sorted({node.type for node in graph})
    names = sorted({g.name for g in graph.groups if not graph.groups.is_empty(g.id)})
    return list(graph.ids) + types + names


class FindBar(QFrame):
    """The find bar (objectName `findBar`): field `findField`, status `findStatus`."""

    def __init__(self, view: GraphView) -> None:
        # A child of the view, not of its viewport: the viewport's children scroll with it.
        super().__init__(view)
        self.setObjectName("findBar")
        self._view = view
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.field = QLineEdit(self)
        self.field.setObjectName("findField")
        self.field.setPlaceholderText("Find a layer: id, type or block name")
        self.field.setClearButtonEnabled(True)
        self.field.installEventFilter(self)
        self._model = QStringListModel(self)
        completer = QCompleter(self._model, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setMaxVisibleItems(12)
        completer.activated.connect(lambda _text: self.step(1, restart=True))
        self.field.setCompleter(completer)
        self.status = QLabel(self)
        self.status.setObjectName("findStatus")
        self.status.setMinimumWidth(110)
        previous = self._button("▲", "Previous match (Shift+F3)", lambda: self.step(-1))
        following = self._button("▼", "Next match (F3, Enter)", lambda: self.step(1))
        close = self._button("✕", "Close (Esc)", self.close_bar)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 4, 4, 4)
        row.setSpacing(4)
        row.addWidget(self.field, 1)
        row.addWidget(self.status)
        for button in (previous, following, close):
            row.addWidget(button)
        self.field.textChanged.connect(self._query_changed)
        self._matches: list[str] = []
        self._index = -1  # the match shown last; -1: none shown for this query yet
        doc = view.document
        # Once per event-loop turn, and only while the bar is open: 1,000 ids are cheap.
        deferred(self, self._graph_changed, doc.graph_edited, doc.graph_reset)
        self.resize(BAR_WIDTH, self.sizeHint().height())
        self.hide()

    def _button(self, text: str, tip: str, slot) -> QToolButton:  # noqa: ANN001
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    # ---- showing the bar ----------------------------------------------------------------

    def open(self) -> None:
        """Show the bar with its field focused and its text selected for retyping."""
        self._model.setStringList(completions(self._view.document.graph))
        self.place()
        self.show()
        self.raise_()
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    def _graph_changed(self) -> None:
        """Keep the completions and the match count up with edits made while it is open."""
        if self.isHidden():
            return
        self._model.setStringList(completions(self._view.document.graph))
        if self._index < 0:
            self._query_changed(self.field.text())
            return
        # A match was shown: recount, keeping the place when that match is still there.
        shown = self._matches[self._index] if self._index < len(self._matches) else None
        self._query_changed(self.field.text())
        if shown in self._matches:
            self._index = self._matches.index(shown)
            self._show_status(f"{self._index + 1} of {len(self._matches)}", False)

    def close_bar(self) -> None:
        self.hide()
        self._view.setFocus(Qt.FocusReason.OtherFocusReason)

    def place(self) -> None:
        """Top right of the canvas, clear of the vertical scroll bar."""
        port = self._view.viewport().geometry()
        width = min(BAR_WIDTH, max(200, port.width() - 2 * MARGIN))
        self.resize(width, self.sizeHint().height())
        self.move(port.right() - width - MARGIN + 1, port.top() + MARGIN)

    # ---- matching and stepping ----------------------------------------------------------

    def _query_changed(self, text: str) -> None:
        self._matches = find_matches(self._view.document.graph, text)
        self._index = -1
        if not text.strip():
            self._show_status("", False)
        elif self._matches:
            count = len(self._matches)
            self._show_status(f"{count} match" + ("" if count == 1 else "es"), False)
        else:
            self._show_status(NO_MATCH, True)

    def _show_status(self, text: str, no_match: bool) -> None:
        self.status.setText(text)
        # An empty palette inherits every colour (and follows a light/dark switch).
        palette = QPalette()
        if no_match:
            base = self.palette().color(QPalette.ColorRole.Base)
            palette.setColor(QPalette.ColorRole.Base, style.mix(base, style.ERROR_COLOR, 0.28))
        self.field.setPalette(palette)

    @property
    def matches(self) -> list[str]:
        return list(self._matches)

    def step(self, delta: int, restart: bool = False) -> str | None:
        """Show the next (`delta` 1) or previous (-1) match and return its id; with
        `restart`, or when none was shown yet, the first one (the last for -1)."""
        # The graph may have changed since the last step (an id renamed, a node deleted).
        self._matches = find_matches(self._view.document.graph, self.field.text())
        if not self._matches:
            self._show_status(NO_MATCH if self.field.text().strip() else "",
                              bool(self.field.text().strip()))
            return None
        count = len(self._matches)
        if restart or self._index < 0:
            self._index = 0 if delta > 0 else count - 1
        else:
            self._index = (self._index + delta) % count
        target = self._matches[self._index]
        self._show_status(f"{self._index + 1} of {count}", False)
        show_match(self._view, target)
        return target

    def next_match(self) -> None:
        """F3: the next match; opens the bar when there is no query yet."""
        if self.field.text().strip():
            self.step(1)
        else:
            self.open()

    def previous_match(self) -> None:
        if self.field.text().strip():
            self.step(-1)
        else:
            self.open()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.field and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key = event.key()
            if key == Qt.Key.Key_Escape:
                popup = self.field.completer().popup()
                if popup.isVisible():  # the first Esc closes the completion list only
                    return False
                self.close_bar()
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                shift = event.modifiers() & Qt.KeyboardModifier.ShiftModifier
                self.step(-1 if shift else 1)
                return True
        return super().eventFilter(watched, event)


def united_rect(items: list) -> QRectF:  # noqa: ANN001 (QGraphicsItems)
    rect = QRectF()
    for item in items:
        rect = rect.united(item.sceneBoundingRect())
    return rect


def reveal_and_select(view: GraphView, target: str) -> QRectF:
    """Make `target` (a node or group id) visible and selected; return the scene rect to
    centre on (empty when it is not shown)."""
    scene = view.graph_scene
    graph = view.document.graph
    groups = graph.groups
    if target in graph:
        if groups.shown_as(target) != target:
            # Unfolding carries a selection into the block; the target alone ends up
            # selected, so drop it first, unannounced (a selected stage's 250 layers
            # were selected and deselected one by one, and the inspector rebuilt for
            # each selection in between).
            scene.clear_selection_quietly()
            editing.reveal(scene, target)
        scene.select_nodes([target])
        item = scene.item_for(target)
        return item.sceneBoundingRect() if item is not None else QRectF()
    folded = [g for g in groups.ancestors(target) if groups.get(g).collapsed]
    if folded:
        editing.set_folded(scene, folded, False)
    card = scene.group_item_for(target)
    if card is not None:
        scene.clearSelection()
        card.setSelected(True)  # the scene puts the block's nodes in the selection
        return card.sceneBoundingRect()
    members = groups.nodes(target)
    scene.select_nodes(members)
    return united_rect([i for m in members if (i := scene.item_for(m)) is not None])


def show_match(view: GraphView, target: str) -> None:
    """Reveal, select and centre a node or block, at a zoom where it can be read (or
    whole, for a block bigger than the view at that zoom)."""

    rect = reveal_and_select(view, target)
    if rect.isEmpty():
        return
    view.set_zoom(min(max(view.zoom(), style.MIN_LEGIBLE_ZOOM), view.fit_zoom(rect)))
    view.center_on_point(rect.center())
