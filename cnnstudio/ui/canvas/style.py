"""How the canvas looks: sizes, category colours and palette-aware derived colours.

Category colours are the accents of the Tableau-10 palette (chosen for being told apart,
also by most colour-blind readers); node bodies are a light tint of the accent over the
window's base colour, so text in the palette's own text colour stays readable in light
and dark themes alike.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPolygonF
from PySide6.QtWidgets import QApplication

from cnnstudio.core.layout import COLUMN_WIDTH, ROW_HEIGHT

# Node geometry in scene units; must fit the layered layout's grid with room for edges.
NODE_WIDTH = 200.0
NODE_HEIGHT = 46.0
NODE_RADIUS = 7.0
ACCENT_WIDTH = 6.0
PORT_RADIUS = 5.0
PORT_HIT_RADIUS = 10.0  # generous: ports are small targets
MERGE_PORT_MARGIN = 26.0  # a merge node's input port spans the top edge minus this margin
assert NODE_WIDTH < COLUMN_WIDTH and NODE_HEIGHT < ROW_HEIGHT - 30

# A folded group's card: a little taller than a layer's (three lines of facts), still one
# layout row; the cards stacked behind it stick out by STACK_OFFSET twice, up and right.
GROUP_WIDTH = 200.0
GROUP_HEIGHT = 60.0
STACK_OFFSET = 4.0
GROUP_COLOR = "#5f6f8f"  # slate: no layer category uses it
assert GROUP_HEIGHT <= ROW_HEIGHT - 24 and GROUP_WIDTH + 2 * STACK_OFFSET < COLUMN_WIDTH

CATEGORY_COLORS = {
    "Input": "#9467bd",
    "Convolution": "#1f77b4",
    "Pooling": "#17becf",
    "Normalization": "#2ca02c",
    "Activation": "#ff7f0e",
    "Regularization": "#8c564b",
    "Reshape": "#7f7f7f",
    "Dense": "#e377c2",
    "Merge": "#bcbd22",
}
ERROR_COLOR = QColor("#e53935")
WARNING_COLOR = QColor("#f59e0b")
VALID_COLOR = QColor("#2e9d4a")
INVALID_COLOR = ERROR_COLOR

# Below this zoom a card's 8.5 pt title is under ~8 px high: no longer comfortably read.
MIN_LEGIBLE_ZOOM = 0.7

GRID = 24.0  # spacing of the background dots

# What cards, edges and frames show at each zoom is decided in lod.py.


def category_color(category: str) -> QColor:
    return QColor(CATEGORY_COLORS.get(category, "#7f7f7f"))


def group_accent() -> QColor:
    """The accent of group cards and frames (the same in light and dark themes)."""
    return QColor(GROUP_COLOR)


def palette() -> QPalette:
    return QApplication.palette()


def is_dark(pal: QPalette | None = None) -> bool:
    pal = pal or palette()
    return pal.color(QPalette.ColorRole.Base).lightness() < 128


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """`a` blended towards `b` by `t` (0 → a, 1 → b)."""
    return QColor.fromRgbF(a.redF() + (b.redF() - a.redF()) * t,
                           a.greenF() + (b.greenF() - a.greenF()) * t,
                           a.blueF() + (b.blueF() - a.blueF()) * t, 1.0)


def body_color(category: str, pal: QPalette | None = None) -> QColor:
    pal = pal or palette()
    base = pal.color(QPalette.ColorRole.Base)
    return mix(base, category_color(category), 0.24 if is_dark(pal) else 0.13)


def border_color(category: str, pal: QPalette | None = None) -> QColor:
    pal = pal or palette()
    return mix(category_color(category), pal.color(QPalette.ColorRole.Text), 0.25)


def text_color(pal: QPalette | None = None) -> QColor:
    return (pal or palette()).color(QPalette.ColorRole.Text)


def dim_text_color(pal: QPalette | None = None) -> QColor:
    pal = pal or palette()
    return mix(pal.color(QPalette.ColorRole.Text), pal.color(QPalette.ColorRole.Base), 0.35)


def edge_color(pal: QPalette | None = None) -> QColor:
    pal = pal or palette()
    return mix(pal.color(QPalette.ColorRole.Text), pal.color(QPalette.ColorRole.Base), 0.45)


def highlight_color(pal: QPalette | None = None) -> QColor:
    return (pal or palette()).color(QPalette.ColorRole.Highlight)


def canvas_color(pal: QPalette | None = None) -> QColor:
    pal = pal or palette()
    base = pal.color(QPalette.ColorRole.Base)
    return base.darker(106) if not is_dark(pal) else base.lighter(112)


def grid_color(pal: QPalette | None = None) -> QColor:
    pal = pal or palette()
    return mix(canvas_color(pal), pal.color(QPalette.ColorRole.Text), 0.16)


def font(point_size: float, bold: bool = False, mono: bool = False) -> QFont:
    """The application font at `point_size` (pixel-exact sizes would ignore user scaling)."""
    f = QFont(QApplication.font())
    if mono:
        f.setStyleHint(QFont.StyleHint.Monospace)
    f.setPointSizeF(point_size)
    f.setBold(bold)
    return f


def paint_canvas(painter: QPainter, rect: QRectF, zoom: float, pal: QPalette) -> None:
    """The canvas background: a flat colour with a light dot grid (none when zoomed out,
    where it would only be noise). The dots go out a row at a time (one polygon moved
    down the rows): a point per call from Python cost 12 ms a repaint."""
    painter.fillRect(rect, canvas_color(pal))
    if zoom < 0.5 or GRID * zoom < 6:
        return
    painter.setPen(grid_color(pal))
    left = math.floor(rect.left() / GRID) * GRID
    top = math.floor(rect.top() / GRID) * GRID
    columns = int((rect.right() - left) / GRID) + 1
    rows = int((rect.bottom() - top) / GRID) + 1
    row = QPolygonF([QPointF(left + i * GRID, top) for i in range(columns)])
    painter.save()
    for _ in range(rows):
        painter.drawPoints(row)
        painter.translate(0.0, GRID)
    painter.restore()
