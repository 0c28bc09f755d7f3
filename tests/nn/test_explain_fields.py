"""A filter's box is the input region its value really depends on: checked against a
pixel-raising reference (raise one input pixel at a time, see which outputs move)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnstudio.core.graph import Graph
from cnnstudio.core.templates import get_template
from cnnstudio.nn import build_module
from cnnstudio.nn.builder import forward_to
from cnnstudio.nn.explain import top_activations
from cnnstudio.nn.explain.fields import FilterFields


def support_boxes(graph: Graph, node: str) -> np.ndarray:
    """(C, *map, 4) per output value, the bounding box [y0, x0, y1, x1] of the input pixels
    whose raising changes it; [-1] * 4 when none does. All weights positive and float64,
    so no change cancels out."""
    module = build_module(graph).double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.abs() + 0.01)
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
        module.eval()
        shape = tuple(module.input_shape)
        base = torch.zeros(1, *shape, dtype=torch.float64)
        reference = forward_to(module, base, node)[0]
        pixels = list(np.ndindex(*shape[1:]))
        raised = base.repeat(len(pixels), 1, 1, 1)
        for i, (y, x) in enumerate(pixels):
            raised[i, :, y, x] = 1000.0
        changed = ((forward_to(module, raised, node) - reference).abs() > 1e-6).numpy()
    rows = np.array([p[0] for p in pixels])[:, None, None, None]
    cols = np.array([p[1] for p in pixels])[:, None, None, None]
    big = 10**6
    y0 = np.where(changed, rows, big).min(0)
    x0 = np.where(changed, cols, big).min(0)
    y1 = np.where(changed, rows + 1, -1).max(0)
    x1 = np.where(changed, cols + 1, -1).max(0)
    boxes = np.stack([y0, x0, y1, x1], axis=-1)
    boxes[~changed.any(0)] = -1
    return boxes


def small_inception() -> Graph:
    """The inception template on a 1×12×12 input (cheap to probe pixel by pixel)."""
    graph = get_template("inception").graph()
    graph.set_param("input", "shape", [1, 12, 12])
    return graph


def assert_boxes_match(graph: Graph, node: str) -> None:
    expected = support_boxes(graph, node)
    fields = FilterFields(graph)
    spatial = tuple(build_module(graph).input_shape[1:])
    wrong = []
    for index in np.ndindex(*expected.shape[:-1]):
        channel, position = index[0], index[1:]
        want = None if expected[index][0] < 0 else tuple(int(v) for v in expected[index])
        got = fields.box(node, channel, position, spatial)
        if got != want:
            wrong.append((channel, position, got, want))
    assert not wrong, f"{len(wrong)} wrong boxes, e.g. {wrong[:3]}"


@pytest.mark.parametrize("node", ["concat1", "maxpool2", "concat2", "relu4"])
def test_inception_boxes_are_each_filters_own_field(node: str) -> None:
    # concat1's first 16 filters come from 1×1 convolutions after a 3×3 one (3×3 fields),
    # the next 24 from a 3×3 (5×5), then a 5×5 (7×7) and a pooled 1×1 (5×5): the union
    # (7×7) is wrong for most of them. maxpool2 keeps the channels of concat1; concat2
    # comes after convolutions that mix all of maxpool2's channels.
    assert_boxes_match(small_inception(), node)


def test_top_k_hits_of_a_concat_carry_their_filters_box() -> None:
    graph = small_inception()
    torch.manual_seed(0)
    module = build_module(graph)
    x = torch.randn(12, 1, 12, 12)
    expected = support_boxes(graph, "concat1")
    tops = top_activations(module, graph, "concat1", x, lambda b: b.float(), 2)
    sizes = set()
    for top in tops:
        for hit in top.hits:
            want = tuple(int(v) for v in expected[(top.filter, *hit.position)])
            assert hit.box == (None if want[0] < 0 else want)
            if hit.box is not None:
                sizes.add((hit.box[2] - hit.box[0], hit.box[3] - hit.box[1]))
    assert (3, 3) in sizes  # at least one interior hit of the 3×3 branch


def test_a_position_that_sees_only_padding_has_no_box() -> None:
    graph = Graph()
    graph.add_node("Input", {"shape": [1, 8, 8]}, id="input")
    graph.add_node("Conv2d", {"out_channels": 2, "kernel_size": 1, "padding": 2}, id="conv",
                   inputs=["input"])
    graph.add_node("MaxPool2d", {"kernel_size": 2, "stride": 2}, id="pool", inputs=["conv"])
    for node in ("conv", "pool"):
        assert_boxes_match(graph, node)  # None exactly where no pixel is seen
    fields = FilterFields(graph)
    assert fields.box("conv", 0, (0, 0), (8, 8)) is None
    assert fields.box("conv", 0, (2, 3), (8, 8)) == (0, 1, 1, 2)
    # Negative weights: the border, which sees only padding, has the largest value.
    module = build_module(graph)
    with torch.no_grad():
        module.module_for("conv").weight.fill_(-1.0)
        module.module_for("conv").bias.fill_(0.5)
    tops = top_activations(module, graph, "conv", torch.rand(4, 1, 8, 8),
                           lambda b: b.float(), 2)
    assert all(h.position == (0, 0) and h.box is None for t in tops for h in t.hits)


def test_one_dimensional_and_unknown_nodes() -> None:
    graph = Graph()
    graph.add_node("Input", {"shape": [2, 10]}, id="input")
    graph.add_node("Conv1d", {"out_channels": 3, "kernel_size": 3}, id="a", inputs=["input"])
    graph.add_node("Conv1d", {"out_channels": 2, "kernel_size": 5, "padding": 1}, id="b",
                   inputs=["input"])
    graph.add_node("Concat", {}, id="cat", inputs=["a", "b"])
    fields = FilterFields(graph)
    assert fields.box("cat", 0, (4,), (10,)) == (0, 4, 1, 7)  # from a: 3 taps
    assert fields.box("cat", 3, (4,), (10,)) == (0, 3, 1, 8)  # from b: 5 taps, padding 1
    assert fields.box("missing", 0, (1,), (10,)) is None
