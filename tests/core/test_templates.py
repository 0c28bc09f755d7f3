"""Templates and blocks: each builds a valid, laid-out graph."""

import pytest

from cnnstudio.core.blocks import BLOCKS
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import layered_positions
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.core.templates import TEMPLATES, get_template


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_template_infers_without_problems_on_its_data(name):
    template = TEMPLATES[name]
    graph = template.graph()
    inference = infer_shapes(graph, task=template.task, num_classes=template.classes)
    assert inference.problems == []
    assert all(node.pos is not None for node in graph)
    assert len({node.pos for node in graph}) == len(graph)  # no two nodes on top of each other
    Graph.from_dict(graph.to_dict())  # and it survives its file form


def test_required_templates_are_there():
    assert {"xo", "mxnet-mnist", "lenet5", "alexnet-small", "vgg", "resnet", "inception",
            "unet", "cnn1d"} <= set(TEMPLATES)
    assert any(n.type == "Add" for n in get_template("resnet").graph())
    assert any(n.type == "Concat" for n in get_template("inception").graph())
    unet = get_template("unet").graph()
    assert {"ConvTranspose2d", "Upsample", "Concat"} <= {n.type for n in unet}
    with pytest.raises(KeyError, match="unknown template"):
        get_template("nope")


def test_mxnet_mnist_net_has_the_course_parameter_count():
    inference = infer_shapes(get_template("mxnet-mnist").graph())
    assert inference.total_params == 2_315_018


def test_class_count_follows_the_argument():
    graph = get_template("lenet5").graph(classes=7)
    assert infer_shapes(graph, num_classes=7).nodes["classifier"].shape == (7,)


@pytest.mark.parametrize("name", list(BLOCKS))
def test_blocks_insert_a_connected_group_after_any_map(name):
    g = Graph()
    g.add_node("Input", {"shape": [8, 16, 16]}, id="input")
    _, build = BLOCKS[name]
    last = build(g, "input", 8)
    inference = infer_shapes(g)
    assert inference.ok, [str(p) for p in inference.problems]
    assert inference.output == last and len(g) > 3


def test_layout_puts_each_node_below_its_inputs():
    graph = get_template("inception").graph()
    pos = layered_positions(graph)
    for node in graph:
        for src in node.inputs:
            assert pos[src][1] < pos[node.id][1]


EXPECTED_GROUPS = {  # name → (top-level groups in order, {stage: its blocks})
    "xo": (["Conv block", "Classifier"], {}),
    "mxnet-mnist": (["Conv block 1", "Conv block 2", "Classifier"], {}),
    "digits-lenet": (["Conv block", "Classifier"], {}),
    "lenet5": (["Feature extractor", "Classifier"],
               {"Feature extractor": ["Conv block 1", "Conv block 2"]}),
    "alexnet-small": (["Feature extractor", "Classifier"],
                      {"Feature extractor": ["Conv block 1", "Conv block 2", "Conv block 3"]}),
    "vgg": (["VGG block 1", "VGG block 2", "VGG block 3", "Classifier"], {}),
    "resnet": (["Stem", "Stage 1", "Stage 2", "Classifier"],
               {"Stage 1": ["Residual block 1", "Residual block 2"],
                "Stage 2": ["Residual block 3", "Residual block 4"]}),
    "inception": (["Stem", "Inception block 1", "Inception block 2", "Classifier"], {}),
    "unet": (["Encoder 1", "Encoder 2", "Bottleneck", "Decoder 1", "Decoder 2"], {}),
    "cnn1d": (["Conv block 1", "Conv block 2", "Classifier"], {}),
}


def test_every_template_has_its_groups_listed():
    assert set(EXPECTED_GROUPS) == set(TEMPLATES)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_templates_come_grouped_with_stages_holding_their_blocks(name):
    graph = get_template(name).graph()
    top, nested = EXPECTED_GROUPS[name]
    names = {g.id: g.name for g in graph.groups}
    assert [g.name for g in graph.groups if g.parent is None] == top
    for group in graph.groups:
        inner = [names[c] for c in graph.groups.children(group.id) if c in names]
        assert inner == nested.get(group.name, [])
        assert graph.groups.nodes(group.id) and not group.collapsed
    assert len(set(names.values())) == len(names)  # each name tells its card apart
    loose = [n.id for n in graph if n.group is None]
    assert "input" in loose and len(loose) <= 3
    again = Graph.from_dict(graph.to_dict())
    assert again.to_dict() == graph.to_dict()
    assert {(g.name, g.parent and names[g.parent]) for g in again.groups} \
        == {(g.name, g.parent and names[g.parent]) for g in graph.groups}


@pytest.mark.parametrize("name, merge, block", [
    ("resnet", "Add", "Residual block"), ("inception", "Concat", "Inception block"),
    ("unet", "Concat", "Decoder"),
])
def test_each_merge_of_a_template_lies_in_its_block(name, merge, block):
    graph = get_template(name).graph()
    merges = [n for n in graph if n.type == merge]
    assert merges
    for node in merges:
        assert graph.groups.get(node.group).name.startswith(block)


def test_a_residual_block_group_holds_exactly_the_block():
    graph = get_template("resnet").graph()
    down = next(g for g in graph.groups if g.name == "Residual block 3")
    types = sorted(graph.node(n).type for n in graph.groups.nodes(down.id))
    assert types == sorted(["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d",
                            "Conv2d", "BatchNorm2d", "Add", "ReLU"])  # with the projection
