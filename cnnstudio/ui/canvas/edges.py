"""Edges: a cubic curve from an output port down to an input port, labelled with the
tensor shape it carries, and the loose wire that follows the mouse while connecting."""

from __future__ import annotations

import functools

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyleOptionGraphicsItem, QWidget

from cnnstudio.ui.canvas import style

EDGE_TYPE = QGraphicsItem.UserType + 2
_ARROW = 7.0  # length of the arrow head at the target end
_LABEL_GAP = 6.0
# A detour leaves its source's port straight down, turns sideways below the shape label
# and comes back just above its target's arrow: both runs stay in the gaps between rows.
DETOUR_DROP = 28.0
DETOUR_RISE = 14.0
_CORNER = 6.0


def curve(start: QPointF, end: QPointF, side: float | None = None) -> QPainterPath:
    """A vertical S-curve from `start` (pointing down) to `end` (entering from above).

    With `side` (a scene x), the edge is routed around the cards in between instead:
    down, across to `side`, down along it, across to above `end`, down into it, with
    rounded corners (skip connections, branches that end several rows later).
    """
    path = QPainterPath(start)
    if side is not None:
        r = _CORNER
        sx, ex = start.x(), end.x()
        y1, y2 = start.y() + DETOUR_DROP, end.y() - DETOUR_RISE
        d1 = 1.0 if side > sx else -1.0
        d2 = 1.0 if ex > side else -1.0
        path.lineTo(sx, y1 - r)
        path.quadTo(sx, y1, sx + d1 * r, y1)
        path.lineTo(side - d1 * r, y1)
        path.quadTo(side, y1, side, y1 + r)
        path.lineTo(side, y2 - r)
        path.quadTo(side, y2, side + d2 * r, y2)
        path.lineTo(ex - d2 * r, y2)
        path.quadTo(ex, y2, ex, y2 + r)
        path.lineTo(end)
        return path
    dy = max(abs(end.y() - start.y()) * 0.5, 40.0)
    path.cubicTo(QPointF(start.x(), start.y() + dy), QPointF(end.x(), end.y() - dy), end)
    return path



@functools.cache
def _label_metrics() -> QFontMetricsF:
    """Metrics of the label font, made once: a shape change relabels every edge."""
    return QFontMetricsF(style.font(7.5))


@functools.lru_cache(maxsize=4096)
def _label_width(text: str) -> float:
    """Text shaping costs ~9 µs a label; a graph has few distinct shapes, so cache them."""
    return _label_metrics().horizontalAdvance(text)

class EdgeItem(QGraphicsItem):
    """The connection `source` → input `index` of `target`; it owns no model state."""

    def __init__(self, source: str, target: str, index: int) -> None:
        super().__init__()
        self.source, self.target, self.index = source, target, index
        self.label = ""
        self.highlighted = False  # a palette drop would insert a layer here
        self._path = QPainterPath()
        self._start = QPointF()
        self._side: float | None = None
        self._label_left = False
        self._end = QPointF()
        self._label_rect = QRectF()
        self._bounds = QRectF()
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
            self.prepareGeometryChange()
            self.label = text
            self.setToolTip(f"{self.source} → {self.target}" + (f": {text}" if text else ""))
            self._layout_label()
            self.update()

    def set_highlighted(self, on: bool) -> None:
        if on != self.highlighted:
            self.highlighted = on
            self.update()

    def set_ends(self, start: QPointF, end: QPointF, side: float | None = None,
                 label_left: bool = False) -> None:
        """Re-route the curve between two scene points (after a node moved); `label_left`
        puts the label left of the line (when every edge from the source bends right)."""
        if ((start, end, side, label_left) == (self._start, self._end, self._side,
                                               self._label_left)
                and self._path.elementCount()):
            return
        self.prepareGeometryChange()
        self._side, self._label_left = side, label_left
        self._path = curve(start, end, side)
        self._path_bounds = None
        self._start, self._end = QPointF(start), QPointF(end)
        self._layout_label()

    _path_bounds: QRectF | None = None

    def _layout_label(self) -> None:
        self._label_rect = QRectF()
        if self.label:
            # Just below the source's port, beside the line: every edge leaving one node
            # carries the same shape, so a fan-out's labels coincide and read as one.
            w = _label_width(self.label) + 8
            h = _label_metrics().height() + 2
            y = self._start.y() + style.PORT_RADIUS + 2
            x = self._start.x() + _LABEL_GAP
            if self._label_left:
                x = self._start.x() - _LABEL_GAP - w
            self._label_rect = QRectF(x, y, w, h)
        if self._path_bounds is None:
            self._path_bounds = self._path.boundingRect().adjusted(-_ARROW, -_ARROW, _ARROW,
                                                                   _ARROW)
        self._bounds = QRectF(self._path_bounds)
        if not self._label_rect.isNull():
            self._bounds = self._bounds.united(self._label_rect.adjusted(-2, -2, 2, 2))

    def boundingRect(self) -> QRectF:
        return self._bounds

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
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = style.edge_color(pal)
        width = 1.6
        if self.isSelected():
            colour, width = style.highlight_color(pal), 3.0
        elif self.highlighted:
            colour, width = style.VALID_COLOR, 3.0
        painter.setPen(QPen(colour, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self._path)
        _arrow_head(painter, self._path, colour)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if self.label and lod >= style.LOD_EDGE_LABEL:
            base = pal.color(pal.ColorRole.Base)
            painter.setPen(QPen(style.mix(colour, base, 0.4), 1.0))
            painter.setBrush(QColor(base.red(), base.green(), base.blue(), 230))
            painter.drawRoundedRect(self._label_rect, 4, 4)
            painter.setFont(style.font(7.5))
            painter.setPen(style.dim_text_color(pal) if not self.isSelected() else colour)
            painter.drawText(self._label_rect, Qt.AlignmentFlag.AlignCenter, self.label)


def _arrow_head(painter: QPainter, path: QPainterPath, colour: QColor) -> None:
    """A small filled triangle where the curve enters its target (data flows this way)."""
    if path.length() < _ARROW * 2:
        return
    tip = path.pointAtPercent(1.0)
    back = path.pointAtPercent(path.percentAtLength(path.length() - _ARROW))
    dx, dy = tip.x() - back.x(), tip.y() - back.y()
    norm = max((dx * dx + dy * dy) ** 0.5, 1e-6)
    ux, uy = dx / norm, dy / norm
    half = _ARROW * 0.55
    head = QPainterPath(tip)
    head.lineTo(back.x() - uy * half, back.y() + ux * half)
    head.lineTo(back.x() + uy * half, back.y() - ux * half)
    head.closeSubpath()
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawPath(head)


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
        self.setPath(curve(start, end))
