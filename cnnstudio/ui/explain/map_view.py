"""A map of values drawn as square cells that fill the widget: a layer's output (cells not
yet visited left blank), a layer's input with its zero border and the window, or the
sample picture with the region the chosen value sees. Numbers are written in the cells
when they are large enough to read; the hovered cell's value is in the tooltip.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFontMetricsF,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from cnnstudio.ui.explain.arithmetic_text import NEGATIVE, NEUTRAL, PADDING, POSITIVE, fmt
from cnnstudio.ui.explain.number_grid import ACCENT, MUTED, qcolour

TITLE_GAP = 4.0
BLANK = (255, 255, 255)


def colour_cells(values: np.ndarray, scale: float) -> np.ndarray:
    """(rows, cols, 3) uint8: the page's sign/magnitude colours, vectorised."""
    v = np.nan_to_num(np.asarray(values, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    t = np.clip(np.abs(v) / (scale if scale > 0 else 1.0), 0.0, 1.0)[..., None] * 0.75
    neutral = np.asarray(NEUTRAL, np.float64)
    target = np.where((v > 0)[..., None], np.asarray(POSITIVE, np.float64),
                      np.asarray(NEGATIVE, np.float64))
    return np.round(neutral + (target - neutral) * t).astype(np.uint8)


def grey_cells(values: np.ndarray) -> np.ndarray:
    """(rows, cols, 3) uint8 of a picture: one channel as grey, 3 channels as RGB, each
    stretched to its own range."""
    a = np.asarray(values, np.float64)
    low, high = float(np.nanmin(a)), float(np.nanmax(a))
    scaled = (a - low) / (high - low) if high > low else np.zeros_like(a)
    rgb = np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)
    return rgb if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=2)


