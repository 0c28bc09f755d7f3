"""The layered layout (issue 15 point 2): no overlaps, few crossings, skip edges in lanes
beside the cards, straight main paths, groups together, the U-Net as a U, two directions,
folds kept by auto_layout."""

from __future__ import annotations

import pytest

from cnnstudio.core.blocks import (
    add,
    conv_bn_relu,
    double_conv,
    inception_block,
    residual_block,
    unet_up,
)
from cnnstudio.core.errors import CycleError
from cnnstudio.core.folding import unfold_moves
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import (
    COLUMN_WIDTH,
    FLOW_RIGHT_COLUMN,
    ROW_HEIGHT,
    along_offsets,
    auto_layout,
    compute_layout,
    group_paths,
    layered_positions,
    layered_result,
)
from cnnstudio.core.templates import TEMPLATES, get_template

CARD_W, CARD_H = 200.0, 46.0
LAYERED = [n for n in TEMPLATES if n != "unet"]


def _template(name: str) -> Graph:
    template = get_template(name)
    return template.build(template.classes)


def _residual_chain(nodes: int = 1000) -> Graph:
    """A ResNet-like chain of about `nodes` nodes, with a projection block every fifth."""
    g = Graph()
    x = conv_bn_relu(g, add(g, "Input", None, {"shape": [3, 32, 32]}, id="input"), 16)
    channels, i = 16, 0
    while len(g) < nodes - 3:
        out = channels * 2 if i % 5 == 4 and channels < 256 else channels
        x = residual_block(g, x, out, channels, stride=2 if out != channels else 1)
        channels, i = out, i + 1
    return g


def _old_positions(graph: Graph) -> dict[str, tuple[float, float]]:
    """The layout before issue 15 (one barycentre pass, no lanes): the reference."""
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


# ---- geometry helpers ---------------------------------------------------------------------

Seg = tuple[tuple[float, float], tuple[float, float]]


def _segments(routes) -> list[tuple[tuple[str, str], Seg]]:
    return [(edge, (a, b)) for edge, points in routes.items()
            for a, b in zip(points, points[1:], strict=False)]


def _orient(p, q, r) -> float:
    return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])


def _cross(s: Seg, t: Seg) -> bool:
    """A proper crossing (touching at an end does not count)."""
    d1, d2 = _orient(*t, s[0]), _orient(*t, s[1])
    d3, d4 = _orient(*s, t[0]), _orient(*s, t[1])
    return d1 * d2 < -1e-6 and d3 * d4 < -1e-6


def _crossings(routes) -> int:
    segs = _segments(routes)
    segs.sort(key=lambda item: min(item[1][0][1], item[1][1][1]))
    count = 0
    for i, (e1, s) in enumerate(segs):
        bottom = max(s[0][1], s[1][1])
        for e2, t in segs[i + 1:]:
            if min(t[0][1], t[1][1]) > bottom:
                break
            if set(e1) & set(e2):
                continue  # edges sharing a node meet there, they do not cross
            count += _cross(s, t)
    return count


def _straight_routes(graph: Graph, positions) -> dict:
    return {(s, n.id): [positions[s], positions[n.id]] for n in graph for s in set(n.inputs)
            if s in positions}


def _segment_hits_rect(seg: Seg, cx: float, cy: float, w: float, h: float) -> bool:
    """Does the segment pass through the inside of the w×h rectangle centred at (cx, cy)?"""
    (x0, y0), (x1, y1) = seg
    t0, t1 = 0.0, 1.0
    dx, dy = x1 - x0, y1 - y0
    for p, q in ((-dx, x0 - (cx - w / 2)), (dx, (cx + w / 2) - x0),
                 (-dy, y0 - (cy - h / 2)), (dy, (cy + h / 2) - y0)):
        if p == 0:
            if q <= 0:
                return False
            continue
        r = q / p
        if p < 0:
            t0 = max(t0, r)
        else:
            t1 = min(t1, r)
    return t1 - t0 > 1e-6


def _assert_no_overlap(positions) -> None:
    items = sorted(positions.items(), key=lambda kv: (kv[1][1], kv[1][0]))
    for i, (a, (ax, ay)) in enumerate(items):
        for b, (bx, by) in items[i + 1:]:
            if by - ay >= CARD_H:
                break
            assert abs(ax - bx) >= CARD_W or abs(ay - by) >= CARD_H, (a, b)


