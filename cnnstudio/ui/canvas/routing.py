"""Where edges run: from the item showing their source (a card, or the folded block holding
it) to the item showing their target, detouring around cards that stand in the way.

Routing works in the *flow frame*: data flows down its y axis. For a graph that flows
right, x and y are swapped on the way in and out, so one algorithm serves both.

Which cards stand in the way is looked up in `CardIndex`, a grid of the visible cards kept
here rather than asked of Qt: after a bulk change (opening, folding a block that shifts
hundreds of cards) Qt's own index is rebuilt query by query, which made opening a
1,000-node graph take 0.6 s.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QGraphicsItem

from cnnstudio.ui.canvas import style
from cnnstudio.ui.canvas.edges import DETOUR_DROP, DETOUR_RISE, EdgeItem

if TYPE_CHECKING:
    from cnnstudio.ui.canvas.scene import GraphScene

Rect = tuple[float, float, float, float]  # left, top, right, bottom in the flow frame

_CELL = 256.0
_STROKE = 3.0  # half the width of the band a curve must keep clear of cards
_LANE = 12.0  # half the width of a detour's lane
_CLEARANCE = 36.0  # between a detour and the cards it passes
# Between a detour and the side of a group's frame: a detour running a few units beside a
# frame reads as a second border at 40 % zoom, so it keeps this far from every frame side
# it runs along (outside the frames around the cards it passes, or well inside one).
_FRAME_CLEARANCE = 30.0
_MAX_CELLS = 4096  # a region covering more cells is searched card by card
_ANY, _MIXED = object(), object()  # an empty cell; a cell whose cards moved unlike


def _flow(point: QPointF, right: bool) -> tuple[float, float]:
    return (point.y(), point.x()) if right else (point.x(), point.y())


class CardIndex:
    """The visible cards' hit areas (shape bounds plus the curve's half width), by cell."""

    def __init__(self, items: Iterable[QGraphicsItem], right: bool) -> None:
        self.right = right
        self.cells: dict[tuple[int, int], list[QGraphicsItem]] = {}
        self.across = (0.0, 0.0)  # every card lies between these across the flow
        self._where: dict[QGraphicsItem, tuple[Rect, list[tuple[int, int]]]] = {}
        self._local: dict[type, Rect] = {}
        for item in items:
            self.add(item)

    def _rect(self, item: QGraphicsItem) -> Rect:
        local = self._local.get(type(item))
        if local is None:  # every card of one class has the same shape
            bounds = item.shape().boundingRect()
            left, top = _flow(bounds.topLeft(), self.right)
            right, bottom = _flow(bounds.bottomRight(), self.right)
            local = self._local[type(item)] = (left - _STROKE, top - _STROKE,
                                               right + _STROKE, bottom + _STROKE)
        x, y = item.x(), item.y()
        if self.right:
            x, y = y, x
        return (local[0] + x, local[1] + y, local[2] + x, local[3] + y)

    @staticmethod
    def cell_span(rect: Rect) -> tuple[range, range] | None:
        """The cell columns and rows `rect` covers; None when they are too many to walk
        (a card dragged a million units away makes an edge that long)."""
        columns = range(int(rect[0] // _CELL), int(rect[2] // _CELL) + 1)
        rows = range(int(rect[1] // _CELL), int(rect[3] // _CELL) + 1)
        return (columns, rows) if len(columns) * len(rows) <= _MAX_CELLS else None

    def cells_of(self, rect: Rect) -> list[tuple[int, int]] | None:
        span = self.cell_span(rect)
        return None if span is None else [(i, j) for i in span[0] for j in span[1]]

    def add(self, item: QGraphicsItem) -> None:
        rect = self._rect(item)
        if self._where:
            self.across = (min(self.across[0], rect[0]), max(self.across[1], rect[2]))
        else:
            self.across = (rect[0], rect[2])
        cells = self.cells_of(rect) or []  # a card spans a few cells
        for cell in cells:
            self.cells.setdefault(cell, []).append(item)
        self._where[item] = (rect, cells)

    def remove(self, item: QGraphicsItem) -> None:
        found = self._where.pop(item, None)
        if found is not None:
            for cell in found[1]:
                self.cells[cell].remove(item)

    def move(self, item: QGraphicsItem) -> None:
        if item in self._where:
            self.remove(item)
            self.add(item)

    def placed(self) -> list[QGraphicsItem]:
        return list(self._where)

    def rect_of(self, item: QGraphicsItem) -> Rect:
        found = self._where.get(item)
        return found[0] if found is not None else self._rect(item)

    def query(self, rect: Rect) -> list[tuple[QGraphicsItem, Rect]]:
        """The cards whose hit area overlaps `rect`."""
        found: dict[QGraphicsItem, Rect] = {}
        left, top, right, bottom = rect
        cells = self.cells_of(rect)
        candidates = (self._where if cells is None
                      else (item for cell in cells for item in self.cells.get(cell, ())))
        for item in candidates:
            if item not in found:
                r = self._where[item][0]
                if r[0] <= right and r[2] >= left and r[1] <= bottom and r[3] >= top:
                    found[item] = r
        return list(found.items())


class _Bands:
    """The along-flow extents of the cards that did not move, before and after a bulk
    move: a region whose rows none of them reaches is clear (checked by bisection)."""

    def __init__(self, blockers: tuple[list[Rect], list[Rect]]) -> None:
        self._old = self._merged(blockers[0])
        self._new = self._merged(blockers[1])

    @staticmethod
    def _merged(rects: list[Rect]) -> tuple[list[float], list[float]]:
        starts: list[float] = []
        ends: list[float] = []
        for _, top, _, bottom in sorted(rects, key=lambda r: r[1]):
            if ends and top <= ends[-1]:
                ends[-1] = max(ends[-1], bottom)
            else:
                starts.append(top)
                ends.append(bottom)
        return starts, ends

    @staticmethod
    def _free(bands: tuple[list[float], list[float]], low: float, high: float) -> bool:
        i = bisect.bisect_right(bands[0], high) - 1
        return i < 0 or bands[1][i] < low

    def old_free(self, y1: float, y2: float, x1: float, x2: float, right: bool) -> bool:
        return self._free(self._old, x1, x2) if right else self._free(self._old, y1, y2)

    def new_free(self, y1: float, y2: float, x1: float, x2: float, right: bool) -> bool:
        return self._free(self._new, x1, x2) if right else self._free(self._new, y1, y2)


def _curve_crosses(start: tuple[float, float], end: tuple[float, float], rect: Rect) -> bool:
    """Whether edges.curve's plain S-curve from `start` down to `end` (flow frame) passes
    through `rect`. Both coordinates of that cubic are monotonic in t, so the curve meets
    the rect's rows on one t interval, along which x runs from one end value to the other."""
    (sx, sy), (ex, ey) = start, end
    dy = max(abs(ey - sy) * 0.5, 40.0)
    c1, c2 = sy + dy, ey - dy

    def y_at(t: float) -> float:
        u = 1.0 - t
        return u * u * u * sy + 3 * u * u * t * c1 + 3 * u * t * t * c2 + t * t * t * ey

    def x_at(t: float) -> float:
        t2 = t * t * (3.0 - 2.0 * t)  # control points sx, sx, ex, ex: smoothstep
        return sx + (ex - sx) * t2

    def t_for(y: float) -> float:
        lo, hi = 0.0, 1.0
        for _ in range(16):  # to within 1/65536 of the length: far below a pixel
            mid = (lo + hi) / 2
            if y_at(mid) < y:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    left, top, right, bottom = rect
    if bottom < sy or top > ey:
        return False
    xa, xb = x_at(t_for(max(top, sy))), x_at(t_for(min(bottom, ey)))
    return min(xa, xb) <= right and max(xa, xb) >= left


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
                left, top = _flow(outline.topLeft(), right)
                far, bottom = _flow(outline.bottomRight(), right)
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
        clear = _Bands(self._blockers(shifted, shown_before)) if len(offsets) == 1 else None
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
        across = _flow(source.pos(), right)[0]
        targets = [self.scene.edge_ends(e) for e in self.scene.edges_leaving(source)]
        return bool(targets) and all(
            t is not None and _flow(t[1].pos(), right)[0] > across + 10 for t in targets)

    def detour(self, source: QGraphicsItem, target: QGraphicsItem) -> float | None:
        """The across-flow coordinate an edge detours along when its plain curve would run
        behind other cards (skip connections, branches that end rows later); None when the
        curve is clear."""
        right = self.scene.direction == "right"
        start = _flow(source.pos() + source.output_anchor(), right)
        end = _flow(target.pos() + target.input_anchor(0, 1), right)
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
        box = (min(start[0], end[0]) - _STROKE, start[1], max(start[0], end[0]) + _STROKE,
               end[1])
        hits = [r for item, r in index.query(box) if item is not source and item is not target
                and _curve_crosses(start, end, r)]
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
