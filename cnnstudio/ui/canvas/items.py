"""The node item: a rounded card showing one layer, with its ports.

A `NodeItem` only displays what the scene tells it (`set_texts`, `set_problems`); it
owns no model state. Its position is the node's `pos` (the centre of the card); moving
it by hand only moves the picture until the view commits the drag as one command.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsSceneHoverEvent,
    QStyleOptionGraphicsItem,
    QWidget,
)

from cnnstudio.core import registry
from cnnstudio.ui.canvas import lod as lod_
from cnnstudio.ui.canvas import style
from cnnstudio.ui.canvas.card import Card
from cnnstudio.ui.canvas.ports import IN_PORT, OUT_PORT, Ports

if TYPE_CHECKING:
    pass

NODE_TYPE = QGraphicsItem.UserType + 1

__all__ = ["IN_PORT", "NODE_TYPE", "OUT_PORT", "NodeItem", "fit_id", "fit_title"]

_W, _H = style.NODE_WIDTH, style.NODE_HEIGHT
_RECT = QRectF(-_W / 2, -_H / 2, _W, _H)
_MARGIN = style.PORT_RADIUS + 5  # ports and the selection halo stick out of the card
_BOUNDS = _RECT.adjusted(-_MARGIN, -_MARGIN, _MARGIN, _MARGIN)
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


_NO_PEN = Qt.PenStyle.NoPen  # enum lookups cost ~2 µs each, in a paint run 1,000 times
# A frozen layer (not trained): an icy hatched stripe instead of its category's accent,
# and a snowflake at the end of its type line.
FROZEN_ACCENT = QColor("#cfe3f2")
FROZEN_INK = QColor("#2f78b0")
FROZEN_MARK = "❄"


@functools.cache
def _frozen_hatch() -> QBrush:
    return QBrush(FROZEN_INK, Qt.BrushStyle.BDiagPattern)


@functools.cache
def _accent_bar() -> QPainterPath:
    """The category accent: a bar along the card's left edge, clipped to its rounding."""
    card = QPainterPath()
    card.addRoundedRect(_RECT.adjusted(0.6, 0.6, -0.6, -0.6), style.NODE_RADIUS - 0.6,
                        style.NODE_RADIUS - 0.6)
    strip = QPainterPath()
    strip.addRect(QRectF(_RECT.left(), _RECT.top(), style.ACCENT_WIDTH, _H))
    return card.intersected(strip)


_COLOURS: dict[tuple[str, int, str, bool], tuple[QColor, QColor, QColor, QColor]] = {}
# Zoomed out the body takes more of the accent: the colours carry the structure.
_ACCENT_SHARE = {lod_.FULL: 0.0, lod_.LABEL: 0.45, lod_.BLOCK: 0.8}


def _card_colours(category: str, pal: QPalette, level: str,
                  frozen: bool = False) -> tuple[QColor, QColor, QColor, QColor]:
    """Accent, body, rim and label colour of a card: mixed once per palette and level
    (a zoom step repaints every card; mixing them each time cost a fifth of the paint).
    Zoomed out, a frozen card's body turns icy: its stripe and ❄ are too small to see."""
    key = (category, pal.cacheKey(), level, frozen)
    found = _COLOURS.get(key)
    if found is None:
        accent = style.category_color(category)
        body = style.mix(style.body_color(category, pal), accent, _ACCENT_SHARE[level])
        if frozen and level != lod_.FULL:
            body = style.mix(body, FROZEN_ACCENT, 0.7)
        label = lod_.on_colour(body) if level == lod_.BLOCK else style.text_color(pal)
        found = (accent, body, style.border_color(category, pal), label)
        if len(_COLOURS) > 512:  # palettes come and go (theme switches): stay small
            _COLOURS.clear()
        _COLOURS[key] = found
    return found