class MapView(QWidget):
    """Cells that fill the widget, square, centred, under an optional title.

    `clicked(row, col)` gives data coordinates (padding cells are not data)."""

    clicked = Signal(int, int)

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setMouseTracking(True)
        self.setMinimumSize(90, 90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.title = ""
        self.values = np.zeros((0, 0))
        self.rgb = np.zeros((0, 0, 3), np.uint8)
        self.pad = (0, 0)  # zero rows, cols drawn around the data (on both sides)
        self.window: list[tuple[int, int]] = []  # taps in data coordinates (may be padding)
        self.box: tuple[int, int, int, int] | None = None  # [r0, c0, r1, c1) outline
        self.highlight: tuple[int, int] | None = None
        self.numbers = True  # write values in cells large enough (pictures: no)
        self.blank: np.ndarray | None = None
        self._image: QImage | None = None

    def sizeHint(self) -> QSize:
        return QSize(220, 220)

    # ---- content -------------------------------------------------------------------

    def show_values(self, values: np.ndarray, scale: float, title: str = "",
                    pad: tuple[int, int] = (0, 0), blank: np.ndarray | None = None) -> None:
        """A map of numbers (2-D; 1-D shown as one row), coloured by sign/magnitude;
        `blank` cells (True) drawn empty; `pad` zero rows/columns drawn around it."""
        values = np.asarray(values, np.float64)
        values = values.reshape(1, -1) if values.ndim == 1 else values
        self.values, self.title, self.pad, self.numbers = values, title, pad, True
        self.blank = blank
        rgb = colour_cells(values, scale)
        if blank is not None:
            rgb[np.asarray(blank, bool).reshape(values.shape)] = BLANK
        self._set_rgb(rgb)

    def show_picture(self, picture: np.ndarray, title: str = "") -> None:
        """A sample as a picture: (H, W) grey or (H, W, 3) colour, no numbers."""
        a = np.asarray(picture, np.float64)
        a = a.reshape(1, -1) if a.ndim == 1 else a
        self.values, self.title, self.pad, self.numbers = a if a.ndim == 2 else a[..., 0], \
            title, (0, 0), False
        self.blank = None
        self._set_rgb(grey_cells(a))

    def clear(self) -> None:
        self.values = np.zeros((0, 0))
        self.window, self.box, self.highlight, self.title = [], None, None, ""
        self._set_rgb(np.zeros((0, 0, 3), np.uint8))

    def set_marks(self, window: list[tuple[int, int]] | None = None,
                  box: tuple[int, int, int, int] | None = None,
                  highlight: tuple[int, int] | None = None) -> None:
        """What is drawn over the cells: the window's taps, a region, the chosen cell."""
        self.window, self.box, self.highlight = list(window or []), box, highlight
        self.update()

    def _set_rgb(self, rgb: np.ndarray) -> None:
        pr, pc = self.pad
        if (pr or pc) and rgb.size:
            full = np.empty((rgb.shape[0] + 2 * pr, rgb.shape[1] + 2 * pc, 3), np.uint8)
            full[:] = PADDING
            full[pr:pr + rgb.shape[0], pc:pc + rgb.shape[1]] = rgb
            rgb = full
        self.rgb = np.ascontiguousarray(rgb)
        h, w = self.rgb.shape[:2]
        self._image = QImage(self.rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy() \
            if h and w else None
        self.update()

    # ---- geometry --------------------------------------------------------------------

    def _title_height(self) -> float:
        return QFontMetricsF(self.font()).height() + TITLE_GAP if self.title else 0.0

    def cell_geometry(self) -> tuple[float, float, float]:
        """(cell size, left, top) of the drawn cells in widget pixels."""
        h, w = self.rgb.shape[:2]
        if not h or not w:
            return 0.0, 0.0, 0.0
        top = self._title_height()
        cell = max(1.0, min((self.width() - 2) / w, (self.height() - top - 2) / h))
        left = (self.width() - cell * w) / 2
        return cell, left, top + 1

    def _rect(self, r0: float, c0: float, r1: float, c1: float) -> QRectF:
        """Widget rectangle of data cells [r0, r1) × [c0, c1) (padding counted)."""
        cell, left, top = self.cell_geometry()
        pr, pc = self.pad
        return QRectF(left + (c0 + pc) * cell, top + (r0 + pr) * cell, (c1 - c0) * cell,
                      (r1 - r0) * cell)

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """The data cell (row, col) under widget point (x, y); None off the data."""
        cell, left, top = self.cell_geometry()
        if not cell:
            return None
        pr, pc = self.pad
        r, c = int((y - top) // cell) - pr, int((x - left) // cell) - pc
        rows, cols = self.values.shape[:2]
        return (r, c) if 0 <= r < rows and 0 <= c < cols and y >= top and x >= left else None

    # ---- painting and mouse -----------------------------------------------------------

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        if self.title:
            painter.setPen(qcolour(MUTED))
            title = QFontMetricsF(self.font()).elidedText(self.title, Qt.TextElideMode.ElideRight,
                                                          self.width() - 4)
            painter.drawText(QRectF(0, 0, self.width(), self._title_height()),
                             Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, title)
        if self._image is None:
            return
        cell, left, top = self.cell_geometry()
        h, w = self.rgb.shape[:2]
        area = QRectF(left, top, cell * w, cell * h)
        painter.drawImage(area, self._image)  # nearest neighbour: cells stay sharp
        pr, pc = self.pad
        if pr or pc:
            hatch = QBrush(QColor(*PADDING).darker(125), Qt.BrushStyle.BDiagPattern)
            inner = QRectF(left + pc * cell, top + pr * cell, (w - 2 * pc) * cell,
                           (h - 2 * pr) * cell)
            for r in (QRectF(area.left(), area.top(), area.width(), pr * cell),
                      QRectF(area.left(), inner.bottom(), area.width(), pr * cell),
                      QRectF(area.left(), inner.top(), pc * cell, inner.height()),
                      QRectF(inner.right(), inner.top(), pc * cell, inner.height())):
                if r.width() > 0 and r.height() > 0:
                    painter.fillRect(r, hatch)
        if cell >= 6:
            painter.setPen(QPen(QColor(200, 200, 200), 1))
            for i in range(h + 1):
                painter.drawLine(QPointF(left, top + i * cell), QPointF(left + w * cell,
                                                                        top + i * cell))
            for j in range(w + 1):
                painter.drawLine(QPointF(left + j * cell, top), QPointF(left + j * cell,
                                                                        top + h * cell))
        self._paint_numbers(painter, cell)
        self._paint_marks(painter, cell)

    def _paint_numbers(self, painter: QPainter, cell: float) -> None:
        if not self.numbers:
            return
        metrics = QFontMetricsF(self.font())
        if cell < metrics.horizontalAdvance("−0.00") + 4 or cell < metrics.height():
            return
        rows, cols = self.values.shape
        blank = self.blank.reshape(self.values.shape) if self.blank is not None else None
        painter.setPen(QColor(30, 30, 30))
        for r in range(rows):
            for c in range(cols):
                if blank is not None and blank[r, c]:
                    continue
                painter.drawText(self._rect(r, c, r + 1, c + 1), Qt.AlignmentFlag.AlignCenter,
                                 fmt(self.values[r, c], 3))
        pr, pc = self.pad
        if pr or pc:
            painter.setPen(qcolour(MUTED))
            for r in range(-pr, rows + pr):
                for c in range(-pc, cols + pc):
                    if not (0 <= r < rows and 0 <= c < cols):
                        painter.drawText(self._rect(r, c, r + 1, c + 1),
                                         Qt.AlignmentFlag.AlignCenter, "0")

    def _paint_marks(self, painter: QPainter, cell: float) -> None:
        painter.setBrush(Qt.BrushStyle.NoBrush)
        accent = QColor(*ACCENT)
        if self.window:
            rows = [r for r, _ in self.window]
            cols = [c for _, c in self.window]
            pen = QPen(accent, max(2.0, cell / 8))
            painter.setPen(pen)
            painter.drawRect(self._rect(min(rows), min(cols), max(rows) + 1, max(cols) + 1))
            if len(self.window) < (max(rows) - min(rows) + 1) * (max(cols) - min(cols) + 1):
                # Dilated: the taps are not every cell inside the outline; mark each.
                fill = QColor(accent)
                fill.setAlpha(90)
                for r, c in self.window:
                    painter.fillRect(self._rect(r, c, r + 1, c + 1), fill)
        if self.box is not None:
            r0, c0, r1, c1 = self.box
            painter.setPen(QPen(QColor(255, 64, 64), max(2.0, cell / 6)))
            painter.drawRect(self._rect(r0, c0, r1, c1))
        if self.highlight is not None:
            r, c = self.highlight
            painter.setPen(QPen(QColor(20, 20, 20), max(2.0, cell / 7)))
            painter.drawRect(self._rect(r, c, r + 1, c + 1))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            hit = self.cell_at(event.position().x(), event.position().y())
            if hit is not None:
                self.clicked.emit(*hit)
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        hit = self.cell_at(event.position().x(), event.position().y())
        if hit is None or not self.values.size:
            if self.title and event.position().y() < self._title_height():
                QToolTip.showText(event.globalPosition().toPoint(), self.title, self)
            else:
                QToolTip.hideText()
            return
        r, c = hit
        blank = self.blank is not None and bool(self.blank.reshape(self.values.shape)[r, c])
        where = f"row {r}, col {c}" if self.values.shape[0] > 1 else f"{c}"
        text = f"{where}: not computed yet (step or play to fill it in)" if blank \
            else f"{where}: {fmt(self.values[r, c])}"
        QToolTip.showText(event.globalPosition().toPoint(), text, self)
