"""Automatic grouping: residual, bottleneck and inception blocks, stages, on any ids."""

import time

import pytest

from cnnstudio.core.architectures import block_chain
from cnnstudio.core.blocks import (
    add,
    bottleneck_block,
    conv_bn_relu,
    inception_block,
    residual_block,
    vgg_block,
)
from cnnstudio.core.graph import Graph
from cnnstudio.core.grouping import auto_group, detect_groups
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.core.templates import get_template

CONV = {"out_channels": 8, "kernel_size": 3, "padding": 1}


def build(spec: list[tuple[str, str, dict, list[str]]]) -> Graph:
    graph = Graph()
    for node_id, type_name, params, inputs in spec:
        graph.add_node(type_name, params, id=node_id, inputs=inputs)
    assert infer_shapes(graph).ok
    return graph


def residual_chain() -> Graph:
    """Input, a stem conv, three residual blocks (the second downsamples through a
    projection skip), a head; ids are arbitrary strings in no particular order."""
    return build([
        ("node_17", "Input", {"shape": [3, 16, 16]}, []),
        ("node_3", "Conv2d", CONV, ["node_17"]),
        ("node_40", "ReLU", {}, ["node_3"]),
        # block A: keeps 8×16×16
        ("node_9", "Conv2d", CONV, ["node_40"]),
        ("node_2", "BatchNorm2d", {}, ["node_9"]),
        ("x_relu", "ReLU", {}, ["node_2"]),
        ("node_33", "Conv2d", CONV, ["x_relu"]),
        ("node_5", "Add", {}, ["node_33", "node_40"]),
        ("node_6", "ReLU", {}, ["node_5"]),
        # block B: 8×16×16 → 16×8×8, projection skip
        ("b1", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1, "stride": 2},
         ["node_6"]),
        ("b2", "ReLU", {}, ["b1"]),
        ("b3", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}, ["b2"]),
        ("proj", "Conv2d", {"out_channels": 16, "kernel_size": 1, "stride": 2}, ["node_6"]),
        ("sum_b", "Add", {}, ["b3", "proj"]),
        ("act_b", "ReLU", {}, ["sum_b"]),
        # block C: keeps 16×8×8
        ("c1", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}, ["act_b"]),
        ("c2", "Add", {}, ["act_b", "c1"]),
        ("c3", "ReLU", {}, ["c2"]),
        ("gap", "AdaptiveAvgPool2d", {"output_size": 1}, ["c3"]),
        ("flat", "Flatten", {}, ["gap"]),
        ("fc", "Linear", {"out_features": 4}, ["flat"]),
    ])


def groups_of(graph: Graph) -> dict[str, set[str]]:
    return {g.name: set(graph.groups.nodes(g.id)) for g in graph.groups}


def test_residual_blocks_and_their_stage_on_arbitrary_ids():
    graph = residual_chain()
    ids = auto_group(graph)
    assert groups_of(graph) == {
        "Residual block 1": {"node_9", "node_2", "x_relu", "node_33", "node_5", "node_6"},
        "Residual block 2": {"b1", "b2", "b3", "proj", "sum_b", "act_b"},
        "Residual block 3": {"c1", "c2", "c3"},
        # Block 1 keeps the size but follows the stem, not a block; block 2 downsamples,
        # block 3 follows it at the same size: one stage of two.
        "Stage 1 (2 blocks)": {"b1", "b2", "b3", "proj", "sum_b", "act_b", "c1", "c2", "c3"},
    }
    stage = graph.groups.get(ids[-1])
    assert stage.name == "Stage 1 (2 blocks)" and stage.parent is None
    assert [graph.groups.get(c).name for c in graph.groups.children(stage.id)] \
        == ["Residual block 2", "Residual block 3"]
    assert graph.node("node_17").group is None and graph.node("node_40").group is None


def test_the_activation_after_an_add_joins_only_when_it_is_the_only_consumer():
    graph = residual_chain()
    graph.add_node("Linear", {"out_features": 2}, id="tap",
                   inputs=[graph.add_node("Flatten", {}, inputs=["c2"]).id])
    proposals = {p.name: set(p.nodes) for p in detect_groups(graph)}
    assert proposals["Residual block 3"] == {"c1", "c2"}


def test_bottlenecks_are_named_for_their_three_convolutions():
    graph = Graph()
    x = add(graph, "Input", None, {"shape": [16, 8, 8]}, id="input")
    x = bottleneck_block(graph, x, 4, 16)  # keeps 16 channels: identity skip
    x = bottleneck_block(graph, x, 8, 16, stride=2)  # projection skip
    x = residual_block(graph, x, 32, 32)
    ids = auto_group(graph)
    names = [graph.groups.get(i).name for i in ids]
    assert names == ["Bottleneck 1", "Bottleneck 2", "Residual block 1",
                     "Stage 1 (2 blocks)"]
    first, second = (set(graph.groups.nodes(i)) for i in ids[:2])
    assert len(first) == 10 and len(second) == 12  # 3 conv-BN(-ReLU) + Add + ReLU (+ skip)


def test_inception_blocks_are_the_branches_and_the_concat():
    graph = Graph()
    x = add(graph, "Input", None, {"shape": [3, 16, 16]}, id="input")
    stem = conv_bn_relu(graph, x, 16)
    before = set(graph.ids)
    first = inception_block(graph, stem)
    block_one = set(graph.ids) - before
    x = add(graph, "MaxPool2d", first, {"kernel_size": 2, "stride": 2})
    before = set(graph.ids)
    inception_block(graph, x)
    block_two = set(graph.ids) - before
    proposals = detect_groups(graph)
    assert [(p.name, p.kind) for p in proposals] == [("Inception block 1", "inception"),
                                                     ("Inception block 2", "inception")]
    assert set(proposals[0].nodes) == block_one and len(block_one) == 14
    assert set(proposals[1].nodes) == block_two
    assert stem not in proposals[0].nodes  # the fork feeds the block; it is not in it


