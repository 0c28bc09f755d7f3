"""Automatic layout of a network as people draw it: layered, along the flow.

Data flows down (`graph.direction` "down": layers are rows) or right ("right": layers are
columns). Layers come from the longest path from the inputs; a skip connection gets its own
lane beside the cards; crossings are minimised; a main path stays one straight line with
its branches beside it; the members of a group stay together. `core.layout_order` is the
engine. An encoder–decoder (a U-Net, told from its shapes) is drawn as a U when data flows
down (`core.layout_unet`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnstudio.core.folding import flow_axis, fold_moves
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout_order import LayeredResult, Spacing, layered

ROW_HEIGHT = 90.0  # "down": one layer per row
COLUMN_WIDTH = 230.0  # "down": card centres across (cards are 200 wide)
# "right": one layer per column, room for a 200-wide card and the edges between columns;
# rows pitched for 46-high cards.
FLOW_RIGHT_COLUMN = 280.0
FLOW_RIGHT_ROW = 80.0

# Across the flow: card to card, card to a skip edge's lane, lane to lane. A lane keeps
# clear of a card's edge so the straight run of an edge into its lane misses the card
# next to it.
SPACING = {
    "down": Spacing(cards=COLUMN_WIDTH, card_lane=150.0, lanes=40.0),
    "right": Spacing(cards=FLOW_RIGHT_ROW, card_lane=56.0, lanes=24.0),
}
LAYER_PITCH = {"down": ROW_HEIGHT, "right": FLOW_RIGHT_COLUMN}

Point = tuple[float, float]


@dataclass
class Layout:
    """Where every node goes, and the polyline each edge follows (its ends included; the
    points between are its lane). `kind` is "layered" or "u" (an encoder–decoder U)."""

    positions: dict[str, Point]
    routes: dict[tuple[str, str], list[Point]]
    kind: str = "layered"


def group_paths(graph: Graph) -> dict[str, tuple[str, ...]]:
    """Per node, the groups holding it, outermost first."""
    if not len(graph.groups):
        return {}
    return {n.id: tuple(graph.groups.ancestors(n.id)) for n in graph if n.group is not None}


def _resolve(graph: Graph, direction: str | None) -> str:
    direction = graph.direction if direction is None else direction
    if direction not in LAYER_PITCH:
        raise ValueError(f"layout direction must be 'down' or 'right', got {direction!r}")
    return direction


def layered_result(graph: Graph, ids: list[str] | None = None,
                   direction: str = "down") -> LayeredResult:
    """The engine's answer for `ids` (default: all nodes) of `graph`."""
    ids = graph.ids if ids is None else ids
    inputs = {nid: graph.node(nid).inputs for nid in ids}
    return layered(ids, inputs, group_paths(graph), SPACING[direction])


def compute_layout(graph: Graph, direction: str | None = None) -> Layout:
    """The layout of the whole graph, every group unfolded."""
    direction = _resolve(graph, direction)
    result = layered_result(graph, direction=direction)
    if direction == "down":
        from cnnstudio.core.layout_unet import u_layout

        u = u_layout(graph, result)
        if u is not None:
            return u
    pitch = LAYER_PITCH[direction]
    shift = result.across[graph.ids[0]] if len(graph) else 0.0

    def place(layer: int, across: float) -> Point:
        along, across = layer * pitch, round(across - shift, 2)
        return (across, along) if direction == "down" else (along, across)

    positions = {nid: place(result.layer[nid], result.across[nid]) for nid in graph.ids}
    routes = {(src, dst): [positions[src], *(place(k, a) for k, a in result.lanes[(src, dst)]),
                           positions[dst]]
              for src, dst in result.forward}
    return Layout(positions, routes)


def layered_positions(graph: Graph, direction: str | None = None) -> dict[str, Point]:
    """A position for every node (centre of its card), as if every group were unfolded.
    `direction` "down" or "right"; None takes `graph.direction`."""
    return compute_layout(graph, direction).positions


def auto_layout(graph: Graph) -> None:
    """Move every node to its laid-out position (one move), then fold again the groups
    that were folded, so each remembers the fold shift that fits the new positions."""
    folded = [g.id for g in graph.groups if g.collapsed]
    for group_id in folded:
        graph.groups.set_collapsed(group_id, False)
    if len(graph):
        graph.move_nodes(layered_positions(graph))
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
