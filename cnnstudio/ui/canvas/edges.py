"""Edges: a cubic curve from an output port to an input port (downwards, or rightwards
for a left-to-right graph), labelled with the tensor shape it carries, and the loose
wire that follows the mouse while connecting. Zoomed out, edges recede (fainter, labels
hidden) but never get thinner than EDGE_MIN_PX on screen."""

from __future__ import annotations

import functools

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPalette,
    QPen,
    QTransform,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from cnnstudio.ui.canvas import lod as lod_
from cnnstudio.ui.canvas import style

EDGE_TYPE = QGraphicsItem.UserType + 2
_ARROW = 7.0  # length of the arrow head at the target end
_LABEL_GAP = 6.0
# A detour leaves its source's port straight down, turns sideways below the shape label
# and comes back just above its target's arrow: both runs stay in the gaps between rows.
DETOUR_DROP = 28.0
DETOUR_RISE = 14.0
_CORNER = 6.0
# Room around the path for the pen: 1.2 pixels at 3 % zoom are 40 scene units, 20 each
# side (a selected edge's 3 pixels are cut to 2 at 5 %: still plain to see).
_BOUNDS_MARGIN = 20.0
_NO_PEN = Qt.PenStyle.NoPen  # enum lookups cost ~2 µs each in a paint called 1,000 times
_NO_BRUSH = Qt.BrushStyle.NoBrush
_NO_PEN_OBJECT = QPen(_NO_PEN)
_ROUND_CAP = Qt.PenCapStyle.RoundCap
_SOLID = Qt.PenStyle.SolidLine
_CENTRE = Qt.AlignmentFlag.AlignCenter
_ANTIALIAS = QPainter.RenderHint.Antialiasing


def curve(start: QPointF, end: QPointF, side: float | None = None,
          direction: str = "down") -> QPainterPath:
    """An S-curve from `start` to `end`: vertical for direction "down" (leaving
    downwards, entering from above), horizontal for "right" (leaving rightwards,
    entering from the left).

    With `side` (a scene x for "down", a scene y for "right"), the edge is routed around
    the cards in between instead: out of the port, across to `side`, along it, back
    across to the target's line and into it, with rounded corners (skip connections,
    branches that end several rows later). An edge to a target that is not further along
    the flow (the decoder of a U-Net drawn as a U) is routed the same way along a lane
    beside the cards, instead of an S that would loop back across them.
    """
    if direction == "right":
        # The same curve with x and y swapped: built in the transposed frame.
        return _transposed(_curve_down(_swap(start), _swap(end), side,
                                       style.NODE_HEIGHT))
    return _curve_down(start, end, side, style.NODE_WIDTH)


def _curve_down(start: QPointF, end: QPointF, side: float | None,
                card_across: float) -> QPainterPath:
    """`curve` for a top-to-bottom flow; `card_across`: a card's size across the flow."""
    if side is None and end.y() < start.y() - 1.0:
        if abs(end.x() - start.x()) >= card_across + 10:
            side = (start.x() + end.x()) / 2  # the gap between the two columns
        else:
            side = max(start.x(), end.x()) + card_across / 2 + 30
    path = QPainterPath(start)
    if side is not None:
        r = _CORNER
        sx, ex = start.x(), end.x()
        y1, y2 = start.y() + DETOUR_DROP, end.y() - DETOUR_RISE
        d1 = 1.0 if side > sx else -1.0
        d2 = 1.0 if ex > side else -1.0
        v = 1.0 if y2 >= y1 else -1.0  # along the lane: down, or back up
        path.lineTo(sx, y1 - r)
        path.quadTo(sx, y1, sx + d1 * r, y1)
        path.lineTo(side - d1 * r, y1)
        path.quadTo(side, y1, side, y1 + v * r)
        path.lineTo(side, y2 - v * r)
        path.quadTo(side, y2, side + d2 * r, y2)
        path.lineTo(ex - d2 * r, y2)
        path.quadTo(ex, y2, ex, y2 + r)
        path.lineTo(end)
        return path
    dy = max(abs(end.y() - start.y()) * 0.5, 40.0)
    path.cubicTo(QPointF(start.x(), start.y() + dy), QPointF(end.x(), end.y() - dy), end)
    return path


def _swap(p: QPointF) -> QPointF:
    return QPointF(p.y(), p.x())


_TRANSPOSE = QTransform(0, 1, 1, 0, 0, 0)  # (x, y) → (y, x)


def _transposed(path: QPainterPath) -> QPainterPath:
    return _TRANSPOSE.map(path)


@functools.cache
def _label_metrics() -> QFontMetricsF:
    """Metrics of the label font, made once: a shape change relabels every edge."""
    return QFontMetricsF(style.font(7.5))


