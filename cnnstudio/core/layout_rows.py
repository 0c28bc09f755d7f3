"""The geometry of the layered layout: pitches along and across the flow, the room block
frames need between layers, the groups each node sits in, and the engine's answer
(`core.layout_order`) for a graph. `core.layout` (the whole layout) and `core.layout_unet`
(the U) build on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnstudio.core.graph import Graph
from cnnstudio.core.layout_order import LayeredResult, Spacing, layered

ROW_HEIGHT = 90.0  # "down": one layer per row (the basic pitch; frames add to it)
COLUMN_WIDTH = 230.0  # "down": card centres across (cards are 200 wide)
# "right": one layer per column, room for a 200-wide card and the edges between columns;
# rows pitched for 46-high cards.
FLOW_RIGHT_COLUMN = 280.0
FLOW_RIGHT_ROW = 80.0

# The canvas draws an unfolded group as a frame around its members (ui/canvas/group_frame:
# the members' bounding rects united, FRAME_MARGIN added per nesting level on every side
# and a FRAME_TAB high title tab on top). The layout leaves room for those frames.
CARD_WIDTH, CARD_HEIGHT = 200.0, 46.0
CARD_BOUNDS = 10.0  # a card's ports and selection halo, inside the frame too
FRAME_MARGIN = 8.0
FRAME_TAB = 20.0
FRAME_GAP = 10.0  # a frame's clearance from a card or frame outside it

# Across the flow: card to card, card to a skip edge's lane, lane to lane. A lane keeps
# clear of a card's edge so the straight run of an edge into its lane misses the card
# next to it. Then the frames' room across: "down" has them left and right of the cards,
# "right" has a frame's tab above the cards (the low side of the across axis).
SPACING = {
    "down": Spacing(cards=COLUMN_WIDTH, card_lane=150.0, lanes=40.0,
                    card_half=CARD_WIDTH / 2, bounds=CARD_BOUNDS, frame_gap=FRAME_GAP,
                    frame_low=FRAME_MARGIN, frame_high=FRAME_MARGIN),
    "right": Spacing(cards=FLOW_RIGHT_ROW, card_lane=56.0, lanes=24.0,
                     card_half=CARD_HEIGHT / 2, bounds=CARD_BOUNDS, frame_gap=FRAME_GAP,
                     frame_low=FRAME_MARGIN + FRAME_TAB, frame_high=FRAME_MARGIN),
}
LAYER_PITCH = {"down": ROW_HEIGHT, "right": FLOW_RIGHT_COLUMN}
# Along the flow: half a card, and a frame's room per level before (tab and margin) and
# after (margin) the layers where it starts and ends.
ALONG = {"down": (CARD_HEIGHT / 2, FRAME_MARGIN + FRAME_TAB, FRAME_MARGIN),
         "right": (CARD_WIDTH / 2, FRAME_MARGIN, FRAME_MARGIN)}

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
    of_group: dict[str, tuple[str, ...]] = {}  # a node's groups are its innermost group's
    paths: dict[str, tuple[str, ...]] = {}
    for node in graph:
        if node.group is not None:
            path = of_group.get(node.group)
            if path is None:
                path = of_group[node.group] = tuple(graph.groups.ancestors(node.id))
            paths[node.id] = path
    return paths


def frame_stacks(layer: dict[str, int], paths: dict[str, tuple[str, ...]]
                 ) -> tuple[dict[int, int], dict[int, int]]:
    """Per layer, how many frames stack up before it (groups starting there, nested ones
    starting there too) and after it (groups ending there): ({layer: count}, {layer:
    count}). Only the deepest stack in a layer counts."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    children: dict[str, set[str]] = {}
    depth: dict[str, int] = {}
    for nid, path in paths.items():
        at = layer.get(nid)
        if at is None:
            continue
        for level, group in enumerate(path):
            if group not in first or at < first[group]:
                first[group] = at
            if group not in last or at > last[group]:
                last[group] = at
            depth[group] = level
            if level:
                children.setdefault(path[level - 1], set()).add(group)
    heads: dict[str, int] = {}
    feet: dict[str, int] = {}
    for group in sorted(first, key=lambda g: -depth[g]):  # innermost first
        inner = children.get(group, ())
        heads[group] = 1 + max((heads[c] for c in inner if first[c] == first[group]), default=0)
        feet[group] = 1 + max((feet[c] for c in inner if last[c] == last[group]), default=0)
    before: dict[int, int] = {}
    after: dict[int, int] = {}
    for group in first:
        before[first[group]] = max(before.get(first[group], 0), heads[group])
        after[last[group]] = max(after.get(last[group], 0), feet[group])
    return before, after


def along_offsets(layer: dict[str, int], paths: dict[str, tuple[str, ...]],
                  direction: str) -> list[float]:
    """The coordinate along the flow of every layer (0 .. the deepest): the layer pitch,
    more where group frames start or end, so a frame's tab and margins fit between the
    cards of two layers and clear the frames and cards on the other side."""
    count = 1 + max(layer.values(), default=-1)
    before, after = frame_stacks(layer, paths) if paths else ({}, {})
    half, head, foot = ALONG[direction]
    pitch = LAYER_PITCH[direction]
    offsets = [0.0] * count
    for k in range(1, count):
        ends, starts = after.get(k - 1, 0), before.get(k, 0)
        gap = pitch
        if ends or starts:
            room = 2 * half + FRAME_GAP
            room += CARD_BOUNDS + foot * ends if ends else 0.0
            room += CARD_BOUNDS + head * starts if starts else 0.0
            gap = max(pitch, room)
        offsets[k] = offsets[k - 1] + gap
    return offsets


def resolve_direction(graph: Graph, direction: str | None) -> str:
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