# ---- tests --------------------------------------------------------------------------------

@pytest.mark.parametrize("direction", ["down", "right"])
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_no_two_cards_overlap_on_any_template(name, direction):
    positions = layered_positions(_template(name), direction)
    assert len(positions) == len(_template(name))
    _assert_no_overlap(positions)


@pytest.mark.parametrize("direction", ["down", "right"])
def test_a_thousand_node_graph_has_no_overlap_and_flows_forward(direction):
    graph = _residual_chain()
    assert len(graph) >= 990
    layout = compute_layout(graph, direction)
    _assert_no_overlap(layout.positions)
    axis = 1 if direction == "down" else 0
    for src, dst in layout.routes:
        assert layout.positions[src][axis] < layout.positions[dst][axis]


@pytest.mark.parametrize("direction", ["down", "right"])
@pytest.mark.parametrize("name", LAYERED)
def test_every_edge_goes_forward_along_the_flow(name, direction):
    graph = _template(name)
    layout = compute_layout(graph, direction)
    axis = 1 if direction == "down" else 0
    assert len(layout.routes) == len({(s, n.id) for n in graph for s in n.inputs})
    for points in layout.routes.values():
        assert all(a[axis] < b[axis] for a, b in zip(points, points[1:], strict=False))


def _layered_crossings(graph: Graph) -> int:
    """Crossings of the plain layered layout (the U-Net's too): laid out left to right,
    axes swapped back; crossings between layers do not depend on the direction."""
    routes = compute_layout(graph, "right").routes
    return _crossings({e: [(y, x) for x, y in points] for e, points in routes.items()})


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_no_more_crossings_than_the_old_layout(name):
    graph = _template(name)
    old = _crossings(_straight_routes(graph, _old_positions(graph)))
    assert _layered_crossings(graph) <= old
    if name != "unet":
        assert _crossings(compute_layout(graph, "down").routes) <= old


def test_the_unet_u_crosses_only_where_a_decoder_stage_wraps_the_next():
    # The edge up into the last decoder stage must pass the one into the stage before it.
    assert _crossings(compute_layout(_template("unet"), "down").routes) <= 1


@pytest.mark.parametrize("name", ["resnet", "inception", "vgg"])
@pytest.mark.parametrize("direction", ["down", "right"])
def test_residual_inception_and_vgg_have_no_crossing(name, direction):
    assert _crossings(compute_layout(_template(name), direction).routes) == 0


def test_sweeps_and_swaps_untangle_what_one_barycentre_pass_crossed():
    graph = Graph()
    add(graph, "Input", None, {"shape": [4, 8, 8]}, id="input")
    for nid, inputs in [("n0", ["input"]), ("n1", ["n0"]), ("n2", ["n1", "input"]),
                        ("n3", ["input", "n0"]), ("n4", ["n1"]), ("n5", ["n4"]),
                        ("n6", ["n5", "n3"]), ("n7", ["n4", "n3"])]:
        add(graph, "Add" if len(inputs) > 1 else "ReLU", inputs, id=nid)
    assert _crossings(_straight_routes(graph, _old_positions(graph))) == 4
    assert _crossings(compute_layout(graph, "down").routes) == 0


@pytest.mark.parametrize("direction", ["down", "right"])
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_edges_pass_beside_cards_not_through_them(name, direction):
    layout = compute_layout(_template(name), direction)
    for (src, dst), points in layout.routes.items():
        for seg in zip(points, points[1:], strict=False):
            for nid, (x, y) in layout.positions.items():
                if nid not in (src, dst):
                    assert not _segment_hits_rect(seg, x, y, CARD_W, CARD_H), (src, dst, nid)


def test_skip_connections_get_a_lane_of_their_own():
    layout = compute_layout(_template("resnet"), "down")
    long_edges = [points for points in layout.routes.values() if len(points) > 2]
    assert len(long_edges) >= 4  # the identity skips and the projection's BatchNorm → Add
    for points in long_edges:
        lane = points[1:-1]
        assert len({round(x, 3) for x, _ in lane}) == 1  # straight down
        for x, y in lane:  # clear of every card in its row
            assert all(abs(x - cx) >= CARD_W / 2 + 30
                       for cx, cy in layout.positions.values() if cy == y)