@functools.lru_cache(maxsize=4096)
def _label_width(text: str) -> float:
    """Text shaping costs ~9 µs a label; a graph has few distinct shapes, so cache them."""
    return _label_metrics().horizontalAdvance(text)

class EdgeItem(QGraphicsRectItem):
    """The connection `source` → input `index` of `target`; it owns no model state. Its
    bounding rect is the C++ rect item's (`setRect` to `_bounds`, no pen): Qt asks for it
    several times per move and paint, ~4,000 times when a 1,000-layer network unfolds."""

    def __init__(self, source: str, target: str, index: int) -> None:
        super().__init__()
        self.source, self.target, self.index = source, target, index
        self.label = ""
        self.highlighted = False  # a palette drop would insert a layer here
        self._path = QPainterPath()
        self._head = QPainterPath()
        self._start = QPointF()
        self._side: float | None = None
        self.direction = "down"
        self._label_left = False
        self._end = QPointF()
        self._label_rect = QRectF()
        self._label_room = 0.0  # the widest label box laid out here; the bounds keep it
        self._bounds = QRectF()
        self.setPen(_NO_PEN_OBJECT)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setToolTip(f"{source} → {target}")
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setZValue(0)
        self.setAcceptHoverEvents(True)

    def type(self) -> int:  # noqa: A003 - Qt's name
        return EDGE_TYPE

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.source, self.target, self.index)

    def set_label(self, text: str) -> None:
        if text != self.label:
            self.label = text
            self.setToolTip(f"{self.source} → {self.target}" + (f": {text}" if text else ""))
            # The bounds keep room for the widest label so far: a label that fits (a shape
            # that changes and changes back, an error that blanks it) changes no geometry,
            # and spares the scene's index ~380 re-insertions when an edit relabels them.
            if text and _label_width(text) + 8 > self._label_room:
                self.prepareGeometryChange()
                self._layout_label()
            else:
                self._label_rect = self._label_box(_label_width(text) + 8) if text else QRectF()
            self.update()

    def set_highlighted(self, on: bool) -> None:
        if on != self.highlighted:
            self.highlighted = on
            self.update()

    def set_direction(self, direction: str) -> None:
        """"down" (vertical curves, the default) or "right" (horizontal curves: the path
        leaves its source rightwards and enters its target from the left; a detour's `side`
        is then a scene y). Re-routes between the current ends."""
        direction = "right" if direction == "right" else "down"
        if direction != self.direction:
            self.direction = direction
            if self._path.elementCount():
                self._reroute(self._start, self._end, self._side, self._label_left)

    def set_ends(self, start: QPointF, end: QPointF, side: float | None = None,
                 label_left: bool = False) -> None:
        """Re-route the curve between two scene points (after a node moved). `side`: the
        detour line (a scene x for direction "down", a scene y for "right"). `label_left`
        puts the shape label on the other side of the line: left of it for "down" (when
        every edge from the source bends right), above it for "right" (when every edge
        from the source bends down)."""
        if ((start, end, side, label_left) == (self._start, self._end, self._side,
                                               self._label_left)
                and self._path.elementCount()):
            return
        self._reroute(start, end, side, label_left)

    def _reroute(self, start: QPointF, end: QPointF, side: float | None,
                 label_left: bool) -> None:
        self.prepareGeometryChange()
        self._side, self._label_left = side, label_left
        self._path = curve(start, end, side, self.direction)
        self._head = arrow_head(end, self.direction)
        self._path_bounds = None
        self._start, self._end = QPointF(start), QPointF(end)
        self._layout_label()

    _path_bounds: QRectF | None = None

    def _label_box(self, w: float) -> QRectF:
        """Where a label box `w` wide goes: just below the source's port, beside the line
        (every edge leaving one node carries the same shape, so a fan-out's labels
        coincide and read as one)."""
        h = _label_metrics().height() + 2
        if self.direction == "right":  # just right of the port, below (or above) the line
            x = self._start.x() + style.PORT_RADIUS + 2
            y = self._start.y() + _LABEL_GAP - 2
            if self._label_left:
                y = self._start.y() - _LABEL_GAP + 2 - h
        else:
            y = self._start.y() + style.PORT_RADIUS + 2
            x = self._start.x() + _LABEL_GAP
            if self._label_left:
                x = self._start.x() - _LABEL_GAP - w
        return QRectF(x, y, w, h)

    def _layout_label(self) -> None:
        self._label_rect = QRectF()
        if self.label:
            w = _label_width(self.label) + 8
            self._label_room = max(self._label_room, w)
            self._label_rect = self._label_box(w)
        if self._path_bounds is None:
            m = _BOUNDS_MARGIN
            self._path_bounds = self._path.boundingRect().adjusted(-m, -m, m, m)
        self._bounds = QRectF(self._path_bounds)
        if self._label_room:  # the widest label's box: a narrower one fits without a change
            room = self._label_box(self._label_room)
            self._bounds = self._bounds.united(room.adjusted(-2, -2, 2, 2))
        self.setRect(self._bounds)

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(10.0)  # easy to click on a thin line
        hit = stroker.createStroke(self._path)
        if not self._label_rect.isNull():
            hit.addRect(self._label_rect)
        return hit

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        pal = widget.palette() if widget is not None else style.palette()
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        painter.setRenderHint(_ANTIALIAS)
        colour = QColor(_edge_colour(pal))
        emphasised = self.isSelected() or self.highlighted
        if self.isSelected():
            colour = style.highlight_color(pal)
        elif self.highlighted:
            colour = style.VALID_COLOR
        else:  # zoomed out, edges recede so the cards lead; they never vanish
            colour.setAlphaF(lod_.edge_opacity(lod))
        painter.setBrush(_NO_BRUSH)
        if emphasised or lod >= lod_.FAST_EDGE_LOD:
            width = lod_.edge_pen_width(lod, emphasised)
            painter.setPen(QPen(colour, width, _SOLID, _ROUND_CAP))
            painter.drawPath(self._path)
        else:
            # Zoomed out, a wide antialiased stroke costs ~0.25 ms a curve (1,000 edges:
            # a quarter second per zoom step); a one-pixel cosmetic pen takes ~0.015 ms.
            # Two of them, offset diagonally by FAST_EDGE_OFFSET pixels, read as an
            # EDGE_MIN_PX line in any direction.
            pen = QPen(colour, 1.0)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawPath(self._path)
            shift = lod_.device_width(lod_.FAST_EDGE_OFFSET, lod)
            painter.translate(shift, shift)
            painter.drawPath(self._path)
            painter.translate(-shift, -shift)
        if lod >= 0.25:  # smaller, the head is a speck
            painter.setPen(_NO_PEN)
            painter.setBrush(colour)
            painter.drawPath(self._head)
        fade = lod_.edge_label_opacity(lod) if self.label else 0.0
        if fade > 0.0:
            painter.setOpacity(painter.opacity() * fade)
            base = pal.color(pal.ColorRole.Base)
            painter.setPen(QPen(style.mix(colour, base, 0.4), 1.0))
            painter.setBrush(QColor(base.red(), base.green(), base.blue(), 230))
            painter.drawRoundedRect(self._label_rect, 4, 4)
            painter.setFont(style.font(7.5))
            painter.setPen(style.dim_text_color(pal) if not self.isSelected() else colour)
            painter.drawText(self._label_rect, _CENTRE, self.label)


