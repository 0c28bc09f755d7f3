"""The confusion matrix (true class × predicted class) and the samples behind a cell."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


def sample_qimage(array: np.ndarray) -> QImage:
    """A sample (C, H, W) or (C, L) as a grey or RGB QImage, scaled to its own range."""
    a = np.asarray(array, np.float32)
    if a.ndim == 2:
        a = a[:, None, :] if a.shape[0] <= 4 else a[None]
    img = np.moveaxis(a[:3], 0, -1) if a.shape[0] == 3 else a[0]
    low, high = float(np.nanmin(img)), float(np.nanmax(img))
    scaled = np.clip((img - low) / (high - low if high > low else 1.0) * 255, 0, 255)
    data = np.ascontiguousarray(np.nan_to_num(scaled).astype(np.uint8))
    h, w = data.shape[:2]
    if data.ndim == 3:
        image = QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    else:
        image = QImage(data.data, w, h, w, QImage.Format.Format_Grayscale8)
    return image.copy()  # own the pixels: `data` is freed on return


def sample_pixmap(array: np.ndarray, size: int) -> QPixmap:
    """A thumbnail of about `size` pixels, pixels kept sharp (nearest neighbour)."""
    image = sample_qimage(array)
    return QPixmap.fromImage(image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation))


class ConfusionMatrix(QTableWidget):
    """Counts per (true class, predicted class); shade by the share of the true class."""

    cell_activated = Signal(int, int)  # true class, predicted class

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confusionMatrix")
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
            header.setMinimumSectionSize(20)
        self.verticalHeader().setDefaultSectionSize(20)  # ten classes fit without scrolling
        self.setToolTip("Rows: true class · columns: predicted class. Click a cell to see"
                        " its samples.")
        self.cellClicked.connect(lambda r, c: self.cell_activated.emit(r, c))
        self._matrix = np.zeros((0, 0), np.int64)
        self._names: list[str] = []

    @property
    def matrix(self) -> np.ndarray:
        """The counts shown, (classes, classes) int64: rows true, columns predicted."""
        return self._matrix

    def set_matrix(self, matrix: np.ndarray | None, names: list[str]) -> None:
        """Show `matrix` (None clears) with `names` on both axes."""
        if matrix is None:
            self._matrix = np.zeros((0, 0), np.int64)
            self._names = []
            self.setRowCount(0)
            self.setColumnCount(0)
            return
        m = np.asarray(matrix, np.int64)
        k = m.shape[0]
        names = [str(n) for n in names] if len(names) == k else [str(i) for i in range(k)]
        old = self._matrix
        same_rows = (old.shape == m.shape and self._names == names
                     and np.array_equal(old.sum(axis=1), m.sum(axis=1)))
        if self.rowCount() != k:
            self.setRowCount(k)
            self.setColumnCount(k)
        if self._names != names:
            self.setHorizontalHeaderLabels(names)
            self.setVerticalHeaderLabels(names)
            self._names = names
        totals = np.maximum(m.sum(axis=1, keepdims=True), 1)
        share = m / totals
        # Between epochs the rows' totals stay (the same validation samples): only the
        # cells whose counts moved need new text and colour.
        cells = np.argwhere(m != old) if same_rows else np.argwhere(np.ones_like(m, bool))
        for r, c in cells:
            item = self.item(r, c)
            if item is None:
                item = QTableWidgetItem()
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.setItem(r, c, item)
            item.setText(str(m[r, c]) if m[r, c] else "")
            f = float(share[r, c])
            # √: a few confusions out of many still show as a clear tint.
            tint = f if r == c else min(1.0, float(np.sqrt(f)))
            base = (31, 119, 180) if r == c else (214, 39, 40)
            color = QColor(*(int(255 - (255 - b) * tint) for b in base))
            item.setBackground(QBrush(color))
            item.setForeground(QBrush(QColor("white" if tint > 0.55 else "black")))
            item.setToolTip(f"true {names[r]}, predicted {names[c]}: {m[r, c]}"
                            f" ({100 * f:.1f} % of {names[r]})")
        self._matrix = m


class ConfusionPanel(QWidget):
    """The matrix, and beside it what it shows (epoch, share correct, how to read it)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 2, 2, 2)
        self.table = ConfusionMatrix(self)
        row.addWidget(self.table, 3)
        self.caption = QLabel(self)
        self.caption.setObjectName("confusionCaption")
        self.caption.setWordWrap(True)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        row.addWidget(self.caption, 2)

    def show_matrix(self, matrix: np.ndarray | None, names: list[str], what: str) -> None:
        """Show `matrix`; `what` says whose it is (e.g. "validation, epoch 3")."""
        self.table.set_matrix(matrix, names)
        if matrix is None or not np.asarray(matrix).sum():
            self.caption.setText("The confusion matrix appears after the first epoch.")
            return
        m = np.asarray(matrix)
        correct = 100.0 * np.trace(m) / m.sum()
        self.caption.setText(
            f"<b>{what}</b><br>{correct:.1f} % of {int(m.sum()):,} correct.<br><br>Rows: true"
            " class · columns: predicted. Blue: right answers, red: confusions (stronger ="
            " a larger share of the true class).<br><br>Click a cell to see its samples.")


class SamplesDialog(QDialog):
    """Thumbnails of the samples in one confusion-matrix cell, most confident first."""

    def __init__(self, title: str, samples: np.ndarray, confidences: np.ndarray,
                 indices: np.ndarray, note: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confusionSamples")
        self.setWindowTitle(title)
        layout = QVBoxLayout(self)
        count = len(indices)
        label = QLabel(f"{title}: {count} sample{'s' if count != 1 else ''}, most confident"
                       f" first. {note}".strip(), self)
        label.setWordWrap(True)
        layout.addWidget(label)
        self.list = QListWidget(self)
        self.list.setObjectName("sampleList")
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(64, 64))
        self.list.setGridSize(QSize(84, 96))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        for sample, p, index in zip(samples, confidences, indices, strict=True):
            item = QListWidgetItem(QIcon(sample_pixmap(sample, 64)), f"#{index}  {p:.2f}")
            item.setToolTip(f"validation sample {index}: confidence {p:.3f}")
            item.setData(Qt.ItemDataRole.UserRole, int(index))
            self.list.addItem(item)
        layout.addWidget(self.list, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(560, 420)
        self.confidences = np.asarray(confidences)
        self.indices = np.asarray(indices)
