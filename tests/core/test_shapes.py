"""Shape inference: shapes, counts, formulas, receptive fields and problems in words."""

import pytest

from cnnstudio.core.edits import apply_fix
from cnnstudio.core.graph import Graph
from cnnstudio.core.shapes import ERROR, WARNING, infer_shapes


def one_layer(type_name, params, shape):
    g = Graph()
    g.add_node("Input", {"shape": list(shape)}, id="input")
    g.add_node(type_name, params, id="layer", inputs=["input"])
    inference = infer_shapes(g)
    return inference.nodes["layer"], inference


def test_course_example_conv_32x32x3_ten_5x5_filters_pad_2():
    info, inference = one_layer("Conv2d", {"out_channels": 10, "kernel_size": 5, "padding": 2},
                                (3, 32, 32))
    assert info.shape == (10, 32, 32)
    assert info.params == 760
    assert "H_out = ⌊(32 + 2·2 − 5)/1⌋ + 1 = 32" in info.formulas
    assert "params = (5·5·3 + 1)·10 = 760" in info.formulas
    assert info.macs == 10 * 32 * 32 * 5 * 5 * 3
    assert info.memory == 10 * 32 * 32 * 4
    assert inference.ok


def test_course_example_stride_2_and_no_padding():
    info, _ = one_layer("Conv2d", {"out_channels": 10, "kernel_size": 5, "padding": 2,
                                   "stride": 2}, (3, 32, 32))
    assert info.shape == (10, 16, 16)
    info, _ = one_layer("Conv2d", {"out_channels": 3, "kernel_size": 5}, (3, 32, 32))
    assert info.shape == (3, 28, 28)


def test_course_example_maxpool_7x7_ceil_mode():
    info, _ = one_layer("MaxPool2d", {"kernel_size": 2, "stride": 2, "ceil_mode": True},
                        (1, 7, 7))
    assert info.shape == (1, 4, 4)
    assert "H_out = ⌈(7 + 2·0 − 2)/2⌉ + 1 = 4" in info.formulas
    info, _ = one_layer("MaxPool2d", {"kernel_size": 2, "stride": 2}, (1, 7, 7))
    assert info.shape == (1, 3, 3)


def test_kernel_larger_than_input_is_a_problem_in_words():
    info, inference = one_layer("Conv2d", {"out_channels": 4, "kernel_size": 5}, (1, 3, 3))
    assert info.shape is None
    [problem] = inference.problems
    assert problem.node == "layer" and problem.severity == ERROR
    assert "kernel 5×5 is larger than its input 3×3" in problem.message


def test_wrong_rank_gives_a_hint():
    _, inference = one_layer("Conv2d", {"out_channels": 4, "kernel_size": 3}, (16,))
    assert "Conv2d needs a C×H×W input, got 16" in inference.problems[0].message
    _, inference = one_layer("Conv1d", {"out_channels": 4, "kernel_size": 3}, (1, 8, 8))
    assert "use the 2-D version" in inference.problems[0].message


def test_add_of_unequal_shapes_names_both():
    g = Graph()
    g.add_node("Input", {"shape": [3, 8, 8]}, id="input")
    g.add_node("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}, id="a",
               inputs=["input"])
    g.add_node("Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1}, id="b",
               inputs=["input"])
    g.add_node("Add", {}, id="add", inputs=["a", "b"])
    inference = infer_shapes(g)
    assert [str(p) for p in inference.problems] == [
        "add: Add needs equal shapes, got 16×8×8 and 32×8×8"]
    g.set_param("b", "out_channels", 16)
    assert infer_shapes(g).ok
    g.remove_node("b")
    g.connect("a", "add")  # x + x is allowed
    assert infer_shapes(g).nodes["add"].shape == (16, 8, 8)


def test_concat_sums_channels_and_checks_spatial_sizes():
    g = Graph()
    g.add_node("Input", {"shape": [3, 8, 8]}, id="input")
    g.add_node("MaxPool2d", {"kernel_size": 2}, id="pool", inputs=["input"])
    g.add_node("Conv2d", {"out_channels": 5, "kernel_size": 1}, id="c", inputs=["input"])
    g.add_node("Concat", {}, id="cat", inputs=["c", "input"])
    assert infer_shapes(g).nodes["cat"].shape == (8, 8, 8)
    assert "channels = 5 + 3 = 8" in infer_shapes(g).nodes["cat"].formulas
    g.connect("pool", "cat")
    assert "needs the other sizes equal" in infer_shapes(g).problems[0].message


def test_linear_after_a_map_warns_and_the_fix_inserts_flatten():
    g = Graph()
    g.add_node("Input", {"shape": [4, 3, 3]}, id="input")
    g.add_node("Linear", {"out_features": 10}, id="fc", inputs=["input"])
    inference = infer_shapes(g, num_classes=10)
    warning = next(p for p in inference.problems if p.severity == WARNING)
    assert warning.node == "fc" and warning.fix.kind == "insert_flatten"
    apply_fix(g, warning.fix)
    inference = infer_shapes(g, num_classes=10)
    assert inference.ok and not inference.problems
    assert inference.nodes["fc"].input_shapes == [(36,)]
    assert inference.nodes["fc"].params == 370


