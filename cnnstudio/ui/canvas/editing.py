"""Canvas edits as commands: delete, clipboard, duplicate, drops from the palette.

Each function pushes exactly one undo entry (a command, a macro or a snapshot) or
nothing at all, and returns what the view needs to select afterwards.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QMimeData, QPointF, QStringListModel
from PySide6.QtWidgets import QApplication

from cnnstudio.core import registry
from cnnstudio.core.blocks import BLOCKS
from cnnstudio.core.edits import copy_nodes, duplicate_nodes, insert_block, paste_nodes
from cnnstudio.core.errors import FormatError, GraphError
from cnnstudio.ui.canvas.edges import EdgeItem
from cnnstudio.ui.canvas.scene import GraphScene
from cnnstudio.ui.commands import (
    AddNodeCommand,
    ConnectCommand,
    DisconnectCommand,
    RemoveNodesCommand,
    push_snapshot,
)
from cnnstudio.ui.mime import MIME_NODES


def delete(scene: GraphScene, node_ids: list[str], edges: list[EdgeItem]) -> bool:
    """Remove nodes and disconnect edges in one undo entry; False if nothing to do."""
    doc = scene.document
    gone = set(node_ids)
    cuts = sorted({e.key for e in edges if e.source not in gone and e.target not in gone},
                  key=lambda key: (key[1], -key[2]))  # per target, highest index first
    if not node_ids and not cuts:
        return False
    stack = doc.undo_stack
    single = len(cuts) + (1 if node_ids else 0) == 1
    if not single:
        stack.beginMacro("Delete")
    for source, target, index in cuts:
        stack.push(DisconnectCommand(doc, source, target, index))
    if node_ids:
        stack.push(RemoveNodesCommand(doc, node_ids))
    if not single:
        stack.endMacro()
    return True


def disconnect_inputs(scene: GraphScene, node_id: str) -> None:
    """Cut every input of a node (one undo entry)."""
    delete(scene, [], scene.edges_into(node_id))


def copy_to_clipboard(scene: GraphScene, node_ids: list[str]) -> dict[str, Any] | None:
    """Put the nodes on the clipboard (MIME_NODES and the same JSON as text)."""
    if not node_ids:
        return None
    data = copy_nodes(scene.document.graph, node_ids)
    for node in data["nodes"]:  # nodes shown at a computed place paste where they were seen
        item = scene.item_for(node["id"])
        if "pos" not in node and item is not None:
            node["pos"] = [item.x(), item.y()]
    text = json.dumps(data, indent=1)
    mime = _qt_made_mime_data()
    mime.setData(MIME_NODES, text.encode("utf-8"))
    mime.setText(text)
    QApplication.clipboard().setMimeData(mime)
    return data


def _qt_made_mime_data() -> QMimeData:
    """An empty QMimeData that Qt allocated, for handing to the clipboard.

    `QMimeData()` called from Python makes a shiboken wrapper subclass whose destructor
    calls back into Python. The clipboard takes ownership, and on platforms with Qt's
    generic clipboard (offscreen, minimal) keeps it in a process-wide static that the C
    runtime destroys after Python has shut down: that destructor then segfaults at exit.
    A QMimeData that Qt's C++ made is a plain QMimeData, so Qt may delete it whenever.
    Clearing the clipboard at exit instead would also drop what X11/Windows hand over to
    a clipboard manager, so the user's copy would vanish when the app closes.
    """
    model = QStringListModel([""])
    mime = model.mimeData([model.index(0)])  # C++ `new QMimeData`, not owned by Python
    for fmt in mime.formats():  # drop the model's own item payload
        mime.removeFormat(fmt)
    return mime


def clipboard_nodes() -> dict[str, Any] | None:
    """The node group on the clipboard (ours, or JSON text of that form), else None."""
    mime = QApplication.clipboard().mimeData()
    if mime is None:
        return None
    if mime.hasFormat(MIME_NODES):
        raw = bytes(mime.data(MIME_NODES).data()).decode("utf-8", "replace")
    elif mime.hasText():
        raw = mime.text()
    else:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # any text can be on the clipboard, nested deeply
        return None
    return data if isinstance(data, dict) and isinstance(data.get("nodes"), list) else None


def paste(scene: GraphScene, data: dict[str, Any], offset: tuple[float, float]) -> list[str]:
    """Paste a node group as one undo entry; [] (and no entry) if it is not valid."""
    try:
        paste_nodes(scene.document.graph.copy(), data, offset)  # dry run: no empty entry
    except (FormatError, GraphError):
        return []
    return push_snapshot(scene.document, "Paste", lambda g: paste_nodes(g, data, offset))


def duplicate(scene: GraphScene, node_ids: list[str]) -> list[str]:
    if not node_ids:
        return []
    return push_snapshot(scene.document, "Duplicate", lambda g: duplicate_nodes(g, node_ids))


def drop_layer(scene: GraphScene, type_name: str, pos: QPointF) -> str | None:
    """Add a layer from the palette at `pos`; dropped on an edge, it is inserted into it.

    Returns the new node's id, or None for an unknown type.
    """
    if not registry.exists(type_name):
        return None
    layer = registry.get(type_name)
    doc = scene.document
    at = (float(round(pos.x())), float(round(pos.y())))
    edge = scene.edge_at(pos) if layer.max_inputs != 0 and layer.min_inputs <= 1 else None
    add = AddNodeCommand(doc, layer.name, layer.initial_params(), pos=at,
                         inputs=[edge.source] if edge is not None else None)
    if edge is None:
        doc.undo_stack.push(add)
        return add.node_id
    source, target, index = edge.key
    doc.undo_stack.beginMacro(f"Insert {layer.name}")
    doc.undo_stack.push(add)
    doc.undo_stack.push(DisconnectCommand(doc, source, target, index))
    doc.undo_stack.push(ConnectCommand(doc, add.node_id, target, index))
    doc.undo_stack.endMacro()
    return add.node_id


def block_source(scene: GraphScene) -> str | None:
    """Where a block goes: after the one selected node, else after the last node."""
    doc = scene.document
    selected = doc.selection
    if len(selected) == 1 and selected[0] in doc.graph:
        return selected[0]
    order = doc.inference.order
    return order[-1] if order else None


def drop_block(scene: GraphScene, name: str) -> list[str]:
    """Insert a block after `block_source` as one undo entry; return the new ids."""
    if name not in BLOCKS:
        return []
    source = block_source(scene)
    if source is None:
        return []
    doc = scene.document
    info = doc.inference.nodes.get(source)
    channels = info.shape[0] if info is not None and info.shape else 16
    item = scene.item_for(source)
    if doc.graph.node(source).pos is None and item is not None:
        anchor = (item.x(), item.y())  # place the block under the node as it is seen
    else:
        anchor = None
    block = BLOCKS[name][1]

    def edit(graph):
        if anchor is not None:
            graph.move_node(source, anchor)
        return insert_block(graph, block, source, channels)

    try:
        return push_snapshot(doc, f"Insert {name}", edit)
    except GraphError:
        return []
