"""Live training curves: loss, accuracy (IoU for segmentation) and learning rate.

The plots and their curves are created once; `refresh` only calls `setData` on them
(pyqtgraph's scrolling-plots pattern), with clip-to-view and automatic peak
downsampling, so a redraw stays cheap however long the run. Past runs from the history
are drawn as extra dashed curves (`set_overlays`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsItem, QSplitter, QVBoxLayout, QWidget

from cnnstudio.ui.training.live import LiveRun

TRAIN, VAL, LR = "#1f77b4", "#ff7f0e", "#2ca02c"
LEGEND_ROWS = 3  # a legend's rows before it takes another column (the plots are low)
OVERLAY_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def _plot(name: str, title: str, ylabel: str, parent: QWidget) -> pg.PlotWidget:
    widget = pg.PlotWidget(parent, enableMenu=False)  # no menu: 1/3 less to build
    widget.setObjectName(name)
    widget.setBackground(None)
    item = widget.getPlotItem()
    item.setTitle(title, size="9pt")
    item.setLabel("bottom", "epoch")
    item.setLabel("left", ylabel)
    # No grid: pyqtgraph draws it as part of the axes, whose bounding box then covers
    # the plot, and every curve update repaints them (measured: 2–3× the redraw cost).
    item.setClipToView(True)
    item.setDownsampling(auto=True, mode="peak")
    for side in ("left", "bottom"):
        axis = item.getAxis(side)
        # A unit prefix that follows the range re-lays the axis label at every redraw,
        # and an axis (ticks, labels, grid) is the costliest item to paint: keep it as a
        # pixmap, redrawn only when its range changes.
        axis.enableAutoSIPrefix(False)
        axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    widget.setMinimumSize(160, 110)
    return widget


def _curve(plot: pg.PlotWidget, name: str, color: str, *, width: float = 1.6,
           alpha: int = 255, symbol: str | None = None,
           style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> pg.PlotDataItem:
    qcolor = QColor(color)
    qcolor.setAlpha(alpha)
    pen = pg.mkPen(qcolor, width=width, style=style)
    kwargs: dict[str, Any] = {"pen": pen, "name": name, "skipFiniteCheck": True}
    if symbol:
        kwargs.update(symbol=symbol, symbolSize=6, symbolBrush=qcolor, symbolPen=None)
    return plot.plot([], [], **kwargs)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ `value` (> 0)."""
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * 10**exponent >= value:
            return step * 10**exponent
    return 10.0 ** (exponent + 1)


class StableRange:
    """A live plot's y range that changes only at round numbers: 0 … a nice ceiling for
    values ≥ 0 (a loss, a learning rate). Re-laying out an axis is the costliest part of
    a redraw; this way it happens a few times per run, not at every refresh, and the
    scale reads easily."""

    def __init__(self, plot: pg.PlotWidget) -> None:
        self.plot = plot
        self.range: tuple[float, float] | None = None

    def reset(self) -> None:
        self.range = None

    def update(self, *arrays: np.ndarray) -> None:
        values = np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays])
        values = values[np.isfinite(values)]
        if not values.size:
            return
        lo, hi = float(values.min()), float(values.max())
        if self.range is not None:
            r0, r1 = self.range
            fills = hi >= 0.3 * r1 if r1 > 0 else True
            if r0 <= lo and hi <= r1 and fills and (lo >= 0 or lo <= 0.3 * r0):
                return  # still fits, and fills enough of the range
        top = nice_ceiling(hi * 1.05) if hi > 0 else 1.0
        bottom = 0.0 if lo >= 0 else -nice_ceiling(-lo * 1.05)
        if (bottom, top) != self.range:
            self.range = (bottom, top)
            self.plot.getPlotItem().setYRange(bottom, top, padding=0.02)


