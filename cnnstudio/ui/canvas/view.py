"""The graph view: zoom, pan, rubber-band selection, port drags, palette drops, menus.

Ctrl+wheel zooms around the mouse, the plain wheel scrolls, the middle button or
Space+drag pans. Fit (Ctrl+0) shows the whole network, folding as few blocks as keep it
legible (`fitting.py`); an overview map (`overview.py`) and a find bar (`find.py`) help on
big networks. A port drag draws a connection (`connect.py`); other edits: `editing.py`.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView, QMenu, QWidget

from cnnstudio.ui.canvas import editing, lod, style
from cnnstudio.ui.canvas.connect import ConnectionDrag
from cnnstudio.ui.canvas.drops import PaletteDrops
from cnnstudio.ui.canvas.find import FindBar
from cnnstudio.ui.canvas.fitting import choose_folding, fit_zoom, start_centre
from cnnstudio.ui.canvas.menus import build_context_menu
from cnnstudio.ui.canvas.overview import OverviewMap
from cnnstudio.ui.canvas.scene import GraphScene
from cnnstudio.ui.canvas.style import MIN_LEGIBLE_ZOOM
from cnnstudio.ui.document import Document, deferred

# The user's zoom-out limit; Fit goes further when even that cannot show a network whole.
MIN_ZOOM, MAX_ZOOM = 0.02, 4.0
FIT_FLOOR_ZOOM = 0.001
FIT_MAX_ZOOM = 1.5  # a lone node stays node-sized
# The least zoom at which a card shows its type name in full (lod.py's LABEL): ≈ 0.22.
LABEL_ZOOM = 1.01 * lod.LABEL_MIN_PX / (style.NODE_HEIGHT * lod.LABEL_FILL)
# Fit folds blocks rather than show cards too small to carry their name in readable type
# (a coloured block with "BN" on it is seen, not read).
FIT_LEGIBLE_ZOOM = LABEL_ZOOM
ZOOM_STEP = 1.2
START_MAX_ZOOM = 1.0  # a small network (or a blank canvas) opens at actual size


class GraphView(QGraphicsView):
    """The canvas widget (objectName `graphView`) showing one document's graph."""

    message = Signal(str)  # a hint for the status bar ("" clears it)
    node_activated = Signal(str)  # a node was double-clicked

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("graphView")
        self.document = document
        self._scene = GraphScene(document, self)
        self.setScene(self._scene)
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._wire: ConnectionDrag | None = None
        self._pan_from: QPointF | None = None
        self._space = False
        self._paste_round = 0
        self._drops = PaletteDrops(self)
        self._auto_view = False  # True from opening a project until the user navigates
        # Cached: a wheel step must not walk 1,000 items. Dropped on any edit or growth.
        self._content: QRectF | None = None  # what Fit shows
        self.overview = OverviewMap(self)
        self.find_bar = FindBar(self)
        for bar in (self.horizontalScrollBar(), self.verticalScrollBar()):
            bar.actionTriggered.connect(lambda _action: self._user_navigated())  # user only
            bar.valueChanged.connect(lambda _value: self.overview.refresh())
        # Forget at once (Fit right after an edit measures afresh); re-measure, resize the
        # scroll area and redraw the map once per event-loop turn, however many changes
        # one edit made (the scene may also settle its frames a turn later).
        self._settled_timer = deferred(self, self._content_changed)
        for signal in (document.graph_edited, document.graph_reset,
                       self._scene.sceneRectChanged):
            signal.connect(self._settled_timer.start)
        # A parameter edit moves no card or frame: it keeps the measured content (walking
        # 1,000 cards again took ~3 ms of each edit). Every other change forgets it.
        for signal in (document.graph_reset, self._scene.sceneRectChanged,
                       document.node_added, document.node_removed, document.node_moved,
                       document.nodes_moved, document.node_renamed, document.edge_added,
                       document.edge_removed, document.group_added, document.group_removed,
                       document.group_changed):
            signal.connect(self._forget_content)
        # The document announces a new project before the scene has rebuilt: wait a turn.
        self._start_timer = deferred(self, self.show_start, document.project_replaced)
        # Any edit (from the palette or the inspector too) is the user at work: a later
        # resize must not jump the view back to the start view.
        document.graph_edited.connect(self._user_navigated)
        self._update_scene_rect()

    @property
    def graph_scene(self) -> GraphScene:
        return self._scene

    # ---- zoom and navigation ------------------------------------------------------------

    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float, anchor_under_mouse: bool = False,
                 floor: float = MIN_ZOOM) -> None:
        """Zoom to `factor` (clamped to `floor`–4×), around the mouse or the view centre.
        A view Fit took below `floor` may zoom in but not further out."""
        factor = max(min(floor, self.zoom()), min(MAX_ZOOM, factor))
        if math.isclose(factor, self.zoom()):
            return
        old = self.transformationAnchor()
        if not anchor_under_mouse:
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        step = factor / self.zoom()
        self.scale(step, step)
        self.setTransformationAnchor(old)
        self._update_scene_rect()
        self.overview.refresh()

    def zoom_in(self) -> None:
        self._user_navigated()
        self.set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self._user_navigated()
        self.set_zoom(self.zoom() / ZOOM_STEP)

    def reset_zoom(self) -> None:
        self._user_navigated()
        self.set_zoom(1.0)

    def visible_items(self) -> list[QGraphicsItem]:
        """The cards shown now: node items and folded blocks' cards."""
        return self._scene.visible_items()

    def content_rect(self) -> QRectF:
        """What Fit shows: every visible card and block frame (cached between edits)."""
        if self._content is None:
            self._content = QRectF(self._scene.content_rect())
        return QRectF(self._content)

    def visible_scene_rect(self) -> QRectF:
        return self.mapToScene(self.viewport().rect()).boundingRect()

    def _forget_content(self, *_args: object) -> None:
        self._content = None

    def _content_changed(self) -> None:
        """Once per event-loop turn after changes: re-measure what they forgot (see
        __init__), resize the scroll area and redraw the map."""
        self._update_scene_rect()
        self.overview.invalidate()

    def fit_zoom(self, rect: QRectF) -> float:
        """The zoom at which `rect` fills the viewport, less a small margin."""
        return fit_zoom(self.viewport().rect(), rect)

    def fit_all(self, fold: bool = True) -> None:
        """Show the whole network, never magnified beyond FIT_MAX_ZOOM. Below FIT_LEGIBLE_ZOOM
        (and if `fold`) first fold the blocks of the deepest level at which it is legible
        (else of the level that shows it largest, when that is a real gain): one undo
        entry, so Undo brings the expanded view back."""
        self._user_navigated()
        rect = self.content_rect()
        if rect.isEmpty():
            self.reset_zoom()
            return
        if fold and self.fit_zoom(rect) < FIT_LEGIBLE_ZOOM:
            blocks = choose_folding(self.document.graph, self.fit_zoom, FIT_LEGIBLE_ZOOM,
                                    self.fit_zoom(rect))
            if blocks and editing.set_folded(self._scene, blocks, True):
                self._forget_content()
                rect = self.content_rect()
        self.fit_rect(rect)

    def fit_rect(self, rect: QRectF) -> None:
        """Zoom and scroll so `rect` fills the view (never beyond FIT_MAX_ZOOM)."""
        self.set_zoom(min(self.fit_zoom(rect), FIT_MAX_ZOOM), floor=FIT_FLOOR_ZOOM)
        self._update_scene_rect()
        self.centerOn(rect.center())
        self.overview.refresh()

    def show_start(self) -> None:
        """The first view of a project: the whole network at up to 100 % when it is
        legible so (≥ MIN_LEGIBLE_ZOOM); else that least legible zoom, showing the start of
        the flow (the Input: the top, or the left edge when the network runs left to right)
        and as much across it as fits; the overview map shows where that is. Opening never
        folds a block (that would be an edit): Fit does, on request. Until the user zooms,
        scrolls or edits, a resize (the window settling its docks) re-applies this view."""
        self._auto_view = True
        self._forget_content()
        self._content_changed()
        rect = self.content_rect()
        if rect.isEmpty():
            self.set_zoom(1.0)
            return
        rect.adjust(-40, -40, 40, 40)
        fit = self.fit_zoom(rect)
        if fit >= MIN_LEGIBLE_ZOOM:
            self.set_zoom(min(fit, START_MAX_ZOOM))
            self.centerOn(rect.center())
            self.overview.refresh()
            return
        self._show_flow_start(rect, MIN_LEGIBLE_ZOOM)

    def _show_flow_start(self, rect: QRectF, zoom: float) -> None:
        self.set_zoom(zoom)
        self.centerOn(start_centre(rect, self.visible_scene_rect(), self.visible_items(),
                                   self.document.graph.direction == "right"))
        self.overview.refresh()

    def show_laid_out(self) -> None:
        """After a layout (one undo entry, so no folding): the whole network when it is
        legible so, else its start at a zoom where cards show their type names, the
        overview map showing the rest."""
        rect = self.content_rect()
        if rect.isEmpty() or self.fit_zoom(rect) >= FIT_LEGIBLE_ZOOM:
            self.fit_all(fold=False)
        else:
            self._user_navigated()
            self._show_flow_start(rect.adjusted(-40, -40, 40, 40), LABEL_ZOOM)

    def _user_navigated(self) -> None:
        """The user moved the view: a resize must no longer re-apply the start view."""
        self._auto_view = False

    def center_on(self, node_id: str) -> None:
        """Scroll to a node, or to the folded block's card hiding it (nothing unfolds)."""
        graph = self.document.graph
        shown = graph.groups.shown_as(node_id) if node_id in graph else node_id
        item = (self._scene.item_for(node_id) if shown == node_id
                else self._scene.group_item_for(shown))
        if item is not None:
            self._user_navigated()
            self.centerOn(item)

    def center_on_point(self, scene_pos: QPointF) -> None:
        self._user_navigated()
        self._update_scene_rect()  # an unfolded block may reach past the old scroll area
        self.centerOn(scene_pos)
        self.overview.refresh()

    def scroll_to_rect(self, rect: QRectF, margin: int = 16) -> None:
        """Scroll just enough that `rect` is whole on screen."""
        self._user_navigated()
        self._update_scene_rect()
        self.ensureVisible(rect, margin, margin)
        self.overview.refresh()

    def _update_scene_rect(self) -> None:
        """Let the user scroll a viewport's worth past the content on every side (what is
        shown: not the members hidden in folded blocks, which keep their old places)."""
        rect = self.content_rect()
        port = self.visible_scene_rect()
        w, h = port.width() * 0.8, port.height() * 0.8
        self.setSceneRect(rect.adjusted(-w, -h, w, h))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_scene_rect()
        self.overview.refresh()
        if self.find_bar.isVisible():
            self.find_bar.place()
        if self._auto_view:  # the window is still settling: show the start view again
            self._start_timer.start()

    def wheelEvent(self, event: QWheelEvent) -> None:
        self._user_navigated()
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() / 120.0
            if steps:
                self.set_zoom(self.zoom() * ZOOM_STEP ** steps, anchor_under_mouse=True)
            event.accept()
            return
        super().wheelEvent(event)

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        style.paint_canvas(painter, rect, self.zoom(), self.palette())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:  # light ↔ dark: re-render the caches
            self.resetCachedContent()
            for item in self._scene.items():
                item.update()
        super().changeEvent(event)

    # ---- selection and edits ------------------------------------------------------------

    def select_all(self) -> None:
        self._scene.select_nodes(self.document.graph.ids)

    def delete_selection(self) -> None:
        """Delete the selected nodes and disconnect the selected edges (one undo entry)."""
        editing.delete(self._scene, self._scene.selected_node_ids(),
                       self._scene.selected_edges())

    def copy_selection(self) -> None:
        if editing.copy_to_clipboard(self._scene, self._scene.selected_node_ids()):
            self._paste_round = 0

    def paste(self) -> list[str]:
        """Paste the clipboard's nodes, each paste a step further down-right; select them."""
        data = editing.clipboard_nodes()
        if data is None:
            return []
        self._paste_round += 1
        offset = 40.0 * self._paste_round
        new = editing.paste(self._scene, data, (offset, offset))
        if new:
            self._scene.select_nodes(new)
        return new

    def duplicate_selection(self) -> list[str]:
        new = editing.duplicate(self._scene, self._scene.selected_node_ids())
        if new:
            self._scene.select_nodes(new)
        return new

    def auto_layout(self) -> None:
        """Auto layout, shown once it is applied (a big network's arrives from a worker)."""
        editing.lay_out(self._scene, done=self.show_laid_out)

    def set_direction(self, direction: str) -> bool:
        """Lay the network out top to bottom ("down") or left to right ("right"), as one
        undo entry (a big network's when it arrives); False when it already flows that way."""
        return editing.lay_out(self._scene, direction, done=self.show_laid_out)

    # ---- mouse: ports, panning, moves ---------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._user_navigated()
        pos = event.position()
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and self._space):
            self._pan_from = pos
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton and self._wire is None:
            scene_pos = self.mapToScene(pos.toPoint())
            node = self._scene.node_at(scene_pos)
            port = node.port_at(scene_pos) if node is not None else None
            if node is not None and port is not None:
                self._wire = ConnectionDrag(self, node, port, scene_pos)
                event.accept()
                return
        extended = _shift_as_ctrl(event)
        super().mousePressEvent(extended)
        event.setAccepted(extended.isAccepted())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            bar_x, bar_y = self.horizontalScrollBar(), self.verticalScrollBar()
            bar_x.setValue(bar_x.value() - round(delta.x()))
            bar_y.setValue(bar_y.value() - round(delta.y()))
            event.accept()
            return
        if self._wire is not None:
            self._wire.move(self.mapToScene(pos.toPoint()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton,
                                                             Qt.MouseButton.LeftButton):
            self._pan_from = None
            self._set_space_cursor()
            event.accept()
            return
        if self._wire is not None and event.button() == Qt.MouseButton.LeftButton:
            wire, self._wire = self._wire, None
            wire.finish(self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        extended = _shift_as_ctrl(event)
        super().mouseReleaseEvent(extended)
        event.setAccepted(extended.isAccepted())
        self._update_scene_rect()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._scene.activate_at(self.mapToScene(event.position().toPoint())):
            event.accept()  # a folded card unfolded, or a frame's tab folded its block
            return
        node = self._scene.node_at(self.mapToScene(event.position().toPoint()))
        if node is not None:
            self.node_activated.emit(node.node_id)
        event.accept()  # empty canvas: nothing (a quick-add may come later)

    # ---- keys ---------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        self._user_navigated()
        key = event.key()
        if key == Qt.Key.Key_Escape and self._wire is not None:
            self._wire.cancel()
            self._wire = None
        elif key == Qt.Key.Key_Escape and self.find_bar.isVisible():
            self.find_bar.close_bar()
        elif key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self._set_space_cursor()
        elif key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_selection()
        # Reached only when no window shortcut took the key (e.g. the canvas on its own).
        elif event.matches(QKeySequence.StandardKey.SelectAll):
            self.select_all()
        elif event.matches(QKeySequence.StandardKey.Copy):
            self.copy_selection()
        elif event.matches(QKeySequence.StandardKey.Paste):
            self.paste()
        elif event.matches(QKeySequence.StandardKey.ZoomIn):
            self.zoom_in()
        elif event.matches(QKeySequence.StandardKey.ZoomOut):
            self.zoom_out()
        elif event.matches(QKeySequence.StandardKey.Find):
            self.find_bar.open()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._set_space_cursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self._space = False  # the Space release may go to another widget
        self._set_space_cursor()
        super().focusOutEvent(event)

    def _set_space_cursor(self) -> None:
        if self._space:
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            self.viewport().unsetCursor()

    # ---- drops from the palette (drops.py) --------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        self._drops.enter(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        self._drops.move(event)

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._drops.leave(event)

    def dropEvent(self, event: QDropEvent) -> None:
        self._drops.drop(event)

    # ---- context menus ------------------------------------------------------------------

    def context_menu(self, scene_pos: QPointF) -> QMenu:
        """The menu for whatever is at `scene_pos` (built, not shown: tests trigger it)."""
        return build_context_menu(self, scene_pos)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = self.context_menu(self.mapToScene(event.pos()))
        menu.exec(event.globalPos())
        menu.deleteLater()
        event.accept()


def _shift_as_ctrl(event: QMouseEvent) -> QMouseEvent:
    """Qt extends a selection with Ctrl only; let Shift do the same, as users expect."""
    mods = event.modifiers()
    if not mods & Qt.KeyboardModifier.ShiftModifier:
        return event
    return QMouseEvent(event.type(), event.position(), event.scenePosition(),
                       event.globalPosition(), event.button(), event.buttons(),
                       mods | Qt.KeyboardModifier.ControlModifier)
