"""What the scene shows, and where: the item showing a node, the cards and frames of the
groups, the visible items and their extent, the edges in and out of an item and the items
an edge is drawn between.

A mixin of `GraphScene`, kept apart so the scene module stays about mirroring the graph.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QGraphicsItem

from cnnstudio.core.shapes import Inference
from cnnstudio.ui.canvas.edges import EdgeItem
from cnnstudio.ui.canvas.group_item import GroupFrame, GroupItem
from cnnstudio.ui.canvas.items import NodeItem

if TYPE_CHECKING:
    from cnnstudio.ui.canvas.scene import GraphScene

    _Base = GraphScene
else:
    _Base = object


class SceneLookup(_Base):
    """Queries of `GraphScene` (which it is mixed into)."""

    def item_for(self, node_id: str) -> NodeItem | None:
        """The item showing node `node_id`, if any (hidden while a folded block holds it)."""
        return self._nodes.get(node_id)

    def node_items(self) -> list[NodeItem]:
        """Every node item (one per graph node, shown or not)."""
        return list(self._nodes.values())

    def node_id_items(self) -> Iterator[tuple[str, NodeItem]]:
        return iter(self._nodes.items())

    def group_item_for(self, group_id: str) -> GroupItem | None:
        """The card of folded group `group_id`, when it is shown."""
        self.flush(routes=False)
        return self.groups.cards.get(group_id)

    def frame_for(self, group_id: str) -> GroupFrame | None:
        """The frame around unfolded group `group_id`, when it is shown."""
        self.flush(routes=False)
        return self.groups.frames.get(group_id)

    def visible_items(self) -> list[QGraphicsItem]:
        """The cards shown now: node items and folded groups' cards."""
        self.flush(routes=False)
        return self.cards_as_drawn()

    def cards_as_drawn(self) -> list[QGraphicsItem]:
        """The visible node items and cards as they stand, changes of this turn not yet
        applied (`visible_items` applies them first)."""
        return [*(i for i in self._nodes.values() if i.isVisible()),
                *self.groups.cards.values()]

    def content_rect(self) -> QRectF:
        """The united scene rect of the visible cards and frames."""
        left = top = math.inf
        right = bottom = -math.inf
        # Every card of a class has the same bounds and none is scaled or rotated: its
        # position places it (in plain numbers: ~1,000 cards after each fold).
        bounds: dict[type, tuple[float, float, float, float]] = {}
        for item in self.visible_items():
            local = bounds.get(type(item))
            if local is None:
                local = bounds[type(item)] = item.boundingRect().getCoords()
            x, y = item.x(), item.y()
            left, top = min(left, local[0] + x), min(top, local[1] + y)
            right, bottom = max(right, local[2] + x), max(bottom, local[3] + y)
        for frame in self.groups.frames.values():
            outline = frame.sceneBoundingRect()
            if not outline.isNull():
                x1, y1, x2, y2 = outline.getCoords()
                left, top, right, bottom = (min(left, x1), min(top, y1), max(right, x2),
                                            max(bottom, y2))
        if left > right:
            return QRectF()
        return QRectF(QPointF(left, top), QPointF(right, bottom))

    def edge_items(self) -> list[EdgeItem]:
        """Every edge item, grouped by target in graph order."""
        return [e for edges in self._inputs.values() for e in edges]

    def edges_into(self, node_id: str) -> list[EdgeItem]:
        """The edge items feeding `node_id`, by input index."""
        return list(self._inputs.get(node_id, ()))

    def edges_leaving(self, item: QGraphicsItem) -> list[EdgeItem]:
        """The visible edges drawn out of a node item or a card."""
        if isinstance(item, GroupItem):
            return [e for e in self.groups.card_edges.get(item.group_id, ())
                    if self.groups.ends[e][0] == item.group_id]
        return [e for e in self._outputs.get(item.node_id, ()) if e.isVisible()]

    def edge_ends(self, edge: EdgeItem) -> tuple[QGraphicsItem, QGraphicsItem, int, int] | None:
        """(source item, target item, input slot, slot count) where `edge` is drawn; None
        when it is hidden inside a folded block."""
        if not edge.isVisible():
            return None
        shown = self.groups.shown_id
        source_id, target_id = shown(edge.source), shown(edge.target)
        if source_id == target_id:
            return None
        if target_id in self.groups.cards:  # a card's slots are its distinct sources
            ends = self.groups.ends.get(edge)
            slot, count = (ends[2], ends[3]) if ends is not None and ends[1] == target_id \
                else (0, 1)
        else:
            slot, count = edge.index, len(self._inputs.get(edge.target, ()))
        source, target = self.groups.item(source_id), self.groups.item(target_id)
        if source is None or target is None:
            return None
        return source, target, slot, count

    def input_count(self, node_id: str) -> int:
        return len(self._inputs.get(node_id, ()))

    def shown_inference(self) -> Inference | None:
        """The inference the items show (group and move events leave it valid); None
        before the first refresh."""
        return self._inference
