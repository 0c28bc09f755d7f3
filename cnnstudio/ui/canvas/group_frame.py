"""The outline around an unfolded group's members (`GroupFrame`), re-exported by
group_item.

A translucent rounded frame, tinted more for each level of nesting, with a title tab
(the name, top left) and a fold button ("−", top right: the incoming edge of a
top-to-bottom block arrives between them). Zoomed out, where the tab's text would be
unreadable, a `FrameTitle` child writes the name beside the frame at a fixed screen size.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QStyleOptionGraphicsItem, QWidget

from cnnstudio.ui.canvas import lod as lod_
from cnnstudio.ui.canvas import style

FRAME_TYPE = QGraphicsItem.UserType + 4

FRAME_MARGIN = 8.0
TAB_HEIGHT = 20.0
_BUTTON = 14.0
_TAB_MAX = 112.0  # the name tab ends left of a top-to-bottom block's incoming edge
_TAB_FONT_POINTS = 7.5
# Below this zoom the tab's name is too small to read: the FrameTitle takes over.
TITLE_LOD = 0.75
_TITLE_PX = (12, 11, 10)  # the zoomed-out title's pixel size by nesting depth


def _flow(item: QGraphicsItem) -> str:
    graph = getattr(getattr(item.scene(), "document", None), "graph", None)
    return getattr(graph, "direction", "down")


_NO_PEN = QPen(Qt.PenStyle.NoPen)


class GroupFrame(QGraphicsRectItem):
    """The outline behind an unfolded group's members, with a title tab (name, fold "−").
    Its pos stays (0, 0): item coordinates are scene coordinates. Its bounding rect is
    the C++ rect item's (`setRect`, no pen): Qt asks for it on every move and paint."""

    def __init__(self, group_id: str, name: str) -> None:
        super().__init__()
        self.setPen(_NO_PEN)
        self.group_id = group_id
        self.name = name
        self.depth = 0
        self.painted_lod = 1.0
        self._inner = QRectF()
        self._frame = QRectF()
        self._bounds = QRectF()
        self.setAcceptHoverEvents(True)
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)
        self.setZValue(-1)
        self.setToolTip(f"{name} — double-click the title or click − to fold")
        self.title = FrameTitle(self)

    def type(self) -> int:  # noqa: A003 - Qt's name
        return FRAME_TYPE

    def set_name(self, name: str) -> None:
        if name != self.name:
            self.name = name
            self.setToolTip(f"{name} — double-click the title or click − to fold")
            self.update()
            self.title.update()

    def set_depth(self, depth: int) -> None:
        """Nesting level (0: outermost). Inner frames are tinted darker and drawn above
        their parent's translucent fill, still behind edges and cards."""
        if depth != self.depth:
            self.depth = depth
            self.setZValue(-1 + min(depth, 50) * 0.01)
            self.update()

    def set_rect(self, rect: QRectF) -> None:
        """Surround the scene rect `rect` (the members' united sceneBoundingRect, nested
        frames' frame_rect included): add a margin, and the tab above."""
        if rect == self._inner and not self._frame.isNull():
            return
        self.prepareGeometryChange()
        self._inner = QRectF(rect)
        m = FRAME_MARGIN
        self._frame = rect.adjusted(-m, -m - TAB_HEIGHT, m, m)
        self._bounds = self._frame.adjusted(-2, -2, 2, 2)
        self.setRect(self._bounds)
        self.title.setPos(self._frame.topLeft())

    def frame_rect(self) -> QRectF:
        return QRectF(self._frame)

    def tab_rect(self) -> QRectF:
        """The name tab at the frame's top left."""
        metrics = QFontMetricsF(style.font(_TAB_FONT_POINTS, bold=True))
        room = self._frame.width() - _BUTTON - 16
        width = min(metrics.horizontalAdvance(self.name) + 16, _TAB_MAX, room)
        return QRectF(self._frame.left(), self._frame.top(), max(width, 0.0), TAB_HEIGHT)

    def button_rect(self) -> QRectF:
        """The fold button ("−") at the frame's top right."""
        return QRectF(self._frame.right() - _BUTTON - 5,
                      self._frame.top() + (TAB_HEIGHT - _BUTTON) / 2, _BUTTON, _BUTTON)

    def fold_button_at(self, scene_pos: QPointF) -> bool:
        return self.button_rect().adjusted(-3, -3, 3, 3).contains(self.mapFromScene(scene_pos))

    def tab_at(self, scene_pos: QPointF) -> bool:
        """On the title tab or the fold button (double-clicking either folds the group)."""
        p = self.mapFromScene(scene_pos)
        return self.tab_rect().contains(p) or self.button_rect().adjusted(-3, -3, 3, 3).contains(p)

    def shape(self) -> QPainterPath:
        # Only the tab and the button take clicks: the inside belongs to the cards.
        path = QPainterPath()
        if not self._frame.isNull():
            path.addRect(self.tab_rect())
            path.addRect(self.button_rect().adjusted(-3, -3, 3, 3))
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        if self._frame.isNull():
            return
        pal = widget.palette() if widget is not None else style.palette()
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        self.painted_lod = lod
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        accent = style.group_accent()
        base = style.canvas_color(pal)
        fill = style.mix(base, accent, 0.08 + 0.05 * min(self.depth, 4))
        fill.setAlphaF(0.7)
        edge = style.mix(accent, style.text_color(pal), 0.2)
        pen = QPen(edge, max(1.3, lod_.device_width(1.2, lod)))
        if self.depth:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(fill)
        painter.drawRoundedRect(self._frame, 10, 10)

        tab_fill = style.mix(base, accent, 0.3 + 0.08 * min(self.depth, 3))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(tab_fill)
        tab = self.tab_rect()
        if lod >= TITLE_LOD:  # zoomed out, the FrameTitle shows the name
            painter.drawRoundedRect(tab, 8, 8)
        button = self.button_rect()
        painter.drawRoundedRect(button.adjusted(-3, -3, 3, 3), 6, 6)
        if lod >= TITLE_LOD:
            painter.setPen(style.text_color(pal))
            painter.setFont(style.font(_TAB_FONT_POINTS, bold=True))
            text_rect = tab.adjusted(8, 0, -6, 0)
            name = QFontMetricsF(painter.font()).elidedText(
                self.name, Qt.TextElideMode.ElideRight, text_rect.width())
            painter.drawText(text_rect,
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        if lod >= 0.3:
            painter.setPen(QPen(style.text_color(pal), max(1.6, lod_.device_width(1.2, lod))))
            painter.setBrush(style.mix(base, accent, 0.12))
            painter.drawRoundedRect(button, 3, 3)
            y = button.center().y()
            painter.drawLine(QPointF(button.left() + 3.5, y), QPointF(button.right() - 3.5, y))


class FrameTitle(QGraphicsRectItem):
    """A zoomed-out frame's name at a fixed screen size, outside its top-left corner:
    left of the frame for a top-to-bottom graph (bottom-aligned with the top of an
    outermost frame, top-aligned for nested ones, so parent and child never collide),
    above it for a left-to-right one. It ignores the view's scale and takes no clicks."""

    _W, _H = 260.0, 18.0  # the largest title in pixels

    def __init__(self, frame: GroupFrame) -> None:
        super().__init__(-self._W - 8, -self._H - 4, 2 * self._W + 16, 2 * self._H + 8, frame)
        self.setPen(_NO_PEN)
        self.frame = frame
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setZValue(0.5)

    def shape(self) -> QPainterPath:
        return QPainterPath()

    def text_rect(self, zoom: float) -> QRectF | None:
        """Where the title goes (pixels from the frame's top-left corner) at `zoom`, or
        None where it is not drawn: zoomed in (the tab shows the name) or when a nested
        frame's title would touch its parent's."""
        depth = self.frame.depth
        if zoom >= TITLE_LOD:
            return None
        h = float(_TITLE_PX[min(depth, len(_TITLE_PX) - 1)]) + 4
        gap = (FRAME_MARGIN + TAB_HEIGHT) * zoom  # between a frame's top and its child's
        frame = self.frame.frame_rect()
        if _flow(self) == "right":
            # Titles side by side: each as wide as its frame (and a little more).
            width = min(self._W, frame.width() * zoom + 30)
            if width < 40:
                return None
            if depth >= 1:  # inside its top-left corner, above the cards' ports
                room = (FRAME_MARGIN + TAB_HEIGHT + style.PORT_RADIUS + 3) * zoom
                return QRectF(4, 0, width - 8, h - 2) if room >= h - 4 else None
            return QRectF(0, -h - 2, width, h)
        # Titles one above the other: a frame lower than its title would let the next
        # frame's title overlap it.
        if frame.height() * zoom < h + 2 or (depth >= 2 and gap < h):
            return None
        return QRectF(-self._W - 6, -h if depth == 0 else 0.0, self._W, h)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        zoom = lod_.view_zoom(widget)
        if zoom is None:
            zoom = self.frame.painted_lod
        rect = self.text_rect(zoom)
        if rect is None or not self.frame.name:
            return
        pal = widget.palette() if widget is not None else style.palette()
        depth = self.frame.depth
        font = lod_.label_font(_TITLE_PX[min(depth, len(_TITLE_PX) - 1)], bold=depth == 0)
        metrics = QFontMetricsF(font)
        name = metrics.elidedText(self.frame.name, Qt.TextElideMode.ElideRight,
                                  rect.width() - 8)
        width = metrics.horizontalAdvance(name) + 8
        right = _flow(self) != "right"
        box = QRectF(rect.right() - width if right else rect.left(), rect.top(), width,
                     rect.height())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        backdrop = QColor(style.canvas_color(pal))
        backdrop.setAlphaF(0.85)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(backdrop)
        painter.drawRoundedRect(box, 4, 4)
        painter.setFont(font)
        painter.setPen(style.text_color(pal) if depth == 0 else style.dim_text_color(pal))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, name)
