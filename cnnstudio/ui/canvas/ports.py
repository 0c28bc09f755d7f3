"""A card's ports: where edges meet it, which port the pointer is on, and their drawing.

Direction "down" (the default): input on the top edge, output on the bottom edge.
Direction "right": input on the left edge, output on the right edge. A merge card's
inputs spread along its input edge, in input order.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QBrush, QColor, QPainter, QPalette, QPen

from cnnstudio.ui.canvas import style

IN_PORT, OUT_PORT = "in", "out"
DOWN, RIGHT = "down", "right"
_SIDE_MARGIN = 9.0  # a merge bar on a left edge stops this far from the corners
_SPACING = 30.0  # between neighbouring merge inputs along a top edge
_SIDE_SPACING = 14.0  # ... along a left edge (cards are lower than wide)


class Ports:
    """The ports of a `width` × `height` card centred on its origin."""

    def __init__(self, width: float, height: float, merge: bool, has_input: bool = True,
                 bar_always: bool = False) -> None:
        self.width, self.height = width, height
        self.merge, self.has_input, self.bar_always = merge, has_input, bar_always
        self.direction = DOWN
        self.input_count = 0
        self.output_count = 0

    def set_direction(self, direction: str) -> bool:
        """Returns whether it changed. Anything but "right" means "down"."""
        direction = RIGHT if direction == RIGHT else DOWN
        changed = direction != self.direction
        self.direction = direction
        return changed

    def _half_bar(self) -> float:
        """Half the length of a merge input bar along the input edge."""
        if self.direction == RIGHT:
            return self.height / 2 - _SIDE_MARGIN
        return self.width / 2 - style.MERGE_PORT_MARGIN

    def input_anchor(self, index: int, count: int) -> QPointF:
        """Where input `index` of `count` meets the card (merge inputs spread out, in order)."""
        offset = 0.0
        if count > 1 and self.merge:
            spacing = _SIDE_SPACING if self.direction == RIGHT else _SPACING
            span = min(2 * self._half_bar(), spacing * (count - 1))
            offset = -span / 2 + span * index / (count - 1)
        if self.direction == RIGHT:
            return QPointF(-self.width / 2, offset)
        return QPointF(offset, -self.height / 2)

    def input_tip(self, index: int, count: int) -> QPointF:
        """Where an edge into input `index` of `count` ends: its arrow's tip touches the port."""
        anchor = self.input_anchor(index, count)
        if self.direction == RIGHT:
            return anchor - QPointF(style.PORT_RADIUS, 0.0)
        return anchor - QPointF(0.0, style.PORT_RADIUS)

    def output_anchor(self) -> QPointF:
        if self.direction == RIGHT:
            return QPointF(self.width / 2, 0.0)
        return QPointF(0.0, self.height / 2)

    def port_at(self, p: QPointF) -> str | None:
        """IN_PORT / OUT_PORT if the item point `p` is on a port, else None."""
        hit = style.PORT_HIT_RADIUS
        out = self.output_anchor()
        if abs(p.x() - out.x()) <= hit and abs(p.y() - out.y()) <= hit:
            return OUT_PORT
        if not self.has_input:
            return None
        half = self._half_bar() if self.merge else 0.0
        if self.direction == RIGHT:
            across, along = p.x() + self.width / 2, p.y()
        else:
            across, along = p.y() + self.height / 2, p.x()
        if abs(across) <= hit and abs(along) <= half + hit:
            return IN_PORT
        return None

    def paint(self, painter: QPainter, pal: QPalette, accent: QColor, rim: QColor,
              hover: str | None) -> None:
        base = pal.color(QPalette.ColorRole.Base)
        r = style.PORT_RADIUS
        for port in (IN_PORT, OUT_PORT):
            if port == IN_PORT and not self.has_input:
                continue
            hovered = hover == port
            painter.setPen(QPen(style.highlight_color(pal) if hovered else rim, 1.6))
            connected = (self.output_count if port == OUT_PORT else self.input_count) > 0
            painter.setBrush(QBrush(accent if connected or hovered else base))
            grow = 1.5 if hovered else 0.0
            bar = port == IN_PORT and self.merge and (self.bar_always or self.input_count > 1)
            if bar:
                half = self._half_bar()
                centre = self.input_anchor(0, 1)
                if self.direction == RIGHT:
                    rect = QRectF(centre.x() - r - grow, -half - r, 2 * (r + grow),
                                  2 * (half + r))
                else:
                    rect = QRectF(-half - r, centre.y() - r - grow, 2 * (half + r),
                                  2 * (r + grow))
                painter.drawRoundedRect(rect, r + grow, r + grow)
            else:
                centre = self.input_anchor(0, 1) if port == IN_PORT else self.output_anchor()
                painter.drawEllipse(centre, r + grow, r + grow)
