"""Views of a network's insides: filter grids, feature maps, a dense layer's outputs.

Each picture goes through a colour table with explicit levels, shown by a colour bar
(`TileGrid`); one line under each view says what it shows, another what is under the
mouse. The arrays shown are exposed as properties (`image`, `maps`) for tests.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.ui.training import tiles
from cnnstudio.ui.training.colorbar import value_text
from cnnstudio.ui.training.tilegrid import (
    DIVERGING,
    GRAY,
    SEQUENTIAL,
    TileGrid,
    image_panel,
    outline,
    set_rgba,
)

__all__ = ["DIVERGING", "GRAY", "SEQUENTIAL", "ActivationView", "FilterView", "image_panel"]


def _line(parent: QWidget, name: str) -> QLabel:
    """A label of up to two lines, always two lines high: a longer or shorter text must
    not resize the picture above it (under the user's mouse)."""
    label = QLabel(parent)
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    label.setFixedHeight(2 * label.fontMetrics().lineSpacing() + 2)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class Caption(QLabel):
    """The header's caption: wrapped to the width it is given and never asking for more
    (a long problem, e.g. a data folder's path, must not widen the dock and squeeze the
    window's other panels); the whole text is its tooltip."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)


class LayerHeader(QWidget):
    """A row with a layer chooser and a caption (whose weights these are, or a problem)."""

    def __init__(self, label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel(label, self))
        self.layer = QComboBox(self)
        self.layer.setMinimumContentsLength(10)
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        row.addWidget(self.layer)
        self.caption = Caption(self)
        self.caption.setObjectName("viewState")
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
        self.grid = TileGrid("filter", self)
        self.grid.describe = self._describe
        self.grid.tile_names = self._tile_name
        layout.addWidget(self.grid, 1)
        self.what = _line(self, "viewExplanation")
        layout.addWidget(self.what)
        self.hover = self.grid.status  # the hovered filter and weight
        self.plot, self.box, self.item = self.grid.plot, self.grid.box, self.grid.item
        self.node: str | None = None
        self.weights = np.zeros((0, 0, 0, 0), np.float32)
        self.tile_count = 0
        self.tile_shape: tuple[int, int] = (0, 0)
        self.kind = ""
        self.state = ""

    @property
    def image(self) -> np.ndarray:
        """The grid shown: (H, W), or (H, W, 3) for RGB filters; NaN in the gaps."""
        return self.grid.image

    def _chosen(self, node_id: str) -> None:
        if node_id:
            self.layer_chosen.emit(node_id)

    def set_layers(self, ids: list[str], current: str | None) -> None:
        self.header.set_layers(ids, current)

    def clear(self, message: str = "") -> None:
        self.tile_count = 0
        self.grid.clear()
        self.header.caption.setText(message)
        self.what.clear()

    def _pair(self, index: int) -> tuple[int, int]:
        """(filter, input channel) of tile `index`."""
        if self.kind == "pairs":
            cols = self.grid.fixed_columns or 1
            return index % cols, index // cols
        return index, -1

    def _tile_name(self, index: int) -> str:
        f, c = self._pair(index)
        return f"{self.node} filter {f}" + (f", input channel {c}" if c >= 0 else "")

    def _describe(self, index: int, y: int, x: int) -> str:
        f, c = self._pair(index)
        w = self.weights
        if self.kind == "rgb":
            rgb = ", ".join(f"{ch} {value_text(v)}" for ch, v in zip("RGB", w[f, :, y, x],
                                                                     strict=True))
            return f"filter {f}, weight ({y}, {x}): {rgb}"
        value = w[f, max(c, 0), y, x]
        where = f", input channel {c}" if c >= 0 else ""
        return f"filter {f}{where}, weight ({y}, {x}) = {value_text(float(value))}"

    def show_filters(self, node: str, weights: np.ndarray | None, state: str = "") -> None:
        """Show `weights` (out, in, kh, kw) of convolution `node` (None: not a conv);
        `state` says whose weights they are (e.g. "untrained, random initialisation")."""
        self.node, self.state = node, state
        self.header.select(node)
        if weights is None:
            self.clear(f"{node} has no filters: choose a convolution")
            return
        self.weights = np.asarray(weights, np.float32)
        tile_images, cols, kind = tiles.filter_tiles(self.weights)
        m = tiles.symmetric_level(self.weights)
        self.kind = kind
        self.tile_count, self.tile_shape = len(tile_images), tuple(weights.shape[2:4])
        self.grid.set_tiles(tile_images, (-m, m), GRAY if kind == "rgb" else DIVERGING,
                            columns=cols if kind == "pairs" else None,
                            scale_title="weight" + (" per channel" if kind == "rgb" else ""))
        self.header.caption.setText(state)
        out_c, in_c, kh, kw = weights.shape
        size = f"{kh}×{kw}"
        if kind == "rgb":
            text = (f"Each square is one {size} filter of {node} ({_plural(out_c, 'filter')})"
                    f" over its 3 input channels drawn as red, green and blue; mid-grey is 0.")
        elif kind == "single":
            text = (f"Each square is one {size} filter of {node}: {_plural(out_c, 'filter')}"
                    f" × 1 input channel; blue negative, red positive, white 0.")
        else:
            shown_f, shown_c = cols, len(tile_images) // cols
            part = "" if shown_f * shown_c == out_c * in_c else \
                f" ({shown_f} of {out_c} filters × {shown_c} of {in_c} channels shown)"
            text = (f"Each square is one {size} kernel of {node}: a column per filter"
                    f" ({out_c}), a row per input channel ({in_c}){part}; blue negative,"
                    " red positive, white 0.")
        self.what.setText(text)


POSITIVE_BAR, NEGATIVE_BAR = "#3b7dd8", "#d8553b"


class BarChart(pg.PlotWidget):
    """A dense layer's outputs for one sample: one bar per unit, labelled by class when
    they are the network's class scores; the hovered bar's value goes to `hovered`."""

    hovered = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("outputBars")
        self.setBackground(None)
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.showGrid(y=True, alpha=0.3)
        self.values = np.zeros(0, np.float32)
        self.labels: list[str] = []
        # Two items of one colour each: a brush per bar costs ~8 µs a bar to set up (half
        # a second, on the GUI thread, for a 64×32×32 Flatten); one brush per item, ~1 µs.
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=POSITIVE_BAR)
        self.negative = pg.BarGraphItem(x=[], height=[], width=0.8, brush=NEGATIVE_BAR)
        self.addItem(self.bars)
        self.addItem(self.negative)
        self.scene().sigMouseMoved.connect(self._moved)

    def set_values(self, values: np.ndarray, labels: list[str] | None = None) -> None:
        self.values = np.asarray(values, np.float32).ravel()
        n = len(self.values)
        self.labels = list(labels) if labels and len(labels) == n else []
        x, below = np.arange(n), self.values < 0
        self.bars.setOpts(x=x[~below], height=self.values[~below], width=0.8)
        self.negative.setOpts(x=x[below], height=self.values[below], width=0.8)
        axis = self.getAxis("bottom")
        if self.labels and n <= 40:
            axis.setTicks([list(enumerate(self.labels))])
        else:
            axis.setTicks(None)
        low, high = min(0.0, float(self.values.min(initial=0))), max(0.0, float(
            self.values.max(initial=0)))
        pad = 0.05 * (high - low or 1.0)
        self.setXRange(-0.6, max(n, 1) - 0.4, padding=0)
        self.setYRange(low - pad, high + pad, padding=0)

    def text_at(self, index: int) -> str:
        if not 0 <= index < len(self.values):
            return ""
        name = f" ({self.labels[index]})" if self.labels else ""
        return f"output {index}{name} = {value_text(float(self.values[index]))}"

    def _moved(self, pos) -> None:  # noqa: ANN001 (a QPointF in scene coordinates)
        if not self.plotItem.vb.sceneBoundingRect().contains(pos):
            self.hovered.emit("")
            return
        x = self.plotItem.vb.mapSceneToView(pos).x()
        self.hovered.emit(self.text_at(int(np.floor(x + 0.5))))


class ActivationView(QWidget):
    """The feature maps of one layer for one sample, beside that sample; click a pixel of
    a map to outline the input region it sees (its receptive field), double-click a map
    to see it large. A dense layer's outputs are bars."""

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
        self.stack = QStackedWidget(split)
        self.grid = TileGrid("map", self.stack)
        self.grid.describe = self._describe
        self.grid.tile_names = lambda i: f"{self.node} map {i}"
        self.grid.pixel_clicked.connect(self._clicked)
        self.bars = BarChart(self.stack)
        self.stack.addWidget(self.grid)
        self.stack.addWidget(self.bars)
        split.addWidget(self.input_plot)
        split.addWidget(self.stack)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 4)
        split.setSizes([150, 600])
        layout.addWidget(split, 1)
        self.plot, self.box, self.item = self.grid.plot, self.grid.box, self.grid.item
        self.field = outline(self.input_item, "#ff2a2a")
        self.marker = self.grid.marker
        self.what = _line(self, "viewExplanation")
        layout.addWidget(self.what)
        self.info = _line(self, "fieldInfo")
        layout.addWidget(self.info)
        self.hover = self.grid.status  # the hovered map, pixel and value (bars: their own)
        self.bars.hovered.connect(lambda text: self.info.setText(
            text or "Hover over a bar to read its value."))
        self.node: str | None = None
        self.state = ""
        self._maps = np.zeros((0, 0, 0), np.float32)
        self._sample_image = np.zeros((0, 0), np.float32)

    @property
    def image(self) -> np.ndarray:
        """The grid of maps shown (H, W), NaN in the gaps (empty for bars)."""
        return self.grid.image if self.stack.currentWidget() is self.grid else \
            np.zeros((0, 0), np.float32)

    @property
    def maps(self) -> np.ndarray:
        """The layer's output for the sample: (C, H, W), (C, L) or (C,)."""
        return self._maps

    @property
    def sample_image(self) -> np.ndarray:
        return self._sample_image

    @property
    def showing_bars(self) -> bool:
        return self.stack.currentWidget() is self.bars

    def set_layers(self, ids: list[str], current: str | None) -> None:
        self.header.set_layers(ids, current)

    def set_sample_count(self, count: int) -> None:
        self.sample.blockSignals(True)
        self.sample.setRange(0, max(0, count - 1))
        self.sample.blockSignals(False)

    def clear(self, message: str = "") -> None:
        self._maps = np.zeros((0, 0, 0), np.float32)
        self.grid.clear()
        self.bars.set_values(np.zeros(0))
        self.stack.setCurrentWidget(self.grid)
        self.field.setVisible(False)
        self.header.caption.setText(message)
        self.what.clear()

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
        set_rgba(self.input_item, self.input_box, tiles.to_rgba(img, (low, high), GRAY), same)
        self.sample.setToolTip(caption)
        self.sample.setSuffix(f"  ({caption})" if caption else "")

    def _describe(self, index: int, y: int, x: int) -> str:
        maps = self._maps
        if maps.ndim == 3:
            return f"map {index}, pixel ({y}, {x}) = {value_text(float(maps[index, y, x]))}"
        if maps.ndim == 2:
            return f"channel {y}, position {x} = {value_text(float(maps[y, x]))}"
        return ""

    def show_maps(self, node: str, maps: np.ndarray, state: str = "",
                  labels: list[str] | None = None) -> None:
        """Show `node`'s output for the sample: (C, H, W) maps as tiles, (C, L) as rows,
        (C,) as bars (`labels` name them: the classes, for the network's output)."""
        self.node, self.state = node, state
        self.header.select(node)
        self.header.caption.setText(state)
        maps = np.asarray(maps, np.float32)
        self._maps = maps
        if maps.ndim == 1:
            self.grid.clear()
            self.bars.set_values(maps, labels)
            self.stack.setCurrentWidget(self.bars)
            what = "class" if self.bars.labels else "unit"
            self.what.setText(f"Each bar is one of {node}'s {len(maps)} outputs (one per"
                              f" {what}) for the sample on the left; red bars are negative.")
            self.info.setText("Hover over a bar to read its value.")
            return
        self.stack.setCurrentWidget(self.grid)
        tile_images, cols = tiles.map_tiles(maps)
        finite = tile_images[np.isfinite(tile_images)]
        low = float(finite.min()) if finite.size else 0.0
        # The 99.5th percentile, not the maximum: one outlier must not wash the maps out.
        m = tiles.symmetric_level(tile_images, 99.5)
        if low >= 0:  # after a ReLU: 0 … m on a sequential map
            levels, lut, colours = (0.0, m), SEQUENTIAL, "dark purple 0, yellow high"
        else:
            levels, lut, colours = (-m, m), DIVERGING, "blue negative, red positive, white 0"
        self.grid.set_tiles(tile_images, levels, lut, columns=cols if maps.ndim != 3 else None,
                            count=len(maps) if maps.ndim == 3 else None,
                            scale_title="activation")
        shape = "×".join(map(str, maps.shape[1:]))
        if maps.ndim == 3:
            self.what.setText(f"Each square is one of {node}'s {len(maps)} feature maps"
                              f" ({shape}) for the sample on the left; {colours}.")
        else:
            self.what.setText(f"Each row is one of {node}'s {len(maps)} channels (length"
                              f" {shape}) for the sample on the left; {colours}.")
        if not self.info.text() or self.info.text().startswith("Hover"):
            self.info.setText("Click a pixel of a map to see which input pixels it sees.")

    def _clicked(self, index: int, y: int, x: int) -> None:
        if self._maps.ndim != 3:
            return
        self.grid.mark(index, y, x)
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
