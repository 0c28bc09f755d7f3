"""Inspection dialogs: what the network answers for an image (top-k and Grad-CAM), and a
kernel playground (a hand-set convolution kernel on a sample, e.g. Sobel edges)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.ui.training import tiles
from cnnstudio.ui.training.images import DIVERGING, GRAY, image_panel
from cnnstudio.ui.training.inspection import InspectionSource

HEAT = pg.colormap.get("inferno").getLookupTable(nPts=256)


@dataclass
class Prediction:
    top: list[tuple[str, float]]  # (class name, probability), most probable first
    cam: np.ndarray  # Grad-CAM of the top class, H × W in 0…1
    layer: str  # the layer Grad-CAM looked at


def predict_image(source: InspectionSource, image: np.ndarray, node: str | None = None,
                  k: int = 5) -> Prediction:
    """Classify one sample (C, H, W) and explain the top class with Grad-CAM. Raises
    ValueError, BuildError or WeightsError with a one-line message."""
    probs = source.probabilities(image[None])[0]
    order = np.argsort(-probs)[:k]
    names = source.class_names
    top = [(names[i] if i < len(names) else str(i), float(probs[i])) for i in order]
    cam, layer = source.grad_cam(image, int(order[0]), node)
    return Prediction(top, cam, layer)


def _rgb_image(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image, np.float32)
    img = np.moveaxis(a, 0, -1) if a.shape[0] == 3 else np.repeat(a[0][..., None], 3, -1)
    return tiles.to_rgba(img, (float(img.min()), float(img.max()) or 1.0), GRAY)


class PredictionDialog(QDialog):
    """The image with its Grad-CAM heat map, and the top-k classes with probabilities."""

    def __init__(self, title: str, image: np.ndarray, prediction: Prediction, note: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("predictionDialog")
        self.setWindowTitle(f"Prediction — {title}")
        self.prediction = prediction
        layout = QHBoxLayout(self)
        left = QVBoxLayout()
        pictures = QHBoxLayout()
        # The image alone, and the image with the heat map over it (opaque where hot).
        plain, _box, plain_item = image_panel(self)
        plain_item.setImage(_rgb_image(image), autoLevels=False, levels=(0, 255))
        plot, box, item = image_panel(self)
        item.setImage(_rgb_image(image), autoLevels=False, levels=(0, 255))
        heat = tiles.to_rgba(prediction.cam, (0.0, 1.0), HEAT)
        heat[..., 3] = (40 + prediction.cam * 190).astype(np.uint8)
        self.heat = pg.ImageItem(axisOrder="row-major")
        self.heat.setImage(heat, autoLevels=False, levels=(0, 255))
        box.addItem(self.heat)
        for widget in (plain, plot):
            widget.setMinimumSize(200, 200)
            pictures.addWidget(widget, 1)
        left.addLayout(pictures, 1)
        best = prediction.top[0][0] if prediction.top else "?"
        caption = QLabel(f"Grad-CAM at <b>{prediction.layer}</b> for <b>{best}</b>: bright"
                         " where the evidence for it lies.", self)
        caption.setWordWrap(True)
        left.addWidget(caption)
        layout.addLayout(left, 3)
        right = QVBoxLayout()
        self.table = QTableWidget(len(prediction.top), 2, self)
        self.table.setObjectName("topClasses")
        self.table.setHorizontalHeaderLabels(["class", "probability"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for row, (name, p) in enumerate(prediction.top):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            bar = QProgressBar(self.table)
            bar.setRange(0, 1000)
            bar.setValue(round(p * 1000))
            bar.setFormat(f"{100 * p:.1f} %")
            self.table.setCellWidget(row, 1, bar)
        right.addWidget(self.table, 1)
        if note:
            text = QLabel(note, self)
            text.setWordWrap(True)
            right.addWidget(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        right.addWidget(buttons)
        layout.addLayout(right, 2)
        self.resize(820, 380)


def edge_image(size: int = 28) -> np.ndarray:
    """A test picture for the playground when no data is loaded: a square on black."""
    img = np.zeros((1, size, size), np.uint8)
    img[0, size // 4:3 * size // 4, size // 4:3 * size // 4] = 255
    return img


class KernelPlayground(QDialog):
    """Type a convolution kernel (or pick Sobel, Laplacian, …) and see its feature map on
    a sample: torch's conv2d with that one kernel, zero padding, no training."""

    def __init__(self, samples: np.ndarray | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from cnnstudio.nn.inspect import KERNEL_PRESETS

        self.presets = KERNEL_PRESETS
        self.setObjectName("kernelPlayground")
        self.setWindowTitle("Kernel playground")
        self.samples = samples if samples is not None and len(samples) else edge_image()[None]
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Kernel", self))
        self.preset = QComboBox(self)
        self.preset.addItems([*KERNEL_PRESETS, "Custom"])
        self.preset.currentTextChanged.connect(self._load_preset)
        row.addWidget(self.preset)
        row.addWidget(QLabel("Sample", self))
        self.sample = QSpinBox(self)
        self.sample.setRange(0, len(self.samples) - 1)
        self.sample.valueChanged.connect(self.update_output)
        row.addWidget(self.sample)
        row.addStretch(1)
        layout.addLayout(row)
        body = QHBoxLayout()
        self.kernel = QTableWidget(3, 3, self)
        self.kernel.setObjectName("kernelCells")
        for header in (self.kernel.horizontalHeader(), self.kernel.verticalHeader()):
            header.setVisible(False)
            header.setDefaultSectionSize(52)
        self.kernel.setFixedSize(3 * 52 + 4, 3 * 30 + 4)
        self.kernel.verticalHeader().setDefaultSectionSize(30)
        self.kernel.itemChanged.connect(self._edited)
        body.addWidget(self.kernel, 0, Qt.AlignmentFlag.AlignTop)
        self.input_plot, self.input_box, self.input_item = image_panel(self)
        self.output_plot, self.output_box, self.output_item = image_panel(self)
        for plot in (self.input_plot, self.output_plot):
            plot.setMinimumSize(220, 220)
            body.addWidget(plot, 1)
        layout.addLayout(body, 1)
        self.caption = QLabel(self)
        layout.addWidget(self.caption)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.output = np.zeros((0, 0), np.float32)
        self._load_preset(self.preset.currentText())
        self.resize(720, 360)

    def _load_preset(self, name: str) -> None:
        if name not in self.presets:
            return
        self.set_kernel(np.asarray(self.presets[name], np.float32))

    def set_kernel(self, kernel: np.ndarray) -> None:
        """Put `kernel` (kh × kw) in the cells and recompute."""
        self.kernel.blockSignals(True)
        self.kernel.setRowCount(kernel.shape[0])
        self.kernel.setColumnCount(kernel.shape[1])
        for r in range(kernel.shape[0]):
            for c in range(kernel.shape[1]):
                item = QTableWidgetItem(f"{kernel[r, c]:.4g}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.kernel.setItem(r, c, item)
        self.kernel.blockSignals(False)
        self.update_output()

    def _edited(self, _item: QTableWidgetItem) -> None:
        self.preset.blockSignals(True)
        self.preset.setCurrentText("Custom")
        self.preset.blockSignals(False)
        self.update_output()

    def kernel_values(self) -> np.ndarray:
        rows, cols = self.kernel.rowCount(), self.kernel.columnCount()
        out = np.zeros((rows, cols), np.float32)
        for r in range(rows):
            for c in range(cols):
                item = self.kernel.item(r, c)
                try:
                    out[r, c] = float(item.text()) if item is not None else 0.0
                except ValueError:
                    out[r, c] = 0.0  # a half-typed number counts as 0 until it parses
        return out

    def update_output(self) -> None:
        from cnnstudio.nn.inspect import apply_kernel

        sample = np.asarray(self.samples[self.sample.value()], np.float32)
        gray = sample.mean(axis=0) if sample.ndim == 3 else sample.reshape(1, -1)
        gray = (gray - gray.min()) / (gray.max() - gray.min() or 1.0)  # 0…1 like a photo
        self.output = apply_kernel(gray, self.kernel_values())
        m = tiles.symmetric_level(self.output)
        self.input_item.setImage(tiles.to_rgba(gray, (0.0, 1.0), GRAY), autoLevels=False,
                                 levels=(0, 255))
        self.output_item.setImage(tiles.to_rgba(self.output, (-m, m), DIVERGING),
                                  autoLevels=False, levels=(0, 255))
        self.input_box.autoRange(padding=0.02)
        self.output_box.autoRange(padding=0.02)
        self.caption.setText(f"Feature map {self.output.shape[0]}×{self.output.shape[1]}:"
                             f" blue negative, red positive, scale ±{m:.3g}")
