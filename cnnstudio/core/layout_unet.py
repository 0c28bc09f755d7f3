"""An encoder–decoder (U-Net) drawn as a U, the way every textbook draws it.

Told from the shapes: along the main path (the longest one) the spatial size falls stage
by stage to a bottleneck, then rises again through the same sizes, and at least one edge
joins an encoder stage to the decoder stage of its size (the skip into a Concat). Each
resolution stage (a maximal run of one size along the path, with the nodes beside it) is
a short column flowing down; the stages stand left to right, encoder stages stepping down,
decoder stages back up, each decoder stage placed so the skip into it arrives one row below
where it leaves the encoder. The deeper stages start below that row, so the skip runs across
above them. Anything else falls back to the plain layered layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import prod

from cnnstudio.core.graph import Graph
from cnnstudio.core.layout_order import LayeredResult
from cnnstudio.core.layout_rows import (
    COLUMN_WIDTH,
    ROW_HEIGHT,
    Layout,
    Point,
    along_offsets,
    group_paths,
    layered_result,
)

# A node's output shape (as `core.shapes` infers it; None when unknown), by node id.
Shapes = Mapping[str, Sequence[int] | None]

STAGE_GAP = 40.0  # extra room between two stages' columns, beyond a card pitch


def _spine(graph: Graph, layer: dict[str, int]) -> list[str]:
    """The longest path: from a deepest node back through inputs one layer up each."""
    end = max(graph.ids, key=lambda n: layer[n])
    path = [end]
    while layer[path[-1]] > 0:
        node = graph.node(path[-1])
        previous = next((s for s in node.inputs if s in layer and layer[s] == layer[path[-1]] - 1),
                        None)
        if previous is None:
            return []
        path.append(previous)
    return list(reversed(path))


def _stages(graph: Graph, spine: list[str], shapes: Shapes | None
            ) -> list[tuple[int, list[str]]] | None:
    """The main path cut into runs of one spatial size: [(size, spine nodes)], or None
    when a shape along it is unknown or has no spatial size."""
    if shapes is None:
        from cnnstudio.core.shapes import infer_shapes

        shapes = {nid: info.shape for nid, info in infer_shapes(graph).nodes.items()}
    stages: list[tuple[int, list[str]]] = []
    for nid in spine:
        shape = shapes.get(nid)
        if shape is None or len(shape) < 2:
            return None
        size = prod(shape[1:])
        if stages and stages[-1][0] == size:
            stages[-1][1].append(nid)
        else:
            stages.append((size, [nid]))
    return stages


def _is_valley(sizes: list[int]) -> int | None:
    """The bottleneck's index when sizes fall strictly, then rise strictly through sizes
    the encoder had; else None."""
    bottom = sizes.index(min(sizes))
    if bottom == 0 or bottom == len(sizes) - 1:
        return None
    falling = all(a > b for a, b in zip(sizes[:bottom], sizes[1:bottom + 1], strict=True))
    rising = all(a < b for a, b in zip(sizes[bottom:-1], sizes[bottom + 1:], strict=True))
    if not (falling and rising and set(sizes[bottom + 1:]) <= set(sizes[:bottom])):
        return None
    return bottom


def u_layout(graph: Graph, whole: LayeredResult, shapes: Shapes | None = None
             ) -> Layout | None:
    """The U for an encoder–decoder graph, or None when `graph` is not one. `whole` is the
    layered layout of the graph (its layers tell the stages); `shapes` the nodes' output
    shapes when known (inferred here when None)."""
    if len(graph) < 5:
        return None
    if len(whole.forward) < sum(len(set(n.inputs)) for n in graph):
        return None  # a cycle
    spine = _spine(graph, whole.layer)
    stages = _stages(graph, spine, shapes) if spine else None
    if not stages or len(stages) < 3:
        return None
    sizes = [size for size, _ in stages]
    bottom = _is_valley(sizes)
    if bottom is None:
        return None
    stage_of_layer = {whole.layer[nid]: i for i, (_, nids) in enumerate(stages) for nid in nids}
    stage_of = {nid: stage_of_layer[whole.layer[nid]] for nid in graph.ids}
    level = {i: sizes[:bottom + 1].index(size) for i, size in enumerate(sizes)}
    encoder_of_level = {level[i]: i for i in range(bottom + 1)}
    skips = [(s, d) for s, d in whole.forward
             if stage_of[d] > bottom and stage_of[s] == encoder_of_level[level[stage_of[d]]]]
    if not skips:
        return None
    members: list[list[str]] = [[] for _ in stages]
    for nid in graph.ids:
        members[stage_of[nid]].append(nid)
    parts = [layered_result(graph, ids) for ids in members]
    tops = _stage_tops(parts, stage_of, skips, level, bottom)
    return _place(graph, whole, parts, members, tops, stage_of)


def _stage_tops(parts: list[LayeredResult], stage_of: dict[str, int],
                skips: list[tuple[str, str]], level: dict[int, int], bottom: int) -> list[int]:
    """The first row of every stage."""
    count = len(parts)
    height = [1 + max(p.layer.values()) for p in parts]
    extra = [0] * count  # added rows under encoder stage i, when a skip needs more room
    tops = [0] * count
    for _ in range(4 * count):
        for i in range(bottom + 1):  # encoder: each below the last (and below its skips)
            if i == 0:
                tops[i] = 0
                continue
            leaving = [tops[i - 1] + parts[i - 1].layer[s] for s, d in skips if stage_of[s] == i - 1]
            tops[i] = max(tops[i - 1] + height[i - 1], max(leaving, default=-2) + 2) + extra[i - 1]
        for j in range(bottom + 1, count):  # decoder: its Concat one row below the skip
            source_stage = next(i for i in range(bottom + 1) if level[i] == level[j])
            arriving = [tops[stage_of[s]] + parts[stage_of[s]].layer[s] + 1 - parts[j].layer[d]
                        for s, d in skips if stage_of[d] == j]
            tops[j] = max(arriving) if arriving else tops[source_stage]
        clash = _first_clash(tops, parts, stage_of, skips)
        if clash is None:
            break
        extra[clash] += 1
    return tops


def _first_clash(tops: list[int], parts: list[LayeredResult], stage_of: dict[str, int],
                 skips: list[tuple[str, str]]) -> int | None:
    """An encoder stage whose skip would run through a stage between its two ends."""
    for s, d in skips:
        a, b = stage_of[s], stage_of[d]
        row = tops[a] + parts[a].layer[s]
        if any(tops[k] <= row + 1 for k in range(a + 1, b)):
            return a
    return None


def _place(graph: Graph, whole: LayeredResult, parts: list[LayeredResult],
           members: list[list[str]], tops: list[int], stage_of: dict[str, int]) -> Layout:
    lefts: list[float] = []
    rights: list[float] = []
    right_edge = None
    for part in parts:
        xs = [*part.across.values(), *(a for lane in part.lanes.values() for _, a in lane)]
        low, high = min(xs), max(xs)
        left = 0.0 if right_edge is None else right_edge + COLUMN_WIDTH + STAGE_GAP
        lefts.append(left - low)
        right_edge = left + (high - low)
        rights.append(right_edge)
    # Rows run through all the stages: a frame starting in one stage's row makes room
    # in the others' too, so the skips across stay level.
    row_of = {nid: tops[i] + part.layer[nid]
              for i, (part, ids) in enumerate(zip(parts, members, strict=True)) for nid in ids}
    lane_rows = [tops[i] + k for i, part in enumerate(parts)
                 for lane in part.lanes.values() for k, _ in lane]
    row_y = along_offsets(row_of, group_paths(graph), "down")
    row_y += [row_y[-1] + ROW_HEIGHT * (k + 1)
              for k in range(max(lane_rows, default=0) + 1 - len(row_y))]
    positions: dict[str, Point] = {}
    for i, (part, ids) in enumerate(zip(parts, members, strict=True)):
        for nid in ids:
            positions[nid] = (round(lefts[i] + part.across[nid], 2), row_y[row_of[nid]])
    shift = positions[graph.ids[0]][0]
    positions = {nid: (x - shift, y) for nid, (x, y) in positions.items()}
    bottoms = [max(positions[n][1] for n in ids) for ids in members]
    routes: dict[tuple[str, str], list[Point]] = {}
    for src, dst in whole.forward:
        i, j = stage_of[src], stage_of[dst]
        (sx, sy), (dx, dy) = positions[src], positions[dst]
        if i == j:
            lane = [(lefts[i] + a - shift, row_y[tops[i] + k])
                    for k, a in parts[i].lanes.get((src, dst), [])]
        elif dy < sy:
            # Up into a decoder stage: under both stages, up the gap right of the target,
            # into its top. Its skip comes from the left, so the two do not cross.
            low = max(bottoms[i], bottoms[j]) + ROW_HEIGHT / 2
            gap = rights[j] - shift + (COLUMN_WIDTH + STAGE_GAP) / 2
            lane = [(sx, low), (gap, low), (gap, dy - ROW_HEIGHT / 2), (dx, dy - ROW_HEIGHT / 2)]
        else:
            lane = []
        routes[(src, dst)] = [(sx, sy), *lane, (dx, dy)]
    return Layout(positions, routes, kind="u")
