"""Context menus of the canvas: on a node, on an edge, on the empty canvas."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QMenu

from cnnstudio.ui.canvas import editing

if TYPE_CHECKING:
    from cnnstudio.ui.canvas.view import GraphView


def build_context_menu(view: GraphView, scene_pos: QPointF) -> QMenu:
    """The menu for what is under `scene_pos`; a node under it becomes the selection
    (unless it is part of it already, so a group can be acted on)."""
    scene = view.graph_scene
    menu = QMenu(view)
    node = scene.node_at(scene_pos)
    edge = scene.edge_at(scene_pos) if node is None else None
    if node is not None:
        if not node.isSelected():
            scene.select_nodes([node.node_id])
        node_id = node.node_id
        menu.addAction("Delete", view.delete_selection)
        menu.addAction("Duplicate", view.duplicate_selection)
        action = menu.addAction("Disconnect inputs",
                                lambda: editing.disconnect_inputs(scene, node_id))
        action.setEnabled(bool(scene.edges_into(node_id)))
    elif edge is not None:
        key = edge.key

        def delete_connection() -> None:
            editing.delete(scene, [], [e for e in scene.edge_items() if e.key == key])

        menu.addAction("Delete connection", delete_connection)
    else:
        menu.addAction("Paste", view.paste).setEnabled(editing.clipboard_nodes() is not None)
        menu.addAction("Select all", view.select_all)
        menu.addAction("Auto layout", view.auto_layout)
        menu.addAction("Fit all", view.fit_all)
    return menu
