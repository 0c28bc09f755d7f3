"""Level of detail: what a card, an edge or a frame shows at a given zoom.

The zoom (Qt's "level of detail", device pixels per scene unit) decides how much a card
shows: everything while its small print is readable; zoomed out, one label (the layer
type or the group name) in a font that keeps a readable size on screen; further out a
coloured block with an abbreviated type. Selection and problems must stay visible at any
zoom, so their pens are sized in device pixels, and far out a `ScreenMarker` (a child item
that ignores the view's scale) rings the card at a minimum screen size.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen, QPixmapCache
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView, QStyleOptionGraphicsItem, QWidget

from cnnstudio.ui.canvas import style

FULL, LABEL, BLOCK = "full", "label", "block"

READABLE_PX = 7.0  # a line of small print lower than this on screen is noise
LABEL_PX = 12.0  # the zoomed-out label's height on screen, when the card has room for it
LABEL_MIN_PX = 9.0  # below this the card turns into a coloured block
LABEL_SHRINK_PX = 9.0  # a label too long for the card may shrink this far before shortening
BLOCK_TEXT_MIN_PX = 6.0  # a block's abbreviation is left out below this
LABEL_FILL = 0.9  # the label may use this share of the card's height
SMALL_PRINT_POINTS = 8.0  # the card's normal text
PX_PER_POINT = 96.0 / 72.0  # the canvas is laid out for 96 dpi (Qt's logical default)

SELECTION_PX = 3.0  # the selection halo's width on screen, at any zoom
PROBLEM_PX = 2.6  # an error border's width on screen
EDGE_MIN_PX = 1.2  # an edge is never thinner than this on screen
EDGE_PX = 1.6  # ... and this wide in scene units when zoomed in
FAST_EDGE_LOD = 0.75  # below this zoom edges are drawn with two offset one-pixel pens
FAST_EDGE_OFFSET = 0.35  # pixels between the two, along x and y
HALO_GAP = 4.0  # the halo's distance from the card, in scene units

# Short forms for a block too small for the type's name ("BN" reads, "Bat…" does not).
SHORT_NAMES = {
    "Input": "In", "Conv1d": "Conv", "Conv2d": "Conv", "Conv3d": "Conv",
    "ConvTranspose2d": "ConvT", "AdaptiveAvgPool2d": "GAP", "AdaptiveMaxPool2d": "GMP",
    "AvgPool1d": "Avg", "AvgPool2d": "Avg", "AvgPool3d": "Avg", "MaxPool1d": "Max",
    "MaxPool2d": "Max", "MaxPool3d": "Max", "BatchNorm1d": "BN", "BatchNorm2d": "BN",
    "LeakyReLU": "LReLU", "Maxout": "Mout", "Sigmoid": "σ", "Softmax": "Smax",
    "Dropout": "Drop", "Dropout2d": "Drop", "Flatten": "Flat", "Upsample": "Up",
    "Linear": "FC", "Concat": "Cat",
}


PIXMAP_CACHE_KB = 64 * 1024
_cache_checked = False


def ensure_pixmap_cache() -> None:
    """Give the item caches room for a 1,000-card graph. Qt's default 10 MB holds the
    cached pictures of about 300 cards and their edges; beyond that every pan frame
    re-renders them all (6 fps instead of 100 measured on 1,000 cards at 30 %)."""
    global _cache_checked
    if not _cache_checked:
        _cache_checked = True
        if QPixmapCache.cacheLimit() < PIXMAP_CACHE_KB:
            QPixmapCache.setCacheLimit(PIXMAP_CACHE_KB)


def short_name(type_name: str) -> str:
    """The type abbreviated for a small block: a known short form, else its first 4 letters."""
    return SHORT_NAMES.get(type_name, type_name[:4])


def short_group_name(name: str) -> str:
    """A block's name shortened for a small card: its first word cut to 3 letters (kept
    whole up to 6) and its number, e.g. "Residual block 12" → "Res 12", "Stage 3"."""
    words = name.split()
    if not words:
        return name
    first = words[0] if len(words[0]) <= 6 else words[0][:3]
    last = words[-1] if len(words) > 1 and any(c.isdigit() for c in words[-1]) else ""
    return f"{first} {last}".strip()


@dataclass(frozen=True)
class CardText:
    """What a card shows at one zoom. `level` FULL: its usual lines (`text` is empty);
    LABEL / BLOCK: the single `text`, in a font of `pixel_size` scene units (`screen_px` on
    screen; 0 when the block is too small for any text)."""

    level: str
    text: str = ""
    pixel_size: float = 0.0
    screen_px: float = 0.0


def small_print_px(lod: float) -> float:
    """How high the card's normal text is on screen at `lod`."""
    return SMALL_PRINT_POINTS * PX_PER_POINT * lod


