"""The groups' picture in a scene: a card for every folded group, a frame around every
unfolded one, the node items a fold hides, and which item each edge end is drawn at.

`rebuild` recomputes all of it from `graph.groups` in one pass over the nodes, groups and
edges (a few milliseconds on 1,000 nodes); the scene calls it once per event-loop turn
after group events, bulk moves, adds and removals, so folding a block that moves hundreds
of nodes costs one pass. Frames follow their members' drags through `update_frames`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QGraphicsItem

from cnnstudio.core.folding import card_position
from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.shapes import Inference
from cnnstudio.core.summary import group_summary
from cnnstudio.ui.canvas.edges import EdgeItem
from cnnstudio.ui.canvas.group_item import GroupFrame, GroupItem

if TYPE_CHECKING:
    from cnnstudio.ui.canvas.scene import GraphScene

# (source item id, target item id, input slot, slot count): where an edge is drawn.
Ends = tuple[str, str, int, int]


def count_text(n: int) -> str:
    """1234 → "1.2 k", 48_000_000 → "48 M": a card has room for three digits."""
    for limit, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= limit:
            value = n / limit
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return str(n)


class GroupSync:
    """Keeps a scene's group cards, frames and edge ends matching `graph.groups`."""

    def __init__(self, scene: GraphScene) -> None:
        self.scene = scene
        self.cards: dict[str, GroupItem] = {}
        self.frames: dict[str, GroupFrame] = {}
        self.shown: dict[str, str] = {}  # node id → what shows it, when not the node itself
        self.ends: dict[EdgeItem, Ends] = {}  # visible edges only
        self.card_edges: dict[str, list[EdgeItem]] = {}  # visible edges touching a card
        self.card_shifts: dict[GroupItem, tuple[float, float]] = {}  # by the last rebuild
        self._spare_frames: dict[str, GroupFrame] = {}  # hidden: their groups are folded
        self._depth: dict[str, int] = {}

    # ---- reading ------------------------------------------------------------------------

    def shown_id(self, node_id: str) -> str:
        return self.shown.get(node_id, node_id)

    def item(self, shown_id: str) -> QGraphicsItem | None:
        card = self.cards.get(shown_id)
        return card if card is not None else self.scene.item_for(shown_id)

    def card_nodes(self, card: GroupItem) -> list[str]:
        return self.scene.document.graph.groups.nodes(card.group_id)

    def forget_edge(self, edge: EdgeItem) -> None:
        """An edge item is gone: drop it from the ends and the cards' edge lists now, not
        at the next rebuild (an edge routed before then asks its card's other edges)."""
        ends = self.ends.pop(edge, None)
        if ends is None:
            return
        for shown_id in ends[:2]:
            edges = self.card_edges.get(shown_id)
            if edges is not None and edge in edges:
                edges.remove(edge)

    # ---- rebuilding ---------------------------------------------------------------------

    def rebuild(self) -> set[EdgeItem]:
        """Match cards, frames, hidden nodes and edge ends to the graph; return the edges
        whose drawn ends changed (the caller routes them, and the edges of the cards that
        moved: `card_shifts`).

        Qt deselects each selected item it hides or removes, announcing each: the scene
        hears of it once, after all of them (folding a selected stage of 250 layers
        re-read the selection 250 times: 200 ms)."""
        scene = self.scene
        selecting, scene._selecting = scene._selecting, True
        selected = len(scene.selectedItems())
        try:
            changed = self._rebuild()
        finally:
            scene._selecting = selecting
        if not selecting and len(scene.selectedItems()) != selected:
            scene._on_scene_selection()
        return changed

    def _rebuild(self) -> set[EdgeItem]:
        scene = self.scene
        graph = scene.document.graph
        groups = graph.groups
        depth, folded_at = groups.fold_map()  # group → the outermost fold over it

        show_cards: list[str] = []
        show_frames: list[str] = []
        for group in groups:
            if groups.is_empty(group.id):
                continue
            fold = folded_at[group.id]
            if fold is None:
                show_frames.append(group.id)
            elif fold == group.id:
                show_cards.append(group.id)
        self._depth = depth

        self.shown = shown = {}
        for node in graph:  # (folded_at knows every group; a node's group may be gone)
            fold = folded_at.get(node.group) if node.group is not None else None
            if fold is not None:
                shown[node.id] = fold
        self._show_nodes()

        created = self._sync_cards(show_cards)
        self._sync_frames(show_frames)
        changed = self._sync_edges()
        for group_id in created:
            changed.update(self.card_edges.get(group_id, ()))
        return changed

    def _show_nodes(self) -> None:
        """Hide the node items a fold holds, show the others."""
        shown = self.shown
        for node_id, item in self.scene.node_id_items():
            visible = node_id not in shown
            if item.isVisible() != visible:
                item.setVisible(visible)

    def _sync_cards(self, wanted: list[str]) -> list[str]:
        """Cards for the folded groups shown; returns the ids of the new ones. The cards
        that moved are in `card_shifts`, with their offsets."""
        scene = self.scene
        graph = scene.document.graph
        for group_id in set(self.cards) - set(wanted):
            card = self.cards.pop(group_id)
            scene.removeItem(card)
        self.card_shifts = {}
        created = []
        for group_id in wanted:
            group = graph.groups.get(group_id)
            card = self.cards.get(group_id)
            if card is None:
                card = self.cards[group_id] = GroupItem(group_id, group.name)
                card.set_direction(graph.direction)
                scene.addItem(card)
                created.append(group_id)
            card.set_name(group.name)
            x, y = card_position(graph, group_id) or (0.0, 0.0)
            if (card.x(), card.y()) != (x, y):
                if group_id not in created:
                    self.card_shifts[card] = (round(x - card.x(), 6), round(y - card.y(), 6))
                card.setPos(QPointF(x, y))
        inference = scene.shown_inference()
        if created and inference is not None:  # else the coming refresh fills them in
            self.refresh_facts(inference, created)
        return created

    def _sync_frames(self, wanted: list[str]) -> None:
        """Frames for the unfolded groups shown. A frame whose group folds is hidden and
        kept (`_spare_frames`), not removed: unfolding shows it again, and a frame fitted
        to the same members keeps its geometry (unfolding a 1,000-layer network made ~150
        frames anew: ~3 ms)."""
        scene = self.scene
        groups = scene.document.graph.groups
        old, spare = self.frames, self._spare_frames
        self.frames = {}
        for group_id in wanted:
            group = groups.get(group_id)
            frame = old.pop(group_id, None)
            if frame is None:
                frame = spare.pop(group_id, None)
                if frame is None:
                    frame = GroupFrame(group_id, group.name)
                    scene.addItem(frame)
                else:
                    frame.setVisible(True)
            self.frames[group_id] = frame
            frame.set_name(group.name)
            frame.set_depth(self._depth.get(group_id, 0))
        for group_id, frame in old.items():
            frame.setVisible(False)
            spare[group_id] = frame
        for group_id in [g for g in spare if g not in groups or groups.is_empty(g)]:
            scene.removeItem(spare.pop(group_id))  # ungrouped or emptied: not coming back
        self.update_frames(wanted)

    def update_frames(self, group_ids: list[str] | set[str]) -> None:
        """Fit these frames (and the frames around them) to their members, innermost
        first so an outer frame surrounds its inner frames' tabs too."""
        groups = self.scene.document.graph.groups
        frames, cards, item_for = self.frames, self.cards, self.scene.item_for
        todo: set[str] = set()
        for group_id in group_ids:
            if group_id in groups:
                todo.add(group_id)
                todo.update(groups.ancestors(group_id))
        # Every card of a class has the same bounds and none is scaled or rotated: its
        # position places it (sceneBoundingRect goes through Qt for each). Worked out in
        # plain numbers: unfolding a 1,000-layer network fits ~150 frames round 1,000 cards.
        bounds: dict[type, tuple[float, float, float, float]] = {}
        fitted: dict[str, tuple[float, float, float, float]] = {}  # outlines, this pass
        for group_id in sorted((g for g in todo if g in frames),
                               key=lambda g: -self._depth.get(g, 0)):
            left = top = math.inf
            right = bottom = -math.inf
            for member in groups.children(group_id):
                frame = frames.get(member)
                if frame is not None:
                    found = fitted.get(member)
                    if found is None:
                        outline = frame.frame_rect()
                        if outline.isNull():
                            continue
                        found = outline.getCoords()
                    x1, y1, x2, y2 = found
                else:
                    item = cards.get(member)
                    if item is None:
                        item = item_for(member)
                        if item is None or not item.isVisible():
                            continue
                    local = bounds.get(type(item))
                    if local is None:
                        local = bounds[type(item)] = item.boundingRect().getCoords()
                    x, y = item.x(), item.y()
                    x1, y1, x2, y2 = local[0] + x, local[1] + y, local[2] + x, local[3] + y
                left, top = min(left, x1), min(top, y1)
                right, bottom = max(right, x2), max(bottom, y2)
            if left <= right:
                frame = frames[group_id]
                frame.set_rect(QRectF(QPointF(left, top), QPointF(right, bottom)))
                fitted[group_id] = frame.frame_rect().getCoords()

    def _sync_edges(self) -> set[EdgeItem]:
        """Show each edge between the items showing its ends: hidden inside one card, and
        only once between the same two items when it enters a card (they would coincide)."""
        scene = self.scene
        cards, shown, inputs = self.cards, self.shown, scene._inputs
        old = self.ends
        self.ends = ends_of = {}
        self.card_edges = card_edges = {group_id: [] for group_id in cards}
        card_sources: dict[str, list[str]] = {group_id: [] for group_id in cards}
        card_targets: dict[str, set[str]] = {group_id: set() for group_id in cards}
        pending: list[tuple[EdgeItem, str, str]] = []
        for edges in inputs.values():  # every edge, grouped by target in graph order
            for edge in edges:
                source, target = shown.get(edge.source, edge.source), \
                    shown.get(edge.target, edge.target)
                visible = source != target
                if visible and target in cards:
                    if source in card_sources[target]:
                        visible = False  # the same two items are joined already
                    else:
                        card_sources[target].append(source)
                edge.setVisible(visible)
                if visible:
                    pending.append((edge, source, target))
                    if source in cards:
                        card_targets[source].add(target)
        changed: set[EdgeItem] = set()
        for edge, source, target in pending:
            if target in cards:
                slot, count = card_sources[target].index(source), len(card_sources[target])
                card_edges[target].append(edge)
            else:
                slot, count = edge.index, len(inputs.get(edge.target, ()))
            if source in cards:
                card_edges[source].append(edge)
            ends = (source, target, slot, count)
            ends_of[edge] = ends
            if old.get(edge) != ends:
                changed.add(edge)
        for group_id, card in cards.items():
            card.set_input_count(len(card_sources[group_id]))
            card.set_output_count(len(card_targets[group_id]))
        return changed

    # ---- facts --------------------------------------------------------------------------

    def refresh_facts(self, inference: Inference, group_ids: list[str] | None = None) -> None:
        """Show in → out shape, parameters, multiply-adds and problems on the cards."""
        graph = self.scene.document.graph
        for group_id in self.cards if group_ids is None else group_ids:
            card = self.cards.get(group_id)
            if card is None or group_id not in graph.groups:
                continue
            facts = group_summary(graph, inference, group_id)
            shapes = ""
            if facts.in_shape is not None or facts.out_shape is not None:
                shapes = (f"{fmt_shape(facts.in_shape) if facts.in_shape else '?'} → "
                          f"{fmt_shape(facts.out_shape) if facts.out_shape else '?'}")
            params = f"{count_text(facts.params)} params"
            if facts.frozen_layers:  # ❄ as on a frozen layer's card
                params += (" ❄ frozen" if facts.frozen_layers == facts.layers
                           else f" ({count_text(facts.frozen_params)} frozen)")
            card.set_facts(shapes, params, f"{count_text(facts.macs)} MACs", facts.layers)
            card.set_problems(facts.severity, [p.message for p in facts.problems])
