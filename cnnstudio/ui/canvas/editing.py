"""Canvas edits as commands: delete, clipboard, duplicate, drops from the palette, and
groups (group, ungroup, fold, unfold, rename, group automatically).

Each function pushes exactly one undo entry (a command, a macro or a snapshot) or
nothing at all, and returns what the view needs to select afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QMimeData, QPointF, QStringListModel
from PySide6.QtWidgets import QApplication

from cnnstudio.core import registry
from cnnstudio.core.blocks import BLOCKS
from cnnstudio.core.edits import copy_nodes, duplicate_nodes, insert_block, paste_nodes
from cnnstudio.core.errors import FormatError, GraphError
from cnnstudio.core.graph import Graph
from cnnstudio.ui.canvas import layout_runner
from cnnstudio.ui.canvas.edges import EdgeItem
from cnnstudio.ui.canvas.group_item import GroupItem
from cnnstudio.ui.canvas.scene import GraphScene
from cnnstudio.ui.commands import (
    AddNodeCommand,
    ConnectCommand,
    DisconnectCommand,
    GroupCommand,
    RemoveNodesCommand,
    RenameGroupCommand,
    UngroupCommand,
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
        return insert_block(graph, block, source, channels, name)

    try:
        return push_snapshot(doc, f"Insert {name}", edit)
    except GraphError:
        return []


# ---- groups ------------------------------------------------------------------------------


def group_members(graph: Graph, node_ids: list[str]) -> list[str]:
    """What a new group of these nodes holds: the nodes and blocks directly under the
    innermost group holding them all. A block cannot be split: one partly selected joins
    whole, and a selection that is exactly a block's nodes groups that block."""
    groups = graph.groups
    chains = [groups.ancestors(nid) for nid in node_ids]
    common: list[str] = []
    for level in zip(*chains, strict=False):
        if len(set(level)) > 1:
            break
        common.append(level[0])
    chosen = set(node_ids)
    while common and chosen >= set(groups.nodes(common[-1])):
        common.pop()  # the whole block is selected: it is a member, not the container
    depth = len(common)
    return list(dict.fromkeys(chain[depth] if len(chain) > depth else nid
                              for nid, chain in zip(node_ids, chains, strict=True)))


def default_group_name(graph: Graph) -> str:
    names = {group.name for group in graph.groups}
    n = 1
    while f"Group {n}" in names:
        n += 1
    return f"Group {n}"


def group_selection(scene: GraphScene, name: str | None = None) -> str | None:
    """Group the selected nodes (a selected folded card: its whole block) as one undo
    entry; returns the new group's id, or None when nothing is selected."""
    node_ids = scene.selected_node_ids()
    if not node_ids:
        return None
    doc = scene.document
    try:
        command = GroupCommand(doc, group_members(doc.graph, node_ids),
                               name if name is not None else default_group_name(doc.graph))
    except GraphError:
        return None
    doc.undo_stack.push(command)
    scene.flush(routes=False)
    return command.group_id


def ungroup(scene: GraphScene, group_id: str) -> bool:
    """Dissolve a group (its members stay, in its parent) as one undo entry; False for an
    unknown group or one whose layers were all deleted (nothing shows it)."""
    groups = scene.document.graph.groups
    if group_id not in groups or groups.is_empty(group_id):
        return False
    scene.document.undo_stack.push(UngroupCommand(scene.document, group_id))
    scene.flush(routes=False)
    return True


def set_folded(scene: GraphScene, group_ids: list[str], folded: bool) -> bool:
    """Fold or unfold these groups as one undo entry; False when none of them changes.
    A group hidden inside a folded one is left alone: what its fold moves is measured on
    the picture, where it does not show."""
    groups = scene.document.graph.groups

    def shown(group_id: str) -> bool:
        return not any(groups.get(g).collapsed for g in groups.ancestors(group_id))

    return scene.set_folded([g for g in group_ids if g in groups and shown(g)], folded)


def reveal(scene: GraphScene, node_id: str) -> None:
    """Unfold (one undo entry) every folded group hiding `node_id`, so its card shows:
    outermost first, each one showing when its turn comes."""
    groups = scene.document.graph.groups
    if node_id in scene.document.graph:
        folded = [g for g in groups.ancestors(node_id) if groups.get(g).collapsed]
        if folded:
            scene.set_folded(folded, False)


def rename(scene: GraphScene, group_id: str, name: str) -> bool:
    """Rename a group (one undo entry); False when the name is unchanged. Raises
    GraphError for a name that cannot be one (empty, too long)."""
    groups = scene.document.graph.groups
    if group_id not in groups or name.strip() == groups.get(group_id).name:
        return False
    scene.document.undo_stack.push(RenameGroupCommand(scene.document, group_id, name))
    return True


def auto_group(scene: GraphScene) -> list[str]:
    """Group the repeated structure of the ungrouped nodes (residual and inception blocks,
    the stages made of them) as one undo entry; returns the new group ids ([] and no
    entry when nothing is found)."""
    from cnnstudio.core import grouping
    from cnnstudio.core.layout import auto_layout

    doc = scene.document
    if not grouping.detect_groups(doc.graph):
        return []

    def group_and_make_room(graph) -> list[str]:
        new = grouping.auto_group(graph)
        auto_layout(graph)  # the new blocks' frames need room between the rows
        return new

    return push_snapshot(doc, "Group automatically", group_and_make_room)


def target_groups(scene: GraphScene) -> list[str]:
    """The groups the Edit menu's Ungroup, Fold and Rename act on: the selected folded
    cards, else the innermost group holding every selected node."""
    cards = [i.group_id for i in scene.selectedItems() if isinstance(i, GroupItem)]
    if cards:
        return cards
    node_ids = scene.selected_node_ids()
    if not node_ids:
        return []
    groups = scene.document.graph.groups
    common: str | None = None
    for level in zip(*(groups.ancestors(nid) for nid in node_ids), strict=False):
        if len(set(level)) > 1:
            break
        common = level[0]
    return [common] if common is not None else []


def toggle_fold(scene: GraphScene) -> bool:
    """Unfold the selected folded cards, else fold the block holding the selection."""
    targets = target_groups(scene)
    groups = scene.document.graph.groups
    folded = [g for g in targets if groups.get(g).collapsed]
    if folded:
        return set_folded(scene, folded, False)
    return set_folded(scene, targets, True)


def lay_out(scene: GraphScene, direction: str | None = None,
            done: Callable[[], None] | None = None) -> bool:
    """Auto layout (in `direction`, "down" or "right", when given: the graph then flows
    that way) as one undo entry; False when there is nothing to do. A big network is laid
    out on a worker thread and its entry pushed when the layout arrives, or dropped when the
    network changed meanwhile (`layout_runner`); `done` runs once the entry is pushed (at
    once for a smaller network)."""
    return layout_runner.lay_out(scene, scene.document, direction, done)
