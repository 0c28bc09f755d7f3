"""Widgets that show a loaded dataset: the thumbnail grid and the list of skipped files.

They draw the NumPy `Preview` the load worker made (`cnnstudio.ui.data_samples`), so
nothing here touches torch; NumPy arrays are read through the buffer protocol only.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPaintEvent, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

if TYPE_CHECKING:
    import numpy as np

    from cnnstudio.ui.data_samples import Preview

THUMB = 56  # thumbnail side in pixels: an 8×8 digit becomes 8×8 blocks of 7 px
SIGNAL_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
SPLIT_COLORS = {"train": "#4c72b0", "val": "#dd8452", "test": "#55a868"}


def image_pixmap(rgb: np.ndarray, side: int = THUMB) -> QPixmap:
    """An (H, W, 3) uint8 picture scaled to fit `side`: tiny pictures grow by a whole factor
    with nearest-neighbour (pixels stay crisp squares), others are scaled smoothly."""
    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    image = QImage(rgb.tobytes(), width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    longest = max(height, width)
    if 2 * longest <= side:
        factor = max(1, side // longest)
        image = image.scaled(width * factor, height * factor,
                             Qt.AspectRatioMode.IgnoreAspectRatio,
                             Qt.TransformationMode.FastTransformation)
    else:
        image = image.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return QPixmap.fromImage(image)


def signal_pixmap(signal: np.ndarray, palette: QPalette, side: int = THUMB) -> QPixmap:
    """A (C, L) signal as a small line plot, one colour per channel, each scaled to fit."""
    width, height = side, side * 3 // 4
    pixmap = QPixmap(width, height)
    pixmap.fill(palette.color(QPalette.ColorRole.Base))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(palette.color(QPalette.ColorRole.Mid), 1))
    painter.drawRect(0, 0, width - 1, height - 1)
    painter.drawLine(1, height // 2, width - 2, height // 2)
    for channel, values in enumerate(signal[:len(SIGNAL_COLORS)]):
        low, high = float(values.min()), float(values.max())
        span = high - low if high > low else 1.0
        step = (width - 4) / max(1, len(values) - 1)
        points = [QPointF(2 + i * step, height - 3 - (float(v) - low) / span * (height - 6))
                  for i, v in enumerate(values)]
        painter.setPen(QPen(QColor(SIGNAL_COLORS[channel]), 1.3))
        painter.drawPolyline(points)
    painter.end()
    return pixmap


class ThumbnailGrid(QListWidget):
    """Sample thumbnails with their labels (objectName `dataSamples`)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dataSamples")
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setMovement(QListWidget.Movement.Static)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(True)
        self.setUniformItemSizes(True)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 10, THUMB + 22))
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.placeholder = "No data loaded"

    def show_preview(self, preview: Preview) -> None:
        """Replace the thumbnails with `preview`'s samples."""
        self.clear()
        palette = self.palette()
        for picture, label, index in zip(preview.images, preview.labels, preview.indices,
                                         strict=True):
            pixmap = (signal_pixmap(picture, palette) if preview.kind == "signal"
                      else image_pixmap(picture))
            item = QListWidgetItem(QIcon(pixmap), label)
            item.setToolTip(f"sample {index}: {label}")
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.addItem(item)

    def set_placeholder(self, text: str) -> None:
        """The grey line shown while the grid is empty."""
        self.placeholder = text
        self.viewport().update()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.count() == 0 and self.placeholder:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect().adjusted(12, 12, -12, -12),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self.placeholder)
            painter.end()


class SkippedList(QListWidget):
    """Files left out of the dataset and why, one entry of two lines each: the file
    (relative to the source folder) and the reason (objectName `dataSkipped`)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dataSkipped")
        self.setAlternatingRowColors(True)
        self.setWordWrap(True)  # reasons are sentences and the pane is narrow
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long paths keep both ends
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setSpacing(2)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._rows: list[tuple[str, str]] = []

    def show_skipped(self, skipped: list[tuple[str, str]], root: str | None = None) -> None:
        """List `(path, reason)` pairs; paths under `root` are shown relative to it."""
        self.clear()
        self._rows = []
        for path, reason in skipped:
            shown = path
            if root:
                try:
                    shown = os.path.relpath(path, root)
                except ValueError:  # another drive on Windows
                    shown = path
                if shown.startswith(".."):
                    shown = path
            item = QListWidgetItem(f"{shown}\n{reason}")
            item.setToolTip(f"{path}\n{reason}")
            self.addItem(item)
            self._rows.append((shown, reason))

    def rows(self) -> list[tuple[str, str]]:
        """The listed (file, reason) pairs, as shown."""
        return list(self._rows)