_EDGE_COLOURS: dict[int, QColor] = {}


def _edge_colour(pal: QPalette) -> QColor:
    """style.edge_color, mixed once per palette (every edge repaints on a zoom step)."""
    key = pal.cacheKey()
    colour = _EDGE_COLOURS.get(key)
    if colour is None:
        if len(_EDGE_COLOURS) > 64:
            _EDGE_COLOURS.clear()
        colour = _EDGE_COLOURS[key] = style.edge_color(pal)
    return colour


def arrow_head(end: QPointF, direction: str) -> QPainterPath:
    """A small triangle whose tip is `end`, pointing along the flow: every route enters
    its target straight down ("down") or straight right ("right")."""
    half = _ARROW * 0.55
    head = QPainterPath(end)
    if direction == "right":
        head.lineTo(end.x() - _ARROW, end.y() - half)
        head.lineTo(end.x() - _ARROW, end.y() + half)
    else:
        head.lineTo(end.x() - half, end.y() - _ARROW)
        head.lineTo(end.x() + half, end.y() - _ARROW)
    head.closeSubpath()
    return head


class WireItem(QGraphicsPathItem):
    """The loose curve drawn while the user drags a new connection."""

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(10)
        self.set_state(None)

    def set_state(self, state: str | None) -> None:
        """None: searching; "valid"/"invalid": over a target that can/cannot take it."""
        colour = {"valid": style.VALID_COLOR, "invalid": style.INVALID_COLOR}.get(
            state or "", style.highlight_color())
        pen = QPen(colour, 2.2, Qt.PenStyle.DashLine if state != "valid" else Qt.PenStyle.SolidLine,
                   Qt.PenCapStyle.RoundCap)
        self.setPen(pen)

    def set_ends(self, start: QPointF, end: QPointF) -> None:
        self.setPath(curve(start, end, direction=_scene_direction(self)))


def _scene_direction(item: QGraphicsItem) -> str:
    """The flow direction of the graph the item's scene shows ("down" when unknown)."""
    graph = getattr(getattr(item.scene(), "document", None), "graph", None)
    return getattr(graph, "direction", "down")
