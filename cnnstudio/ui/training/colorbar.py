"""A colour bar: which colour means which value, beside any picture drawn through a colour
table (filter grids, feature maps, Grad-CAM, occlusion maps, kernel outputs)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QFontMetrics, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

BAR_WIDTH = 12


def value_text(value: float) -> str:
    """A short label for a level: three significant digits, no "-0"."""
    text = f"{value:.3g}"
    return "0" if text in ("-0", "0") else text


class ColorBar(QWidget):
    """A vertical strip of the colour table with its value range: `high` at the top,
    `low` at the bottom, the middle value between them (0 on a diverging scale). A `title`
    (e.g. "weight") may name what the values are."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("colorBar")
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.lut = np.zeros((2, 3), np.uint8)
        self.low, self.high = 0.0, 1.0
        self.title = ""
        self._image: QImage | None = None
        self.setVisible(False)  # until a picture says what its colours mean

    def set_scale(self, lut: np.ndarray, low: float, high: float, title: str = "") -> None:
        """Show `lut` (n × 3 or n × 4 bytes, low value first) from `low` to `high`."""
        self.lut = np.ascontiguousarray(np.asarray(lut, np.uint8)[:, :3])
        self.low, self.high, self.title = float(low), float(high), title
        # One pixel column, top row = the table's last entry (the highest value).
        rgb = np.ascontiguousarray(self.lut[::-1][:, None, :].repeat(1, axis=1))
        self._rgb = rgb  # QImage borrows the buffer: keep it alive
        self._image = QImage(rgb.data, 1, len(rgb), 3, QImage.Format.Format_RGB888)
        self.setToolTip(f"{title + ': ' if title else ''}colour scale from {value_text(low)}"
                        f" (bottom) to {value_text(high)} (top)")
        self.setVisible(True)
        self.updateGeometry()
        self.update()

    def labels(self) -> list[str]:
        """The texts drawn beside the bar, top to bottom."""
        mid = (self.low + self.high) / 2
        return [value_text(self.high), value_text(mid), value_text(self.low)]

    def sizeHint(self) -> QSize:
        metrics = QFontMetrics(self.font())
        width = max((metrics.horizontalAdvance(t) for t in [*self.labels(), self.title]),
                    default=20)
        return QSize(BAR_WIDTH + 6 + width, 80)

    def minimumSizeHint(self) -> QSize:
        return QSize(self.sizeHint().width(), 40)

    def paintEvent(self, _event: QPaintEvent) -> None:
        if self._image is None:
            return
        painter = QPainter(self)
        metrics = QFontMetrics(self.font())
        line = metrics.height()
        top = line // 2 + (line if self.title else 0)
        bottom = self.height() - line // 2
        if bottom - top < 4:
            return
        bar = QRectF(0, top, BAR_WIDTH, bottom - top)
        painter.drawImage(bar, self._image)
        painter.setPen(QPen(self.palette().windowText().color()))
        painter.drawRect(bar)
        x = BAR_WIDTH + 4
        if self.title:
            painter.drawText(0, metrics.ascent(), self.title)
        high, mid, low = self.labels()
        centre = (top + bottom) / 2
        painter.drawText(int(x), int(top + metrics.ascent() / 2), high)
        painter.drawText(int(x), int(centre + metrics.ascent() / 2), mid)
        painter.drawText(int(x), int(bottom + metrics.ascent() / 2 - 1), low)
        painter.end()
