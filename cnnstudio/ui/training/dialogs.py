"""Inspection dialogs: what the network answers for an image (top-k and Grad-CAM, beside
the image as the network sees it), and a kernel playground (a hand-set convolution kernel
on a sample, e.g. Sobel edges)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
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

from cnnstudio.train.model_io import TrainedModel
from cnnstudio.ui.training import tiles
from cnnstudio.ui.training.colorbar import ColorBar
from cnnstudio.ui.training.image_checks import input_warning
from cnnstudio.ui.training.tilegrid import DIVERGING, GRAY, image_panel

HEAT = pg.colormap.get("inferno").getLookupTable(nPts=256)
WARNING_STYLE = "color: #c0392b; font-weight: bold;"


@dataclass
class Prediction:
    top: list[tuple[str, float]]  # (class name, probability), most probable first
    cam: np.ndarray  # Grad-CAM of the top class, H × W in 0…1 (min…max scaled)
    layer: str  # the layer Grad-CAM looked at
    seen: np.ndarray | None = None  # the input as the network gets it (C, H, W), normalized
    warning: str | None = None  # the image lies far outside the training data
    original: np.ndarray | None = None  # the file as the user sees it (H, W, 3)


def predict_image(source: TrainedModel, image: np.ndarray, node: str | None = None,
                  k: int = 5, samples: np.ndarray | None = None) -> Prediction:
    """Classify one sample (C, H, W) and explain the top class with Grad-CAM; say when
    the image lies far outside the training data (`samples`, else the stored
    normalisation). Raises ValueError, BuildError or WeightsError with a one-line
    message. Runs off the GUI thread."""
    probs = source.probabilities(image[None])[0]
    order = np.argsort(-probs)[:k]
    names = source.prep.class_names
    top = [(names[i] if i < len(names) else str(i), float(probs[i])) for i in order]
    cam, layer = source.grad_cam(image, int(order[0]), node)
    seen = source.prep.to_float(image[None])[0].numpy()
    warning = input_warning(image, source.prep.mean, source.prep.std, samples)
    return Prediction(top, cam, layer, seen, warning)


def _rgb(image: np.ndarray, levels: tuple[float, float] | None = None) -> np.ndarray:
    """(C, H, W) as RGBA: 3 channels as colour, else the first as grey, min…max."""
    a = np.asarray(image, np.float32)
    img = np.moveaxis(a, 0, -1) if a.shape[0] == 3 else np.repeat(a[0][..., None], 3, -1)
    low, high = levels or (float(img.min()), float(img.max()))
    return tiles.to_rgba(img, (low, high if high > low else low + 1.0), GRAY)


def _picture(parent: QWidget, title: str, rgba: np.ndarray,
             scale: tuple[np.ndarray, float, float, str] | None = None,
             overlay: np.ndarray | None = None) -> tuple[QWidget, ColorBar | None]:
    """A titled picture with an optional colour bar (lut, low, high, title) and an
    optional RGBA overlay."""
    box_widget = QWidget(parent)
    column = QVBoxLayout(box_widget)
    column.setContentsMargins(0, 0, 0, 0)
    label = QLabel(title, box_widget)
    label.setWordWrap(True)
    column.addWidget(label)
    row = QHBoxLayout()
    plot, box, item = image_panel(box_widget)
    plot.setMinimumSize(160, 160)
    item.setImage(rgba, autoLevels=False, levels=(0, 255))
    if overlay is not None:
        heat = pg.ImageItem(axisOrder="row-major")
        heat.setImage(overlay, autoLevels=False, levels=(0, 255))
        box.addItem(heat)
    row.addWidget(plot, 1)
    bar = None
    if scale is not None:
        bar = ColorBar(box_widget)
        bar.set_scale(*scale)
        row.addWidget(bar)
    column.addLayout(row, 1)
    return box_widget, bar


class PredictionDialog(QDialog):
    """The image as the user sees it, as the network sees it, and with its Grad-CAM heat
    map; the top-k classes with probabilities; a warning when the image lies far outside
    the training data."""

    def __init__(self, title: str, image: np.ndarray, prediction: Prediction, note: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("predictionDialog")
        self.setWindowTitle(f"Prediction — {title}")
        self.prediction = prediction
        layout = QHBoxLayout(self)
        left = QVBoxLayout()
        pictures = QHBoxLayout()
        original = prediction.original
        if original is not None:
            h, w = original.shape[:2]
            widget, _ = _picture(self, f"Your image ({w}×{h})",
                                 tiles.to_rgba(original.astype(np.float32), (0, 255), GRAY))
            pictures.addWidget(widget, 1)
        seen = prediction.seen if prediction.seen is not None else \
            np.asarray(image, np.float32)
        low, high = float(seen.min()), float(seen.max())
        high = high if high > low else low + 1.0
        c, h, w = seen.shape
        kind = "RGB" if c == 3 else "grey" if c == 1 else f"{c} channels, the first"
        widget, self.seen_bar = _picture(
            self, f"What the network sees: {c}×{h}×{w}, {kind}, normalised",
            _rgb(seen, (low, high)), (GRAY, low, high, "input"))
        pictures.addWidget(widget, 1)
        # The network's view with the heat map over it (opaque where hot).
        heat = tiles.to_rgba(prediction.cam, (0.0, 1.0), HEAT)
        heat[..., 3] = (40 + prediction.cam * 190).astype(np.uint8)
        best = prediction.top[0][0] if prediction.top else "?"
        widget, self.cam_bar = _picture(
            self, f"Grad-CAM at {prediction.layer} for “{best}”", _rgb(seen, (low, high)),
            (HEAT, 0.0, 1.0, "evidence"), overlay=heat)
        pictures.addWidget(widget, 1)
        left.addLayout(pictures, 1)
        self.warning = QLabel(prediction.warning or "", self)
        self.warning.setObjectName("inputWarning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARNING_STYLE)
        self.warning.setVisible(bool(prediction.warning))
        left.addWidget(self.warning)
        caption = QLabel("Grad-CAM: where the evidence for the top class lies, scaled from"
                         " its least (0) to its most (1) on this image; a flat map stays"
                         " dark.", self)
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
        self.resize(1000, 420)


def edge_image(size: int = 28) -> np.ndarray:
    """A test picture for the playground when no data is loaded: a square on black."""
    img = np.zeros((1, size, size), np.uint8)
    img[0, size // 4:3 * size // 4, size // 4:3 * size // 4] = 255
    return img


BUILT_IN = "the built-in picture (a white square on black)"
BAD_CELL = QColor("#ffd6d6")
MAX_CELL = 1e6  # a larger kernel value overflows float32 maps (and teaches nothing)


def cell_problem(text: str) -> str | None:
    """Why a kernel cell's text is refused ("not a number", "too large …"), else None."""
    try:
        value = float(text.strip().replace("−", "-"))
    except ValueError:
        return "is not a number"
    if value != value:  # NaN
        return "is not a number"
    return None if abs(value) <= MAX_CELL else f"is too large (at most ±{MAX_CELL:g})"


