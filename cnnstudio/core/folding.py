"""Where a folded group's card sits, and what moves when a group folds or unfolds.

Folding a block replaces its members by one card at the block's first row; when nothing
stands beside the block, everything further along the flow (below it when data flows
down, right of it when it flows right) moves up by the block's length, so the picture closes
the gap. The group remembers that length (`Group.fold_shift`) and unfolding moves the
same nodes back by as much. The members keep their own positions (hidden while folded), so
unfolding restores the block exactly as it was. Nodes beside the block (a U-Net's decoder
stage next to its encoder stage) would collide if the rest moved: then nothing moves.
"""

from __future__ import annotations

from cnnstudio.core.graph import Graph

_EPS = 1e-6


def flow_axis(graph: Graph) -> int:
    """0 when data flows right (x), 1 when it flows down (y)."""
    return 0 if graph.direction == "right" else 1


def _member_positions(graph: Graph, group_id: str) -> list[tuple[float, float]]:
    return [pos for nid in graph.groups.nodes(group_id)
            if (pos := graph.node(nid).pos) is not None]


def card_position(graph: Graph, group_id: str) -> tuple[float, float] | None:
    """The centre of the group's card when folded: its first row along the flow, and across
    it where the block's output stands (the main path of a residual block, the join under an
    inception block's branches), so the folded card lines up with the layers around it.
    None when no member has a position."""
    members = [graph.node(nid) for nid in graph.groups.nodes(group_id)]
    placed = [node for node in members if node.pos is not None]
    if not placed:
        return None
    axis = flow_axis(graph)
    start = min(node.pos[axis] for node in placed)
    fed = {source for node in members for source in node.inputs}
    outputs = [node for node in placed if node.id not in fed] or placed
    across = outputs[-1].pos[1 - axis]
    return (start, across) if axis == 0 else (across, start)


def _units(graph: Graph, exclude: set[str]) -> dict[str, tuple[list[str], float]]:
    """The things that move as one, outside `exclude`: a node on its own, or a folded
    group with every node inside it (its hidden members keep their unfolded positions, so
    only the card's place along the flow counts). Unit id → (node ids, flow coordinate).

    Folding many blocks at once works this out once per block over every node (~1,000):
    written for speed."""
    axis = flow_axis(graph)
    groups = graph.groups
    units: dict[str, tuple[list[str], float]] = {}
    _, folded_at = groups.fold_map()  # group → the outermost fold over it
    members_of: dict[str, list[str]] = {}  # folded group → its placed nodes, graph order
    for node in graph:
        pos = node.pos
        if pos is None:
            continue
        unit = folded_at.get(node.group) if node.group is not None else None
        if unit is not None:
            members_of.setdefault(unit, []).append(node.id)
            if node.id not in exclude and unit not in units:
                units[unit] = ([], 0.0)  # its place in the order; filled in below
        elif node.id not in exclude:
            units[node.id] = ([node.id], pos[axis])
    node_of = graph.node
    for unit, (members, _) in list(units.items()):
        if unit in members_of and not members:
            placed = members_of[unit]
            units[unit] = (placed, min(node_of(m).pos[axis] for m in placed))  # type: ignore[index]
    return units


def _shifted(graph: Graph, units: dict[str, tuple[list[str], float]], past: float,
             shift: float) -> dict[str, tuple[float, float]]:
    axis = flow_axis(graph)
    node_of = graph.node
    moves: dict[str, tuple[float, float]] = {}
    limit = past + _EPS
    for members, at in units.values():
        if at <= limit:
            continue
        for node_id in members:
            x, y = node_of(node_id).pos  # type: ignore[misc]
            moves[node_id] = (x + shift, y) if axis == 0 else (x, y + shift)
    return moves


def fold_moves(graph: Graph, group_id: str) -> tuple[dict[str, tuple[float, float]], float]:
    """What folding `group_id` moves: (new positions, the fold shift to remember)."""
    members = set(graph.groups.nodes(group_id))
    # The block's extent as drawn: a folded block inside it counts by its card, not by
    # its hidden members (which would reach past the nodes that closed its gap).
    units = _units(graph, set())
    inside = [at for nodes, at in units.values() if nodes[0] in members]
    if not inside:
        return {}, 0.0
    start, end = min(inside), max(inside)
    length = end - start
    units = {unit: found for unit, found in units.items() if found[0][0] not in members}
    beside = any(start - _EPS <= at <= end + _EPS for _, at in units.values())
    if length <= _EPS or beside:
        return {}, 0.0
    return _shifted(graph, units, end, -length), length


def unfold_moves(graph: Graph, group_id: str) -> dict[str, tuple[float, float]]:
    """What unfolding `group_id` moves: what its folding moved, back by `fold_shift`."""
    group = graph.groups.get(group_id)
    positions = _member_positions(graph, group_id)
    if not group.fold_shift or not positions:
        return {}
    members = set(graph.groups.nodes(group_id))
    start = min(p[flow_axis(graph)] for p in positions)
    return _shifted(graph, _units(graph, members), start, group.fold_shift)
