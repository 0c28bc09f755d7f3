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
