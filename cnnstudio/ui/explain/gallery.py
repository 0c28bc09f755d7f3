"""The pieces of the "What the filters respond to" page: small pictures drawn from NumPy
arrays, one row per filter (its top-k samples cropped to their receptive fields and its
synthesised image); a 1-D signal is drawn as a small line plot instead.

Pure Qt and NumPy (no torch, no pyqtgraph items): a page of 16 rows × 9 pictures is a
few hundred small QImages, drawn in a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.ui.explain.signal_plot import paint_signal, signal_window
from cnnstudio.ui.training.colorbar import value_text

BOX_COLOUR = "#ff3030"
GALLERY_TIP = (
    "A row per filter: its strongest samples, best first, each cropped to the input region"
    " seen by the position where the filter peaks (that peak below it); after Synthesise,"
    " an image made to excite the filter (the activation it reached and the samples'"
    " mean) before them. Hover over a sample to see it whole; click it to explain it with"
    " occlusion and Grad-CAM.")


def to_rgb(sample: np.ndarray) -> np.ndarray:
    """A raw sample (C, H, W) or (C, L) as (H, W, 3) uint8 for display: 3 channels as RGB,
    otherwise the first channel in grey (a 1-D signal: one row per channel). uint8 is shown
    as it is; float is stretched from its minimum to its maximum."""
    a = np.asarray(sample)
    if a.ndim == 3 and a.shape[0] == 3:
        img = np.moveaxis(a, 0, -1)
    elif a.ndim == 3:
        img = a[0]
    elif a.ndim == 2:  # (C, L): one band per channel, tall enough to see
        img = np.repeat(a, max(1, a.shape[1] // 4 // max(a.shape[0], 1)), axis=0)
    else:
        img = a.reshape(1, -1)
    if img.dtype != np.uint8:
        img = img.astype(np.float32)
        finite = img[np.isfinite(img)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        img = np.nan_to_num((img - low) / (high - low or 1.0) * 255.0)
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img)


def display_box(sample: np.ndarray, rgb: np.ndarray,
                box: Sequence[int] | None) -> tuple[int, int, int, int] | None:
    """`box` on the picture `to_rgb` made of `sample`: a 1-D signal's box ([0, x0, 1, x1])
    spans all its channel bands."""
    if box is None:
        return None
    y0, x0, y1, x1 = (int(v) for v in box)
    return (0, x0, rgb.shape[0], x1) if np.ndim(sample) == 2 else (y0, x0, y1, x1)


def crop(rgb: np.ndarray, box: Sequence[int] | None) -> np.ndarray:
    """The part of `rgb` (H, W, 3) inside `box` [y0, x0, y1, x1] (end-exclusive); the whole
    picture for None or an empty box."""
    if box is None:
        return rgb
    y0, x0, y1, x1 = (int(v) for v in box)
    y1, x1 = min(y1, rgb.shape[0]), min(x1, rgb.shape[1])
    if y1 <= y0 or x1 <= x0:
        return rgb
    return np.ascontiguousarray(rgb[max(y0, 0):y1, max(x0, 0):x1])


def hit_caption(noun: str, f: int, position: int, hit: Any, label: str) -> str:
    """What the preview says about top-k hit `position` of filter (or unit) `f`."""
    where, position_1d = "", len(hit.position) == 1
    if hit.box is not None:
        y0, x0, y1, x1 = hit.box
        where = f"; it sees positions {x0}–{x1 - 1}" if position_1d else \
            f"; it sees rows {y0}–{y1 - 1}, columns {x0}–{x1 - 1}"
    at = f" at {hit.position[0]}" if position_1d else \
        f" at {tuple(hit.position)}" if hit.position else ""
    return (f"{noun.capitalize()} {f}, #{position + 1}: sample {hit.sample}"
            f"{f' (class {label})' if label else ''}, activation"
            f" {value_text(hit.activation)}{at}{where}")


Signals = list[tuple[np.ndarray, tuple[int, int] | None]]


def hit_pictures(hits: Sequence[Any], samples: dict[int, np.ndarray], labels: dict[int, str],
                 rgb_cache: dict[int, np.ndarray]
                 ) -> tuple[list[HitView], list[np.ndarray], Signals | None]:
    """What a filter row draws for `hits` (TopHit): their views, each sample's crop to
    its field, and for 1-D samples the part drawn as curves (None for pictures).
    `rgb_cache` keeps each sample's RGB between the rows of a page."""
    views, crops, signals = [], [], []
    for hit in hits:
        sample = samples[hit.sample]
        if hit.sample not in rgb_cache:
            rgb_cache[hit.sample] = to_rgb(sample)
        views.append(HitView(hit.sample, hit.activation, hit.box, labels.get(hit.sample, "")))
        rgb = rgb_cache[hit.sample]
        crops.append(crop(rgb, display_box(sample, rgb, hit.box)))
        signals.append(signal_window(sample, hit.box))
    one_d = bool(views) and np.ndim(samples[views[0].sample]) == 2
    return views, crops, signals if one_d else None


