"""Drawing numbers: grids of cells with their values written in them, labels and bars,
laid out once in logical units (`Figure`) and painted at any zoom.

A figure is data (positions, values, texts), so the page can measure it, scale it to
the room it has, and tests can read what it shows without looking at pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPen

from cnnstudio.ui.explain.arithmetic_text import PADDING, cell_colour, fmt

CELL_W = 40.0  # at least; wider when the grid's numbers need it
CELL_H = 26.0
CELL_PAD = 10.0  # room left and right of a cell's number
GRID_DIGITS = 3  # significant digits in grid cells (sums and results get 4)
TEXT = (30, 30, 30)
MUTED = (110, 110, 110)
ACCENT = (230, 120, 0)  # the chosen cell, the window: one colour throughout


@dataclass
class Grid:
    """A 2-D grid of numbers at (x, y), each cell coloured by sign and magnitude."""

    x: float
    y: float
    values: np.ndarray  # (rows, cols) floats
    scale: float  # the |value| drawn at full colour
    cell_w: float = CELL_W
    cell_h: float = CELL_H
    padded: np.ndarray | None = None  # (rows, cols) bool: taps in the zero padding
    highlight: tuple[int, int] | None = None  # the chosen cell (a max pool's max)
    title: str = ""

    @property
    def width(self) -> float:
        return self.values.shape[1] * self.cell_w

    @property
    def height(self) -> float:
        return self.values.shape[0] * self.cell_h


@dataclass
class Label:
    """Text whose top-left corner is (x, y); `size` scales the base font."""

    x: float
    y: float
    text: str
    size: float = 1.0
    bold: bool = False
    colour: tuple[int, int, int] = TEXT
    align_right_at: float | None = None  # right-aligned so its right edge is here


@dataclass
class Bar:
    """A horizontal bar from x (its zero) `length` long (negative: leftwards)."""

    x: float
    y: float
    length: float
    height: float
    colour: tuple[int, int, int]


@dataclass
class Figure:
    """What the arithmetic canvas paints: items in logical units, their extent, and
    the arithmetic as lines of text (`lines`)."""

    items: list[Grid | Label | Bar] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0
    lines: list[str] = field(default_factory=list)

    def add(self, item: Grid | Label | Bar, right: float, bottom: float) -> None:
        self.items.append(item)
        self.width = max(self.width, right)
        self.height = max(self.height, bottom)

    def texts(self) -> list[str]:
        """Every text the figure shows: labels, then grid cells as written."""
        out = [i.text for i in self.items if isinstance(i, Label)]
        for grid in (i for i in self.items if isinstance(i, Grid)):
            out.extend(cell_text(v, p) for v, p in zip(
                grid.values.ravel(), _padded(grid).ravel(), strict=True))
        return out


class Metrics:
    """Text widths in logical units for the base font (what layouts need to align)."""

    def __init__(self, font: QFont) -> None:
        self.font = font
        self._cache: dict[tuple[float, bool], QFontMetricsF] = {}

    def _metrics(self, size: float, bold: bool) -> QFontMetricsF:
        key = (size, bold)
        if key not in self._cache:
            self._cache[key] = QFontMetricsF(scaled_font(self.font, size, bold))
        return self._cache[key]

    def width(self, text: str, size: float = 1.0, bold: bool = False) -> float:
        return self._metrics(size, bold).horizontalAdvance(text)

    def height(self, size: float = 1.0) -> float:
        return self._metrics(size, False).height()


def scaled_font(base: QFont, size: float, bold: bool = False) -> QFont:
    font = QFont(base)
    points = base.pointSizeF() if base.pointSizeF() > 0 else 9.0
    font.setPointSizeF(points * size)
    font.setBold(bold)
    return font


def cell_text(value: float, padded: bool) -> str:
    """What a cell says: its value; a padding tap says 0 (or −∞ for a max pool)."""
    return fmt(value, GRID_DIGITS) if not padded or not np.isfinite(value) or value != 0 \
        else "0"


def _padded(grid: Grid) -> np.ndarray:
    return grid.padded if grid.padded is not None else np.zeros(grid.values.shape, bool)


def qcolour(rgb: tuple[int, int, int]) -> QColor:
    return QColor(*rgb)


def paint_grid(painter: QPainter, grid: Grid, font: QFont) -> None:
    values, padded = grid.values, _padded(grid)
    rows, cols = values.shape
    painter.setFont(font)
    hatch = QBrush(qcolour(PADDING), Qt.BrushStyle.BDiagPattern)
    grid_pen = QPen(QColor(160, 160, 160))
    grid_pen.setWidthF(1.0)
    for r in range(rows):
        for c in range(cols):
            rect = QRectF(grid.x + c * grid.cell_w, grid.y + r * grid.cell_h,
                          grid.cell_w, grid.cell_h)
            if padded[r, c]:
                painter.fillRect(rect, QColor(238, 238, 238))
                painter.fillRect(rect, hatch)  # the zero border: drawn unlike any value
                painter.setPen(qcolour(MUTED))
            else:
                painter.fillRect(rect, qcolour(cell_colour(values[r, c], grid.scale)))
                painter.setPen(qcolour(TEXT))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter,
                             cell_text(values[r, c], bool(padded[r, c])))
            painter.setPen(grid_pen)
            painter.drawRect(rect)
    if grid.highlight is not None:
        r, c = grid.highlight
        pen = QPen(qcolour(ACCENT))
        pen.setWidthF(3.0)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(grid.x + c * grid.cell_w + 1, grid.y + r * grid.cell_h + 1,
                                grid.cell_w - 2, grid.cell_h - 2))


def paint_figure(painter: QPainter, figure: Figure, base: QFont) -> None:
    """Paint `figure` in logical units (the caller sets the painter's scale)."""
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
    for item in figure.items:
        if isinstance(item, Grid):
            paint_grid(painter, item, base)
        elif isinstance(item, Bar):
            x = item.x if item.length >= 0 else item.x + item.length
            painter.fillRect(QRectF(x, item.y, abs(item.length), item.height),
                             qcolour(item.colour))
        else:
            font = scaled_font(base, item.size, item.bold)
            painter.setFont(font)
            painter.setPen(qcolour(item.colour))
            metrics = QFontMetricsF(font)
            x = item.x
            if item.align_right_at is not None:
                x = item.align_right_at - metrics.horizontalAdvance(item.text)
            painter.drawText(QPointF(x, item.y + metrics.ascent()), item.text)
