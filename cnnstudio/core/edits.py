"""Compound edits built from Graph operations: quick fixes and insertions.

Each function only calls Graph's validated mutations, so an editor can record them
(or snapshot around them) for undo.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable
from typing import Any

from cnnstudio.core.errors import FormatError, InvalidIdError
from cnnstudio.core.graph import Graph
from cnnstudio.core.ids import MAX_ID_LENGTH, RESERVED_IDS, check_id
from cnnstudio.core.layout import layered_positions
from cnnstudio.core.shapes import Fix


def insert_before(graph: Graph, target: str, type_name: str, params: dict | None = None,
                  input_index: int = 0) -> str:
    """Insert a new `type_name` node on `target`'s input `input_index`; return its id."""
    node = graph.node(target)
    source = node.inputs[input_index] if input_index < len(node.inputs) else None
    pos = None
    if node.pos is not None:
        above = graph.node(source).pos if source else None
        pos = (node.pos[0], (node.pos[1] + above[1]) / 2) if above else (node.pos[0], node.pos[1] - 60)
    new = graph.add_node(type_name, params if params is not None else {},
                         inputs=[source] if source else [], pos=pos)
    if source is not None:
        graph.disconnect(source, target, input_index)
    graph.connect(new.id, target, input_index)
    return new.id


def apply_fix(graph: Graph, fix: Fix) -> None:
    """Carry out a quick fix proposed by infer_shapes."""
    if fix.kind == "insert_flatten":
        insert_before(graph, fix.node, "Flatten")
    elif fix.kind == "set_param":
        graph.set_param(fix.node, fix.arg("param"), fix.arg("value"))
    elif fix.kind == "remove_node":
        graph.remove_node(fix.node)
    elif fix.kind == "connect_after":
        graph.connect(fix.arg("source"), fix.node)
    else:
        raise ValueError(f"unknown fix {fix.kind}")


def with_ancestors(graph: Graph, node_ids: Iterable[str]) -> list[str]:
    """`node_ids` and every node they depend on (their inputs, and theirs, …), in graph
    order: what "freeze up to here" freezes. Raises MissingNodeError for an unknown id."""
    wanted = {graph.node(nid).id for nid in node_ids}
    stack = list(wanted)
    while stack:
        for src in graph.node(stack.pop()).inputs:
            if src not in wanted and src in graph:
                wanted.add(src)
                stack.append(src)
    return [nid for nid in graph.ids if nid in wanted]


# ---- copy, paste, duplicate, blocks ------------------------------------------------------

PASTE_OFFSET = (40.0, 40.0)


def copy_nodes(graph: Graph, node_ids: Iterable[str]) -> dict[str, Any]:
    """The file form `{"nodes": [...], "groups": [...]}` of `node_ids`, in graph order.

    Connections between copied nodes are kept; inputs from nodes outside the set are
    dropped, so the copy stands on its own. The blocks lying wholly inside the set come
    along (unfolded), nested as they were. Raises MissingNodeError for an unknown id.
    """
    wanted = set(node_ids)
    for nid in wanted:
        graph.node(nid)
    nodes = []
    for node in graph:
        if node.id in wanted:
            data = node.to_dict()
            data["inputs"] = [s for s in node.inputs if s in wanted]
            nodes.append(data)
    groups = graph.groups
    whole = [g.id for g in groups if not groups.is_empty(g.id)
             and set(groups.nodes(g.id)) <= wanted]
    blocks = [{"id": group_id, "name": groups.get(group_id).name,
               "nodes": [m for m in groups.children(group_id) if m in wanted or m in whole]}
              for group_id in whole]
    return {"nodes": nodes, "groups": blocks} if blocks else {"nodes": nodes}


def fresh_id(wanted: str, taken: Container[str]) -> str:
    """`wanted` if it is free and valid, else its stem with the first free number
    ('conv1' → 'conv2', 'classifier' → 'classifier2')."""
    try:
        check_id(wanted)
        if wanted not in taken:
            return wanted
        stem = re.sub(r"[\d_-]+$", "", wanted)[:MAX_ID_LENGTH - 6] or "node"
        check_id(stem)
    except InvalidIdError:
        stem = "node"
    i = 1 if stem != wanted else 2
    while f"{stem}{i}" in taken or f"{stem}{i}" in RESERVED_IDS:
        i += 1
    return f"{stem}{i}"


