"""Drops from the palette onto the canvas: a layer (on an edge: inserted into it) or a block.

The view hands its drag-and-drop events here; each drop is one undo entry (see
`editing.drop_layer` and `editing.drop_block`) and the new cards are selected and scrolled
into sight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDragMoveEvent, QDropEvent

from cnnstudio.ui.canvas import editing
from cnnstudio.ui.canvas.edges import EdgeItem
from cnnstudio.ui.mime import MIME_BLOCK, MIME_LAYER

if TYPE_CHECKING:
    from cnnstudio.ui.canvas.view import GraphView


class PaletteDrops:
    """Accepts the palette's layers and blocks on one view; highlights the edge a layer
    would be inserted into while it hovers."""

    def __init__(self, view: GraphView) -> None:
        self.view = view
        self.drop_edge: EdgeItem | None = None

    @staticmethod
    def accepts(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> bool:
        mime = event.mimeData()
        return mime.hasFormat(MIME_LAYER) or mime.hasFormat(MIME_BLOCK)

    def enter(self, event: QDragEnterEvent) -> None:
        if self.accepts(event):
            event.acceptProposedAction()
        else:  # project files and anything else belong to the main window
            event.ignore()

    def move(self, event: QDragMoveEvent) -> None:
        if not self.accepts(event):
            event.ignore()
            return
        event.acceptProposedAction()
        edge = None
        if event.mimeData().hasFormat(MIME_LAYER):
            edge = self.view.graph_scene.edge_at(
                self.view.mapToScene(event.position().toPoint()))
        self._highlight(edge)

    def leave(self, event: QDragLeaveEvent) -> None:
        self._highlight(None)
        event.accept()

    def _highlight(self, edge: EdgeItem | None) -> None:
        if self.drop_edge is not None and self.drop_edge is not edge:
            self.drop_edge.set_highlighted(False)
        self.drop_edge = edge
        if edge is not None:
            edge.set_highlighted(True)

    def drop(self, event: QDropEvent) -> None:
        self._highlight(None)
        if not self.accepts(event):
            event.ignore()
            return
        view, scene = self.view, self.view.graph_scene
        mime = event.mimeData()
        scene_pos = view.mapToScene(event.position().toPoint())
        if mime.hasFormat(MIME_LAYER):
            name = bytes(mime.data(MIME_LAYER).data()).decode("utf-8", "replace").strip()
            new = editing.drop_layer(scene, name, scene_pos)
            if new:
                scene.select_nodes([new])
                self._scroll_to([new])
        else:
            name = bytes(mime.data(MIME_BLOCK).data()).decode("utf-8", "replace").strip()
            ids = editing.drop_block(scene, name)
            if ids:
                scene.select_nodes(ids)
                self._scroll_to(ids)
            else:
                view.message.emit("Add an Input layer first: a block goes after a layer")
        event.acceptProposedAction()
        view.setFocus()

    def _scroll_to(self, node_ids: list[str]) -> None:
        """Scroll just enough that the new cards are whole on screen (a card dropped at
        the edge of the view would otherwise hang half outside it)."""
        scene = self.view.graph_scene
        rect = QRectF()
        for nid in node_ids:
            item = scene.item_for(nid)
            if item is not None:
                rect = rect.united(item.sceneBoundingRect())
        if not rect.isEmpty():
            self.view.scroll_to_rect(rect)
