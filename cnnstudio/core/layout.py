"""Automatic layered layout of a DAG, top to bottom (data flows downwards).

Layers come from the longest path from an input; within a layer nodes are ordered
by the mean position of their inputs (barycentre heuristic), which untangles the
branches of residual, inception and U-Net graphs well enough for reading.
"""

from __future__ import annotations

from cnnstudio.core.errors import CycleError
from cnnstudio.core.graph import Graph

ROW_HEIGHT = 90.0
COLUMN_WIDTH = 230.0


def layered_positions(graph: Graph) -> dict[str, tuple[float, float]]:
    """A position for every node; nodes on a cycle go to a last row."""
    try:
        order = graph.topological_order()
    except CycleError:
        order = list(graph.ids)
    depth: dict[str, int] = {}
    for nid in order:
        inputs = [s for s in graph.node(nid).inputs if s in depth]
        depth[nid] = 1 + max((depth[s] for s in inputs), default=-1)
    rows: dict[int, list[str]] = {}
    for nid in order:
        rows.setdefault(depth[nid], []).append(nid)
    column: dict[str, float] = {}
    for d in sorted(rows):
        row = rows[d]
        if d > 0:
            def barycentre(nid: str) -> float:
                xs = [column[s] for s in graph.node(nid).inputs if s in column]
                return sum(xs) / len(xs) if xs else 0.0
            row.sort(key=barycentre)
        for i, nid in enumerate(row):
            column[nid] = i - (len(row) - 1) / 2
    return {nid: (column[nid] * COLUMN_WIDTH, depth[nid] * ROW_HEIGHT) for nid in order}


def auto_layout(graph: Graph) -> None:
    """Move every node to its layered position."""
    for nid, pos in layered_positions(graph).items():
        graph.move_node(nid, pos)