def paste_nodes(graph: Graph, data: Any,
                offset: tuple[float, float] = PASTE_OFFSET) -> list[str]:
    """Add the nodes of `data` (as made by `copy_nodes`) to `graph`; return their new ids.

    Every node gets a fresh id (references between the pasted nodes follow the renaming),
    inputs from outside the pasted set are dropped and positions move by `offset`.
    Raises FormatError for malformed data (then the graph is unchanged).
    """
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise FormatError("", "must be an object with a 'nodes' list")
    raw_nodes = data["nodes"]
    # Only strings can be ids; anything else (a list, from a hostile clipboard) is not even
    # hashable, and from_dict below refuses it with a FormatError.
    ids = {raw.get("id") for raw in raw_nodes
           if isinstance(raw, dict) and isinstance(raw.get("id"), str)}
    cleaned = []
    for raw in raw_nodes:
        if isinstance(raw, dict):
            raw = dict(raw)
            inputs = raw.get("inputs", [])
            if isinstance(inputs, list):
                raw["inputs"] = [s for s in inputs if isinstance(s, str) and s in ids]
        cleaned.append(raw)
    # Validate everything first (types, params, cycles, blocks), so a bad paste changes
    # nothing; blocks that do not read are dropped, the layers still paste.
    pasted = Graph.from_dict({"nodes": cleaned})
    try:
        pasted = Graph.from_dict({"nodes": cleaned, "groups": data.get("groups")})
    except FormatError:
        pass
    taken = graph.taken_ids()
    renamed: dict[str, str] = {}
    for node in pasted:
        renamed[node.id] = fresh_id(node.id, taken)
        taken.add(renamed[node.id])
    for nid in pasted.topological_order():
        node = pasted.node(nid)
        pos = None if node.pos is None else (node.pos[0] + offset[0], node.pos[1] + offset[1])
        graph.add_node(node.type, node.params, id=renamed[nid],
                       inputs=[renamed[s] for s in node.inputs], pos=pos, extra=node.extra,
                       trainable=node.trainable)
    _paste_groups(graph, pasted, renamed)
    return [renamed[node.id] for node in pasted]


def _paste_groups(graph: Graph, pasted: Graph, renamed: dict[str, str]) -> None:
    """Re-create the pasted blocks around the pasted nodes, innermost first, with fresh ids
    and their names; top-level ones join the graph at top level."""
    made: dict[str, str] = {}
    pending = [g for g in pasted.groups]
    while pending:
        ready = [g for g in pending
                 if all(m in made for m in pasted.groups.children(g.id) if m in pasted.groups)]
        for group in ready:
            members = [made.get(m) or renamed[m] for m in pasted.groups.children(group.id)]
            made[group.id] = graph.groups.add(members, group.name).id
        pending = [g for g in pending if g not in ready]
        if not ready:
            break


def duplicate_nodes(graph: Graph, node_ids: Iterable[str],
                    offset: tuple[float, float] = PASTE_OFFSET) -> list[str]:
    """Copy and paste `node_ids` in one go; return the new ids."""
    return paste_nodes(graph, copy_nodes(graph, node_ids), offset)


def insert_block(graph: Graph, block: Callable[[Graph, str, int], str], source: str,
                 channels: int, name: str | None = None) -> list[str]:
    """Run a block function after `source` and place its new nodes below `source`.

    With a `name` (the palette entry's, e.g. "Residual block") the new nodes become one
    group of that name, so the canvas can fold the block into a card.
    Returns the new ids in graph order. Positions follow `layered_positions`, shifted
    so the block hangs under `source` (nodes of the graph that had no position keep none).
    """
    before = set(graph.ids)
    block(graph, source, channels)
    new = [nid for nid in graph.ids if nid not in before]
    if name is not None and new:
        graph.groups.add(new, name)
    anchor = graph.node(source).pos
    if anchor is None:
        return new
    # Lay out the block on its own (with `source` on top), so other branches don't push it.
    layered = layered_positions(Graph.from_dict(copy_nodes(graph, [source, *new])),
                                graph.direction)
    dx = anchor[0] - layered[source][0]
    dy = anchor[1] - layered[source][1]
    for nid in new:
        x, y = layered[nid]
        graph.move_node(nid, (x + dx, y + dy))
    return new