class Picture(QWidget):
    """An RGB array drawn as large as the widget allows (square pixels, no smoothing),
    with an optional box outlined; `hovered` sends the array pixel under the mouse (−1, −1
    when it leaves); `entered` fires when the mouse comes in, `clicked` on a left click."""

    hovered = Signal(int, int)
    entered = Signal()
    clicked = Signal()

    def __init__(self, size: int = 48, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._size = size
        self._rgb = np.zeros((0, 0, 3), np.uint8)
        self._image: QImage | None = None
        self.box: tuple[int, int, int, int] | None = None
        self.signal: np.ndarray | None = None  # (C, L): drawn as curves instead
        self.span: tuple[int, int] | None = None  # the signal's shaded range
        self.setMouseTracking(True)
        self.setMinimumSize(size, size)

    @property
    def rgb(self) -> np.ndarray:
        """The picture shown (H, W, 3) uint8."""
        return self._rgb

    def sizeHint(self) -> QSize:
        return QSize(self._size, self._size)

    def set_signal(self, signal: np.ndarray, span: tuple[int, int] | None = None) -> None:
        """Draw a 1-D sample (C, L) as curves, the range `span` shaded."""
        self.set_rgb(None)
        self.signal = np.asarray(signal, np.float64).reshape(len(signal), -1)
        self.span = span
        self.update()

    def set_rgb(self, rgb: np.ndarray | None, box: Sequence[int] | None = None) -> None:
        self.signal, self.span = None, None
        if rgb is None or not np.size(rgb):
            self._rgb, self._image, self.box = np.zeros((0, 0, 3), np.uint8), None, None
        else:
            self._rgb = np.ascontiguousarray(rgb, np.uint8)
            h, w = self._rgb.shape[:2]
            self._image = QImage(self._rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
            self.box = tuple(int(v) for v in box) if box is not None else None  # type: ignore[assignment]
        self.update()

    def _target(self) -> QRectF:
        """Where the picture lies in the widget (centred, aspect kept)."""
        h, w = self._rgb.shape[:2]
        if not h or not w:
            return QRectF()
        scale = min(self.width() / w, self.height() / h)
        tw, th = w * scale, h * scale
        return QRectF((self.width() - tw) / 2, (self.height() - th) / 2, tw, th)

    def paintEvent(self, _event: QPaintEvent) -> None:
        if self.signal is not None:
            painter = QPainter(self)
            painter.fillRect(self.rect(), QColor("white"))
            paint_signal(painter, QRectF(self.rect()).adjusted(2, 2, -2, -2), self.signal,
                         self.span)
            painter.end()
            return
        if self._image is None:
            return
        painter = QPainter(self)
        target = self._target()
        painter.drawImage(target, self._image)
        if self.box is not None:
            h, w = self._rgb.shape[:2]
            sy, sx = target.height() / h, target.width() / w
            y0, x0, y1, x1 = self.box
            pen = QPen(QColor(BOX_COLOUR))
            pen.setWidthF(2.0)
            painter.setPen(pen)
            painter.drawRect(QRectF(target.left() + x0 * sx, target.top() + y0 * sy,
                                    (x1 - x0) * sx, (y1 - y0) * sy))
        painter.end()

    def pixel_at(self, point: QPoint) -> tuple[int, int] | None:
        target = self._target()
        if target.isEmpty() or not target.contains(point.toPointF()):
            return None
        h, w = self._rgb.shape[:2]
        y = int((point.y() - target.top()) / target.height() * h)
        x = int((point.x() - target.left()) / target.width() * w)
        return min(max(y, 0), h - 1), min(max(x, 0), w - 1)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        hit = self.pixel_at(event.position().toPoint())
        self.hovered.emit(*(hit if hit is not None else (-1, -1)))
        super().mouseMoveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)

    def enterEvent(self, event) -> None:  # noqa: ANN001 (QEnterEvent)
        self.entered.emit()
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: ANN001
        self.hovered.emit(-1, -1)
        super().leaveEvent(event)


@dataclass
class HitView:
    """What one picture of a filter row stands for (for the preview and for tests)."""

    sample: int
    activation: float
    box: tuple[int, int, int, int] | None
    label: str  # the sample's class ("" when unknown)


class HitStrip(QWidget):
    """A filter's top-k pictures in one row, best first, each with its activation below:
    one widget painting them all (a page of 16 filters × 9 samples as separate widgets
    took 60–140 ms of the GUI thread to create, polish and lay out). `entered(i)` when
    the mouse comes onto picture i, `clicked(i)` when it is clicked."""

    entered = Signal(int)
    clicked = Signal(int)
    GAP = 4

    def __init__(self, size: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("hitStrip")
        self.size = size
        self.crops: list[np.ndarray] = []
        self.texts: list[str] = []
        self.tips: list[str] = []
        self.signals: Signals | None = None
        self._images: list[QImage] = []
        self._under = -1
        self.cell = size  # a picture's cell: as wide as its value below it needs
        self.setMouseTracking(True)

    def set_hits(self, crops: list[np.ndarray], texts: list[str], tips: list[str],
                 signals: Signals | None = None
                 ) -> None:
        """The pictures (RGB crops), the value under each and its tooltip; `signals`
        (a 1-D part of the sample, its field's range in it) are drawn as curves instead."""
        self.crops = [np.ascontiguousarray(c, np.uint8) for c in crops]
        self.texts, self.tips, self.signals = list(texts), list(tips), signals
        self._images = [QImage(c.data, c.shape[1], c.shape[0], 3 * c.shape[1],
                               QImage.Format.Format_RGB888) for c in self.crops]
        self.set_cell(0)

    def needed_cell(self) -> int:
        """The narrowest cell that fits the picture and each value under it."""
        metrics = self.fontMetrics()
        widest = max((metrics.horizontalAdvance(t) for t in self.texts), default=0)
        return max(self.size, widest + 6)

    def set_cell(self, at_least: int) -> None:
        """Cells `at_least` this wide (the rows of a page share one width: columns)."""
        self.cell = max(self.needed_cell(), int(at_least))
        self.updateGeometry()
        self.update()

    @property
    def pitch(self) -> int:
        """From one picture's left edge to the next one's."""
        return self.cell + self.GAP

    def sizeHint(self) -> QSize:
        line = self.fontMetrics().height()
        return QSize(max(len(self.crops), 1) * self.pitch, self.size + line + 2)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def index_at(self, x: float) -> int:
        i = int(x // self.pitch)
        return i if 0 <= i < len(self.crops) and x % self.pitch < self.cell else -1

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        text_pen = QPen(self.palette().windowText().color())
        line = self.fontMetrics().height()
        for i, (image, crop_rgb) in enumerate(zip(self._images, self.crops, strict=True)):
            left = i * self.pitch
            if self.signals is not None:
                part, span = self.signals[i]
                area = QRectF(left, 0, self.cell, self.size)
                painter.fillRect(area, QColor("white"))
                paint_signal(painter, area.adjusted(1, 2, -1, -2), part, span, 1.2)
            else:
                h, w = crop_rgb.shape[:2]
                scale = min(self.size / w, self.size / h)
                painter.drawImage(QRectF(left + (self.cell - w * scale) / 2,
                                         (self.size - h * scale) / 2, w * scale, h * scale),
                                  image)
            painter.setPen(text_pen)
            painter.drawText(QRectF(left, self.size + 1, self.cell, line),
                             Qt.AlignmentFlag.AlignHCenter, self.texts[i])
        painter.end()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        i = self.index_at(event.position().x())
        if i != self._under:
            self._under = i
            self.setToolTip(self.tips[i] if i >= 0 else "")
            if i >= 0:
                self.entered.emit(i)
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: ANN001
        self._under = -1
        super().leaveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        i = self.index_at(event.position().x())
        if event.button() == Qt.MouseButton.LeftButton and i >= 0:
            self.clicked.emit(i)
        super().mousePressEvent(event)


class FilterRow(QWidget):
    """One filter: its number, its top-k samples cropped to their receptive fields (best
    first, activation under each) and its synthesised image (when made). `set_filter`
    reuses the row for another filter."""

    hit_entered = Signal(int, int)  # filter, position in the row
    hit_clicked = Signal(int, int)

    def __init__(self, size: int, noun: str = "filter", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filterRow")
        self.noun = noun
        self.filter = -1
        self.hits: list[HitView] = []
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 1, 2, 1)
        row.setSpacing(3)
        self.name = QLabel(self)
        self.name.setFixedWidth(self.name.fontMetrics().horizontalAdvance("filter 0000") + 4)
        row.addWidget(self.name)
        synth = QVBoxLayout()
        synth.setContentsMargins(0, 0, 0, 0)
        synth.setSpacing(0)
        self.synthesised = Picture(size, self)
        self.synthesised.setObjectName("synthesisedPicture")
        synth.addWidget(self.synthesised)
        self.synthesis_text = QLabel("", self)
        self.synthesis_text.setObjectName("synthesisValue")
        self.synthesis_text.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        synth.addWidget(self.synthesis_text)
        synth.addStretch(1)
        # Before the top-k (always in sight in a narrow dock), its width kept when empty.
        holder = QWidget(self)
        holder.setLayout(synth)
        holder.setFixedWidth(max(size, self.fontMetrics().horizontalAdvance("mean −0.00123"))
                             + 8)
        row.addWidget(holder)
        row.addSpacing(8)
        self.strip = HitStrip(size, self)
        self.strip.entered.connect(lambda p: self.hit_entered.emit(self.filter, p))
        self.strip.clicked.connect(lambda p: self.hit_clicked.emit(self.filter, p))
        row.addWidget(self.strip)
        row.addStretch(1)
        self.clear_synthesis()

    def set_filter(self, filter_index: int, hits: list[HitView], crops: list[np.ndarray],
                   signals: Signals | None = None
                   ) -> None:
        """Show filter `filter_index`'s hits: RGB `crops`, or for a 1-D input `signals`
        (the part of each sample drawn, its field's range in it)."""
        self.filter, self.hits = filter_index, hits
        self.name.setText(f"{self.noun} {filter_index}")
        tips = [f"{self.noun} {filter_index}: sample {h.sample}"
                f"{f', class {h.label}' if h.label else ''}, activation"
                f" {value_text(h.activation)}" for h in hits]
        self.strip.set_hits(crops, [value_text(h.activation) for h in hits], tips, signals)
        self.clear_synthesis()

    def clear_synthesis(self) -> None:
        self.synthesised.set_rgb(None)
        self.synthesised.setVisible(False)
        self.synthesis_text.clear()
        self.synthesis_text.setMinimumHeight(0)

    def show_synthesis(self, rgb: np.ndarray, reached: float, mean: float | None,
                       signal: np.ndarray | None = None) -> None:
        """The image made to excite this filter (`signal` (C, L): a 1-D one, drawn as
        curves), the activation it reached and the dataset's mean activation of the
        filter."""
        if signal is not None:
            self.synthesised.set_signal(signal)
        else:
            self.synthesised.set_rgb(rgb)
        self.synthesised.setVisible(True)
        versus = f"\nmean {value_text(mean)}" if mean is not None else ""
        # Room for both lines: the row grows rather than cutting the mean off.
        lines = 2 if versus else 1
        self.synthesis_text.setMinimumHeight(lines * self.synthesis_text.fontMetrics()
                                             .lineSpacing() + 2)
        self.synthesis_text.setText(f"{value_text(reached)}{versus}")
        tip = (f"An image optimised to excite {self.noun} {self.filter}: its activation"
               f" {value_text(reached)}")
        if mean is not None:
            tip += f"; the samples' mean is {value_text(mean)}"
        self.synthesised.setToolTip(tip)
        self.synthesis_text.setToolTip(tip)
