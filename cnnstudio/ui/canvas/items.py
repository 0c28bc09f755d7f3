"""The node item: a rounded card showing one layer, with its ports.

A `NodeItem` only displays what the scene tells it (`set_texts`, `set_problems`); it
owns no model state. Its position is the node's `pos` (the centre of the card); moving
it by hand only moves the picture until the view commits the drag as one command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsSceneHoverEvent,
    QStyleOptionGraphicsItem,
    QWidget,
)

from cnnstudio.core import registry
from cnnstudio.ui.canvas import style

if TYPE_CHECKING:
    from cnnstudio.ui.canvas.scene import GraphScene

NODE_TYPE = QGraphicsItem.UserType + 1

IN_PORT, OUT_PORT = "in", "out"

_W, _H = style.NODE_WIDTH, style.NODE_HEIGHT
_RECT = QRectF(-_W / 2, -_H / 2, _W, _H)
_PAD = 10.0


TITLE_POINTS = (8.5, 8.0, 7.5)  # the card's type line shrinks this far before eliding


def fit_title(type_name: str, caption: str, width: float) -> tuple[QFont, str]:
    """The font and text of a card's type line within `width`: the full "type caption" at
    the largest size that fits; else the smallest size with the type name shortened in its
    middle ("ConvTr…e2d") and the caption, which carries the numbers, kept whole."""
    full = f"{type_name} {caption}".strip()
    for points in TITLE_POINTS:
        title_font = style.font(points)
        if QFontMetricsF(title_font).horizontalAdvance(full) <= width:
            return title_font, full
    metrics = QFontMetricsF(title_font)
    room = width - metrics.horizontalAdvance(f" {caption}") if caption else width
    if caption and room >= metrics.horizontalAdvance("Co…d"):
        name = metrics.elidedText(type_name, Qt.TextElideMode.ElideMiddle, room)
        return title_font, f"{name} {caption}"
    return title_font, metrics.elidedText(full, Qt.TextElideMode.ElideRight, width)


def fit_id(node_id: str, width: float) -> tuple[QFont, str]:
    """The card's id at 9 pt bold, else 8 pt, else shortened in its middle: ids differ
    at their end ("convtranspose2d1", "…2d2"), so the end stays."""
    for points in (9.0, 8.0):
        id_font = style.font(points, bold=True)
        metrics = QFontMetricsF(id_font)
        if metrics.horizontalAdvance(node_id) <= width:
            return id_font, node_id
    return id_font, metrics.elidedText(node_id, Qt.TextElideMode.ElideMiddle, width)


class NodeItem(QGraphicsItem):
    """One node of the graph, drawn as a card: id and output shape, then type and params."""

    def __init__(self, node_id: str, type_name: str) -> None:
        super().__init__()
        self.node_id = node_id
        self.type_name = type_name
        layer = registry.get(type_name)
        self.category = layer.category
        self.max_inputs = layer.max_inputs
        self.caption = ""
        self.shape_text = ""
        self.severity: str | None = None  # "error" | "warning" | None
        self.messages: list[str] = []
        self.input_count = 0
        self.output_count = 0
        self.hover_port: str | None = None
        self.connect_state: str | None = None  # "valid" | "invalid" while a wire hovers
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setAcceptHoverEvents(True)
        # Each card is rendered once into a pixmap and blitted: 300 nodes stay smooth.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setZValue(1)
        self._update_tooltip()

    def type(self) -> int:  # noqa: A003 - Qt's name
        return NODE_TYPE

    # ---- what it shows ------------------------------------------------------------------

    @property
    def has_input_port(self) -> bool:
        return self.max_inputs != 0

    @property
    def is_merge(self) -> bool:
        return self.max_inputs is None

    @property
    def title(self) -> str:
        """The type with its key params, e.g. 'Conv2d 32@3×3 s1 p1'."""
        return f"{self.type_name} {self.caption}".strip()

    def set_texts(self, caption: str, shape_text: str) -> None:
        if (caption, shape_text) != (self.caption, self.shape_text):
            self.caption, self.shape_text = caption, shape_text
            self._update_tooltip()
            self.update()

    def set_problems(self, severity: str | None, messages: list[str]) -> None:
        if (severity, messages) != (self.severity, self.messages):
            self.severity, self.messages = severity, list(messages)
            self._update_tooltip()
            self.update()

    def set_node_id(self, node_id: str) -> None:
        self.node_id = node_id
        self._update_tooltip()
        self.update()

    def set_input_count(self, count: int) -> None:
        if count != self.input_count:
            self.input_count = count
            self.update()

    def set_output_count(self, count: int) -> None:
        if count != self.output_count:
            self.output_count = count
            self.update()

    def set_connect_state(self, state: str | None) -> None:
        if state != self.connect_state:
            self.connect_state = state
            self.update()

    def tooltip_text(self) -> str:
        """What the card's tooltip says: id, type, output shape and any problems."""
        lines = [f"{self.node_id} — {self.title}"]
        if self.shape_text:
            lines.append(f"output {self.shape_text}")
        lines += [f"⚠ {message}" for message in self.messages]
        return "\n".join(lines)

    def _update_tooltip(self) -> None:
        # Built when the pointer arrives (hoverEnterEvent), not on every edit: a shape
        # change can touch all 300 cards, and setToolTip costs ~10 µs each.
        self._tooltip_dirty = True

    def toolTip(self) -> str:  # noqa: N802 (Qt's name)
        self._refresh_tooltip()
        return super().toolTip()

    def _refresh_tooltip(self) -> None:
        if getattr(self, "_tooltip_dirty", True):
            self._tooltip_dirty = False
            self.setToolTip(self.tooltip_text())

    def hoverEnterEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        self._refresh_tooltip()
        super().hoverEnterEvent(event)

    # ---- ports --------------------------------------------------------------------------

    def input_anchor(self, index: int, count: int) -> QPointF:
        """Where input `index` of `count` meets the card (merge inputs spread out, in order)."""
        y = -_H / 2
        if count <= 1 or not self.is_merge:
            return QPointF(0.0, y)
        span = min(_W - 2 * style.MERGE_PORT_MARGIN, 30.0 * (count - 1))
        return QPointF(-span / 2 + span * index / (count - 1), y)

    def output_anchor(self) -> QPointF:
        return QPointF(0.0, _H / 2)

    def port_at(self, scene_pos: QPointF) -> str | None:
        """IN_PORT / OUT_PORT if `scene_pos` is on one of the ports, else None."""
        p = self.mapFromScene(scene_pos)
        hit = style.PORT_HIT_RADIUS
        out = self.output_anchor()
        if abs(p.x() - out.x()) <= hit and abs(p.y() - out.y()) <= hit:
            return OUT_PORT
        if self.has_input_port and abs(p.y() + _H / 2) <= hit:
            half = (_W / 2 - style.MERGE_PORT_MARGIN) if self.is_merge else 0.0
            if abs(p.x()) <= half + hit:
                return IN_PORT
        return None

    def hoverMoveEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        port = self.port_at(event.scenePos())
        if port != self.hover_port:
            self.hover_port = port
            self.setCursor(Qt.CursorShape.CrossCursor if port else Qt.CursorShape.ArrowCursor)
            self.update()

    def hoverLeaveEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        if self.hover_port is not None:
            self.hover_port = None
            self.unsetCursor()
            self.update()

    # ---- geometry and painting ----------------------------------------------------------

    def boundingRect(self) -> QRectF:
        m = style.PORT_RADIUS + 5  # ports and the selection halo stick out of the card
        return _RECT.adjusted(-m, -m, m, m)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        r = style.PORT_RADIUS + 2
        path.addRoundedRect(_RECT.adjusted(0, -r, 0, r), style.NODE_RADIUS, style.NODE_RADIUS)
        return path

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: object) -> object:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            scene: GraphScene | None = self.scene()  # type: ignore[assignment]
            if scene is not None:
                scene.node_item_moved(self)
        return super().itemChange(change, value)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        pal = widget.palette() if widget is not None else style.palette()
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        accent = style.category_color(self.category)
        selected = self.isSelected()

        if selected:  # a halo outside the border keeps the problem colour visible
            painter.setPen(QPen(style.highlight_color(pal), 3.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(_RECT.adjusted(-4, -4, 4, 4), style.NODE_RADIUS + 3,
                                    style.NODE_RADIUS + 3)

        border, width, dash = style.border_color(self.category, pal), 1.2, False
        if self.connect_state == "valid":
            border, width = style.VALID_COLOR, 3.0
        elif self.connect_state == "invalid":
            border, width = style.INVALID_COLOR, 3.0
        elif self.severity == "error":
            border, width = style.ERROR_COLOR, 2.6
        elif self.severity == "warning":
            border, width, dash = style.WARNING_COLOR, 2.4, True
        pen = QPen(border, width)
        if dash:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        body = style.body_color(self.category, pal)
        if lod < style.LOD_TEXT:  # zoomed far out: the colours carry the structure
            body = style.mix(body, accent, 0.45)
        painter.setBrush(body)
        painter.drawRoundedRect(_RECT, style.NODE_RADIUS, style.NODE_RADIUS)

        # The category accent: a bar along the left edge, clipped to the rounded card.
        bar = QPainterPath()
        bar.addRoundedRect(_RECT.adjusted(0.6, 0.6, -0.6, -0.6), style.NODE_RADIUS - 0.6,
                           style.NODE_RADIUS - 0.6)
        strip = QPainterPath()
        strip.addRect(QRectF(_RECT.left(), _RECT.top(), style.ACCENT_WIDTH, _H))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(accent)
        painter.drawPath(bar.intersected(strip))

        if lod >= style.LOD_TEXT:
            self._paint_texts(painter, pal)
        self._paint_ports(painter, pal, accent)

    def _paint_texts(self, painter: QPainter, pal) -> None:
        left = _RECT.left() + style.ACCENT_WIDTH + _PAD - 2
        inner = _RECT.right() - _PAD - left
        top_line = QRectF(left, _RECT.top() + 4, inner, _H / 2 - 4)
        bottom_line = QRectF(left, 0, inner, _H / 2 - 4)

        shape_font = style.font(8.0)
        shape_text = f"→ {self.shape_text}" if self.shape_text else "→ ?"  # ? = unknown yet
        if self.severity == "error" and not self.shape_text:
            shape_text = "⚠ error"
        shape_width = QFontMetricsF(shape_font).horizontalAdvance(shape_text) if shape_text else 0
        painter.setFont(shape_font)
        colour = style.ERROR_COLOR if shape_text == "⚠ error" else style.dim_text_color(pal)
        painter.setPen(colour)
        painter.drawText(top_line, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         shape_text)

        room = inner - shape_width - (8 if shape_width else 0)
        id_font, id_text = fit_id(self.node_id, room)
        painter.setFont(id_font)
        painter.setPen(style.text_color(pal))
        painter.drawText(top_line, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         id_text)

        title_font, title = fit_title(self.type_name, self.caption, inner)
        painter.setFont(title_font)
        painter.drawText(bottom_line, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         title)

    def _paint_ports(self, painter: QPainter, pal, accent: QColor) -> None:
        base = pal.color(pal.ColorRole.Base)
        rim = style.border_color(self.category, pal)
        r = style.PORT_RADIUS
        for port in (IN_PORT, OUT_PORT):
            if port == IN_PORT and not self.has_input_port:
                continue
            hovered = self.hover_port == port
            painter.setPen(QPen(style.highlight_color(pal) if hovered else rim, 1.6))
            connected = (self.output_count if port == OUT_PORT else self.input_count) > 0
            painter.setBrush(QBrush(accent if connected or hovered else base))
            grow = 1.5 if hovered else 0.0
            if port == IN_PORT and self.is_merge:
                half = _W / 2 - style.MERGE_PORT_MARGIN
                painter.drawRoundedRect(QRectF(-half - r, -_H / 2 - r - grow, 2 * (half + r),
                                               2 * (r + grow)), r + grow, r + grow)
            else:
                centre = QPointF(0, -_H / 2) if port == IN_PORT else self.output_anchor()
                painter.drawEllipse(centre, r + grow, r + grow)