class NodeItem(Card):
    """One node of the graph, drawn as a card: id and output shape, then type and params."""

    def __init__(self, node_id: str, type_name: str) -> None:
        layer = registry.get(type_name)
        super().__init__(Ports(_W, _H, merge=layer.max_inputs is None,
                               has_input=layer.max_inputs != 0, bar_always=True), _BOUNDS)
        self.node_id = node_id
        self.type_name = type_name
        self.category = layer.category
        self.max_inputs = layer.max_inputs
        self.caption = ""
        self.shape_text = ""
        self.hover_port: str | None = None
        self.connect_state: str | None = None  # "valid" | "invalid" while a wire hovers
        self.frozen = False  # the node is not trainable (training leaves its parameters)

    def type(self) -> int:  # noqa: A003 - Qt's name
        return NODE_TYPE

    # ---- what it shows ------------------------------------------------------------------

    @property
    def has_input_port(self) -> bool:
        return self.ports.has_input

    @property
    def is_merge(self) -> bool:
        return self.ports.merge

    @property
    def input_count(self) -> int:
        return self.ports.input_count

    @property
    def output_count(self) -> int:
        return self.ports.output_count

    @property
    def direction(self) -> str:
        return self.ports.direction

    @property
    def title(self) -> str:
        """The type with its key params, e.g. 'Conv2d 32@3×3 s1 p1'."""
        return f"{self.type_name} {self.caption}".strip()

    def set_texts(self, caption: str, shape_text: str) -> None:
        if (caption, shape_text) != (self.caption, self.shape_text):
            self.caption, self.shape_text = caption, shape_text
            self._changed()

    def set_frozen(self, frozen: bool) -> None:
        if frozen != self.frozen:
            self.frozen = frozen
            self._changed()

    def set_node_id(self, node_id: str) -> None:
        self.node_id = node_id
        self._changed()

    def set_connect_state(self, state: str | None) -> None:
        if state != self.connect_state:
            self.connect_state = state
            self.update()

    def tooltip_text(self) -> str:
        """What the card's tooltip says: id, type, output shape and any problems."""
        lines = [f"{self.node_id} — {self.title}"]
        if self.shape_text:
            lines.append(f"output {self.shape_text}")
        if self.frozen:
            lines.append(f"{FROZEN_MARK} frozen: training leaves its parameters as they are")
        lines += [f"⚠ {message}" for message in self.messages]
        return "\n".join(lines)

    # ---- ports --------------------------------------------------------------------------

    def port_at(self, scene_pos: QPointF) -> str | None:
        """IN_PORT / OUT_PORT if `scene_pos` is on one of the ports, else None."""
        return self.ports.port_at(self.mapFromScene(scene_pos))

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

    def card_rect(self) -> QRectF:
        """The card itself, without ports and halo (item coordinates)."""
        return QRectF(_RECT)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        r = style.PORT_RADIUS + 2
        if self.ports.direction == "right":
            path.addRoundedRect(_RECT.adjusted(-r, 0, r, 0), style.NODE_RADIUS,
                                style.NODE_RADIUS)
        else:
            path.addRoundedRect(_RECT.adjusted(0, -r, 0, r), style.NODE_RADIUS,
                                style.NODE_RADIUS)
        return path

    def card_text(self, lod: float) -> lod_.CardText:
        """What the card shows at zoom `lod` (see lod.card_text_at)."""
        return lod_.card_text_at(lod, self.type_name, lod_.short_name(self.type_name), _W, _H)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        pal, lod = self._begin_paint(painter, option, widget)
        text = self.card_text(lod)
        accent, body, rim, label_colour = _card_colours(self.category, pal, text.level,
                                                        self.frozen)

        if self.isSelected() and not lod_.marker_needed(lod):
            # A halo outside the border keeps the problem colour visible.
            painter.setPen(lod_.halo_pen(style.highlight_color(pal), lod))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(lod_.halo_rect(_RECT, lod), style.NODE_RADIUS + 3,
                                    style.NODE_RADIUS + 3)

        if self.connect_state in ("valid", "invalid"):
            colour = style.VALID_COLOR if self.connect_state == "valid" else style.INVALID_COLOR
            pen, outline = QPen(colour, 3.0), _RECT
        else:
            pen = lod_.problem_pen(self.severity, rim, lod)
            outline = lod_.problem_rect(_RECT, self.severity, lod, pen.widthF())
        painter.setPen(pen)
        painter.setBrush(body)
        painter.drawRoundedRect(outline, style.NODE_RADIUS, style.NODE_RADIUS)

        if text.level != lod_.BLOCK:
            painter.setPen(_NO_PEN)
            painter.setBrush(FROZEN_ACCENT if self.frozen else accent)
            painter.drawPath(_accent_bar())
            if self.frozen:
                painter.setBrush(_frozen_hatch())
                painter.drawPath(_accent_bar())

        if text.level == lod_.FULL:
            self._paint_texts(painter, pal)
        else:
            label_rect = _RECT.adjusted(style.ACCENT_WIDTH if text.level == lod_.LABEL else 0,
                                        0, 0, 0)
            lod_.paint_label(painter, label_rect, text, label_colour)
        if lod >= 0.35:  # smaller ports are noise
            self.ports.paint(painter, pal, accent, rim, self.hover_port)

    def _paint_texts(self, painter: QPainter, pal: QPalette) -> None:
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

        if self.frozen:  # the mark at the type line's end; the title fits in what is left
            mark_font = style.font(12.5)
            mark_width = QFontMetricsF(mark_font).horizontalAdvance(FROZEN_MARK) + 4
            painter.setFont(mark_font)
            painter.setPen(FROZEN_INK)
            painter.drawText(bottom_line, Qt.AlignmentFlag.AlignRight
                             | Qt.AlignmentFlag.AlignVCenter, FROZEN_MARK)
            painter.setPen(style.text_color(pal))
            inner -= mark_width
        title_font, title = fit_title(self.type_name, self.caption, inner)
        painter.setFont(title_font)
        painter.drawText(bottom_line, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         title)
