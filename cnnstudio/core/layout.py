"""Automatic layout of a network as people draw it: layered, along the flow.

Data flows down (`graph.direction` "down": layers are rows) or right ("right": layers are
columns). Layers come from the longest path from the inputs; a skip connection gets its own
lane beside the cards; crossings are minimised; a main path stays one straight line with
its branches beside it; the members of a group stay together. `core.layout_order` is the
engine. An encoder–decoder (a U-Net, told from its shapes) is drawn as a U when data flows
down (`core.layout_unet`).
"""

from __future__ import annotations

from cnnstudio.core.folding import flow_axis, fold_moves
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout_rows import (
    CARD_BOUNDS,
    CARD_HEIGHT,
    CARD_WIDTH,
    COLUMN_WIDTH,
    FLOW_RIGHT_COLUMN,
    FLOW_RIGHT_ROW,
    FRAME_GAP,
    FRAME_MARGIN,
    FRAME_TAB,
    LAYER_PITCH,
    ROW_HEIGHT,
    SPACING,
    Layout,
    Point,
    along_offsets,
    frame_stacks,
    group_paths,
    layered_result,
    resolve_direction,
)
from cnnstudio.core.layout_unet import Shapes, u_layout

# The geometry lives in core.layout_rows (the U layout needs it too); this module is the
# entry point, so its names are importable from here.
__all__ = ["CARD_BOUNDS", "CARD_HEIGHT", "CARD_WIDTH", "COLUMN_WIDTH", "FLOW_RIGHT_COLUMN",
           "FLOW_RIGHT_ROW", "FRAME_GAP", "FRAME_MARGIN", "FRAME_TAB", "LAYER_PITCH",
           "ROW_HEIGHT", "SPACING", "Layout", "Point", "Shapes", "along_offsets", "auto_layout",
           "compute_layout", "frame_stacks", "group_paths", "layered_positions",
           "layered_result"]


def compute_layout(graph: Graph, direction: str | None = None,
                   shapes: Shapes | None = None) -> Layout:
    """The layout of the whole graph, every group unfolded. `shapes`: the nodes' output
    shapes when known (a document's inference: telling a U-Net needs them), else inferred."""
    direction = resolve_direction(graph, direction)
    result = layered_result(graph, direction=direction)
    if direction == "down":
        u = u_layout(graph, result, shapes)
        if u is not None:
            return u
    offsets = along_offsets(result.layer, group_paths(graph), direction)
    shift = result.across[graph.ids[0]] if len(graph) else 0.0

    def place(layer: int, across: float) -> Point:
        along, across = offsets[layer], round(across - shift, 2)
        return (across, along) if direction == "down" else (along, across)

    positions = {nid: place(result.layer[nid], result.across[nid]) for nid in graph.ids}
    routes = {(src, dst): [positions[src], *(place(k, a) for k, a in result.lanes[(src, dst)]),
                           positions[dst]]
              for src, dst in result.forward}
    return Layout(positions, routes)


def layered_positions(graph: Graph, direction: str | None = None,
                      shapes: Shapes | None = None) -> dict[str, Point]:
    """A position for every node (centre of its card), as if every group were unfolded.
    `direction` "down" or "right"; None takes `graph.direction`. `shapes` as for
    `compute_layout`."""
    return compute_layout(graph, direction, shapes).positions


def auto_layout(graph: Graph, shapes: Shapes | None = None) -> None:
    """Move every node to its laid-out position (one move), then fold again the groups
    that were folded, so each remembers the fold shift that fits the new positions.
    `shapes` as for `compute_layout`."""
    folded = [g.id for g in graph.groups if g.collapsed]
    for group_id in folded:
        graph.groups.set_collapsed(group_id, False)
    if len(graph):
        graph.move_nodes(layered_positions(graph, shapes=shapes))
    # Downstream blocks first, and inner before outer: a block folded earlier then sits
    # past (or inside) the one folding now, so its hidden members never count as standing
    # beside it (which would cancel the shift).
    axis = flow_axis(graph)

    def start(group_id: str) -> float:
        along = [graph.node(n).pos[axis] for n in graph.groups.nodes(group_id)]
        return min(along, default=0.0)

    folded.sort(key=lambda gid: (-start(gid), -len(graph.groups.ancestors(gid))))
    for group_id in folded:
        moves, shift = fold_moves(graph, group_id)
        if moves:
            graph.move_nodes(moves)
        graph.groups.set_collapsed(group_id, True, shift)
