"""The image side of the "What the filters respond to" page: one image (a dataset sample
or a file) explained by its occlusion-sensitivity map beside Grad-CAM, each a heat map
over the image with a colour bar in the map's own units."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.ui.explain.gallery import Picture, to_rgb
from cnnstudio.ui.training.colorbar import ColorBar, value_text
from cnnstudio.ui.training.tilegrid import SEQUENTIAL

HEAT_ALPHA = 0.55  # the heat map's share of an overlay pixel (the image shows through)


def overlay(rgb: np.ndarray, heat: np.ndarray, lut: np.ndarray = SEQUENTIAL) -> np.ndarray:
    """`heat` (H, W) in 0…1 through `lut`, blended over `rgb` (H, W, 3) of the same size."""
    colours = np.asarray(lut, np.uint8)[:, :3]
    index = np.clip(np.nan_to_num(np.asarray(heat, np.float32)) * (len(colours) - 1), 0,
                    len(colours) - 1).astype(np.intp)
    mixed = (1 - HEAT_ALPHA) * rgb.astype(np.float32) + HEAT_ALPHA * colours[index]
    return np.clip(mixed, 0, 255).astype(np.uint8)



class HeatPanel(QWidget):
    """A heat map (0…1 after min–max scaling) over an image, with a colour bar labelled in
    the map's own units, a title above and what is under the mouse below."""

    def __init__(self, title: str, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.title = QLabel(title, self)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.title)
        body = QHBoxLayout()
        body.setSpacing(4)
        self.picture = Picture(96, self)
        self.picture.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.picture.hovered.connect(self._hovered)
        body.addWidget(self.picture, 1)
        self.colorbar = ColorBar(self)
        body.addWidget(self.colorbar)
        layout.addLayout(body, 1)
        self.status = QLabel(self)
        self.status.setObjectName("heatValue")
        layout.addWidget(self.status)
        self.values = np.zeros((0, 0), np.float32)  # the map in its own units
        self.unit = ""

    def clear(self, text: str = "") -> None:
        self.values = np.zeros((0, 0), np.float32)
        self.picture.set_rgb(None)
        self.colorbar.setVisible(False)
        self.status.setText(text)

    def show_map(self, image_rgb: np.ndarray, values: np.ndarray, unit: str) -> None:
        """`values` (H, W) in `unit`, min–max scaled, drawn over `image_rgb` (H, W, 3)."""
        self.values, self.unit = np.asarray(values, np.float32), unit
        finite = self.values[np.isfinite(self.values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        scaled = (self.values - low) / (high - low) if high > low else \
            np.zeros_like(self.values)
        if high > low:
            self.picture.set_rgb(overlay(image_rgb, scaled))
            self.colorbar.set_scale(SEQUENTIAL, low, high, unit)
            self.status.setText("Hover for values")
        else:  # nothing to scale: the image alone, and why
            self.picture.set_rgb(image_rgb)
            self.colorbar.setVisible(False)
            self.status.setText(f"Flat ({value_text(low)}): no region stands out")

    def _hovered(self, y: int, x: int) -> None:
        if y < 0 or not self.values.size:
            return
        self.status.setText(f"pixel ({y}, {x}): {value_text(float(self.values[y, x]))}")


class ImageSide(QWidget):
    """One image explained: a sample chooser and Open image…, the prediction, and its
    occlusion and Grad-CAM maps side by side."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("responsesImage")
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.sample = QSpinBox(self)
        self.sample.setObjectName("responsesSample")
        self.sample.setPrefix("sample ")
        self.sample.setToolTip("Which dataset sample the occlusion and Grad-CAM maps are for")
        self.sample.setRange(0, 0)
        row.addWidget(self.sample)
        self.open_button = QPushButton("Open image…", self)
        self.open_button.setObjectName("responsesOpenImage")
        self.open_button.setToolTip("Explain an image file instead of a sample")
        row.addWidget(self.open_button)
        self.prediction = QLabel(self)
        self.prediction.setObjectName("responsesPrediction")
        self.prediction.setWordWrap(True)
        self.prediction.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        row.addWidget(self.prediction, 1)
        column.addLayout(row)
        # Why no maps apply (not an image classifier), across the whole side: calm, once.
        self.note = QLabel(self)
        self.note.setObjectName("responsesImageNote")
        self.note.setWordWrap(True)
        self.note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.note.hide()
        column.addWidget(self.note)
        maps = QHBoxLayout()
        self.occlusion = HeatPanel("Occlusion", "occlusionMap", self)
        self.occlusion.setToolTip("Occlusion sensitivity: how much the predicted class's"
                                  " score drops when a patch covers each pixel (the mean"
                                  " over the patches covering it); min–max scaled")
        self.grad_cam = HeatPanel("Grad-CAM", "gradCamMap", self)
        self.grad_cam.setToolTip("Grad-CAM: the feature maps weighted by the gradient of"
                                 " the predicted class's score, where the evidence for it"
                                 " lies; min–max scaled")
        maps.addWidget(self.occlusion, 1)
        maps.addWidget(self.grad_cam, 1)
        column.addLayout(maps, 1)

    def set_available(self, on: bool, why: str = "") -> None:
        """Enable the image controls, or disable them and say `why` (no maps apply)."""
        for widget in (self.sample, self.open_button, self.occlusion, self.grad_cam):
            widget.setEnabled(on)
        self.note.setText(why)
        self.note.setVisible(not on)
        if not on:
            self.show_failure("")

    def show_failure(self, text: str) -> None:
        self.prediction.setText(text)
        self.prediction.setToolTip(text)
        self.occlusion.clear()
        self.grad_cam.clear()

    def show_maps(self, what: str, image: np.ndarray, class_name: str, probability: float,
                  occlusion: np.ndarray, grad_cam: np.ndarray, layer: str) -> None:
        """The maps of `image` (raw C, H, W) for its predicted class."""
        rgb = to_rgb(image)
        self.prediction.setText(f"{what}: predicted {class_name} (p = {probability:.2f})")
        self.prediction.setToolTip(self.prediction.text())
        self.occlusion.show_map(rgb, occlusion, "drop")
        self.grad_cam.show_map(rgb, grad_cam, "scaled")
        self.occlusion.title.setText(f"Occlusion, class {class_name}")
        self.grad_cam.title.setText(f"Grad-CAM, class {class_name} ({layer})")
