"""A folded group's card (`GroupItem`); the outline around an unfolded one (`GroupFrame`,
defined in group_frame) is re-exported here.

Like `NodeItem`, the card only displays what the scene tells it. It looks like a small
stack of cards (the block it stands for) in a neutral slate accent that no layer
category uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from cnnstudio.ui.canvas import lod as lod_
from cnnstudio.ui.canvas import style
from cnnstudio.ui.canvas.card import Card
from cnnstudio.ui.canvas.group_frame import FRAME_TYPE, GroupFrame
from cnnstudio.ui.canvas.ports import Ports

if TYPE_CHECKING:
    pass

GROUP_TYPE = QGraphicsItem.UserType + 3  # + 2 is EdgeItem's

__all__ = ["FRAME_TYPE", "GROUP_TYPE", "GroupFrame", "GroupItem"]

_W, _H = style.GROUP_WIDTH, style.GROUP_HEIGHT
_RECT = QRectF(-_W / 2, -_H / 2, _W, _H)
_PAD = 10.0
_STACK = style.STACK_OFFSET
_M = style.PORT_RADIUS + 5  # ports and the selection halo; the stack up and right
_BOUNDS = _RECT.adjusted(-_M, -_M - 2 * _STACK, _M + 2 * _STACK, _M)


class GroupItem(Card):
    """A folded group drawn as one card: name, in → out shape, params, MACs, layers."""

    def __init__(self, group_id: str, name: str) -> None:
        super().__init__(Ports(_W, _H, merge=True), _BOUNDS)
        self.group_id = group_id
        self.node_id = group_id  # so code keyed by node ids finds the card
        self.name = name
        self.shape_text = ""
        self.params_text = ""
        self.macs_text = ""
        self.layer_count = 0

    def type(self) -> int:  # noqa: A003 - Qt's name
        return GROUP_TYPE

    # ---- what it shows ------------------------------------------------------------------

    def set_name(self, name: str) -> None:
        if name != self.name:
            self.name = name
            self._changed()

    def set_facts(self, shape_text: str, params_text: str, macs_text: str,
                  layer_count: int) -> None:
        facts = (shape_text, params_text, macs_text, layer_count)
        if facts != (self.shape_text, self.params_text, self.macs_text, self.layer_count):
            self.shape_text, self.params_text, self.macs_text, self.layer_count = facts
            self._changed()

    def tooltip_text(self) -> str:
        """The card's facts and its problems, one per line."""
        count = f"{self.layer_count} layer{'s' if self.layer_count != 1 else ''}"
        lines = [f"{self.name} — folded block of {count}"]
        if self.shape_text:
            lines.append(self.shape_text)
        facts = " · ".join(t for t in (self.params_text, self.macs_text) if t)
        if facts:
            lines.append(facts)
        lines += [f"⚠ {message}" for message in self.messages]
        lines.append("Double-click to unfold")
        return "\n".join(lines)

    # ---- ports: shown, never wired from (unfold to connect inside the block) -----------

    def port_at(self, scene_pos: QPointF) -> None:
        return None

    # ---- geometry and painting ----------------------------------------------------------

    def card_rect(self) -> QRectF:
        """The card itself, without ports and halo (item coordinates)."""
        return QRectF(_RECT)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(_RECT.adjusted(-2, -2 - 2 * _STACK, 2 + 2 * _STACK, 2),
                            style.NODE_RADIUS, style.NODE_RADIUS)
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        pal, lod = self._begin_paint(painter, option, widget)
        accent = style.group_accent()
        text = lod_.card_text_at(lod, self.name, lod_.short_group_name(self.name), _W, _H,
                                 bold=True)
        base = pal.color(QPalette.ColorRole.Base)
        body = style.mix(base, accent, 0.30 if style.is_dark(pal) else 0.16)
        if text.level == lod_.BLOCK:
            body = style.mix(body, accent, 0.7)
        elif text.level == lod_.LABEL:
            body = style.mix(body, accent, 0.35)
        rim = style.mix(accent, style.text_color(pal), 0.25)
        radius = style.NODE_RADIUS

        # The stack behind: two offset cards, the far one fainter.
        if text.level != lod_.BLOCK or lod > 0.08:
            thin = max(1.0, lod_.device_width(1.0, lod))
            for step, fade in ((2, 0.55), (1, 0.3)):
                behind = _RECT.translated(step * _STACK, -step * _STACK)
                painter.setPen(QPen(style.mix(rim, base, fade), thin))
                painter.setBrush(style.mix(body, base, fade * 0.6))
                painter.drawRoundedRect(behind, radius, radius)

        if self.isSelected() and not lod_.marker_needed(lod):
            painter.setPen(lod_.halo_pen(style.highlight_color(pal), lod))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(lod_.halo_rect(_RECT, lod), radius + 3, radius + 3)

        pen = lod_.problem_pen(self.severity, rim, lod)
        painter.setPen(pen)
        painter.setBrush(body)
        painter.drawRoundedRect(lod_.problem_rect(_RECT, self.severity, lod, pen.widthF()),
                                radius, radius)
        if text.level == lod_.FULL:
            self._paint_texts(painter, pal, accent)
            self.ports.paint(painter, pal, accent, rim, None)
        else:
            colour = style.text_color(pal) if text.level == lod_.LABEL else lod_.on_colour(body)
            facts = self.second_line(lod, text)
            if facts is None:
                lod_.paint_label(painter, _RECT, text, colour, bold=True)
            else:  # room for a second line: the shapes in and out, a little smaller
                name_rect = QRectF(_RECT.left(), _RECT.top() + 2, _W, _H / 2 + 2)
                lod_.paint_label(painter, name_rect, text, colour, bold=True)
                painter.setPen(style.dim_text_color(pal))
                painter.setFont(lod_.label_font(facts.pixel_size))
                painter.drawText(QRectF(_RECT.left(), 2, _W, _H / 2 - 4),
                                 Qt.AlignmentFlag.AlignCenter, facts.text)
            if lod >= 0.35:
                self.ports.paint(painter, pal, accent, rim, None)

    def second_line(self, lod: float, name: lod_.CardText) -> lod_.CardText | None:
        """The in → out shapes as a second label line, when the zoomed-out card is high
        enough for two readable lines (else None: the name alone)."""
        if name.level != lod_.LABEL or not self.shape_text:
            return None
        out_only = "→ " + self.shape_text.split("→")[-1].strip()  # when both do not fit
        half = lod_.card_text_at(lod, self.shape_text, out_only, _W, _H / 2 - 2)
        if half.level != lod_.LABEL or name.screen_px > _H * lod / 2:
            return None
        return half

    def _paint_texts(self, painter: QPainter, pal: QPalette, accent: QColor) -> None:
        left = _RECT.left() + _PAD
        inner = _W - 2 * _PAD
        line_h = (_H - 8) / 3
        lines = [QRectF(left, _RECT.top() + 4 + i * line_h, inner, line_h) for i in range(3)]
        left_mid = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        right_mid = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter

        count = f"{self.layer_count} layer{'s' if self.layer_count != 1 else ''}"
        if self.messages:
            count = f"⚠ {count}"
        small = style.font(7.5)
        count_width = QFontMetricsF(small).horizontalAdvance(count)
        painter.setFont(small)
        warn = {"error": style.ERROR_COLOR, "warning": style.WARNING_COLOR}
        painter.setPen(warn.get(self.severity or "", style.dim_text_color(pal)))
        painter.drawText(lines[0], right_mid, count)

        name_font = style.font(9.0, bold=True)
        painter.setFont(name_font)
        painter.setPen(style.text_color(pal))
        name = QFontMetricsF(name_font).elidedText(self.name, Qt.TextElideMode.ElideRight,
                                                  inner - count_width - 8)
        painter.drawText(lines[0], left_mid, name)

        painter.setFont(style.font(8.0))
        shape = self.shape_text or "? → ?"
        painter.drawText(lines[1], left_mid, QFontMetricsF(painter.font()).elidedText(
            shape, Qt.TextElideMode.ElideMiddle, inner))
        facts = " · ".join(t for t in (self.params_text, self.macs_text) if t)
        painter.setPen(style.dim_text_color(pal))
        painter.drawText(lines[2], left_mid, QFontMetricsF(painter.font()).elidedText(
            facts, Qt.TextElideMode.ElideRight, inner))
