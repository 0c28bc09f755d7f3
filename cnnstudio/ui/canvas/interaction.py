"""What the user points at and does on the canvas: hit tests (the node, card, frame tab
or edge under a point), selection (a folded card stands for its whole block), drags (one
MoveNodesCommand per drag; dragging a card moves its members), double-click on a card to
unfold it, the fold button on a frame's tab.

A mixin of `GraphScene`, kept apart so the scene module stays about mirroring the graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QGraphicsSceneMouseEvent

from cnnstudio.ui.canvas import lod as lod_
from cnnstudio.ui.canvas.card import Card
from cnnstudio.ui.canvas.edges import EdgeItem
from cnnstudio.ui.canvas.group_item import GroupFrame, GroupItem
from cnnstudio.ui.canvas.items import NodeItem
from cnnstudio.ui.commands import FoldCommand, MoveNodesCommand

if TYPE_CHECKING:
    from cnnstudio.ui.canvas.scene import GraphScene

    _Base = GraphScene
else:
    _Base = object


class SceneInteraction(_Base):
    """Selection and mouse handling of `GraphScene` (which it is mixed into)."""

    def node_at(self, scene_pos: QPointF, exclude: NodeItem | None = None) -> NodeItem | None:
        """The topmost node item under `scene_pos` (ports count as part of the node)."""
        for item in self.items(scene_pos):
            if isinstance(item, NodeItem) and item is not exclude and item.isVisible():
                return item
        return None

    def card_at(self, scene_pos: QPointF) -> GroupItem | None:
        """The folded group's card under `scene_pos`."""
        for item in self.items(scene_pos):
            if isinstance(item, GroupItem):
                return item
        return None

    def frame_at(self, scene_pos: QPointF) -> GroupFrame | None:
        """The unfolded group whose frame's title tab is under `scene_pos`."""
        for item in self.items(scene_pos):
            if isinstance(item, GroupFrame) and item.tab_at(scene_pos):
                return item
        return None

    def edge_at(self, scene_pos: QPointF) -> EdgeItem | None:
        """The edge under `scene_pos`, unless a card covers it there."""
        for item in self.items(scene_pos):
            if isinstance(item, (NodeItem, GroupItem)) and item.isVisible():
                return None
            if isinstance(item, EdgeItem) and item.isVisible():
                return item
        return None

    def selected_node_ids(self) -> list[str]:
        """Selected nodes, in graph order; a selected folded card stands for all its nodes."""
        chosen: set[str] = set()
        for item in self.selectedItems():
            if isinstance(item, NodeItem):
                chosen.add(item.node_id)
            elif isinstance(item, GroupItem):
                chosen.update(self.groups.card_nodes(item))
        return [nid for nid in self.document.graph.ids if nid in chosen]

    def selected_edges(self) -> list[EdgeItem]:
        """Selected edge items (a Delete disconnects them)."""
        return [i for i in self.selectedItems() if isinstance(i, EdgeItem)]

    # ---- selection ----------------------------------------------------------------------

    def _on_scene_selection(self) -> None:
        if self._selecting:  # mirroring many at once: the markers follow once, at its end
            return
        self._follow_markers()
        self.document.set_selection(self.selected_node_ids())

    def _follow_markers(self) -> None:
        """Far out, a selected card keeps a marker: show and hide them as selected."""
        selected = {i for i in self.selectedItems() if isinstance(i, Card)}
        marked = getattr(self, "_marked", set())
        for card in selected ^ marked:
            lod_.ScreenMarker.follow(card, card in selected)
        self._marked = selected

    def _on_document_selection(self, node_ids: list) -> None:
        if set(node_ids) == set(self.selected_node_ids()):
            return
        self._mirror_selection(set(node_ids))

    def _mirror_selection(self, wanted: set[str]) -> None:
        """Select the items of exactly these nodes: a card when all its nodes are wanted."""
        self._selecting = True
        try:
            for node_id, item in self._nodes.items():
                if item.isSelected() != (node_id in wanted):
                    item.setSelected(node_id in wanted)
            for card in self.groups.cards.values():
                nodes = self.groups.card_nodes(card)
                card.setSelected(bool(nodes) and all(nid in wanted for nid in nodes))
        finally:
            self._selecting = False
        self._follow_markers()

    def select_nodes(self, node_ids: list[str]) -> None:
        """Select exactly these nodes (and no edges); the document follows."""
        self.flush(routes=False)
        self._selecting = True
        try:
            for item in self.selectedItems():  # edges too; cards and nodes follow below
                if not isinstance(item, (NodeItem, Card)):
                    item.setSelected(False)
        finally:
            self._selecting = False
        self._mirror_selection(set(node_ids))
        self.document.set_selection(self.selected_node_ids())

    # ---- mouse: dragging cards, folding from frames -------------------------------------

    def activate_at(self, scene_pos: QPointF) -> bool:
        """A double-click at `scene_pos`: a folded card unfolds, a frame's title tab folds
        its group. Returns whether it did either (else the view handles the click)."""
        self.flush()
        card = self.card_at(scene_pos)
        if card is not None:
            return self.set_folded([card.group_id], False)
        frame = self.frame_at(scene_pos)
        if frame is not None:
            return self.set_folded([frame.group_id], True)
        return False

    def set_folded(self, group_ids: list[str], folded: bool) -> bool:
        """Fold or unfold these groups as one undo entry; False when none changes."""
        groups = self.document.graph.groups
        todo = [g for g in dict.fromkeys(group_ids)
                if g in groups and not groups.is_empty(g) and groups.get(g).collapsed != folded]
        if not todo:
            return False
        selected = set(self.selected_node_ids())
        self.document.undo_stack.push(FoldCommand(self.document, todo, folded))
        self.flush(routes=False)
        if selected:  # the selection carries over: to the new cards, or out of the old
            if folded:
                for group_id in todo:
                    nodes = set(groups.nodes(group_id))
                    if nodes & selected:
                        selected |= nodes
            self.select_nodes(list(selected))
        return True

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.flush()
            for item in self.items(event.scenePos()):
                if isinstance(item, GroupFrame) and item.fold_button_at(event.scenePos()):
                    self.set_folded([item.group_id], True)
                    event.accept()
                    return
        super().mousePressEvent(event)
        self._press_positions = {i.node_id: QPointF(i.pos()) for i in self.selectedItems()
                                 if isinstance(i, (NodeItem, GroupItem))}
        self._drag_last = {i: QPointF(i.pos()) for i in self.selectedItems()
                           if isinstance(i, Card)}

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseMoveEvent(event)  # Qt moves the selected cards
        last = getattr(self, "_drag_last", {})
        for card, pos in list(last.items()):
            if card.pos() != pos and card.scene() is self:
                last[card] = QPointF(card.pos())
                self.node_item_moved(card)  # its edges follow it

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        self._drag_last = {}
        self.commit_moves()

    def commit_moves(self) -> None:
        """Push one MoveNodesCommand for the nodes (and folded cards' nodes) dragged since
        the mouse press."""
        started, self._press_positions = self._press_positions, {}
        graph = self.document.graph
        moves = {}
        for item_id, start in started.items():
            card = self.groups.cards.get(item_id)
            if card is not None:
                if card.pos() == start:
                    continue
                dx, dy = round(card.x() - start.x()), round(card.y() - start.y())
                for node_id in self.groups.card_nodes(card):
                    pos = graph.node(node_id).pos
                    if pos is not None:
                        moves[node_id] = (pos, (pos[0] + dx, pos[1] + dy))
                continue
            item = self._nodes.get(item_id)
            if item is None or item_id not in graph or item.pos() == start:
                continue
            new = (float(round(item.x())), float(round(item.y())))
            # A node shown at a computed place has no pos yet: undo returns it there.
            old = graph.node(item_id).pos or (start.x(), start.y())
            moves[item_id] = (old, new)
        if moves:
            self.document.undo_stack.push(MoveNodesCommand(self.document, moves))