def card_text_at(lod: float, name: str, short: str, width: float, height: float,
                 bold: bool = False) -> CardText:
    """The text a `width` × `height` card shows at zoom `lod`: FULL while its small print
    is readable; else `name` (shortened to `short`, then elided, to fit the width) at
    LABEL_PX on screen, or as large as the card allows; else a BLOCK with `short` when
    even that would be too small to read."""
    if small_print_px(lod) >= READABLE_PX:
        return CardText(FULL)
    room_px = height * LABEL_FILL * lod
    screen_px = min(LABEL_PX, room_px)
    level = LABEL if screen_px >= LABEL_MIN_PX else BLOCK
    if level == BLOCK and screen_px < BLOCK_TEXT_MIN_PX:
        return CardText(BLOCK)
    pixel_size = screen_px / lod
    inner = width - 2 * _side_padding(width)
    chosen = name if level == LABEL else short
    needed = _text_width(chosen, pixel_size, bold)
    if needed > inner and chosen != short:
        # The whole name a little smaller reads better than an abbreviation.
        smaller = pixel_size * inner / needed
        if smaller * lod >= LABEL_SHRINK_PX:
            return CardText(level, chosen, smaller, smaller * lod)
        chosen = short
    needed = _text_width(chosen, pixel_size, bold)
    if needed > inner:
        smaller = pixel_size * inner / needed  # the short form a little smaller, whole
        if level == LABEL and smaller * lod >= LABEL_SHRINK_PX:
            return CardText(level, chosen, smaller, smaller * lod)
        chosen = _label_metrics(bold).elidedText(chosen, Qt.TextElideMode.ElideRight,
                                                 inner * _REFERENCE_PX / pixel_size)
        if chosen in ("", "…"):
            return CardText(BLOCK)
    return CardText(level, chosen, pixel_size, screen_px)


def _side_padding(width: float) -> float:
    return min(12.0, width * 0.06)


_REFERENCE_PX = 100  # text is measured once at this size and scaled (advances are linear)


@functools.cache
def _label_metrics(bold: bool) -> QFontMetricsF:
    return QFontMetricsF(label_font(_REFERENCE_PX, bold))


@functools.lru_cache(maxsize=4096)
def _reference_width(text: str, bold: bool) -> float:
    return _label_metrics(bold).horizontalAdvance(text)


def _text_width(text: str, pixel_size: float, bold: bool) -> float:
    return _reference_width(text, bold) * pixel_size / _REFERENCE_PX


def label_font(pixel_size: float, bold: bool = False) -> QFont:
    """The application font at `pixel_size` scene units (a label sized for the screen)."""
    f = QFont(style.font(9.0, bold=bold))
    f.setPixelSize(max(1, round(pixel_size)))
    return f


def paint_label(painter: QPainter, rect: QRectF, text: CardText, colour: QColor,
                bold: bool = False) -> None:
    """Draw a LABEL/BLOCK card's text centred in `rect`."""
    if not text.text:
        return
    painter.setFont(label_font(text.pixel_size, bold))
    painter.setPen(colour)
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text.text)


def on_colour(fill: QColor) -> QColor:
    """Black or white, whichever reads better on `fill`."""
    luma = 0.299 * fill.redF() + 0.587 * fill.greenF() + 0.114 * fill.blueF()
    return QColor("#111111") if luma > 0.6 else QColor("#ffffff")


def problem_pen(severity: str | None, normal: QColor, lod: float) -> QPen:
    """A card's border: thin in its own colour, or red (dashed amber) and PROBLEM_PX wide on
    screen whatever the zoom."""
    if severity == "error":
        return QPen(style.ERROR_COLOR, max(2.6, device_width(PROBLEM_PX, lod)))
    if severity == "warning":
        pen = QPen(style.WARNING_COLOR, max(2.4, device_width(PROBLEM_PX, lod)))
        if lod >= 0.5:
            pen.setStyle(Qt.PenStyle.DashLine)
        return pen
    return QPen(normal, max(1.2, device_width(0.8, lod)))


def problem_rect(rect: QRectF, severity: str | None, lod: float,
                 width: float | None = None) -> QRectF:
    """The border's path: a pen (of `width`, else problem_pen's) wider than the card's
    margin is moved inwards, so it stays inside the item (the card then fills with the
    problem colour when far zoomed out)."""
    if width is None:
        width = problem_pen(severity, QColor(), lod).widthF()
    inset = max(0.0, width / 2 - 6.0)
    if not inset:
        return rect
    inset = min(inset, rect.height() / 2 - 1)
    return rect.adjusted(inset, inset, -inset, -inset)


def device_width(px: float, lod: float) -> float:
    """A pen width in scene units that is `px` device pixels at `lod`."""
    return px / max(lod, 1e-6)


