"""Impossible kernels explain themselves and offer repairs; lone layers offer a place."""

from __future__ import annotations

import pytest

from cnnstudio.core.edits import apply_fix
from cnnstudio.core.graph import Graph
from cnnstudio.core.shapes import infer_shapes


def _net(conv_params: dict, shape=(3, 32, 32), conv="Conv2d") -> Graph:
    g = Graph()
    g.add_node("Input", {"shape": list(shape)}, id="input", pos=(0.0, 0.0))
    g.add_node(conv, conv_params, id="conv1", inputs=["input"], pos=(0.0, 90.0))
    return g


def test_kernel_larger_than_input_shows_the_failing_arithmetic():
    g = _net({"out_channels": 8, "kernel_size": 40})
    inference = infer_shapes(g)
    info = inference.nodes["conv1"]
    assert info.shape is None
    assert info.formulas[:2] == ["H_out = ⌊(32 + 2·0 − 40)/1⌋ + 1 = −7 < 1",
                                 "W_out = ⌊(32 + 2·0 − 40)/1⌋ + 1 = −7 < 1"]
    assert "the kernel spans 40, the padded input only 32" in info.formulas


def test_only_the_short_dimension_is_marked():
    g = _net({"out_channels": 8, "kernel_size": [3, 40], "padding": 1}, shape=(1, 28, 28))
    formulas = infer_shapes(g).nodes["conv1"].formulas
    assert formulas[0] == "H_out = ⌊(28 + 2·1 − 3)/1⌋ + 1 = 28"
    assert formulas[1] == "W_out = ⌊(28 + 2·1 − 40)/1⌋ + 1 = −9 < 1"
    assert "W: " not in formulas[2] and "spans 40, the padded input only 30" in formulas[2]


@pytest.mark.parametrize(("label", "param", "value", "shape"), [
    ("Shrink kernel_size to 32", "kernel_size", 32, (8, 1, 1)),
    ("Set padding to 4", "padding", 4, (8, 1, 1)),
])
def test_both_repairs_are_offered_and_each_makes_the_layer_fit(label, param, value, shape):
    g = _net({"out_channels": 8, "kernel_size": 40})
    [problem] = infer_shapes(g).problems
    fixes = {f.label: f for f in problem.fixes}
    assert list(fixes) == ["Shrink kernel_size to 32", "Set padding to 4"]
    apply_fix(g, fixes[label])
    assert g.node("conv1").params[param] == value
    inference = infer_shapes(g)
    assert inference.ok and inference.nodes["conv1"].shape == shape


def test_dilated_and_per_dimension_kernels_get_fitting_repairs():
    g = _net({"out_channels": 4, "kernel_size": [5, 9], "dilation": 4}, shape=(1, 20, 20))
    [problem] = infer_shapes(g).problems
    assert "dilated kernel" in problem.message
    for fix in problem.fixes:
        h = g.copy()
        apply_fix(h, fix)
        assert infer_shapes(h).ok, fix.label
    assert [f.label for f in problem.fixes] == ["Shrink kernel_size to 5",
                                                "Set padding to 0×7"]


def test_a_repair_that_torch_would_refuse_is_not_offered():
    # reflect padding must stay below the input size: padding 4 on a 2-pixel input is out.
    g = _net({"out_channels": 2, "kernel_size": 10, "padding_mode": "reflect"},
             shape=(1, 2, 2))
    [problem] = infer_shapes(g).problems
    assert [f.label for f in problem.fixes] == ["Shrink kernel_size to 2"]


def test_pooling_window_larger_than_input_offers_a_smaller_window():
    g = _net({"kernel_size": 8}, shape=(4, 5, 5), conv="MaxPool2d")
    inference = infer_shapes(g)
    assert inference.nodes["conv1"].formulas == ["H_out = ⌊(5 + 2·0 − 8)/8⌋ + 1 = 0 < 1"]
    [fix] = inference.problems[0].fixes
    apply_fix(g, fix)
    assert g.node("conv1").params["kernel_size"] == 5 and infer_shapes(g).ok


def test_lone_layer_is_offered_the_nearest_fitting_layer_above_it():
    g = _net({"out_channels": 8, "kernel_size": 3})
    g.add_node("Flatten", {}, id="flat", inputs=["conv1"], pos=(0.0, 180.0))
    g.add_node("Linear", {"out_features": 10}, id="fc", inputs=["flat"], pos=(0.0, 270.0))
    # Dropped beside conv1, below it: a BatchNorm2d fits after conv1, not after flat.
    g.add_node("BatchNorm2d", {}, id="bn", pos=(150.0, 200.0))
    by_node = {p.node: p for p in infer_shapes(g).problems}
    assert [f.label for f in by_node["bn"].fixes] == ["Connect after conv1", "Delete bn"]
    apply_fix(g, by_node["bn"].fix)
    assert g.node("bn").inputs == ["conv1"]
    assert infer_shapes(g).nodes["bn"].shape == (8, 30, 30)


def test_lone_layer_fitting_nowhere_is_offered_only_delete():
    g = _net({"out_channels": 8, "kernel_size": 3})
    g.add_node("Conv3d", {"out_channels": 2, "kernel_size": 3}, id="c3", pos=(0.0, 200.0))
    by_node = {p.node: p for p in infer_shapes(g).problems}
    assert [f.kind for f in by_node["c3"].fixes] == ["remove_node"]
