"""Context menus of the canvas: on a node, on a folded block's card, on a block's frame
title, on an edge, on the empty canvas."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMenu, QMessageBox, QWidget

from cnnstudio.core.errors import GraphError
from cnnstudio.ui.canvas import editing
from cnnstudio.ui.commands import set_trainable

if TYPE_CHECKING:
    from cnnstudio.ui.canvas.scene import GraphScene
    from cnnstudio.ui.canvas.view import GraphView


def rename_block(parent: QWidget, scene: GraphScene, group_id: str) -> bool:
    """Ask for a block's new name and rename it (one undo entry); False if cancelled or
    unchanged. A name that cannot be one is explained and nothing changes."""
    groups = scene.document.graph.groups
    if group_id not in groups:
        return False
    name, ok = QInputDialog.getText(parent, "Rename Block", "Block name:",
                                    QLineEdit.EchoMode.Normal, groups.get(group_id).name)
    if not ok:
        return False
    try:
        return editing.rename(scene, group_id, name)
    except GraphError as err:
        QMessageBox.warning(parent, "Rename Block", f"Cannot rename the block: {err.message}.")
        return False


def _add_block_actions(menu: QMenu, view: GraphView, group_id: str, folded: bool) -> None:
    scene = view.graph_scene
    if folded:
        menu.addAction("Unfold block", lambda: editing.set_folded(scene, [group_id], False))
    else:
        menu.addAction("Fold block", lambda: editing.set_folded(scene, [group_id], True))
    menu.addAction("Rename block…", lambda: rename_block(view, scene, group_id))
    menu.addAction("Ungroup", lambda: editing.ungroup(scene, group_id))


def add_freeze_actions(menu: QMenu, scene: GraphScene, node_ids: list[str], here: str) -> None:
    """Freeze / Unfreeze `node_ids` (each enabled when it would change something) and
    "Freeze up to here": them and every layer they depend on. `here` names them in the
    undo entry. Each is one undo entry."""
    doc = scene.document
    flags = [doc.graph.node(nid).trainable for nid in node_ids]
    menu.addAction("Freeze", lambda: set_trainable(doc, node_ids, False)).setEnabled(any(flags))
    menu.addAction("Unfreeze", lambda: set_trainable(doc, node_ids, True)).setEnabled(
        not all(flags))
    menu.addAction("Freeze up to here", lambda: set_trainable(
        doc, node_ids, False, up_to=True, label=f"Freeze up to {here}"))


def build_context_menu(view: GraphView, scene_pos: QPointF) -> QMenu:
    """The menu for what is under `scene_pos`; a node or card under it becomes the
    selection (unless it is part of it already, so a group can be acted on)."""
    scene = view.graph_scene
    menu = QMenu(view)
    card = scene.card_at(scene_pos)
    node = scene.node_at(scene_pos) if card is None else None
    frame = scene.frame_at(scene_pos) if card is None and node is None else None
    edge = scene.edge_at(scene_pos) if card is None and node is None and frame is None \
        else None
    if card is not None:
        if not card.isSelected():
            scene.select_nodes(scene.document.graph.groups.nodes(card.group_id))
        _add_block_actions(menu, view, card.group_id, folded=True)
        menu.addSeparator()
        add_freeze_actions(menu, scene, scene.document.graph.groups.nodes(card.group_id),
                           scene.document.graph.groups.get(card.group_id).name)
        menu.addSeparator()
        menu.addAction("Group", lambda: editing.group_selection(scene))
        menu.addAction("Delete", view.delete_selection)
        menu.addAction("Duplicate", view.duplicate_selection)
    elif node is not None:
        if not node.isSelected():
            scene.select_nodes([node.node_id])
        node_id = node.node_id
        menu.addAction("Delete", view.delete_selection)
        menu.addAction("Duplicate", view.duplicate_selection)
        action = menu.addAction("Disconnect inputs",
                                lambda: editing.disconnect_inputs(scene, node_id))
        action.setEnabled(bool(scene.edges_into(node_id)))
        menu.addSeparator()
        add_freeze_actions(menu, scene, scene.document.selection or [node_id], node_id)
        explain = view.window().findChild(QAction, "actionExplain")
        if explain is not None:  # the window's Explain Layer: this layer, in the Explain dock
            explain.setData(node_id)  # the clicked one, also within a multi-selection
            menu.addSeparator()
            menu.addAction(explain)
        menu.addSeparator()
        menu.addAction("Group", lambda: editing.group_selection(scene))
        group_id = scene.document.graph.node(node_id).group
        if group_id in scene.document.graph.groups:
            _add_block_actions(menu, view, group_id, folded=False)
    elif frame is not None:
        _add_block_actions(menu, view, frame.group_id, folded=False)
        menu.addSeparator()
        add_freeze_actions(menu, scene, scene.document.graph.groups.nodes(frame.group_id),
                           scene.document.graph.groups.get(frame.group_id).name)
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
        menu.addAction("Group automatically", lambda: editing.auto_group(scene))
    return menu
