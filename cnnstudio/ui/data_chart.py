"""The class-count bar chart (pyqtgraph): one stacked horizontal bar per class, a segment
per split (the view's split line, in the same colours, is its legend).

Imported on first use only: pyqtgraph takes about a second to import, which the window's
start-up should not pay.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtGui import QPalette, QResizeEvent
from PySide6.QtWidgets import QWidget

from cnnstudio.ui.data_preview import SPLIT_COLORS


def _short(name: str, limit: int = 10) -> str:
    return name if len(name) <= limit else name[:limit - 1] + "…"


class ClassCountChart(pg.PlotWidget):
    """Samples per class and split as horizontal bars, class names down the left axis
    (objectName `dataClassCounts`); `bars` maps each split to its BarGraphItem."""

    def __init__(self, parent: QWidget | None = None) -> None:
        palette = parent.palette() if parent is not None else QPalette()
        super().__init__(parent, background=palette.color(QPalette.ColorRole.Base))
        self.setObjectName("dataClassCounts")
        text = palette.color(QPalette.ColorRole.Text)
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        plot.showGrid(x=True, y=False, alpha=0.2)
        plot.invertY(True)  # the first class on top, as in a list
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setTextPen(text)
            axis.setPen(palette.color(QPalette.ColorRole.Mid))
        self.bars: dict[str, pg.BarGraphItem] = {}
        self._names: list[str] = []
        self.scale = 1.0  # bar lengths are counts / scale

    def show_counts(self, class_names: list[str], counts: dict[str, list[int]],
                    unit: str = "samples") -> None:
        """Stack `counts[split]` (per class) for train, val and test, in that order."""
        plot = self.getPlotItem()
        for item in self.bars.values():
            plot.removeItem(item)
        self.bars = {}
        k = len(class_names)
        self._names = list(class_names)
        top_total = max((sum(c) for c in zip(*counts.values(), strict=True)), default=0)
        # Big counts (pixels) in thousands: "500000" ticks would crowd the narrow axis.
        scale = 1000.0 if top_total >= 10_000 else 1.0
        left = [0.0] * k
        for split in ("train", "val", "test"):
            lengths = counts.get(split)
            if not lengths or not any(lengths):
                continue
            item = pg.BarGraphItem(y=list(range(k)), width=[n / scale for n in lengths],
                                   x0=list(left), height=0.72, brush=SPLIT_COLORS[split],
                                   pen=pg.mkPen(None))
            plot.addItem(item)
            self.bars[split] = item
            left = [a + n / scale for a, n in zip(left, lengths, strict=True)]
        self.scale = scale
        self._update_ticks()
        plot.setLabel("bottom", f"thousand {unit}" if scale > 1 else unit)
        plot.setYRange(-0.6, max(k, 1) - 0.4, padding=0)
        plot.setXRange(0, (max(left, default=0.0) or 1.0) * 1.05, padding=0)

    def _update_ticks(self) -> None:
        """Name every class whose line fits; with too many for the height, every k-th."""
        names = self._names
        axis = self.getPlotItem().getAxis("left")
        if not names:
            axis.setTicks([[], []])
            return
        line = self.fontMetrics().height() + 2
        room = max(1.0, self.height() - 50.0)  # minus the bottom axis and margins
        step = max(1, math.ceil(len(names) * line / room))
        axis.setTicks([[(i, _short(name)) for i, name in enumerate(names) if i % step == 0],
                       []])

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if "_names" in self.__dict__:  # pyqtgraph resizes once inside its own __init__
            self._update_ticks()

    def total(self) -> float:
        """Sum of every bar segment: the sample (or pixel) count the chart shows."""
        return float(sum(sum(item.opts["width"]) for item in self.bars.values())) * self.scale
