"""The visible cards by grid cell, for routing (`routing.py`): which cards stand where an
edge would run, asked without Qt's own index (after a bulk change Qt rebuilds that index
query by query, which made opening a 1,000-node graph take 0.6 s). A region spanning more
than _MAX_CELLS cells (nodes a billion units apart) is searched card by card instead of
cell by cell.

Everything here works in the *flow frame*: data flows down its y axis (`flow` swaps x and
y for a graph that flows right).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QGraphicsItem

Rect = tuple[float, float, float, float]  # left, top, right, bottom in the flow frame

_CELL = 256.0
STROKE = 3.0  # half the width of the band a curve must keep clear of cards
_MAX_CELLS = 4096  # a region covering more cells is searched card by card


def flow(point: QPointF, right: bool) -> tuple[float, float]:
    """(across, along) the flow."""
    return (point.y(), point.x()) if right else (point.x(), point.y())


class CardIndex:
    """The visible cards' hit areas (shape bounds plus the curve's half width), by cell."""

    def __init__(self, items: Iterable[QGraphicsItem], right: bool) -> None:
        self.right = right
        self.cells: dict[tuple[int, int], list[QGraphicsItem]] = {}
        self.across = (0.0, 0.0)  # every card lies between these across the flow
        self._where: dict[QGraphicsItem, tuple[Rect, list[tuple[int, int]]]] = {}
        self._local: dict[type, Rect] = {}
        self._fill(items)

    def _fill(self, items: Iterable[QGraphicsItem]) -> None:
        """`add` for many items, written out: the index is built anew after each fold,
        over ~1,000 cards of a large network."""
        cells, where, local_of, rect_of = self.cells, self._where, self._local, self._rect
        low, high = (math.inf, -math.inf) if not where else self.across
        for item in items:
            local = local_of.get(type(item))
            if local is None:
                rect = rect_of(item)  # works the class's bounds out once
            else:
                x, y = (item.y(), item.x()) if self.right else (item.x(), item.y())
                rect = (local[0] + x, local[1] + y, local[2] + x, local[3] + y)
            left, top, right, bottom = rect
            low, high = min(low, left), max(high, right)
            c0, c1, r0, r1 = int(left // _CELL), int(right // _CELL), int(top // _CELL), \
                int(bottom // _CELL)
            if c0 == c1 and r0 == r1:
                spans = [(c0, r0)]
            elif (c1 - c0 + 1) * (r1 - r0 + 1) <= _MAX_CELLS:
                spans = [(i, j) for i in range(c0, c1 + 1) for j in range(r0, r1 + 1)]
            else:
                spans = []  # a card spans a few cells
            for cell in spans:
                found = cells.get(cell)
                if found is None:
                    cells[cell] = [item]
                else:
                    found.append(item)
            where[item] = (rect, spans)
        if where:
            self.across = (low, high)

    def _rect(self, item: QGraphicsItem) -> Rect:
        local = self._local.get(type(item))
        if local is None:  # every card of one class has the same shape
            bounds = item.shape().boundingRect()
            left, top = flow(bounds.topLeft(), self.right)
            right, bottom = flow(bounds.bottomRight(), self.right)
            local = self._local[type(item)] = (left - STROKE, top - STROKE,
                                               right + STROKE, bottom + STROKE)
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
        self._fill((item,))

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


class Bands:
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


def curve_crosses(start: tuple[float, float], end: tuple[float, float], rect: Rect) -> bool:
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
