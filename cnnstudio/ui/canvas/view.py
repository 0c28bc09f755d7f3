"""The graph view: zoom, pan, rubber-band selection, port drags, palette drops, menus.

Ctrl+wheel zooms around the mouse, the plain wheel scrolls, the middle button or
Space+drag pans. Dragging from a port draws a connection (see `connect.py`); every
other edit goes through `editing.py`, one undo entry each.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsView, QMenu, QWidget

from cnnstudio.core.layout import auto_layout as layout_graph
from cnnstudio.ui.canvas import editing, style
from cnnstudio.ui.canvas.connect import ConnectionDrag
from cnnstudio.ui.canvas.edges import EdgeItem
from cnnstudio.ui.canvas.menus import build_context_menu
from cnnstudio.ui.canvas.scene import GraphScene
from cnnstudio.ui.commands import push_snapshot
from cnnstudio.ui.document import Document, deferred
from cnnstudio.ui.mime import MIME_BLOCK, MIME_LAYER

MIN_ZOOM, MAX_ZOOM = 0.1, 4.0
ZOOM_STEP = 1.2
# Below this zoom a card's 8.5 pt title is under ~8 px high: no longer comfortably read.
MIN_LEGIBLE_ZOOM = 0.7
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
        self._drop_edge: EdgeItem | None = None
        self._auto_view = False  # True from opening a project until the user navigates
        for bar in (self.horizontalScrollBar(), self.verticalScrollBar()):
            bar.actionTriggered.connect(lambda _action: self._user_navigated())  # user only
        self._scene.sceneRectChanged.connect(self._update_scene_rect)
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

    def set_zoom(self, factor: float, anchor_under_mouse: bool = False) -> None:
        """Zoom to `factor` (clamped to 0.1–4×), around the mouse or the view centre."""
        factor = max(MIN_ZOOM, min(MAX_ZOOM, factor))
        if math.isclose(factor, self.zoom()):
            return
        old = self.transformationAnchor()
        if not anchor_under_mouse:
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        step = factor / self.zoom()
        self.scale(step, step)
        self.setTransformationAnchor(old)
        self._update_scene_rect()

    def zoom_in(self) -> None:
        self._user_navigated()
        self.set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self._user_navigated()
        self.set_zoom(self.zoom() / ZOOM_STEP)

    def reset_zoom(self) -> None:
        self._user_navigated()
        self.set_zoom(1.0)

    def _content_rect(self) -> QRectF:
        rect = QRectF()
        for item in self._scene.node_items():
            rect = rect.united(item.sceneBoundingRect())
        return rect.adjusted(-40, -40, 40, 40)

    def fit_all(self) -> None:
        """Show every node (never magnified beyond 1.5×: a lone node stays node-sized)."""
        self._user_navigated()
        rect = self._content_rect()
        if rect.isEmpty():
            self.reset_zoom()
            return
        self._update_scene_rect()
        port = self.viewport().rect()
        factor = min(port.width() / rect.width(), port.height() / rect.height())
        self.set_zoom(min(factor, 1.5))
        self.centerOn(rect.center())

    def show_start(self) -> None:
        """The first view of a project: the whole network at up to 100 % when it is
        legible so (≥ MIN_LEGIBLE_ZOOM); else that least legible zoom, showing the top (the
        Input) and as much of the width as fits. Until the user zooms, scrolls or edits,
        a resize (the window settling its docks) re-applies this view."""
        self._auto_view = True
        rect = self._content_rect()
        if rect.isEmpty():
            self.set_zoom(1.0)
            return
        port = self.viewport().rect()
        fit = min(port.width() / rect.width(), port.height() / rect.height())
        if fit >= MIN_LEGIBLE_ZOOM:
            self.set_zoom(min(fit, START_MAX_ZOOM))
            self.centerOn(rect.center())
            return
        self.set_zoom(MIN_LEGIBLE_ZOOM)
        visible = self.mapToScene(port).boundingRect()
        x = rect.center().x()
        if rect.width() > visible.width():  # too wide as well: keep the Input in sight
            top = min(self._scene.node_items(), key=lambda item: item.sceneBoundingRect().top())
            x = min(max(top.sceneBoundingRect().center().x(),
                        rect.left() + visible.width() / 2), rect.right() - visible.width() / 2)
        self.centerOn(QPointF(x, rect.top() + visible.height() / 2))

    def _user_navigated(self) -> None:
        """The user moved the view: a resize must no longer re-apply the start view."""
        self._auto_view = False

    def center_on(self, node_id: str) -> None:
        item = self._scene.item_for(node_id)
        if item is not None:
            self._user_navigated()
            self.centerOn(item)

    def _update_scene_rect(self) -> None:
        """Let the user scroll a viewport's worth past the content on every side."""
        rect = self._scene.itemsBoundingRect()
        port = self.mapToScene(self.viewport().rect()).boundingRect()
        w, h = port.width() * 0.8, port.height() * 0.8
        self.setSceneRect(rect.adjusted(-w, -h, w, h))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_scene_rect()
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
        if len(self.document.graph):
            push_snapshot(self.document, "Auto layout", layout_graph)
        self.fit_all()

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

    # ---- drops from the palette ---------------------------------------------------------

    def _accepts(self, event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> bool:
        mime = event.mimeData()
        return mime.hasFormat(MIME_LAYER) or mime.hasFormat(MIME_BLOCK)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._accepts(event):
            event.acceptProposedAction()
        else:  # project files and anything else belong to the main window
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if not self._accepts(event):
            event.ignore()
            return
        event.acceptProposedAction()
        edge = None
        if event.mimeData().hasFormat(MIME_LAYER):
            edge = self._scene.edge_at(self.mapToScene(event.position().toPoint()))
        self._highlight_drop_edge(edge)

    def dragLeaveEvent(self, event) -> None:
        self._highlight_drop_edge(None)
        event.accept()

    def _highlight_drop_edge(self, edge: EdgeItem | None) -> None:
        if self._drop_edge is not None and self._drop_edge is not edge:
            self._drop_edge.set_highlighted(False)
        self._drop_edge = edge
        if edge is not None:
            edge.set_highlighted(True)

    def dropEvent(self, event: QDropEvent) -> None:
        self._highlight_drop_edge(None)
        if not self._accepts(event):
            event.ignore()
            return
        mime = event.mimeData()
        scene_pos = self.mapToScene(event.position().toPoint())
        if mime.hasFormat(MIME_LAYER):
            name = bytes(mime.data(MIME_LAYER).data()).decode("utf-8").strip()
            new = editing.drop_layer(self._scene, name, scene_pos)
            if new:
                self._scene.select_nodes([new])
                self._reveal([new])
        else:
            name = bytes(mime.data(MIME_BLOCK).data()).decode("utf-8").strip()
            ids = editing.drop_block(self._scene, name)
            if ids:
                self._scene.select_nodes(ids)
                self._reveal(ids)
            else:
                self.message.emit("Add an Input layer first: a block goes after a layer")
        event.acceptProposedAction()
        self.setFocus()

    def _reveal(self, node_ids: list[str]) -> None:
        """Scroll just enough that the new cards are whole on screen (a card dropped at
        the edge of the view would otherwise hang half outside it)."""
        self._user_navigated()
        self._update_scene_rect()
        rect = QRectF()
        for nid in node_ids:
            item = self._scene.item_for(nid)
            if item is not None:
                rect = rect.united(item.sceneBoundingRect())
        if not rect.isEmpty():
            self.ensureVisible(rect, 16, 16)

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