def test_the_resnet_main_path_is_one_column_with_its_skip_convs_beside_it():
    graph = _template("resnet")
    positions = layered_positions(graph, "down")
    main, node = [], graph.ids[0]
    while node is not None:  # a block's input feeds its first conv before the skip
        main.append(node)
        users = graph.consumers(node)
        node = users[0] if users else None
    assert len(main) > 25
    assert {positions[n][0] for n in main} == {0.0}
    for node in graph:
        if node.id not in main:  # the 1×1 projection conv and its BatchNorm
            assert positions[node.id][0] == pytest.approx(COLUMN_WIDTH, abs=0.5)


def test_inception_branches_sit_side_by_side_centred_under_their_fork():
    graph = Graph()
    x = add(graph, "Input", None, {"shape": [3, 32, 32]}, id="input")
    out = inception_block(graph, x)
    positions = layered_positions(graph, "down")
    firsts = graph.consumers("input")
    assert len(firsts) == 4
    xs = sorted(positions[b][0] for b in firsts)
    assert {positions[b][1] for b in firsts} == {ROW_HEIGHT}
    assert [b - a for a, b in zip(xs, xs[1:], strict=False)] == pytest.approx([COLUMN_WIDTH] * 3)
    assert sum(xs) / 4 == pytest.approx(positions["input"][0])
    assert positions[out][0] == pytest.approx(positions["input"][0])


def _group_layers_contiguous(graph: Graph, positions, axis: int) -> None:
    layers: dict[float, list[str]] = {}
    for nid, pos in positions.items():
        layers.setdefault(round(pos[axis], 3), []).append(nid)
    for row in layers.values():
        row.sort(key=lambda n: positions[n][1 - axis])
        for group in graph.groups:
            inside = set(graph.groups.nodes(group.id))
            at = [k for k, n in enumerate(row) if n in inside]
            if at:
                assert at == list(range(at[0], at[-1] + 1)), (group.id, row)


def _grouped_across_branches() -> Graph:
    """Two inception blocks whose groups pick non-neighbouring branches, nested in a third."""
    graph = Graph()
    x = add(graph, "Input", None, {"shape": [3, 32, 32]}, id="input")
    for _ in range(2):
        before = set(graph.ids)
        x = inception_block(graph, x)
        firsts = [u for u in graph.ids if u not in before and graph.node(u).inputs
                  and graph.node(u).inputs[0] not in set(graph.ids) - before]
        outer = graph.groups.add([firsts[0], firsts[3]], "ends")
        graph.groups.add([outer.id, firsts[1]], "outer")
    return graph


@pytest.mark.parametrize("direction", ["down", "right"])
def test_the_members_of_a_group_stay_side_by_side(direction):
    axis = 1 if direction == "down" else 0
    graph = _grouped_across_branches()
    assert len(graph.groups) == 4
    _group_layers_contiguous(graph, layered_positions(graph, direction), axis)
    for name in TEMPLATES:
        graph = _template(name)
        _group_layers_contiguous(graph, layered_positions(graph, direction), axis)


def _resolution_stages(graph: Graph) -> list[list[str]]:
    """The template's nodes (built along its main path) cut into runs of one spatial size."""
    from cnnstudio.core.shapes import infer_shapes

    infos = infer_shapes(graph).nodes
    stages: list[list[str]] = []
    size = None
    for nid in graph.ids:
        if infos[nid].shape[1:] != size:
            stages.append([])
            size = infos[nid].shape[1:]
        stages[-1].append(nid)
    return stages


def test_the_unet_template_is_a_u():
    graph = _template("unet")
    layout = compute_layout(graph, "down")
    assert layout.kind == "u"
    pos = layout.positions
    _assert_no_overlap(pos)
    stages = _resolution_stages(graph)
    assert len(stages) == 5  # 32×32, 16×16, 8×8 bottleneck, 16×16, 32×32
    columns = [{pos[n][0] for n in stage} for stage in stages]
    assert all(len(c) == 1 for c in columns)  # each stage one column flowing down
    xs = [c.pop() for c in columns]
    assert xs == sorted(xs) and len(set(xs)) == 5  # left to right: encoder, then decoder
    for stage in stages:
        ys = [pos[n][1] for n in stage]
        assert ys == sorted(ys)
    tops = [min(pos[n][1] for n in stage) for stage in stages]
    centres = [sum(pos[n][1] for n in s) / len(s) for s in stages]
    assert tops[0] < tops[1] < tops[2] and tops[2] > tops[3] > tops[4]  # down, then up
    assert centres[2] == max(centres)  # the bottleneck lowest
    stage_of = {n: i for i, stage in enumerate(stages) for n in stage}
    skips = [(s, n.id) for n in graph if n.type == "Concat" for s in n.inputs
             if stage_of[s] < 2 < stage_of[n.id]]
    assert {(stage_of[s], stage_of[d]) for s, d in skips} == {(0, 4), (1, 3)}
    for src, dst in skips:  # across at about one height, above every stage between
        assert 0 <= pos[dst][1] - pos[src][1] <= ROW_HEIGHT
        between = [n for n, p in pos.items() if pos[src][0] < p[0] < pos[dst][0]]
        assert between and all(pos[n][1] - CARD_H / 2 > pos[dst][1] for n in between)


