"""group_summary: a block's facts as seen from outside (shapes in/out, sums, problems)."""

from __future__ import annotations

import pytest

from cnnstudio.core.blocks import add, conv_bn_relu, inception_block, residual_block, unet_up
from cnnstudio.core.errors import MissingNodeError
from cnnstudio.core.graph import Graph
from cnnstudio.core.shapes import ERROR, infer_shapes
from cnnstudio.core.summary import group_summary
from cnnstudio.core.templates import get_template


def _added(g: Graph, build) -> tuple[str, list[str]]:
    """Run `build()` (which adds nodes to `g`); return its last id and the new node ids."""
    before = set(g.ids)
    last = build()
    return last, [nid for nid in g.ids if nid not in before]


def _resnet() -> tuple[Graph, dict[str, list[str]]]:
    """input 3×32×32 → stem (32 ch) → block a (32→64, stride 2) → block b (64→64) → head."""
    g = Graph()
    x = add(g, "Input", None, {"shape": [3, 32, 32]}, id="input")
    x = conv_bn_relu(g, x, 32)
    x, block_a = _added(g, lambda: residual_block(g, x, 64, 32, stride=2))
    x, block_b = _added(g, lambda: residual_block(g, x, 64, 64))
    x = add(g, "AdaptiveAvgPool2d", x, {"output_size": 1}, id="gap")
    x = add(g, "Flatten", x, id="flatten")
    add(g, "Linear", x, {"out_features": 10}, id="classifier")
    return g, {"a": block_a, "b": block_b}


def _sums(g: Graph, ids: list[str]) -> tuple[int, int, int]:
    inference = infer_shapes(g)
    infos = [inference.nodes[nid] for nid in ids]
    return (sum(i.params for i in infos), sum(i.macs for i in infos),
            sum(i.memory for i in infos))


def test_a_residual_block_with_a_projection_skip_is_seen_from_outside():
    g, blocks = _resnet()
    group = g.groups.add(blocks["a"], "Residual a")
    s = group_summary(g, infer_shapes(g), group.id)
    assert (s.in_shape, s.out_shape) == ((32, 32, 32), (64, 16, 16))
    # conv 3×3 32→64 + BN + conv 3×3 64→64 + BN + 1×1 projection 32→64 + BN (no biases)
    assert s.params == 32 * 64 * 9 + 128 + 64 * 64 * 9 + 128 + 32 * 64 + 128 == 57_728
    assert (s.params, s.macs, s.memory) == _sums(g, blocks["a"])
    assert s.layers == len(blocks["a"]) == 9
    assert s.problems == [] and s.severity is None
    assert s.in_shapes == [(32, 32, 32)] and s.out_shapes == [(64, 16, 16)]


def test_a_stage_of_nested_blocks_sums_every_node_inside():
    g, blocks = _resnet()
    a = g.groups.add(blocks["a"], "Block a")
    b = g.groups.add(blocks["b"], "Block b")
    stage = g.groups.add([a.id, b.id], "Stage")
    inference = infer_shapes(g)
    s = group_summary(g, inference, stage.id)
    assert (s.in_shape, s.out_shape) == ((32, 32, 32), (64, 16, 16))
    assert s.layers == len(blocks["a"]) + len(blocks["b"]) == 16
    assert (s.params, s.macs, s.memory) == _sums(g, blocks["a"] + blocks["b"])
    inner = group_summary(g, inference, b.id)
    assert (inner.in_shape, inner.out_shape) == ((64, 16, 16), (64, 16, 16))
    assert inner.params == 2 * (64 * 64 * 9 + 128)


def test_an_inception_block_enters_once_and_leaves_by_its_concat():
    g = Graph()
    x = add(g, "Input", None, {"shape": [3, 32, 32]}, id="input")
    x = conv_bn_relu(g, x, 32)
    x, members = _added(g, lambda: inception_block(g, x, 16, 24, 8, 8))
    add(g, "Flatten", x, id="flatten")
    group = g.groups.add(members, "Inception")
    s = group_summary(g, infer_shapes(g), group.id)
    assert (s.in_shape, s.out_shape) == ((32, 32, 32), (16 + 24 + 8 + 8, 32, 32))
    # 1×1 32→16; 1×1 32→12, 3×3 12→24; 1×1 32→4, 5×5 4→8; pool, 1×1 32→8 (all with bias)
    assert s.params == (32 * 16 + 16) + (32 * 12 + 12) + (12 * 24 * 9 + 24) + (32 * 4 + 4) \
        + (4 * 8 * 25 + 8) + (32 * 8 + 8) == 4_744
    assert (s.params, s.macs, s.memory) == _sums(g, members)
    assert s.in_shapes == [(32, 32, 32)]