def test_a_unet_skip_concat_is_no_inception_block():
    unet = get_template("unet").graph()
    data = unet.to_dict()
    data.pop("groups")
    plain = Graph.from_dict(data)
    kinds = {p.kind for p in detect_groups(plain)}
    assert kinds == {"conv stage"}  # the two encoder stages, closed by their pooling


def test_vgg_chain_gets_stages_closed_by_pooling():
    graph = Graph()
    x = add(graph, "Input", None, {"shape": [3, 32, 32]}, id="input")
    runs = []
    for channels in (8, 16, 32):
        before = set(graph.ids)
        x = vgg_block(graph, x, channels, 2)
        runs.append(set(graph.ids) - before)
    x = add(graph, "AdaptiveAvgPool2d", x, {"output_size": 1})
    add(graph, "Linear", add(graph, "Flatten", x), {"out_features": 3})
    auto_group(graph)
    assert groups_of(graph) == {"Stage 1": runs[0], "Stage 2": runs[1], "Stage 3": runs[2]}


def test_a_single_conv_stage_is_not_grouped():
    graph = build([
        ("input", "Input", {"shape": [1, 8, 8]}, []),
        ("conv", "Conv2d", CONV, ["input"]),
        ("relu", "ReLU", {}, ["conv"]),
        ("pool", "MaxPool2d", {"kernel_size": 2}, ["relu"]),
        ("flat", "Flatten", {}, ["pool"]),
        ("fc", "Linear", {"out_features": 2}, ["flat"]),
    ])
    assert detect_groups(graph) == []
    assert auto_group(graph) == [] and len(graph.groups) == 0


def test_a_block_inside_a_residual_branch_nests():
    graph = Graph()
    x = add(graph, "Input", None, {"shape": [8, 8, 8]}, id="input")
    fork = add(graph, "ReLU", x, id="fork")
    mixed = inception_block(graph, fork, 8, 8, 8, 8)
    back = add(graph, "Conv2d", mixed, {"out_channels": 8, "kernel_size": 1})
    add(graph, "Add", [back, fork], id="sum")
    ids = auto_group(graph)
    inner, outer = (graph.groups.get(i) for i in ids)
    assert (inner.name, outer.name) == ("Inception block 1", "Residual block 1")
    assert inner.parent == outer.id
    assert set(graph.groups.nodes(outer.id)) == set(graph.ids) - {"input", "fork"}
    assert graph.groups.children(outer.id)[-1] == inner.id


def test_nodes_already_grouped_are_left_alone_and_names_continue():
    graph = residual_chain()
    mine = graph.groups.add(["c1", "c2", "c3"], "Residual block 1")
    ids = auto_group(graph)
    names = {graph.groups.get(i).name: set(graph.groups.nodes(i)) for i in ids}
    # Block 3 is the user's; the others get the next free numbers and make no stage
    # (block 2's successor is grouped already).
    assert names == {"Residual block 2": {"node_9", "node_2", "x_relu", "node_33", "node_5",
                                          "node_6"},
                     "Residual block 3": {"b1", "b2", "b3", "proj", "sum_b", "act_b"}}
    assert graph.groups.nodes(mine.id) == ["c1", "c2", "c3"]
    assert graph.groups.get(mine.id).parent is None


def test_detect_changes_nothing_and_a_second_run_adds_nothing():
    graph = block_chain(200)
    data = graph.to_dict()
    data.pop("groups")
    plain = Graph.from_dict(data)
    before = plain.to_dict()
    proposals = detect_groups(plain)
    assert plain.to_dict() == before and proposals
    ids = auto_group(plain)
    assert len(ids) == len(proposals)
    grouped = plain.to_dict()
    assert detect_groups(plain) == [] and auto_group(plain) == []
    assert plain.to_dict() == grouped
    every = [n for g in grouped["groups"] for n in g["nodes"]]
    assert len(every) == len(set(every))  # no node or group in two groups
    assert Graph.from_dict(grouped).to_dict() == grouped


def test_results_are_deterministic():
    first, second = residual_chain(), residual_chain()
    assert detect_groups(first) == detect_groups(second)
    auto_group(first)
    auto_group(second)
    assert first.to_dict() == second.to_dict()


def test_a_graph_with_a_cycle_or_no_merges_gets_nothing():
    cyclic = Graph.from_dict({"nodes": [
        {"id": "a", "type": "ReLU", "inputs": ["b"]},
        {"id": "b", "type": "ReLU", "inputs": ["a"]}]}, allow_cycles=True)
    assert detect_groups(cyclic) == []
    assert detect_groups(Graph()) == []


def test_a_thousand_nodes_group_in_under_200_ms():
    data = block_chain(1000).to_dict()
    data.pop("groups")
    timings = []
    for _ in range(3):
        plain = Graph.from_dict(data)
        start = time.perf_counter()
        ids = auto_group(plain)
        timings.append(time.perf_counter() - start)
    assert len(ids) == 141 + 4
    assert min(timings) < 0.2, f"{min(timings) * 1000:.0f} ms"


@pytest.mark.parametrize("template", ["resnet", "inception", "vgg", "unet", "lenet5"])
def test_templates_are_grouped_already(template):
    graph = get_template(template).graph()
    assert graph.groups.ids and auto_group(graph) == []