def _unet(levels: int, residual: bool) -> Graph:
    graph = Graph()
    x = add(graph, "Input", None, {"shape": [3, 64, 64]}, id="input")
    skips, channels = [], 8
    for _ in range(levels):
        x = double_conv(graph, x, channels)
        if residual:
            x = residual_block(graph, x, channels, channels)
        skips.append((x, channels))
        x = add(graph, "MaxPool2d", x, {"kernel_size": 2, "stride": 2})
        channels *= 2
    x = double_conv(graph, x, channels)
    for skip, channels in reversed(skips):
        x = unet_up(graph, x, skip, channels, learned=residual)
    add(graph, "Conv2d", x, {"out_channels": 2, "kernel_size": 1})
    return graph


@pytest.mark.parametrize(("levels", "residual"), [(1, False), (4, False), (3, True)])
def test_deeper_unets_and_residual_stages_are_us_too(levels, residual):
    graph = _unet(levels, residual)
    layout = compute_layout(graph, "down")
    assert layout.kind == "u"
    pos = layout.positions
    _assert_no_overlap(pos)
    for (src, dst), points in layout.routes.items():
        for seg in zip(points, points[1:], strict=False):
            assert not any(_segment_hits_rect(seg, x, y, CARD_W, CARD_H)
                           for nid, (x, y) in pos.items() if nid not in (src, dst))
    concats = [n for n in graph if n.type == "Concat"]
    assert len(concats) == levels
    for concat in concats:
        skip = concat.inputs[1]
        assert pos[skip][0] < pos[concat.id][0]
        assert 0 <= pos[concat.id][1] - pos[skip][1] <= ROW_HEIGHT
    assert _crossings(layout.routes) <= levels - 1


def test_a_plain_chain_and_right_direction_are_not_drawn_as_a_u():
    assert compute_layout(_template("vgg"), "down").kind == "layered"
    assert compute_layout(_template("unet"), "right").kind == "layered"
    graph = _template("unet")  # shapes unknown: a Concat input cut off
    graph.disconnect("relu4", "concat1")
    graph.node("concat1").inputs.append("nowhere")
    assert compute_layout(graph, "down").kind == "layered"


@pytest.mark.parametrize("name", ["resnet", "inception", "unet", "vgg"])
def test_direction_right_swaps_the_axes(name):
    graph = _template(name)
    engine = layered_result(graph, direction="down")
    paths = group_paths(graph)
    if name != "unet":
        down = layered_positions(graph, "down")
        rows = along_offsets(engine.layer, paths, "down")
        assert all(down[n][1] == rows[engine.layer[n]] for n in graph.ids)
    right = layered_positions(graph, "right")
    columns = along_offsets(engine.layer, paths, "right")
    assert all(b - a >= FLOW_RIGHT_COLUMN for a, b in zip(columns, columns[1:], strict=False))
    for nid, (x, _y) in right.items():
        assert x == columns[engine.layer[nid]]
    for a in graph.ids:  # the same order across the flow in every layer
        for b in graph.ids:
            if engine.layer[a] == engine.layer[b] and engine.across[a] < engine.across[b]:
                assert right[a][1] < right[b][1]
    graph.direction = "right"
    assert layered_positions(graph) == right


def test_an_unknown_direction_is_refused():
    with pytest.raises(ValueError, match="'down' or 'right'"):
        layered_positions(_template("xo"), "up")


