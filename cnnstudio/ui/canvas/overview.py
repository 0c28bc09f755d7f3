"""The overview map: the whole network in miniature in a corner of the canvas.

Every visible card is a small rectangle in its category colour (a folded block in the
group colour, selected cards in the highlight colour) and the part of the network on screen
is outlined; clicking or dragging in the map moves the view there. The cards are drawn
once into a pixmap when positions, the folds or the selection change, REDRAW_MS after the
turn that changed them (in a turn of the event loop of its own, not the one that folded a
block and repainted the canvas: each stays under 50 ms on a 1,000-node graph); a parameter
edit does not redraw it; scrolling and zooming repaint only the outline over that pixmap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, QSize, QSizeF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from cnnstudio.ui.canvas import style
from cnnstudio.ui.canvas.items import NodeItem
from cnnstudio.ui.document import deferred

if TYPE_CHECKING:
    from cnnstudio.ui.canvas.view import GraphView

MAP_SIZE = QSize(200, 150)
MARGIN = 10  # from the canvas's corner
INSET = 6.0  # from the map's border to the drawing
MIN_SIDE = 56.0  # the map's narrowest side
MIN_OUTLINE = 8.0  # the visible region's outline, however far the view is zoomed in
REDRAW_MS = 60  # after the turn of a change: past the canvas's repaint and late routes


def map_size(content: QRectF, port: QSize) -> QSize:
    """The map's size: the content's shape within MAP_SIZE (and within a third of a small
    canvas), so a long column gets a narrow map rather than a wide empty one."""
    room_w = min(MAP_SIZE.width(), port.width() * 0.3)
    room_h = min(MAP_SIZE.height(), port.height() * 0.4)
    aspect = content.width() / max(content.height(), 1.0)
    inner_w, inner_h = room_w - 2 * INSET, room_h - 2 * INSET
    if inner_w / max(aspect, 1e-6) > inner_h:
        inner_w = inner_h * aspect
    else:
        inner_h = inner_w / max(aspect, 1e-6)
    side = MIN_SIDE - 2 * INSET
    return QSize(round(max(inner_w, side) + 2 * INSET), round(max(inner_h, side) + 2 * INSET))


class OverviewMap(QWidget):
    """The map (objectName `overviewMap`), shown while the network does not fit the view
    and the user has not switched it off (View ▸ Overview Map)."""

    def __init__(self, view: GraphView) -> None:
        # A child of the view, not of its viewport: the viewport's children scroll with it.
        super().__init__(view)
        self.setObjectName("overviewMap")
        self.setToolTip("Overview: click or drag to move the view")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.resize(MAP_SIZE)
        self._view = view
        self._enabled = True
        self._pixmap: QPixmap | None = None
        self._world = QRectF()  # the scene rect the map shows
        self._scale = 1.0
        self._stale = False  # the pixmap shows the cards as they were
        self._redraw_timer = deferred(self, self._redraw, ms=REDRAW_MS)
        # Armed at the end of the turn that changed the cards, so the REDRAW_MS count
        # starts after that turn's own work (a fold's 40 ms would else use it all up).
        self._arm_timer = deferred(self, self._redraw_timer.start)
        doc = view.document
        # Only what moves, shows, hides or colours a card; not parameter or edge edits.
        for signal in (doc.node_added, doc.node_removed, doc.node_moved, doc.nodes_moved,
                       doc.group_added, doc.group_removed, doc.group_changed,
                       doc.graph_reset, doc.selection_changed):
            signal.connect(self._cards_changed)
        self._drawn_content = QRectF()  # the view's content rect the pixmap was drawn for
        self.hide()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        """Switch the map on (shown whenever the network does not fit) or off."""
        self._enabled = enabled
        self.refresh()

    # ---- keeping up with the view -------------------------------------------------------

    def invalidate(self) -> None:
        """The view's content may have changed: redraw the pixmap (see `_cards_changed`)
        if its extent did; a parameter edit leaves it, and the map, as they were."""
        if self._stale or self._view.content_rect() != self._drawn_content:
            self._cards_changed()

    def _cards_changed(self, *_changed: object) -> None:
        """Cards moved, showed, hid or changed colour: redraw the pixmap REDRAW_MS after
        this turn (the old one shows till then)."""
        self._stale = True
        if not self._redraw_timer.isActive():
            self._arm_timer.start()

    def _redraw(self) -> None:
        self.refresh()
        if self._stale and self.isVisible():
            self._pixmap = self._render_cards()
        self.update()

    def refresh(self) -> None:
        """Show or hide the map for the current view and move it to its corner; repaint
        the outline of the visible region (the view scrolled or zoomed)."""
        view = self._view
        content = view.content_rect()
        wanted = self._enabled and not content.isEmpty() and not (
            view.visible_scene_rect().contains(content))
        if wanted:
            port = view.viewport().geometry()
            size = map_size(content, port.size())
            if size != self.size():
                self.resize(size)
                self._pixmap = None
            self.move(port.right() - self.width() - MARGIN + 1,
                      port.bottom() - self.height() - MARGIN + 1)
            if self.isHidden():
                self.show()
                self.raise_()
            self.update()
        elif not self.isHidden():
            self.hide()

    # ---- coordinates --------------------------------------------------------------------

    def _layout(self) -> None:
        world = self._view.content_rect()
        room = QRectF(self.rect()).adjusted(INSET, INSET, -INSET, -INSET)
        if world.isEmpty():
            self._world, self._scale = QRectF(), 1.0
            return
        self._scale = min(room.width() / world.width(), room.height() / world.height())
        # Centre the drawing: grow the world to the map's aspect ratio.
        w, h = room.width() / self._scale, room.height() / self._scale
        centre = world.center()
        self._world = QRectF(centre.x() - w / 2, centre.y() - h / 2, w, h)

    def to_map(self, rect: QRectF) -> QRectF:
        s = self._scale
        return QRectF(INSET + (rect.x() - self._world.x()) * s,
                      INSET + (rect.y() - self._world.y()) * s,
                      rect.width() * s, rect.height() * s)

    def to_scene(self, point: QPointF) -> QPointF:
        s = self._scale or 1.0
        return QPointF(self._world.x() + (point.x() - INSET) / s,
                       self._world.y() + (point.y() - INSET) / s)

    # ---- painting -----------------------------------------------------------------------

    def _render_cards(self) -> QPixmap:
        self._stale = False
        self._drawn_content = self._view.content_rect()
        self._layout()
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap(self.size() * ratio)
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        pal = self.palette()
        by_color: dict[str, list[QRectF]] = {}
        selected: list[QRectF] = []
        scale, left, top = self._scale, INSET - self._world.x() * self._scale, \
            INSET - self._world.y() * self._scale
        # Every card of a class has the same bounds and none is scaled or rotated: its
        # position places it (sceneBoundingRect, through Python's boundingRect, cost 5 ms
        # for 1,000 cards).
        bounds: dict[type, tuple[float, float, float, float]] = {}
        for item in self._view.visible_items():
            box = bounds.get(type(item))
            if box is None:
                local = item.boundingRect()
                box = bounds[type(item)] = (local.x(), local.y(), local.width(),
                                            local.height())
            x, y = left + (item.x() + box[0]) * scale, top + (item.y() + box[1]) * scale
            w, h = box[2] * scale, box[3] * scale
            if w < 1.5:  # still a visible dot when the network is huge
                x, w = x - 0.75, w + 1.5
            if h < 1.5:
                y, h = y - 0.75, h + 1.5
            rect = QRectF(x, y, w, h)
            if item.isSelected():
                selected.append(rect)
            elif isinstance(item, NodeItem):
                by_color.setdefault(style.CATEGORY_COLORS.get(item.category, "#7f7f7f"),
                                    []).append(rect)
            else:
                by_color.setdefault(style.GROUP_COLOR, []).append(rect)
        painter = QPainter(pixmap)
        painter.setPen(Qt.PenStyle.NoPen)
        for color, rects in by_color.items():
            painter.setBrush(QColor(color))
            painter.drawRects(rects)
        painter.setBrush(style.highlight_color(pal))
        painter.drawRects(selected)
        painter.end()
        return pixmap

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._pixmap is None or self._pixmap.size() != self.size() * self.devicePixelRatioF():
            self._pixmap = self._render_cards()
        pal = self.palette()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        back = style.canvas_color(pal)
        back.setAlpha(225)
        painter.setBrush(back)
        painter.setPen(QPen(style.edge_color(pal), 1.0))
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 5, 5)
        painter.drawPixmap(0, 0, self._pixmap)
        shown = self.to_map(self._view.visible_scene_rect())
        if shown.width() < MIN_OUTLINE or shown.height() < MIN_OUTLINE:  # still findable
            centre = shown.center()
            shown.setSize(shown.size().expandedTo(QSizeF(MIN_OUTLINE, MIN_OUTLINE)))
            shown.moveCenter(centre)
        shown = shown.intersected(QRectF(self.rect()).adjusted(1, 1, -1, -1))
        frame = style.highlight_color(pal)
        fill = QColor(frame)
        fill.setAlpha(40)
        painter.setBrush(fill)
        painter.setPen(QPen(frame, 1.5))
        painter.drawRect(shown)
        painter.end()

    # ---- moving the view ----------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._move_view(event.position())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._move_view(event.position())
        event.accept()

    def _move_view(self, point: QPointF) -> None:
        if self._pixmap is None:
            self._layout()
        self._view.center_on_point(self.to_scene(point))