def test_class_count_mismatch_offers_to_set_out_features_past_activations():
    g = Graph()
    g.add_node("Input", {"shape": [8]}, id="input")
    g.add_node("Linear", {"out_features": 84}, id="fc", inputs=["input"])
    g.add_node("Softmax", {}, id="prob", inputs=["fc"])
    [problem] = infer_shapes(g, num_classes=10).problems
    assert problem.node == "fc"
    assert problem.message == "the classifier gives 84 outputs but the data has 10 classes"
    apply_fix(g, problem.fix)
    assert g.node("fc").params["out_features"] == 10
    assert infer_shapes(g, num_classes=10).ok


def test_dangling_nodes_and_missing_inputs_are_errors_with_fixes():
    g = Graph()
    g.add_node("Input", {"shape": [1, 8, 8]}, id="input")
    g.add_node("Flatten", {}, id="flat", inputs=["input"])
    g.add_node("Linear", {"out_features": 2}, id="fc", inputs=["flat"])
    g.add_node("ReLU", {}, id="lonely")
    g.add_node("Conv2d", {"out_channels": 2, "kernel_size": 3}, id="side", inputs=["input"])
    inference = infer_shapes(g)
    by_node = {p.node: p for p in inference.problems}
    assert "needs an input" in by_node["lonely"].message
    # A lone layer is offered a place first (no positions: after the output), then Delete.
    assert [(f.kind, f.label) for f in by_node["lonely"].fixes] == [
        ("connect_after", "Connect after fc"), ("remove_node", "Delete lonely")]
    assert "goes nowhere" in by_node["side"].message
    assert inference.output == "fc"
    apply_fix(g, by_node["side"].fix)
    apply_fix(g, infer_shapes(g).problems[0].fix)
    assert g.node("lonely").inputs == ["fc"]
    assert infer_shapes(g).ok


def test_no_input_and_two_inputs_are_reported():
    g = Graph()
    g.add_node("ReLU", {}, id="r")
    assert any("no Input node" in p.message for p in infer_shapes(g).problems)
    g = Graph()
    g.add_node("Input", {"shape": [2]}, id="a")
    g.add_node("Input", {"shape": [2]}, id="b")
    g.add_node("Add", {}, id="add", inputs=["a", "b"])
    assert [p.node for p in infer_shapes(g).problems] == ["b"]


def test_downstream_of_a_problem_is_not_reported_twice():
    g = Graph()
    g.add_node("Input", {"shape": [1, 3, 3]}, id="input")
    g.add_node("Conv2d", {"out_channels": 2, "kernel_size": 5}, id="conv", inputs=["input"])
    g.add_node("ReLU", {}, id="relu", inputs=["conv"])
    g.add_node("Flatten", {}, id="flat", inputs=["relu"])
    inference = infer_shapes(g)
    assert [p.node for p in inference.problems] == ["conv"]
    assert inference.nodes["flat"].shape is None


def test_receptive_field_grows_with_kernels_and_jumps_with_strides():
    g = Graph()
    g.add_node("Input", {"shape": [1, 32, 32]}, id="input")
    g.add_node("Conv2d", {"out_channels": 2, "kernel_size": 3}, id="c1", inputs=["input"])
    g.add_node("MaxPool2d", {"kernel_size": 2}, id="p1", inputs=["c1"])
    g.add_node("Conv2d", {"out_channels": 2, "kernel_size": 3, "dilation": 2}, id="c2",
               inputs=["p1"])
    inference = infer_shapes(g)
    rf = {nid: inference.nodes[nid].receptive_field for nid in g.ids}
    assert rf["c1"].size == (3, 3) and rf["c1"].jump == (1, 1)
    assert rf["p1"].size == (4, 4) and rf["p1"].jump == (2, 2)
    assert rf["c2"].size == (4 + 4 * 2, 12) and rf["c2"].jump == (2, 2)
    assert rf["c2"].text() == "12×12 (jump 2×2)"


def test_segmentation_output_must_be_classes_by_h_by_w():
    g = Graph()
    g.add_node("Input", {"shape": [3, 8, 8]}, id="input")
    g.add_node("Conv2d", {"out_channels": 3, "kernel_size": 1}, id="head", inputs=["input"])
    assert infer_shapes(g, task="segmentation", num_classes=3).ok
    assert not infer_shapes(g, task="segmentation", num_classes=5).ok


@pytest.mark.parametrize("params, message", [
    ({"out_channels": 4, "kernel_size": 3, "groups": 2}, "not divisible by groups 2"),
    ({"out_channels": 4, "kernel_size": 3, "padding": 3, "padding_mode": "reflect"},
     "reflect padding 3 must be smaller"),
])
def test_conv_constraints_that_depend_on_the_input(params, message):
    _, inference = one_layer("Conv2d", params, (3, 3, 3))
    assert message in inference.problems[0].message


def test_totals_add_up():
    g = Graph()
    g.add_node("Input", {"shape": [1, 28, 28]}, id="input")
    g.add_node("Conv2d", {"out_channels": 64, "kernel_size": 5}, id="c", inputs=["input"])
    g.add_node("Flatten", {}, id="f", inputs=["c"])
    g.add_node("Linear", {"out_features": 10}, id="fc", inputs=["f"])
    inference = infer_shapes(g)
    assert inference.total_params == (25 + 1) * 64 + (64 * 24 * 24 + 1) * 10
    assert inference.total_macs == 64 * 24 * 24 * 25 + 64 * 24 * 24 * 10