class KernelPlayground(QDialog):
    """Type a convolution kernel (or pick Sobel, Laplacian, …) and see its feature map on
    a sample: conv2d with that one kernel, zero padding, no training. A cell that is not a
    number is shown in red and the kernel is not applied until it is one."""

    def __init__(self, samples: np.ndarray | None, parent: QWidget | None = None,
                 labels: list[str] | None = None, what: str = "") -> None:
        super().__init__(parent)
        from cnnstudio.core.kernels import KERNEL_PRESETS

        self.presets = KERNEL_PRESETS
        self.setObjectName("kernelPlayground")
        self.setWindowTitle("Kernel playground")
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Kernel", self))
        self.preset = QComboBox(self)
        self.preset.addItems([*KERNEL_PRESETS, "Custom"])
        self.preset.currentTextChanged.connect(self._load_preset)
        row.addWidget(self.preset)
        row.addWidget(QLabel("Sample", self))
        self.sample = QSpinBox(self)
        self.sample.valueChanged.connect(self.update_output)
        row.addWidget(self.sample)
        self.source = QLabel(self)
        self.source.setObjectName("playgroundSource")
        row.addWidget(self.source, 1)
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
        self.input_bar, self.output_bar = ColorBar(self), ColorBar(self)
        for plot, bar in ((self.input_plot, self.input_bar), (self.output_plot, self.output_bar)):
            plot.setMinimumSize(220, 220)
            body.addWidget(plot, 1)
            body.addWidget(bar)
        layout.addLayout(body, 1)
        self.caption = QLabel(self)
        self.caption.setObjectName("playgroundCaption")
        self.caption.setWordWrap(True)
        layout.addWidget(self.caption)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.output = np.zeros((0, 0), np.float32)
        self.bad_cells: list[tuple[int, int, str]] = []
        self.samples = edge_image()[None]
        self.labels: list[str] = []
        self.set_samples(samples, labels, what)
        self._load_preset(self.preset.currentText())
        self.resize(820, 380)

    @property
    def uses_project_data(self) -> bool:
        return self.source.property("project") is True

    def set_samples(self, samples: np.ndarray | None, labels: list[str] | None = None,
                    what: str = "") -> None:
        """Use `samples` (N, C, H, W or N, C, L; `labels` per sample) from now on; None:
        the built-in picture."""
        ok = samples is not None and len(samples) and np.ndim(samples) in (3, 4)
        self.samples = samples if ok else edge_image()[None]  # type: ignore[assignment]
        self.labels = list(labels or []) if ok else []
        self.source.setProperty("project", bool(ok))
        self.source.setToolTip("")
        self.sample.blockSignals(True)
        self.sample.setRange(0, len(self.samples) - 1)
        self.sample.blockSignals(False)
        self.source.setText(f"of {what or 'the project data'} ({len(self.samples)})" if ok
                            else f"— {BUILT_IN}")
        self.update_output()

    def note_unavailable(self, why: str | None) -> None:
        """The project's images cannot be loaded (`why`, one line; None: not known)."""
        if why and not self.uses_project_data:
            self.source.setText(f"— {BUILT_IN}: the project's images cannot be loaded")
            self.source.setToolTip(why)

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

    def kernel_values(self) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
        """The cells as numbers, and the (row, column, text) of those that are not one."""
        rows, cols = self.kernel.rowCount(), self.kernel.columnCount()
        out = np.zeros((rows, cols), np.float32)
        bad: list[tuple[int, int, str]] = []
        for r in range(rows):
            for c in range(cols):
                item = self.kernel.item(r, c)
                text = item.text().strip() if item is not None else ""
                if cell_problem(text) is None:
                    out[r, c] = float(text.replace("−", "-"))
                else:
                    bad.append((r, c, text))
        return out, bad

    def _paint_cells(self, bad: list[tuple[int, int, str]]) -> None:
        wrong = {(r, c) for r, c, _ in bad}
        self.kernel.blockSignals(True)
        for r in range(self.kernel.rowCount()):
            for c in range(self.kernel.columnCount()):
                item = self.kernel.item(r, c)
                if item is None:
                    item = QTableWidgetItem("")
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    self.kernel.setItem(r, c, item)
                item.setBackground(QBrush(BAD_CELL) if (r, c) in wrong else QBrush())
                item.setForeground(QBrush(QColor("#c0392b")) if (r, c) in wrong else QBrush())
                item.setToolTip(cell_problem(item.text()) or "")
        self.kernel.blockSignals(False)

    def current_image(self) -> np.ndarray:
        """The chosen sample as a grey 0…1 picture (channels averaged)."""
        sample = np.asarray(self.samples[self.sample.value()], np.float32)
        gray = sample.mean(axis=0) if sample.ndim == 3 else sample.reshape(1, -1)
        return (gray - gray.min()) / (gray.max() - gray.min() or 1.0)  # 0…1 like a photo

    def update_output(self) -> None:
        kernel, bad = self.kernel_values()
        self.bad_cells = bad
        self._paint_cells(bad)
        gray = self.current_image()
        self.input_item.setImage(tiles.to_rgba(gray, (0.0, 1.0), GRAY), autoLevels=False,
                                 levels=(0, 255))
        self.input_bar.set_scale(GRAY, 0.0, 1.0, "input")
        self.input_box.autoRange(padding=0.02)
        i = self.sample.value()
        label = f" (label {self.labels[i]})" if i < len(self.labels) else ""
        self.sample.setToolTip(f"sample {i}{label}")
        if bad:
            r, c, text = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            shown = f"“{text}”" if text else "an empty cell"
            self.caption.setText(f"Row {r + 1}, column {c + 1}: {shown} {cell_problem(text)}"
                                 f"{more}; the kernel is not applied until every cell is a"
                                 " number.")
            self.caption.setStyleSheet(WARNING_STYLE)
            return  # the picture keeps the last kernel that was valid
        self.caption.setStyleSheet("")
        self.output = tiles.correlate2d(gray, kernel)
        m = tiles.symmetric_level(self.output)
        self.output_item.setImage(tiles.to_rgba(self.output, (-m, m), DIVERGING),
                                  autoLevels=False, levels=(0, 255))
        self.output_bar.set_scale(DIVERGING, -m, m, "output")
        self.output_box.autoRange(padding=0.02)
        self.caption.setText(f"Feature map {self.output.shape[0]}×{self.output.shape[1]} of"
                             f" sample {i}{label}: blue negative, red positive, white 0.")