class CurvesView(QWidget):
    """`lossPlot`, `accuracyPlot` and the learning-rate plot side by side."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("curvesView")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        self.loss_plot = _plot("lossPlot", "Loss", "loss", split)
        self.accuracy_plot = _plot("accuracyPlot", "Accuracy", "%", split)
        self.lr_plot = _plot("lrPlot", "Learning rate", "lr", split)
        for plot in (self.loss_plot, self.accuracy_plot, self.lr_plot):
            split.addWidget(plot)
        split.setSizes([400, 260, 220])
        layout.addWidget(split)
        # A legend over curves must stay readable: the window's colour behind its text.
        behind = self.palette().window().color()
        behind.setAlpha(215)
        for plot, offset in ((self.loss_plot, (-4, 4)), (self.accuracy_plot, (-4, -4))):
            plot.addLegend(offset=offset, labelTextSize="8pt", verSpacing=-6, horSpacing=8,
                           brush=pg.mkBrush(behind))
        self.raw = _curve(self.loss_plot, "train (batch)", TRAIN, width=1.0, alpha=60)
        self.smooth = _curve(self.loss_plot, "train (smoothed)", TRAIN)
        self.val_loss = _curve(self.loss_plot, "validation", VAL, symbol="o")
        self.train_acc = _curve(self.accuracy_plot, "train", TRAIN, symbol="o")
        self.val_acc = _curve(self.accuracy_plot, "validation", VAL, symbol="o")
        self.lr = _curve(self.lr_plot, "learning rate", LR)
        self._overlays: list[tuple[pg.PlotWidget, pg.PlotDataItem]] = []
        self._loss_range = StableRange(self.loss_plot)
        self._lr_range = StableRange(self.lr_plot)
        self._batches = self._lr_batches = self._epochs = -1
        self._live = False
        self.task = "classification"
        self.origin = ""  # the titles' note on a warm start (set_origin)

    def set_origin(self, from_run: str | None, epoch: int = 0) -> None:
        """Say in the titles where the run's weights came from: a warm start's epochs go
        on from the epoch of `from_run` whose weights it took (None: a fresh run)."""
        self.origin = f" · continues {from_run} after its epoch {epoch}" if from_run else ""
        self.loss_plot.getPlotItem().setTitle("Loss" + self.origin, size="9pt")

    def set_task(self, task: str) -> None:
        """Accuracy for classification; IoU (validation) and pixel accuracy for masks."""
        self.task = task
        seg = task == "segmentation"
        self.accuracy_plot.getPlotItem().setTitle("IoU / pixel accuracy" if seg else "Accuracy",
                                                  size="9pt")
        self.val_acc.opts["name"] = "validation IoU" if seg else "validation"
        self.train_acc.opts["name"] = "train pixel acc." if seg else "train"

    def set_epochs(self, epochs: int | None, offset: int = 0) -> None:
        """Fix the x axes to the run's epochs, after `offset` for a warm start (None:
        follow the data). A fixed axis shows the whole run ahead and is not re-laid out
        at every redraw, which is most of the cost of a live plot."""
        for plot in (self.loss_plot, self.accuracy_plot, self.lr_plot):
            item = plot.getPlotItem()
            if epochs:
                item.setXRange(offset, offset + epochs, padding=0.02)
            else:
                item.enableAutoRange()
        self._loss_range.reset()
        self._lr_range.reset()
        self._live = bool(epochs)
        if epochs:  # live: y ranges are set by refresh(); percentages never leave 0…100
            self.accuracy_plot.getPlotItem().setYRange(0, 100, padding=0.02)

    def refresh(self, live: LiveRun, force: bool = False) -> bool:
        """Bring every curve up to date with `live`; True if anything changed. (The live
        window spreads the same work over several ticks: `refresh_loss`, `refresh_lr`,
        `refresh_epochs`, one plot each.)"""
        changed = [self.refresh_loss(live, force), self.refresh_lr(live, force),
                   self.refresh_epochs(live, force)]
        return any(changed)

    def refresh_loss(self, live: LiveRun, force: bool = False) -> bool:
        """The per-batch loss curves (lossPlot), if batches arrived."""
        if len(live.step) == self._batches and not force:
            return False
        self._batches = len(live.step)
        x = live.epoch_axis()
        self.raw.setData(x, live.loss.values)
        self.smooth.setData(x, live.smooth.values)
        if self._live:
            self._loss_range.update(live.loss.values, live.epoch_series("val_loss")[1])
        return True

    def refresh_lr(self, live: LiveRun, force: bool = False) -> bool:
        """The learning-rate curve, if batches arrived."""
        if len(live.lr) == self._lr_batches and not force:
            return False
        self._lr_batches = len(live.lr)
        self.lr.setData(live.epoch_axis(), live.lr.values)
        if self._live:
            self._lr_range.update(live.lr.values)
        return True

    def refresh_epochs(self, live: LiveRun, force: bool = False) -> bool:
        """The per-epoch points (validation loss, accuracies), if an epoch was added."""
        if len(live.epochs) == self._epochs and not force:
            return False
        self._epochs = len(live.epochs)
        self.val_loss.setData(*live.epoch_series("val_loss"))
        ex, acc = live.epoch_series("train_accuracy")
        self.train_acc.setData(ex, acc * 100)
        key = "val_iou" if self.task == "segmentation" else "val_accuracy"
        vx, vacc = live.epoch_series(key)
        self.val_acc.setData(vx, vacc * 100)
        if self._live:
            self._loss_range.update(live.loss.values, live.epoch_series("val_loss")[1])
        return True

    def clear(self) -> None:
        for curve in (self.raw, self.smooth, self.val_loss, self.train_acc, self.val_acc,
                      self.lr):
            curve.setData([], [])
        self._batches = self._lr_batches = self._epochs = -1
        self.set_origin(None)

    def set_overlays(self, runs: list[dict[str, Any]],
                     offsets: dict[str, int] | None = None) -> None:
        """Draw these run records' per-epoch curves (dashed) over the live ones, each run
        from its place on the epoch axis (`offsets`: run id → where its epoch 0 lies, see
        history.run_offsets). The legends get one short entry per run (dashed train loss,
        dotted validation loss), in more columns as runs are added, so they stay inside
        their plots."""
        for plot, item in self._overlays:
            plot.getPlotItem().removeItem(item)  # and from the legend
        self._overlays = []
        offsets = offsets or {}
        entries: dict[pg.PlotWidget, list[tuple[pg.PlotDataItem, str | None]]] = {}
        for i, run in enumerate(runs):
            color = OVERLAY_COLORS[i % len(OVERLAY_COLORS)]
            rid = str(run.get("id", "run"))
            shift = offsets.get(rid, 0)
            epochs = [e for e in run.get("epochs", []) if isinstance(e, dict)]
            for plot, key, label, style, legend in (
                    (self.loss_plot, "train_loss", f"{rid} train", Qt.PenStyle.DashLine, rid),
                    (self.loss_plot, "val_loss", f"{rid} val", Qt.PenStyle.DotLine, None),
                    (self.accuracy_plot, "val_iou" if self.task == "segmentation"
                     else "val_accuracy", f"{rid} val", Qt.PenStyle.DashLine, rid),
                    (self.lr_plot, "lr", rid, Qt.PenStyle.DashLine, None)):
                pts = [(e["epoch"] + shift, e[key]) for e in epochs
                       if e.get(key) is not None and e.get("epoch") is not None]
                if not pts:
                    continue
                x, y = (np.asarray(v, np.float64) for v in zip(*pts, strict=True))
                if plot is self.accuracy_plot:
                    y = y * 100
                curve = _curve(plot, label, color, symbol="t", style=style)
                curve.setData(x, y)
                self._overlays.append((plot, curve))
                entries.setdefault(plot, []).append((curve, legend))
        self._fill_legend(self.loss_plot, [(self.raw, "train (batch)"),
                                           (self.smooth, "train (smoothed)"),
                                           (self.val_loss, "validation")], entries)
        self._fill_legend(self.accuracy_plot, [(self.train_acc, self.train_acc.opts["name"]),
                                               (self.val_acc, self.val_acc.opts["name"])],
                          entries)

    @staticmethod
    def _fill_legend(plot: pg.PlotWidget, base: list[tuple[pg.PlotDataItem, str]],
                     entries: dict[pg.PlotWidget, list[tuple[pg.PlotDataItem, str | None]]]
                     ) -> None:
        """Lay the legend out anew: its own curves, then one entry per overlaid run, in as
        many columns as keep it to LEGEND_ROWS rows. (Changing the column count of a
        filled pyqtgraph legend leaves the old grid's rows behind: build it empty.)"""
        box = plot.getPlotItem().legend
        if box is None:
            return
        shown = base + [(c, name) for c, name in entries.get(plot, []) if name is not None]
        box.clear()
        box.setColumnCount(max(1, -(-len(shown) // LEGEND_ROWS)))
        for curve, name in shown:
            box.addItem(curve, name)

    def curve_data(self, plot: pg.PlotWidget) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each named curve's (x, y) on `plot` (for tests and export)."""
        out = {}
        for item in plot.getPlotItem().listDataItems():
            x, y = item.getOriginalDataset()
            out[str(item.opts.get("name"))] = (np.asarray(x if x is not None else []),
                                               np.asarray(y if y is not None else []))
        return out
