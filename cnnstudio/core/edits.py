"""Compound edits built from Graph operations: quick fixes and insertions.

Each function only calls Graph's validated mutations, so an editor can record them
(or snapshot around them) for undo.
"""

from __future__ import annotations

from cnnstudio.core.graph import Graph
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
    else:
        raise ValueError(f"unknown fix {fix.kind}")
