"""Room for group frames in the layered layout: an unfolded group is drawn as a frame
around its members (ui/canvas/group_frame: a margin per nesting level, a title tab on top),
and no frame may cover a card outside its group or touch an unrelated group's frame."""

from __future__ import annotations

import pytest

from cnnstudio.core.blocks import add, conv_bn_relu
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import (
    CARD_BOUNDS,
    CARD_HEIGHT,
    CARD_WIDTH,
    FLOW_RIGHT_COLUMN,
    FRAME_GAP,
    FRAME_MARGIN,
    FRAME_TAB,
    ROW_HEIGHT,
    layered_positions,
)
from cnnstudio.core.templates import TEMPLATES, get_template

CARD_W, CARD_H = 200.0, 46.0  # the canvas's NodeItem


def _template(name: str) -> Graph:
    template = get_template(name)
    return template.build(template.classes)


Rect = tuple[float, float, float, float]  # left, top, right, bottom


def _frames(graph: Graph, positions) -> dict[str, Rect]:
    """Every group's frame as the canvas draws it unfolded (ui/canvas/group_sync and
    group_frame): its members' bounding rects (a card with its ports, an inner group's
    frame) united, a margin on every side and the title tab on top."""
    groups = graph.groups
    frames: dict[str, Rect] = {}
    for group in sorted(groups, key=lambda g: -len(groups.ancestors(g.id))):
        parts = []
        for member in groups.children(group.id):
            if member in frames:
                parts.append(frames[member])
            elif member in positions:
                x, y = positions[member]
                b = CARD_BOUNDS
                parts.append((x - CARD_W / 2 - b, y - CARD_H / 2 - b,
                              x + CARD_W / 2 + b, y + CARD_H / 2 + b))
        if parts:
            m = FRAME_MARGIN
            frames[group.id] = (min(r[0] for r in parts) - m, min(r[1] for r in parts) - m - FRAME_TAB,
                                max(r[2] for r in parts) + m, max(r[3] for r in parts) + m)
    return frames


def _meet(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _assert_frames_clear(graph: Graph, positions) -> None:
    """No frame covers a card outside its group; frames of unrelated groups (neither
    holds the other) do not touch."""
    frames = _frames(graph, positions)
    groups = graph.groups
    cards = {nid: (x - CARD_W / 2, y - CARD_H / 2, x + CARD_W / 2, y + CARD_H / 2)
             for nid, (x, y) in positions.items()}
    for gid, frame in frames.items():
        inside = set(groups.nodes(gid))
        for nid, card in cards.items():
            assert nid in inside or not _meet(frame, card), (gid, nid)
    related = {gid: {gid, *groups.ancestors(gid)} for gid in frames}
    ids = sorted(frames)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            if a not in related[b] and b not in related[a]:
                assert not _meet(frames[a], frames[b]), (a, b)


def _architecture(name: str) -> Graph:
    from cnnstudio.core import architectures

    return getattr(architectures, name)()


@pytest.mark.parametrize("direction", ["down", "right"])
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_group_frames_cover_no_foreign_card_on_any_template(name, direction):
    graph = _template(name)
    assert len(graph.groups)  # templates come grouped
    _assert_frames_clear(graph, layered_positions(graph, direction))


@pytest.mark.parametrize("direction", ["down", "right"])
@pytest.mark.parametrize("name", ["resnet50", "googlenet", "block_chain"])
def test_group_frames_cover_no_foreign_card_on_real_networks(name, direction):
    graph = _architecture(name)
    assert max(len(graph.groups.ancestors(n.id)) for n in graph) == 2  # nested groups
    _assert_frames_clear(graph, layered_positions(graph, direction))


def _grouped_towers() -> Graph:
    """Two towers side by side, each a group of two block groups, joined by Add: stages
    of different blocks in one layer (no skip lane between them to keep them apart)."""
    graph = Graph()
    x = add(graph, "Input", None, {"shape": [8, 16, 16]}, id="input")
    ends = []
    for tower in range(2):
        y, blocks = x, []
        for _ in range(2):
            before = set(graph.ids)
            y = conv_bn_relu(graph, y, 8)
            blocks.append(graph.groups.add([n for n in graph.ids if n not in before],
                                           "Conv block").id)
        graph.groups.add(blocks, f"Tower {tower + 1}")
        ends.append(y)
    add(graph, "Add", ends, id="join")
    return graph


@pytest.mark.parametrize("direction", ["down", "right"])
def test_frames_of_groups_side_by_side_in_one_layer_keep_apart(direction):
    graph = _grouped_towers()
    positions = layered_positions(graph, direction)
    _assert_frames_clear(graph, positions)
    towers = [g.id for g in graph.groups if g.parent is None]
    frames = _frames(graph, positions)
    left, right = sorted((frames[t] for t in towers), key=lambda r: r[0] + r[1])
    across = 0 if direction == "down" else 1
    assert right[across] - left[across + 2] >= FRAME_GAP


def test_rows_make_room_for_the_frames_that_start_and_end_between_them():
    """ResNet, top to bottom: the basic pitch inside a block; more where frames end above
    (a margin each) and start below (a tab and margin each)."""
    graph = _template("resnet")
    positions = layered_positions(graph, "down")
    ys = sorted({y for _, y in positions.values()})
    pitches = {round(b - a, 3) for a, b in zip(ys, ys[1:], strict=False)}
    card, b, m, tab, gap = CARD_H, CARD_BOUNDS, FRAME_MARGIN, FRAME_TAB, FRAME_GAP

    def pitch(ending: int, starting: int) -> float:
        below = b + ending * m if ending else 0.0
        above = b + starting * (m + tab) if starting else 0.0
        return card + below + above + gap

    assert pitches == {ROW_HEIGHT,
                       pitch(0, 1),  # input → Stem: 94
                       pitch(1, 1),  # block → block: 112
                       pitch(2, 1),  # Stage 2 → Classifier: 120
                       pitch(1, 2),  # Stem → Stage 1 and its first block: 140
                       pitch(2, 2)}  # Stage 1 → Stage 2: 148
    groups = graph.groups
    first_rows = {min(positions[n][1] for n in groups.nodes(g.id)) for g in groups}
    for a, c in zip(ys, ys[1:], strict=False):
        assert (c - a > ROW_HEIGHT) == (c in first_rows)
    # Left to right the columns have room to spare: the basic pitch stays.
    xs = sorted({x for x, _ in layered_positions(graph, "right").values()})
    assert {round(q - p, 3) for p, q in zip(xs, xs[1:], strict=False)} == {FLOW_RIGHT_COLUMN}


def test_the_layout_knows_the_canvas_card_and_frame_sizes():
    from cnnstudio.ui.canvas import group_frame, style

    assert (CARD_WIDTH, CARD_HEIGHT) == (style.NODE_WIDTH, style.NODE_HEIGHT) == (CARD_W, CARD_H)
    assert CARD_BOUNDS == style.PORT_RADIUS + 5  # NodeItem.boundingRect's margin
    assert (FRAME_MARGIN, FRAME_TAB) == (group_frame.FRAME_MARGIN, group_frame.TAB_HEIGHT)