@pytest.mark.parametrize("direction", ["down", "right"])
def test_auto_layout_keeps_folded_groups_folded_and_unfolding_restores_the_layout(direction):
    graph = _residual_chain(60)
    graph.direction = direction
    axis = 1 if direction == "down" else 0
    pitch = ROW_HEIGHT if axis else FLOW_RIGHT_COLUMN
    layer = {nid: round(p[axis] / pitch) for nid, p in layered_positions(graph).items()}

    def rows(first: int, last: int) -> list[str]:  # whole rows: nothing stands beside
        return [nid for nid in graph.ids if first <= layer[nid] <= last]

    inner = graph.groups.add(rows(4, 6), "first three")
    stage = graph.groups.add([inner.id, *rows(7, 19)], "stage")
    later = graph.groups.add(rows(30, 44), "later")
    graph.move_nodes({nid: (0.0, 0.0) for nid in graph.ids})
    laid_out = layered_positions(graph)
    graph.groups.set_collapsed(stage.id, True, 12345.0)  # a stale shift
    graph.groups.set_collapsed(inner.id, True, 7.0)
    graph.groups.set_collapsed(later.id, True, 0.0)
    auto_layout(graph)
    folded = {g.id: g.fold_shift for g in graph.groups if g.collapsed}
    assert set(folded) == {stage.id, inner.id, later.id}
    # Each shift is the folded block's length along the flow at the new positions.
    for group_id in (stage.id, later.id):
        along = [graph.node(n).pos[axis] for n in graph.groups.nodes(group_id)]
        assert folded[group_id] == pytest.approx(max(along) - min(along))
    assert folded[inner.id] == pytest.approx(2 * pitch)
    # Unfolding, outermost first, puts back exactly the laid-out positions.
    for group_id in (stage.id, inner.id, later.id):
        graph.move_nodes(unfold_moves(graph, group_id))
        graph.groups.set_collapsed(group_id, False)
    for node in graph:
        assert node.pos == pytest.approx(laid_out[node.id])


def test_auto_layout_moves_every_node_in_one_event():
    graph = _template("inception")
    events = []
    graph.subscribe(lambda event, **details: events.append((event, details)))
    auto_layout(graph)
    moved = [d for e, d in events if e == "nodes_moved"]
    assert len(moved) == 1 and set(moved[0]["nodes"]) == set(graph.ids)
    assert not [e for e, _ in events if e == "node_moved"]


def test_nodes_on_a_cycle_still_get_positions():
    data = {"nodes": [
        {"id": "input", "type": "Input", "params": {"shape": [1, 8, 8]}, "inputs": []},
        {"id": "a", "type": "Add", "inputs": ["input", "c"]},
        {"id": "b", "type": "ReLU", "inputs": ["a"]},
        {"id": "c", "type": "ReLU", "inputs": ["b"]},
        {"id": "d", "type": "ReLU", "inputs": ["d"]},
        {"id": "e", "type": "Add", "inputs": ["c", "input"]}]}
    graph = Graph.from_dict(data, allow_cycles=True)
    graph.node("e").inputs.append("nowhere")  # a dangling input is ignored too
    for direction in ("down", "right"):
        positions = layered_positions(graph, direction)
        assert set(positions) == set(graph.ids)
        _assert_no_overlap(positions)
    auto_layout(graph)
    assert all(n.pos is not None for n in graph)


def test_the_layout_is_deterministic_and_empty_graphs_work():
    graph = _residual_chain(300)
    assert layered_positions(graph) == layered_positions(graph.copy())
    assert layered_positions(Graph()) == {}
    auto_layout(Graph())


@pytest.mark.parametrize("name", ["unet", "resnet"])
def test_shapes_given_lay_out_as_the_shapes_inferred(name):
    """A caller that knows the shapes (the editor's inference) passes them: the layout is
    the one that infers them; a U needs them, so without any known shape it is no U."""
    from cnnstudio.core.shapes import infer_shapes

    graph = _template(name)
    shapes = {nid: info.shape for nid, info in infer_shapes(graph).nodes.items()}
    plain, given = compute_layout(graph), compute_layout(graph, shapes=shapes)
    assert (given.positions, given.routes, given.kind) == (plain.positions, plain.routes,
                                                           plain.kind)
    unknown = compute_layout(graph, shapes={nid: None for nid in graph.ids})
    assert unknown.kind == "layered"
    assert plain.kind == ("u" if name == "unet" else "layered")
    laid_out, reference = graph.copy(), graph.copy()
    auto_layout(laid_out, shapes)
    auto_layout(reference)
    assert laid_out.to_dict() == reference.to_dict()
