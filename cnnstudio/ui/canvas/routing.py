"""Where edges run: from the item showing their source (a card, or the folded block holding
it) to the item showing their target, detouring around cards that stand in the way.

Routing works in the *flow frame*: data flows down its y axis. For a graph that flows
right, x and y are swapped on the way in and out, so one algorithm serves both.

Which cards stand in the way is looked up in `CardIndex` (card_index.py), a grid of the
visible cards kept here rather than asked of Qt.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QGraphicsItem

from cnnstudio.ui.canvas import style
from cnnstudio.ui.canvas.card_index import STROKE, Bands, CardIndex, Rect, curve_crosses, flow
from cnnstudio.ui.canvas.edges import DETOUR_DROP, DETOUR_RISE, EdgeItem

if TYPE_CHECKING:
    from cnnstudio.ui.canvas.scene import GraphScene

_LANE = 12.0  # half the width of a detour's lane
_CLEARANCE = 36.0  # between a detour and the cards it passes
# Between a detour and the side of a group's frame: a detour running a few units beside a
# frame reads as a second border at 40 % zoom, so it keeps this far from every frame side
# it runs along (outside the frames around the cards it passes, or well inside one).
_FRAME_CLEARANCE = 30.0
_NEAR_VIEW = 400.0  # scene units around the visible region that count as near it
_ANY, _MIXED = object(), object()  # an empty cell; a cell whose cards moved unlike


class EdgeRouter:
    """Routes a scene's edges between the items that show their ends."""

    def __init__(self, scene: GraphScene) -> None:
        self.scene = scene
        self._index: CardIndex | None = None
        # Where each edge's curve was routed to run; `translate` shifts the item instead.
        self._drawn: dict[EdgeItem, tuple[QPointF, QPointF]] = {}
        # (source, target) → (direction is right, start, end, cards in the rows between,
        # detour) as last worked out.
        self._detours: dict[tuple[QGraphicsItem, QGraphicsItem], tuple] = {}
        # Edges whose routing the scene left for a later turn (many changed at once).
        self.pending: set[EdgeItem] = set()
        self._frames: list[Rect] | None = None
        self._frames_key = 0

    def invalidate(self) -> None:
        """Cards appeared, vanished or moved in bulk: rebuild the index when next needed."""
        self._index = None
        self.frames_changed()

    def frames_changed(self) -> None:
        """Group frames appeared, vanished or were fitted anew."""
        self._frames = None

    def frame_rects(self) -> list[Rect]:
        """The shown frames' outlines in the flow frame."""
        if self._frames is None:
            right = self.scene.direction == "right"
            self._frames = []
            for frame in self.scene.groups.frames.values():
                outline = frame.frame_rect()
                if outline.isNull():
                    continue
                left, top = flow(outline.topLeft(), right)
                far, bottom = flow(outline.bottomRight(), right)
                self._frames.append((left, top, far, bottom))
            # Detours worked out among other frames are stale; among the same ones (a
            # block unfolded back to where it was) they still hold.
            self._frames_key = hash(tuple(self._frames))
        return self._frames

    def item_moved(self, item: QGraphicsItem) -> None:
        if self._index is not None:
            self._index.move(item)

    def item_added(self, item: QGraphicsItem) -> None:
        if self._index is not None and item.isVisible():
            self._index.add(item)

    def item_removed(self, item: QGraphicsItem) -> None:
        if self._index is not None:
            self._index.remove(item)

    def index(self) -> CardIndex:
        right = self.scene.direction == "right"
        if self._index is None or self._index.right != right:
            self._index = CardIndex(self.scene.cards_as_drawn(), right)
        return self._index

    def route(self, edge: EdgeItem,
              label_sides: dict[QGraphicsItem, bool] | None = None) -> None:
        """Route `edge` afresh. `label_sides`: a cache of `label_left` for routing many
        edges at once (every edge of a source asks the same)."""
        self.pending.discard(edge)
        ends = self.scene.edge_ends(edge)
        if ends is None:
            return
        source, target, slot, count = ends
        right = self.scene.direction == "right"
        start = source.pos() + source.output_anchor()
        end = target.pos() + target.input_anchor(slot, count)
        # The arrow's tip stops at the port's rim, not its centre.
        end -= QPointF(style.PORT_RADIUS, 0) if right else QPointF(0, style.PORT_RADIUS)
        if not edge.pos().isNull():  # shifted by `translate`: back to scene coordinates
            edge.setPos(QPointF())
        if label_sides is None:
            label_left = self.label_left(source)
        elif (label_left := label_sides.get(source)) is None:
            label_left = label_sides[source] = self.label_left(source)
        edge.set_ends(start, end, self.detour(source, target), label_left)
        self._drawn[edge] = (start, end)

    def route_pending(self, most: int | None = None) -> bool:
        """Route the edges left for later (`most` of them at most); return whether some
        are left still."""
        label_sides: dict[QGraphicsItem, bool] = {}
        while self.pending and (most is None or most > 0):
            edge = self.pending.pop()
            if edge.scene() is self.scene:
                self.route(edge, label_sides)
            most = None if most is None else most - 1
        return bool(self.pending)

    def split_near_view(self, edges: list[EdgeItem], most: int) -> tuple[list[EdgeItem],
                                                                     list[EdgeItem]]:
        """(the edges whose ends span a region near a view of the scene, `most` of them
        at most; the others): routed now and in later turns."""
        views = self.scene.views()
        if not views:
            return edges[:most], edges[most:]
        near = QRectF()
        for view in views:
            near = near.united(view.mapToScene(view.viewport().rect()).boundingRect())
        near.adjust(-_NEAR_VIEW, -_NEAR_VIEW, _NEAR_VIEW, _NEAR_VIEW)
        left, top, right, bottom = near.getCoords()
        item_for = self.scene.item_for  # a hidden node lies in its folded block, by its card
        now: list[EdgeItem] = []
        later: list[EdgeItem] = []
        for edge in edges:
            source, target = item_for(edge.source), item_for(edge.target)
            if source is None or target is None or len(now) >= most:
                later.append(edge)
                continue
            x1, y1, x2, y2 = source.x(), source.y(), target.x(), target.y()
            if (min(x1, x2) <= right and max(x1, x2) >= left
                    and min(y1, y2) <= bottom and max(y1, y2) >= top):
                now.append(edge)
            else:
                later.append(edge)
        return now, later

    def forget(self, edge: EdgeItem) -> None:
        self._drawn.pop(edge, None)
        self.pending.discard(edge)

    def drawn_ends(self, edge: EdgeItem) -> tuple[QPointF, QPointF] | None:
        """Where the edge's curve starts and ends in the scene now (None: never routed)."""
        if edge in self.pending:
            self.route(edge)
        drawn = self._drawn.get(edge)
        return None if drawn is None else (drawn[0] + edge.pos(), drawn[1] + edge.pos())

    def translate(self, edges: Iterable[EdgeItem],
                  shifted: dict[QGraphicsItem, tuple[float, float]],
                  shown_before: set[QGraphicsItem]) -> list[EdgeItem]:
        """Move edges as a whole when their ends and everything around them moved by the
        same offset (the nodes past a block that folds): the route each had still holds,
        and moving an item costs a fraction of routing it again. `shown_before`: the
        cards visible before this change. Returns the edges for which that is not so
        (the caller routes them).

        Written for speed: folding a block of a 1,000-node graph shifts ~1,000 edges."""
        right = self.scene.direction == "right"
        index = self.index()
        offsets = set(shifted.values())
        clear = Bands(self._blockers(shifted, shown_before)) if len(offsets) == 1 else None
        cells = index.cells
        ends_of = self.scene.groups.ends
        item_of = self.scene.groups.item
        items: dict[str, QGraphicsItem | None] = {}
        cell_offsets: dict[tuple[int, int], object] = {}
        label_kept: dict[str, bool] = {}
        failed: list[EdgeItem] = []

        def offset_of(shown_id: str) -> tuple[float, float] | None:
            if shown_id not in items:
                items[shown_id] = item_of(shown_id)
            item = items[shown_id]
            return shifted.get(item) if item is not None else None

        def unmoved_around(x1: float, y1: float, x2: float, y2: float,
                           offset: tuple[float, float]) -> bool:
            if right:
                x1, y1, x2, y2 = y1, x1, y2, x2
            span = index.cell_span((x1, y1, x2, y2))
            if span is None:
                return True  # far-flung: route it afresh
            for i in span[0]:
                for j in span[1]:
                    key = (i, j)
                    found = cell_offsets.get(key)
                    if found is None:
                        offsets = {shifted.get(item) for item in cells.get(key, ())}
                        found = cell_offsets[key] = (offsets.pop() if len(offsets) == 1
                                                     else _MIXED if offsets else _ANY)
                    if found is not _ANY and found != offset:
                        # A card near that did not move with it: look closer.
                        return any(shifted.get(item) != offset
                                   for item, _ in index.query((x1, y1, x2, y2)))
            return False

        for edge in edges:
            ends = ends_of.get(edge)
            drawn = self._drawn.get(edge)
            if ends is None or drawn is None or not edge.isVisible():
                failed.append(edge)
                continue
            source_id, target_id = ends[0], ends[1]
            offset = offset_of(source_id)
            if offset is None or offset_of(target_id) != offset:
                failed.append(edge)
                continue
            if source_id not in label_kept:  # the label side depends on all its targets
                source = items[source_id]
                label_kept[source_id] = all(
                    (other := ends_of.get(e)) is not None and offset_of(other[1]) == offset
                    for e in self.scene.edges_leaving(source))
            x1, y1, x2, y2 = edge.sceneBoundingRect().getCoords()
            dx, dy = offset
            if not label_kept[source_id]:
                failed.append(edge)
                continue
            if clear is None or not (clear.old_free(y1, y2, x1, x2, right)
                                     and clear.new_free(y1 + dy, y2 + dy, x1 + dx, x2 + dx,
                                                        right)):
                if unmoved_around(x1, y1, x2, y2, offset) \
                        or unmoved_around(x1 + dx, y1 + dy, x2 + dx, y2 + dy, offset):
                    failed.append(edge)
                    continue
            edge.moveBy(dx, dy)
        return failed

    def _blockers(self, shifted: dict[QGraphicsItem, tuple[float, float]],
                  shown_before: set[QGraphicsItem]) -> tuple[list[Rect], list[Rect]]:
        """Where cards stood that did not move with the rest, before and after the change
        (a card that appeared or vanished counts as not moving), in the flow frame."""
        index = self.index()
        shown_now = set(index.placed())
        before, after = [], []
        for item in shown_before:
            rect = index.rect_of(item)
            offset = shifted.get(item)
            if offset is not None:
                if item in shown_now:
                    continue  # moved with the rest
                along = offset[0] if index.right else offset[1]
                rect = (rect[0], rect[1] - along, rect[2], rect[3] - along)  # where it was
            before.append(rect)
        for item in shown_now:
            if item not in shifted or item not in shown_before:
                after.append(index.rect_of(item))
        return before, after

    def label_left(self, source: QGraphicsItem) -> bool:
        """Shape labels go on the other side of a source's port when all its edges bend to
        the label's usual side, so the label never sits on a curve (and a fan-out's labels
        still coincide)."""
        right = self.scene.direction == "right"
        across = flow(source.pos(), right)[0]
        targets = [self.scene.edge_ends(e) for e in self.scene.edges_leaving(source)]
        return bool(targets) and all(
            t is not None and flow(t[1].pos(), right)[0] > across + 10 for t in targets)

    def detour(self, source: QGraphicsItem, target: QGraphicsItem) -> float | None:
        """The across-flow coordinate an edge detours along when its plain curve would run
        behind other cards (skip connections, branches that end rows later); None when the
        curve is clear."""
        right = self.scene.direction == "right"
        start = flow(source.pos() + source.output_anchor(), right)
        end = flow(target.pos() + target.input_anchor(0, 1), right)
        along = style.NODE_WIDTH if right else style.NODE_HEIGHT
        if end[1] < start[1] - 1.0 and self.scene.groups.frames:
            return self._backward_side(source, target, start, end)
        if end[1] - start[1] < DETOUR_DROP + DETOUR_RISE + along:
            return None  # adjacent rows: the curve stays in the gap between them
        index = self.index()
        # The detour depends only on the cards in the rows the edge spans: when those stand
        # as they did when it was last worked out (unfolding what was folded), reuse it.
        band = frozenset(index.query((index.across[0], start[1], index.across[1], end[1])))
        known = self._detours.get((source, target))
        self.frame_rects()  # brings `_frames_key` up to date
        key = (right, start, end, band, self._frames_key)
        if known is not None and known[:5] == key:
            return known[5]
        if len(self._detours) > 4 * len(index.cells) + 1024:
            self._detours.clear()  # entries of items long gone
        side = self._detour(index, source, target, start, end)
        self._detours[(source, target)] = (*key, side)
        return side

    def _backward_side(self, source: QGraphicsItem, target: QGraphicsItem,
                       start: tuple[float, float], end: tuple[float, float]) -> float:
        """The lane of an edge back against the flow (a U-Net's decoder fed from the
        stage below and beside it): midway in the free gap between the cards and frames
        standing between the two columns when that gap keeps it _FRAME_CLEARANCE from
        their sides; else up the far side of the target's column, when the way across
        to it below the source is clear (the midway line would run a few units beside
        two frames, a triple border at 40 % zoom); beside the column when both ends
        share it."""
        card_across = style.NODE_HEIGHT if self.scene.direction == "right" \
            else style.NODE_WIDTH
        low, high = sorted((start[0], end[0]))
        index = self.index()
        top, bottom = end[1] - DETOUR_RISE, start[1] + DETOUR_DROP
        if high - low < card_across + 10:  # one column: out past the frames beside it
            return self._clear_side(index, source, target, [high], top, bottom, 1.0)
        middle = (low + high) / 2
        left, right = low, high
        obstacles = [r for _, r in index.query((low, top, high, bottom))]
        obstacles += [f for f in self.frame_rects() if f[1] <= bottom and f[3] >= top]
        for r in obstacles:
            if r[0] <= low and r[2] >= high:
                continue  # a frame around both columns
            if (r[0] + r[2]) / 2 < middle:
                left = max(left, r[2])
            else:
                right = min(right, r[0])
        if right - left >= 2 * _FRAME_CLEARANCE:
            return (left + right) / 2
        direction = 1.0 if end[0] > start[0] else -1.0
        side = self._clear_side(index, source, target, [end[0]], top, bottom, direction)
        run = (min(start[0], side), bottom - _LANE, max(start[0], side), bottom + _LANE)
        if not any(item is not source for item, _ in index.query(run)):
            return side
        return (left + right) / 2 if left < right else middle

    def _clear_side(self, index: CardIndex, source: QGraphicsItem | None,
                    target: QGraphicsItem | None, xs: list[float], top: float,
                    bottom: float, direction: float) -> float:
        """The line beyond the cards centred at `xs`, `direction` +1 (higher across the
        flow) or -1, stepped past the cards standing on it and kept _FRAME_CLEARANCE
        from the sides of the frames beside rows `top`..`bottom`."""
        reach = (style.NODE_HEIGHT if index.right else style.NODE_WIDTH) / 2 + _CLEARANCE
        frames = [f for f in self.frame_rects() if f[1] <= bottom and f[3] >= top]
        side = (max(xs) + reach) if direction > 0 else (min(xs) - reach)
        for _ in range(12):  # step past cards on the line itself and frame sides near it
            blocking = [(r[0] + r[2]) / 2 + direction * reach
                        for item, r in index.query((side - _LANE, top, side + _LANE, bottom))
                        if item is not source and item is not target]
            blocking += [(f[2] if direction > 0 else f[0]) + direction * _FRAME_CLEARANCE
                         for f in frames
                         if min(abs(side - f[0]), abs(side - f[2])) < _FRAME_CLEARANCE]
            if not blocking:
                break
            side = max(blocking) if direction > 0 else min(blocking)
        return side

    def _detour(self, index: CardIndex, source: QGraphicsItem, target: QGraphicsItem,
                start: tuple[float, float], end: tuple[float, float]) -> float | None:
        box = (min(start[0], end[0]) - STROKE, start[1], max(start[0], end[0]) + STROKE,
               end[1])
        hits = [r for item, r in index.query(box) if item is not source and item is not target
                and curve_crosses(start, end, r)]
        if not hits:
            return None
        top, bottom = start[1] + DETOUR_DROP, end[1] - DETOUR_RISE
        best: tuple[float, float] | None = None
        xs = [(r[0] + r[2]) / 2 for r in hits] + [start[0], end[0]]
        for direction in (1.0, -1.0):
            side = self._clear_side(index, source, target, xs, top, bottom, direction)
            cost = abs(side - start[0]) + abs(side - end[0])
            if best is None or cost < best[0]:
                best = (cost, side)
        return best[1] if best else None