def test_a_decoder_stage_lists_both_shapes_entering_it():
    g = Graph()
    skip = add(g, "Input", None, {"shape": [16, 32, 32]}, id="input")
    low = add(g, "MaxPool2d", skip, {"kernel_size": 2, "stride": 2}, id="pool")
    low = conv_bn_relu(g, low, 32)
    _, members = _added(g, lambda: unet_up(g, low, skip, 16))
    group = g.groups.add(members, "Up")
    s = group_summary(g, infer_shapes(g), group.id)
    assert s.in_shape == (32, 16, 16)  # the upsampled path comes first
    assert s.in_shapes == [(32, 16, 16), (16, 32, 32)]
    assert s.out_shape == (16, 32, 32)


def test_blocks_at_the_ends_take_the_input_shape_and_the_model_output():
    g, _ = _resnet()
    stem = g.groups.add(g.ids[:4], "Stem")  # input, conv, BN, ReLU
    head = g.groups.add(["gap", "flatten", "classifier"], "Head")
    inference = infer_shapes(g)
    s = group_summary(g, inference, stem.id)
    assert (s.in_shape, s.out_shape) == ((3, 32, 32), (32, 32, 32))
    s = group_summary(g, inference, head.id)
    assert (s.in_shape, s.out_shape) == ((64, 16, 16), (10,))
    assert s.params == 64 * 10 + 10


def test_problems_inside_the_block_and_only_those_set_its_severity():
    g, blocks = _resnet()
    group = g.groups.add(blocks["b"], "Block b")
    first_conv = next(nid for nid in blocks["b"] if g.node(nid).type == "Conv2d")
    g.set_param(first_conv, "kernel_size", 40)  # larger than the 16×16 map: an error
    inference = infer_shapes(g)
    s = group_summary(g, inference, group.id)
    assert s.severity == ERROR
    assert s.problems and {p.node for p in s.problems} <= set(blocks["b"])
    assert first_conv in {p.node for p in s.problems}
    other = g.groups.add(blocks["a"], "Block a")
    assert group_summary(g, inference, other.id).severity is None


def test_a_template_body_grouped_whole_runs_from_input_to_the_head():
    template = get_template("resnet")
    g = template.graph(10)
    for group_id in reversed(g.groups.ids):
        g.groups.remove(group_id)
    body = [nid for nid in g.ids if nid not in ("input", "gap", "flatten", "classifier")]
    group = g.groups.add(body, "Body")
    inference = infer_shapes(g)
    s = group_summary(g, inference, group.id)
    assert s.in_shape == (3, 32, 32)
    assert s.out_shape == tuple(inference.nodes["gap"].input_shapes[0])
    assert s.params == inference.total_params - inference.nodes["classifier"].params


def test_an_emptied_group_has_no_shapes_and_an_unknown_one_is_refused():
    g, blocks = _resnet()
    group = g.groups.add(blocks["b"], "Block b")
    for nid in blocks["b"]:
        g.remove_node(nid)
    s = group_summary(g, infer_shapes(g), group.id)
    assert (s.in_shape, s.out_shape, s.params, s.macs, s.layers) == (None, None, 0, 0, 0)
    with pytest.raises(MissingNodeError, match="no group"):
        group_summary(g, infer_shapes(g), "nope")


def test_facts_follow_an_edit_of_the_same_graph():
    g, blocks = _resnet()
    group = g.groups.add(blocks["b"], "Block b")
    before = group_summary(g, infer_shapes(g), group.id).params
    first_conv = next(nid for nid in blocks["b"] if g.node(nid).type == "Conv2d")
    g.set_param(first_conv, "kernel_size", 1)
    g.set_param(first_conv, "padding", 0)
    after = group_summary(g, infer_shapes(g), group.id).params
    assert before - after == 64 * 64 * 9 - 64 * 64
