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
        # The part drawn, [r0, r1) × [c0, c1) in data coordinates (padding: < 0, ≥ size).
        self.region = (0, 0, 0, 0)
        self.window: list[tuple[int, int]] = []  # taps in data coordinates (may be padding)
        self.box: tuple[int, int, int, int] | None = None  # [r0, c0, r1, c1) outline
        self.highlight: tuple[int, int] | None = None
        self.numbers = True  # write values in cells large enough (pictures: no)
        self.blank: np.ndarray | None = None
        self.signal: np.ndarray | None = None  # (C, L): drawn as curves, not cells
        self._image: QImage | None = None

    def sizeHint(self) -> QSize:
        return QSize(220, 220)

    # ---- content -------------------------------------------------------------------

    def show_values(self, values: np.ndarray, scale: float, title: str = "",
                    pad: tuple[int, int] = (0, 0), blank: np.ndarray | None = None,
                    region: tuple[int, int, int, int] | None = None) -> None:
        """A map of numbers (2-D; 1-D shown as one row), coloured by sign/magnitude;
        `blank` cells (True) drawn empty; `pad` zero rows/columns drawn around it;
        `region` (r0, r1, c0, c1): only that part, in data coordinates (default: all)."""
        values = np.asarray(values, np.float64)
        values = values.reshape(1, -1) if values.ndim == 1 else values
        self.values, self.title, self.pad, self.numbers = values, title, pad, True
        self.blank, self.signal = blank, None
        rgb = colour_cells(values, scale)
        if blank is not None:
            rgb[np.asarray(blank, bool).reshape(values.shape)] = BLANK
        self._set_rgb(rgb, region)

    def show_picture(self, picture: np.ndarray, title: str = "") -> None:
        """A sample as a picture: (H, W) grey or (H, W, 3) colour, no numbers."""
        a = np.asarray(picture, np.float64)
        a = a.reshape(1, -1) if a.ndim == 1 else a
        self.values, self.title, self.pad, self.numbers = a if a.ndim == 2 else a[..., 0], \
            title, (0, 0), False
        self.blank, self.signal = None, None
        self._set_rgb(grey_cells(a), None)

    def show_signal(self, signal: np.ndarray, title: str = "") -> None:
        """A 1-D sample (C, L) as one curve per channel; `box` marks a range of it."""
        self.signal = np.asarray(signal, np.float64).reshape(len(signal), -1)
        self.values, self.title, self.pad, self.numbers, self.blank = \
            self.signal, title, (0, 0), False, None
        self._set_rgb(np.zeros((0, 0, 3), np.uint8), None)

    def clear(self) -> None:
        self.signal = None
        self.values = np.zeros((0, 0))
        self.window, self.box, self.highlight, self.title = [], None, None, ""
        self._set_rgb(np.zeros((0, 0, 3), np.uint8), None)

    def set_marks(self, window: list[tuple[int, int]] | None = None,
                  box: tuple[int, int, int, int] | None = None,
                  highlight: tuple[int, int] | None = None) -> None:
        """What is drawn over the cells: the window's taps, a region, the chosen cell."""
        self.window, self.box, self.highlight = list(window or []), box, highlight
        self.update()

    def _set_rgb(self, rgb: np.ndarray, region: tuple[int, int, int, int] | None) -> None:
        rows, cols = rgb.shape[:2]
        pr, pc = self.pad
        r0, r1, c0, c1 = region if region is not None else (-pr, rows + pr, -pc, cols + pc)
        out = np.empty((max(0, r1 - r0), max(0, c1 - c0), 3), np.uint8)
        out[:] = PADDING
        # The data cells inside the region; the rest of it is the zero border.
        dr0, dr1, dc0, dc1 = max(r0, 0), min(r1, rows), max(c0, 0), min(c1, cols)
        if dr1 > dr0 and dc1 > dc0:
            out[dr0 - r0:dr1 - r0, dc0 - c0:dc1 - c0] = rgb[dr0:dr1, dc0:dc1]
        self.region = (r0, r1, c0, c1)
        self.rgb = np.ascontiguousarray(out)
        h, w = self.rgb.shape[:2]
        self._image = QImage(self.rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy() \
            if h and w else None
        self.update()

    def _inside(self, r: int, c: int) -> bool:
        rows, cols = self.values.shape[:2]
        return 0 <= r < rows and 0 <= c < cols

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
        or0, _, oc0, _ = self.region
        return QRectF(left + (c0 - oc0) * cell, top + (r0 - or0) * cell, (c1 - c0) * cell,
                      (r1 - r0) * cell)

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """The data cell (row, col) under widget point (x, y); None off the data."""
        cell, left, top = self.cell_geometry()
        if not cell:
            return None
        r0, r1, c0, c1 = self.region
        r, c = int((y - top) // cell) + r0, int((x - left) // cell) + c0
        inside = r0 <= r < r1 and c0 <= c < c1 and y >= top and x >= left
        return (r, c) if inside and self._inside(r, c) else None

    # ---- painting and mouse -----------------------------------------------------------

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        if self.title:
            painter.setPen(qcolour(MUTED))
            title = QFontMetricsF(self.font()).elidedText(self.title, Qt.TextElideMode.ElideRight,
                                                          self.width() - 4)
            painter.drawText(QRectF(0, 0, self.width(), self._title_height()),
                             Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, title)
        if self.signal is not None:
            self._paint_signal(painter)
            return
        if self._image is None:
            return
        cell, left, top = self.cell_geometry()
        h, w = self.rgb.shape[:2]
        area = QRectF(left, top, cell * w, cell * h)
        painter.drawImage(area, self._image)  # nearest neighbour: cells stay sharp
        r0, r1, c0, c1 = self.region
        hatch = QBrush(QColor(*PADDING).darker(125), Qt.BrushStyle.BDiagPattern)
        rows, cols = self.values.shape[:2]
        for r in range(r0, r1):  # the zero border, hatched: whole rows, or its two sides
            if not 0 <= r < rows:
                painter.fillRect(self._rect(r, c0, r + 1, c1), hatch)
                continue
            if c0 < 0:
                painter.fillRect(self._rect(r, c0, r + 1, min(0, c1)), hatch)
            if c1 > cols:
                painter.fillRect(self._rect(r, max(cols, c0), r + 1, c1), hatch)
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

    def _paint_signal(self, painter: QPainter) -> None:
        signal = self.signal
        if signal is None or not signal.size:
            return
        top = self._title_height()
        area = QRectF(4, top + 2, self.width() - 8, self.height() - top - 6)
        length = signal.shape[1]
        step = area.width() / max(1, length)
        if self.box is not None:  # the range the value sees, shaded
            _, c0, _, c1 = self.box
            c0, c1 = max(0, c0), min(length, c1)
            shade = QRectF(area.left() + c0 * step, area.top(), (c1 - c0) * step, area.height())
            painter.fillRect(shade, QColor(255, 64, 64, 60))
            painter.setPen(QPen(QColor(255, 64, 64), 2))
            painter.drawRect(shade)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        low, high = float(np.nanmin(signal)), float(np.nanmax(signal))
        span = high - low if high > low else 1.0
        for k, curve in enumerate(signal):
            painter.setPen(QPen(QColor.fromHsv((210 + 70 * k) % 360, 200, 160), 1.5))
            points = [QPointF(area.left() + (i + 0.5) * step,
                              area.bottom() - (v - low) / span * area.height())
                      for i, v in enumerate(curve)]
            painter.drawPolyline(points)

    def _paint_numbers(self, painter: QPainter, cell: float) -> None:
        if not self.numbers:
            return
        metrics = QFontMetricsF(self.font())
        if cell < metrics.horizontalAdvance("−0.00") + 4 or cell < metrics.height():
            return
        blank = self.blank.reshape(self.values.shape) if self.blank is not None else None
        r0, r1, c0, c1 = self.region
        for r in range(r0, r1):
            for c in range(c0, c1):
                if not self._inside(r, c):
                    painter.setPen(qcolour(MUTED))
                    painter.drawText(self._rect(r, c, r + 1, c + 1),
                                     Qt.AlignmentFlag.AlignCenter, "0")
                elif blank is None or not blank[r, c]:
                    painter.setPen(QColor(30, 30, 30))
                    painter.drawText(self._rect(r, c, r + 1, c + 1),
                                     Qt.AlignmentFlag.AlignCenter, fmt(self.values[r, c], 3))

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
