"""Image views of a network's insides: filter grids and feature maps (pyqtgraph).

Each view keeps one ImageItem, created once, and replaces its pixels (`setImage` with
explicit levels) when new data arrives; the arrays it shows are exposed as properties
(`image`, `maps`) for tests and inspection.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.ui.training import tiles

DIVERGING = pg.colormap.get("CET-D1").getLookupTable(nPts=256)  # blue – white – red
SEQUENTIAL = pg.colormap.get("viridis").getLookupTable(nPts=256)
GRAY = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


class ClickableImage(pg.ImageItem):
    """An ImageItem that reports left clicks as (row, col) pixel indices."""

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self.clicked: Callable[[int, int], None] | None = None

    def mouseClickEvent(self, ev) -> None:  # noqa: ANN001 (pyqtgraph's event)
        if ev.button() != Qt.MouseButton.LeftButton or self.clicked is None:
            return
        ev.accept()
        pos = ev.pos()
        self.clicked(int(np.floor(pos.y())), int(np.floor(pos.x())))


def image_panel(parent: QWidget) -> tuple[pg.GraphicsLayoutWidget, pg.ViewBox, ClickableImage]:
    """A pixel-exact image area: square pixels, origin top left, no mouse menu."""
    widget = pg.GraphicsLayoutWidget(parent)
    widget.setBackground(None)
    widget.ci.setContentsMargins(2, 2, 2, 2)
    box = widget.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
    item = ClickableImage()
    box.addItem(item)
    return widget, box, item


def _outline(parent: pg.ImageItem, color: str) -> QGraphicsRectItem:
    rect = QGraphicsRectItem(parent)
    pen = QPen(QColor(color))
    pen.setWidthF(2.0)
    pen.setCosmetic(True)  # two screen pixels at any zoom
    rect.setPen(pen)
    rect.setVisible(False)
    return rect


def _set_rgba(item: pg.ImageItem, box: pg.ViewBox, rgba: np.ndarray, keep_view: bool) -> None:
    item.setImage(rgba, autoLevels=False, levels=(0, 255))
    if not keep_view:
        box.autoRange(padding=0.02)


class LayerHeader(QWidget):
    """A row with a layer chooser and a caption."""

    def __init__(self, label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel(label, self))
        self.layer = QComboBox(self)
        self.layer.setMinimumContentsLength(10)
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        row.addWidget(self.layer)
        self.caption = QLabel(self)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.caption, 1)

    def set_layers(self, ids: list[str], current: str | None) -> None:
        self.layer.blockSignals(True)
        self.layer.clear()
        self.layer.addItems(ids)
        self.layer.blockSignals(False)
        self.select(current)

    def select(self, node: str | None) -> None:
        """Show `node` as the chosen layer (no signal)."""
        index = self.layer.findText(node) if node else -1
        if index >= 0:
            self.layer.blockSignals(True)
            self.layer.setCurrentIndex(index)
            self.layer.blockSignals(False)


class FilterView(QWidget):
    """The filters of one convolution as a grid: RGB for 3 input channels, a diverging
    colour map with levels ±max|w| otherwise."""

    layer_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filterView")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.header = LayerHeader("Layer", self)
        self.header.layer.currentTextChanged.connect(self._chosen)
        layout.addWidget(self.header)
        self.plot, self.box, self.item = image_panel(self)
        layout.addWidget(self.plot, 1)
        self.node: str | None = None
        self._image = np.zeros((0, 0), np.float32)
        self.tile_count = 0
        self.tile_shape: tuple[int, int] = (0, 0)
        self.kind = ""
        self._shape: tuple[int, ...] = ()

    @property
    def image(self) -> np.ndarray:
        """The grid shown: (H, W), or (H, W, 3) for RGB filters; NaN in the gaps."""
        return self._image

    def _chosen(self, node_id: str) -> None:
        if node_id:
            self.layer_chosen.emit(node_id)

    def set_layers(self, ids: list[str], current: str | None) -> None:
        self.header.set_layers(ids, current)

    def clear(self, message: str = "") -> None:
        self._image = np.zeros((0, 0), np.float32)
        self.tile_count = 0
        self.item.clear()
        self.header.caption.setText(message)

    def show_filters(self, node: str, weights: np.ndarray | None) -> None:
        """Show `weights` (out, in, kh, kw) of convolution `node` (None: not a conv)."""
        self.node = node
        self.header.select(node)
        if weights is None:
            self.clear(f"{node} has no filters: choose a convolution")
            return
        tile_images, cols, kind = tiles.filter_tiles(weights)
        grid = tiles.tile(tile_images, cols)
        m = tiles.symmetric_level(weights)
        if kind == "rgb":
            rgba = tiles.to_rgba(grid, (-m, m), GRAY)
        else:
            rgba = tiles.to_rgba(grid, (-m, m), DIVERGING)
        same = self._shape == grid.shape
        self._image, self._shape = grid, grid.shape
        self.tile_count, self.tile_shape, self.kind = len(tile_images), weights.shape[2:4], kind
        _set_rgba(self.item, self.box, rgba, keep_view=same)
        out_c, in_c, kh, kw = weights.shape
        shown = "" if kind != "pairs" or len(tile_images) == out_c * in_c else " (part shown)"
        what = {"rgb": " RGB", "single": "",
                "pairs": f" (columns) × {in_c} input channels (rows)"}[kind]
        self.header.caption.setText(f"{out_c} filters {kh}×{kw}{what}{shown} ·"
                                    f" colour scale ±{m:.3g}")


class ActivationView(QWidget):
    """The feature maps of one layer for one sample, beside that sample; click a pixel of
    a map to outline the input region it sees (its receptive field)."""

    layer_chosen = Signal(str)
    sample_chosen = Signal(int)
    pixel_clicked = Signal(int, int, int)  # map index, row, column

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("activationView")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.header = LayerHeader("Layer", self)
        self.header.layer.currentTextChanged.connect(
            lambda text: self.layer_chosen.emit(text) if text else None)
        self.sample = QSpinBox(self.header)
        self.sample.setObjectName("sampleIndex")
        self.sample.setPrefix("sample ")
        self.sample.setToolTip("Which validation sample the maps are computed for")
        self.sample.valueChanged.connect(self.sample_chosen)
        self.header.layout().insertWidget(2, self.sample)
        layout.addWidget(self.header)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        self.input_plot, self.input_box, self.input_item = image_panel(split)
        self.plot, self.box, self.item = image_panel(split)
        split.addWidget(self.input_plot)
        split.addWidget(self.plot)
        split.setSizes([160, 400])
        layout.addWidget(split, 1)
        self.field = _outline(self.input_item, "#ff2a2a")
        self.marker = _outline(self.item, "#ff2a2a")
        self.item.clicked = self._clicked
        self.info = QLabel("Click a pixel of a map to see which input pixels it sees.", self)
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        self.node: str | None = None
        self._image = np.zeros((0, 0), np.float32)
        self._maps = np.zeros((0, 0, 0), np.float32)
        self._cols = 1
        self._tile = (0, 0)
        self._sample_image = np.zeros((0, 0), np.float32)

    @property
    def image(self) -> np.ndarray:
        """The grid of maps shown (H, W), NaN in the gaps."""
        return self._image

    @property
    def maps(self) -> np.ndarray:
        """The layer's output for the sample: (C, H, W), (C, L) or (C,)."""
        return self._maps

    @property
    def sample_image(self) -> np.ndarray:
        return self._sample_image

    def set_layers(self, ids: list[str], current: str | None) -> None:
        self.header.set_layers(ids, current)

    def set_sample_count(self, count: int) -> None:
        self.sample.blockSignals(True)
        self.sample.setRange(0, max(0, count - 1))
        self.sample.blockSignals(False)

    def clear(self, message: str = "") -> None:
        self._image = np.zeros((0, 0), np.float32)
        self._maps = np.zeros((0, 0, 0), np.float32)
        self.item.clear()
        self.marker.setVisible(False)
        self.field.setVisible(False)
        self.header.caption.setText(message)

    def show_sample(self, array: np.ndarray, caption: str) -> None:
        """Show the input sample (C, H, W) or (C, L): grey, or RGB for 3 channels."""
        a = np.asarray(array, np.float32)
        if a.ndim == 3 and a.shape[0] == 3:
            img = np.moveaxis(a, 0, -1)
        elif a.ndim == 3:
            img = a[0]
        else:
            img = a.reshape(a.shape[0], -1)
        low, high = float(np.nanmin(img)), float(np.nanmax(img))
        same = self._sample_image.shape == img.shape
        self._sample_image = img
        _set_rgba(self.input_item, self.input_box, tiles.to_rgba(img, (low, high), GRAY), same)
        self.sample.setToolTip(caption)
        self.sample.setSuffix(f"  ({caption})" if caption else "")

    def show_maps(self, node: str, maps: np.ndarray) -> None:
        """Show `node`'s output for the sample: (C, H, W) maps as tiles, (C, L) as rows."""
        self.node = node
        self.header.select(node)
        maps = np.asarray(maps, np.float32)
        tile_images, cols = tiles.map_tiles(maps)
        grid = tiles.tile(tile_images, cols)
        finite = grid[np.isfinite(grid)]
        low = float(finite.min()) if finite.size else 0.0
        # The 99.5th percentile, not the maximum: one outlier must not wash the maps out.
        m = tiles.symmetric_level(grid, 99.5)
        if low >= 0:  # after a ReLU: 0 … m on a sequential map
            levels, lut = (0.0, m), SEQUENTIAL
        else:
            levels, lut = (-m, m), DIVERGING
        same = self._image.shape == grid.shape
        self._image, self._maps, self._cols = grid, maps, cols
        self._tile = tuple(tile_images.shape[1:3])  # type: ignore[assignment]
        _set_rgba(self.item, self.box, tiles.to_rgba(grid, levels, lut), keep_view=same)
        shape = "×".join(map(str, maps.shape))
        self.header.caption.setText(f"{shape} · {levels[0]:.3g} … {levels[1]:.3g}")

    def _clicked(self, row: int, col: int) -> None:
        if self._maps.ndim != 3 or not self._image.size:
            return
        hit = tiles.tile_at(self._image.shape, self._tile, self._cols, row, col)
        if hit is None or hit[0] >= len(self._maps):
            return
        index, y, x = hit
        h, w = self._tile
        top, left = (index // self._cols) * (h + 1) + y, (index % self._cols) * (w + 1) + x
        self.marker.setRect(QRectF(left, top, 1, 1))
        self.marker.setVisible(True)
        self.pixel_clicked.emit(index, y, x)

    def show_field(self, box: tuple[tuple[int, int], tuple[int, int]] | None, text: str) -> None:
        """Outline rows box[0] and columns box[1] (first, stop) on the input sample."""
        if box is None:
            self.field.setVisible(False)
        else:
            (r0, r1), (c0, c1) = box
            self.field.setRect(QRectF(c0, r0, c1 - c0, r1 - r0))
            self.field.setVisible(True)
        self.info.setText(text)