def edge_pen_width(lod: float, emphasised: bool = False) -> float:
    """An edge's pen width in scene units: EDGE_PX when zoomed in (3 when selected or
    highlighted), never under EDGE_MIN_PX (SELECTION_PX) device pixels."""
    if emphasised:
        return max(3.0, device_width(SELECTION_PX, lod))
    return max(EDGE_PX, device_width(EDGE_MIN_PX, lod))


def edge_opacity(lod: float) -> float:
    """Edges fade towards half strength as the view zooms out, so cards lead."""
    return 0.55 + 0.45 * min(1.0, max(0.0, (lod - 0.08) / 0.42))


def edge_label_opacity(lod: float) -> float:
    """Shape labels (7.5 pt) are hidden while unreadable and fade in as they become so."""
    px = 7.5 * PX_PER_POINT * lod
    return min(1.0, max(0.0, (px - READABLE_PX) / 2.5))


def halo_distance(lod: float) -> float:
    """How far the halo's centre line runs outside the card, in scene units: a pixel of
    gap and half the pen on screen, at least HALO_GAP."""
    return max(HALO_GAP, device_width(1.0 + SELECTION_PX / 2, lod))


def marker_needed(lod: float) -> bool:
    """Below this zoom the card's own halo (within its margin) is too thin: use a marker."""
    margin = style.PORT_RADIUS + 5
    return halo_distance(lod) + halo_pen(QColor(), lod).widthF() / 2 > margin + 1e-9


def halo_pen(colour: QColor, lod: float) -> QPen:
    """The selection halo's pen: SELECTION_PX on screen, at least 3 scene units."""
    return QPen(colour, max(3.0, device_width(SELECTION_PX, lod)))


def halo_rect(rect: QRectF, lod: float) -> QRectF:
    """The halo's path around the card `rect` at zoom `lod`."""
    d = halo_distance(lod)
    return rect.adjusted(-d, -d, d, d)


def view_zoom(widget: QWidget | None) -> float | None:
    """The scale of the view painting into `widget` (its viewport), when there is one."""
    view = widget.parentWidget() if widget is not None else None
    if isinstance(view, QGraphicsView):
        t = view.transform()
        return math.hypot(t.m11(), t.m12())
    return None


class ScreenMarker(QGraphicsItem):
    """A ring (selection) and a badge (problems) around a far zoomed-out card, drawn at a
    minimum screen size: a child item that ignores the view's scale. Only the parent's
    `marker_state()` ("selected", severity) and size decide what it draws."""

    def __init__(self, parent: QGraphicsItem, width: float, height: float) -> None:
        super().__init__(parent)
        self._w, self._h = width, height
        self.painted_lod = 1.0  # the parent's zoom when no view says it (scene.render)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)
        self.setZValue(5)
        self.setVisible(False)
        # The largest card on screen that still needs a marker, plus ring and badge.
        lod = _MARKER_LOD_LIMIT
        half_w = self._w * lod / 2 + 16
        half_h = self._h * lod / 2 + 16
        self._bounds = QRectF(-half_w, -half_h, 2 * half_w, 2 * half_h)

    @staticmethod
    def follow(card: QGraphicsItem, selected: bool) -> None:
        """Show `card.marker` while the card is selected or has problems; the marker is
        made the first time (a thousand idle child items would slow opening a graph)."""
        wanted = selected or bool(card.severity)
        if card.marker is None:
            if not wanted:
                return
            rect = card.card_rect()
            card.marker = ScreenMarker(card, rect.width(), rect.height())
        card.marker.setVisible(wanted)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        return QPainterPath()  # never hit: clicks go to the card below

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        parent = self.parentItem()
        zoom = view_zoom(widget)
        if zoom is None:
            zoom = getattr(parent, "painted_lod", self.painted_lod)
        if parent is None or not marker_needed(zoom):
            return
        selected, severity = parent.marker_state()
        pal = widget.palette() if widget is not None else style.palette()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        w = max(self._w * zoom, 10.0)
        h = max(self._h * zoom, 5.0)
        card = QRectF(-w / 2, -h / 2, w, h)
        if selected:
            ring = card.adjusted(-3.5, -3.5, 3.5, 3.5)
            painter.setPen(QPen(style.highlight_color(pal), SELECTION_PX))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(ring, 3, 3)
        if severity:
            colour = style.ERROR_COLOR if severity == "error" else style.WARNING_COLOR
            centre = QPointF(card.right() + 1, card.top() - 1)
            painter.setPen(QPen(style.canvas_color(pal), 1.2))
            painter.setBrush(colour)
            painter.drawEllipse(centre, 5.5, 5.5)
            painter.setPen(on_colour(colour))
            f = label_font(9, bold=True)
            painter.setFont(f)
            painter.drawText(QRectF(centre.x() - 5.5, centre.y() - 6, 11, 12),
                             Qt.AlignmentFlag.AlignCenter, "!")


# Zoom below which markers are drawn: the card's own halo fits its margin above it.
_MARKER_LOD_LIMIT = 0.45
