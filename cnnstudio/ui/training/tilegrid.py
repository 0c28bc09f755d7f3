"""A grid of small pictures (filters, feature maps) that fills its panel, says under the
mouse which tile and value it is, and shows one tile large on a double-click.

The pixels go through a colour table with explicit levels, shown by a colour bar beside
the grid. Columns follow the panel's shape (`tiles.fit_columns`), recomputed when it is
resized, unless the layout means something (a filter's input channels as rows).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPen, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.ui.training import tiles
from cnnstudio.ui.training.colorbar import ColorBar, value_text

DIVERGING = pg.colormap.get("CET-D1").getLookupTable(nPts=256)  # blue – white – red
SEQUENTIAL = pg.colormap.get("viridis").getLookupTable(nPts=256)
GRAY = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


class ClickableImage(pg.ImageItem):
    """An ImageItem that reports clicks, double-clicks and the hovered pixel as (row, col)
    pixel indices (None for the hover leaving)."""

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self.clicked: Callable[[int, int], None] | None = None
        self.double_clicked: Callable[[int, int], None] | None = None
        self.hovered: Callable[[int, int] | None, None] | None = None
        self.setAcceptHoverEvents(True)

    def mouseClickEvent(self, ev) -> None:  # noqa: ANN001 (pyqtgraph's event)
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        handler = self.double_clicked if ev.double() else self.clicked
        if handler is None:
            return
        ev.accept()
        pos = ev.pos()
        handler(int(np.floor(pos.y())), int(np.floor(pos.x())))

    def hoverEvent(self, ev) -> None:  # noqa: ANN001 (pyqtgraph's event)
        if self.hovered is None:
            return
        if ev.isExit():
            self.hovered(None)  # type: ignore[arg-type]
            return
        pos = ev.pos()
        self.hovered(int(np.floor(pos.y())), int(np.floor(pos.x())))  # type: ignore[call-arg]


def image_panel(parent: QWidget) -> tuple[pg.GraphicsLayoutWidget, pg.ViewBox, ClickableImage]:
    """A pixel-exact image area: square pixels, origin top left, no mouse menu."""
    widget = pg.GraphicsLayoutWidget(parent)
    widget.setBackground(None)
    widget.ci.setContentsMargins(2, 2, 2, 2)
    box = widget.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
    box.setMouseEnabled(False, False)  # a grid to read, not a map to pan
    item = ClickableImage()
    box.addItem(item)
    return widget, box, item


def outline(parent: pg.ImageItem, color: str) -> QGraphicsRectItem:
    rect = QGraphicsRectItem(parent)
    pen = QPen(QColor(color))
    pen.setWidthF(2.0)
    pen.setCosmetic(True)  # two screen pixels at any zoom
    rect.setPen(pen)
    rect.setVisible(False)
    return rect


def set_rgba(item: pg.ImageItem, box: pg.ViewBox, rgba: np.ndarray, keep_view: bool) -> None:
    item.setImage(rgba, autoLevels=False, levels=(0, 255))
    if not keep_view:
        box.autoRange(padding=0.02)


class TileGrid(QWidget):
    """Tiles (n, h, w) or RGB tiles (n, h, w, 3) in a grid through a colour table, with a
    colour bar. `describe(index, y, x)` names a pixel for the hover line; `hovered` sends
    that text ("" when the mouse leaves); `pixel_clicked` a clicked tile pixel."""

    hovered = Signal(str)
    pixel_clicked = Signal(int, int, int)  # tile index, row, column
    enlarged_changed = Signal(int)  # the tile shown large, −1 for the whole grid

    def __init__(self, noun: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.noun = noun  # "filter", "map": what one tile is
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        # One row above the picture, always there (the picture keeps its size): the way
        # back from an enlarged tile, and what is under the mouse.
        self.top_row = QWidget(self)
        row = QHBoxLayout(self.top_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.back = QToolButton(self.top_row)
        self.back.setObjectName("backToGrid")
        self.back.setText(f"◀ All {noun}s")
        self.back.setToolTip("Back to the whole grid (Esc, or double-click the picture)")
        self.back.clicked.connect(self.show_all)
        self.back.setVisible(False)
        row.addWidget(self.back)
        self.status = QLabel(self.top_row)
        self.status.setObjectName("hoverInfo")
        row.addWidget(self.status, 1)
        self.top_row.setFixedHeight(self.back.sizeHint().height())
        layout.addWidget(self.top_row)
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        self.plot, self.box, self.item = image_panel(self)
        body.addWidget(self.plot, 1)
        self.colorbar = ColorBar(self)
        body.addWidget(self.colorbar)
        layout.addLayout(body, 1)
        self.marker = outline(self.item, "#ff2a2a")
        self.item.clicked = self._clicked
        self.item.double_clicked = self._double_clicked
        self.item.hovered = self._hovered
        self.describe: Callable[[int, int, int], str] | None = None
        self.tile_names: Callable[[int], str] | None = None
        self.fixed_columns: int | None = None  # a layout with meaning: keep it
        self._tiles = np.zeros((0, 0, 0), np.float32)
        self._levels = (0.0, 1.0)
        self._lut: np.ndarray = GRAY
        self._image = np.zeros((0, 0), np.float32)
        self._cols = 1
        self._count = 0
        self.enlarged = -1
        self._hover: tuple[int, int] | None = None  # the picture pixel under the mouse

    # ---- what is shown ---------------------------------------------------------------

    @property
    def image(self) -> np.ndarray:
        """The picture shown: the grid (NaN in the gaps), or the enlarged tile."""
        return self._image

    @property
    def columns(self) -> int:
        return self._cols

    @property
    def count(self) -> int:
        return self._count

    @property
    def tile_shape(self) -> tuple[int, int]:
        return tuple(self._tiles.shape[1:3])  # type: ignore[return-value]

    def clear(self) -> None:
        self._tiles = np.zeros((0, 0, 0), np.float32)
        self._image = np.zeros((0, 0), np.float32)
        self._count = 0
        self.enlarged = -1
        self._hover = None
        self.back.setVisible(False)
        self.status.clear()
        self.item.clear()
        self.marker.setVisible(False)
        self.colorbar.setVisible(False)

    def set_tiles(self, tile_images: np.ndarray, levels: tuple[float, float], lut: np.ndarray,
                  *, columns: int | None = None, count: int | None = None,
                  scale_title: str = "") -> None:
        """Show `tile_images` with `levels` through `lut`. `columns` fixes the layout
        (else it fits the panel); `count` is how many tiles are real (the rest padding).
        An enlarged tile stays enlarged when the new tiles have it."""
        same = (self._tiles.shape == np.shape(tile_images)
                and self.fixed_columns == columns)
        self._tiles = np.asarray(tile_images, np.float32)
        self._count = len(self._tiles) if count is None else count
        self._levels, self._lut, self.fixed_columns = levels, lut, columns
        self.colorbar.set_scale(lut, levels[0], levels[1], scale_title)
        if self.enlarged >= self._count:
            self.enlarged = -1
        self._draw(keep_view=same)

    def _area(self) -> tuple[float, float]:
        if not self.plot.isVisible():
            return (0.0, 0.0)  # not laid out yet: a square grid until it is
        return (float(self.plot.width()), float(self.plot.height()))

    def _draw(self, keep_view: bool) -> None:
        n = len(self._tiles)
        if not n:
            self.clear()
            return
        if self.enlarged >= 0:
            picture = self._tiles[self.enlarged]
            shape_changed = self._image.shape != picture.shape
            self._image = picture
            self.back.setVisible(True)
        else:
            cols = self.fixed_columns or tiles.fit_columns(n, self.tile_shape, self._area())
            grid = tiles.tile(self._tiles, cols)
            shape_changed = self._image.shape != grid.shape or cols != self._cols
            self._image, self._cols = grid, cols
            self.back.setVisible(False)
        # New values under a resting mouse (a live run) are read out at once.
        text = self.hover_text(*self._hover) if self._hover is not None else ""
        self.status.setText(text or self.hint())
        gap = tiles.DARK_GAP_RGBA if self._lut is GRAY else tiles.GAP_RGBA
        rgba = tiles.to_rgba(self._image, self._levels, self._lut, gap)
        set_rgba(self.item, self.box, rgba, keep_view=keep_view and not shape_changed)

    def hint(self) -> str:
        """What the row above the picture says while the mouse is elsewhere."""
        if self.enlarged >= 0:
            name = self.tile_names(self.enlarged) if self.tile_names else \
                f"{self.noun} {self.enlarged}"
            return f"{name}, enlarged (double-click or Esc: back)"
        return f"Hover for values; double-click a {self.noun} to enlarge it"

    def relayout(self) -> None:
        """Fit the columns to the panel's present size (after a resize or when shown)."""
        if not len(self._tiles) or self.fixed_columns or self.enlarged >= 0:
            return
        cols = tiles.fit_columns(len(self._tiles), self.tile_shape, self._area())
        if cols != self._cols:
            self._draw(keep_view=False)
        else:
            self.box.autoRange(padding=0.02)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.relayout()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.relayout()

    # ---- one tile large ----------------------------------------------------------------

    def enlarge(self, index: int) -> None:
        """Show tile `index` alone, as large as the panel allows."""
        if not 0 <= index < self._count:
            return
        self.enlarged, self._hover = index, None
        self.marker.setVisible(False)
        self._draw(keep_view=False)
        self.enlarged_changed.emit(index)

    def show_all(self) -> None:
        """Back from one enlarged tile to the whole grid."""
        if self.enlarged < 0:
            return
        self.enlarged, self._hover = -1, None
        self.marker.setVisible(False)
        self._draw(keep_view=False)
        self.enlarged_changed.emit(-1)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.enlarged >= 0:
            self.show_all()
            return
        super().keyPressEvent(event)

    # ---- the mouse -------------------------------------------------------------------

    def tile_pixel(self, row: int, col: int) -> tuple[int, int, int] | None:
        """(tile index, y, x) under picture pixel (row, col); None off the tiles."""
        if not self._image.size or row < 0 or col < 0:
            return None
        if self.enlarged >= 0:
            h, w = self._image.shape[:2]
            return (self.enlarged, row, col) if row < h and col < w else None
        hit = tiles.tile_at(self._image.shape, self.tile_shape, self._cols, row, col)
        if hit is None or hit[0] >= self._count:
            return None
        return hit

    def picture_point(self, index: int, y: int, x: int) -> QPointF:
        """The centre of tile `index`'s pixel (y, x) in the plot's viewport coordinates."""
        if self.enlarged >= 0:
            top, left = 0, 0
        else:
            top, left = tiles.tile_origin(index, self.tile_shape, self._cols)
        self.box.updateMatrix()  # pyqtgraph updates the view's transform lazily (at paint)
        scene = self.item.mapToScene(QPointF(left + x + 0.5, top + y + 0.5))
        return QPointF(self.plot.mapFromScene(scene))

    def mark(self, index: int, y: int, x: int) -> None:
        """Outline pixel (y, x) of tile `index`."""
        if self.enlarged >= 0:
            top, left = 0, 0
        else:
            top, left = tiles.tile_origin(index, self.tile_shape, self._cols)
        self.marker.setRect(QRectF(left + x, top + y, 1, 1))
        self.marker.setVisible(True)

    def hover_text(self, row: int, col: int) -> str:
        """What the hover line says for picture pixel (row, col)."""
        hit = self.tile_pixel(row, col)
        if hit is None:
            return ""
        if self.describe is not None:
            return self.describe(*hit)
        index, y, x = hit
        value = self._tiles[index, y, x]
        shown = ", ".join(value_text(v) for v in np.ravel(value))
        return f"{self.noun} {index}, pixel ({y}, {x}): {shown}"

    def _hovered(self, row: int | None, col: int | None = None) -> None:
        self._hover = None if row is None or col is None else (row, col)
        text = "" if self._hover is None else self.hover_text(*self._hover)
        self.status.setText(text or self.hint())
        self.hovered.emit(text)

    def _clicked(self, row: int, col: int) -> None:
        hit = self.tile_pixel(row, col)
        if hit is not None:
            self.setFocus()  # so Esc returns from an enlarged tile
            self.pixel_clicked.emit(*hit)

    def _double_clicked(self, row: int, col: int) -> None:
        if self.enlarged >= 0:
            self.show_all()
            return
        hit = self.tile_pixel(row, col)
        if hit is not None:
            self.enlarge(hit[0])
