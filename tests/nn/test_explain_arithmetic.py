"""The Explain view's arithmetic for sliding windows (convolution, pooling) against torch:
the shown sum is the layer's output value, the padding taps are exactly those outside the
input, the max-pool's chosen tap holds the maximum. Other layer kinds, errors and the module's
state: test_explain_layers.py."""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cnnstudio.core.graph import Graph
from cnnstudio.core.templates import get_template
from cnnstudio.nn import BuildError, GraphModule, build_module
from cnnstudio.nn.explain import LayerTrace, ValueExplanation, trace_layer

torch.set_num_threads(1)


def chain(shape: list[int], *layers: tuple[str, dict[str, Any]]) -> GraphModule:
    """Input → layers n0, n1, … as a module with random weights."""
    graph = Graph()
    prev = graph.add_node("Input", {"shape": shape}, id="input").id
    for i, (type_name, params) in enumerate(layers):
        prev = graph.add_node(type_name, params, id=f"n{i}", inputs=[prev]).id
    module = build_module(graph)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-1, 1)
    return module


def close(actual: float, expected: float, scale: float = 1.0) -> bool:
    """Equal within 1e-4 relative to the magnitude of the numbers summed."""
    return abs(actual - expected) <= 1e-4 * max(1.0, abs(expected), scale)


def every_index(trace: LayerTrace, limit: int = 400) -> list[tuple[int, ...]]:
    indexes = list(itertools.product(*(range(n) for n in trace.output_shape)))
    step = max(1, len(indexes) // limit)
    return indexes[::step]


def sample(module: GraphModule, seed: int = 0) -> torch.Tensor:
    return torch.randn((1, *module.input_shape), generator=torch.Generator().manual_seed(seed))


# ---- convolution ---------------------------------------------------------------------


@st.composite
def conv_case(draw: st.DrawFn) -> tuple[list[int], dict[str, Any]]:
    ndim = draw(st.sampled_from([1, 2, 2, 3]))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    sizes = [draw(st.integers(3, 8 if ndim < 3 else 5)) for _ in range(ndim)]
    shape = [groups * draw(st.integers(1, 3)), *sizes]
    padding = draw(st.sampled_from(["same", "valid", 0, 1, 2, [1, 0, 2][:ndim]]))
    stride = 1 if padding == "same" else draw(st.sampled_from([1, 2, 3, [2, 1, 1][:ndim]]))
    params = {
        "out_channels": groups * draw(st.integers(1, 3)),
        "kernel_size": draw(st.sampled_from([1, 2, 3, [3, 2, 1][:ndim]])),
        "stride": stride, "padding": padding,
        "dilation": draw(st.sampled_from([1, 1, 2, [1, 2, 1][:ndim]])),
        "groups": groups, "bias": draw(st.booleans()),
        "padding_mode": draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate",
                                              "circular"])),
    }
    if len(params["kernel_size"] if isinstance(params["kernel_size"], list) else [0]) != ndim:
        params["kernel_size"] = 3
    return shape, params


def taps_inside(x_shape: tuple[int, ...], params: dict[str, Any], weight_shape: tuple[int, ...],
                ndim: int) -> torch.Tensor:
    """Per output position, how many kernel taps fall inside the input: torch's own
    convolution of an all-ones input with an all-ones kernel and zero padding."""
    conv = [F.conv1d, F.conv2d, F.conv3d][ndim - 1]
    ones = torch.ones((1, 1, *x_shape[1:]))
    kernel = torch.ones((1, 1, *weight_shape[2:]))
    return conv(ones, kernel, stride=params["stride"], padding=params["padding"],
                dilation=params["dilation"])[0, 0]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_case(), st.integers(0, 1000))
def test_conv_sum_of_products_plus_bias_is_torchs_value(case, seed):
    shape, params = case
    try:
        module = chain(shape, (f"Conv{len(shape) - 1}d", params), ("ReLU", {}))
    except BuildError:
        assume(False)  # a padding mode the input is too small for, or a kernel too large
    x = sample(module, seed)
    trace = trace_layer(module, "n0", x)
    layer = module.module_for("n0")
    with torch.no_grad():
        expected = layer(x)[0]
        after = torch.relu(expected)
    ndim = len(shape) - 1
    zeros = params["padding_mode"] == "zeros"
    inside = taps_inside(tuple(shape), {**params, "padding": layer.padding},
                         tuple(layer.weight.shape), ndim) if zeros else None
    assert trace.kind == "conv" and trace.output_shape == tuple(expected.shape)
    for index in every_index(trace):
        e = trace.explain(index)
        t = e.terms
        scale = float(np.abs(t["products"]).sum()) + abs(t["bias"] or 0.0)
        assert e.value == pytest.approx(float(expected[index]), abs=1e-6)
        assert close(e.result, e.value, scale)
        assert close(float(t["products"].sum()) + (t["bias"] or 0.0), e.result)
        assert t["bias"] is None or t["bias"] == pytest.approx(float(layer.bias.detach()[index[0]]))
        np.testing.assert_allclose(t["kernel"], layer.weight[index[0]].detach().numpy())
        # the padded taps are exactly those whose position lies outside the input
        outside = ((t["positions"] < 0) | (t["positions"] >= np.array(shape[1:]))).any(-1)
        assert (t["padded"] == outside).all()
        per_group = shape[0] // params["groups"]
        group = index[0] // (params["out_channels"] // params["groups"])
        assert list(t["channels"]) == list(range(group * per_group, (group + 1) * per_group))
        if zeros:
            assert (~t["padded"][0]).sum() == int(inside[index[1:]])
            assert (t["patch"][t["padded"]] == 0).all()
        for c, channel in enumerate(t["channels"]):
            for tap in zip(*np.nonzero(~t["padded"][c]), strict=True):
                position = tuple(int(v) for v in t["positions"][tap])
                assert t["patch"][(c, *tap)] == pytest.approx(float(x[0, channel][position]))
        assert e.after is not None and e.after[:2] == ("n1", "ReLU")
        assert e.after[2] == pytest.approx(float(after[index]), abs=1e-6)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv_same_padding_puts_the_extra_tap_after():
    # An even dilated extent: torch pads ⌊(d·(k − 1))/2⌋ before and the rest after.
    module = chain([1, 6, 6], ("Conv2d", {"out_channels": 1, "kernel_size": [2, 4],
                                          "padding": "same"}))
    trace = trace_layer(module, "n0", sample(module))
    e = trace.explain((0, 0, 0))
    assert e.terms["padding"] == (0, 1)
    assert e.terms["positions"][0, 0].tolist() == [0, -1]
    assert e.terms["padded"][0].tolist() == [[True, False, False, False]] * 2


def test_explaining_a_64_channel_3x3_conv_value_takes_under_5_ms():
    module = chain([64, 32, 32], ("Conv2d", {"out_channels": 64, "kernel_size": 3,
                                             "padding": 1}))
    trace = trace_layer(module, "n0", sample(module))
    times = []
    for i in range(50):
        start = time.perf_counter()
        trace.explain((i, i % 32, (7 * i) % 32))
        times.append(time.perf_counter() - start)
    assert sorted(times)[len(times) // 2] < 0.005


# ---- pooling -------------------------------------------------------------------------


def pool_cases() -> list[tuple[str, list[int], dict[str, Any]]]:
    cases = []
    for ndim, op, k, s, p, ceil in itertools.product(
            (1, 2), ("Max", "Avg"), (2, 3), (None, 1, 2, 3), (0, 1), (False, True)):
        shape = [2, 7] if ndim == 1 else [2, 7, 6]
        params: dict[str, Any] = {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil}
        if op == "Max":
            cases.append((f"MaxPool{ndim}d", shape, params))
            cases.append((f"MaxPool{ndim}d", shape, {**params, "dilation": 2}))
        else:
            cases.append((f"AvgPool{ndim}d", shape, params))
            cases.append((f"AvgPool{ndim}d", shape, {**params, "count_include_pad": False}))
    cases.append(("AvgPool2d", [1, 7, 7], {"kernel_size": 3, "padding": 1, "stride": 2,
                                           "ceil_mode": True, "divisor_override": 5}))
    cases.append(("MaxPool3d", [1, 5, 4, 5], {"kernel_size": 2, "ceil_mode": True}))
    cases.append(("AvgPool3d", [1, 5, 4, 5], {"kernel_size": 2, "padding": 1,
                                              "ceil_mode": True}))
    return cases


@pytest.mark.parametrize(("type_name", "shape", "params"), pool_cases())
def test_pool_window_gives_torchs_value(type_name, shape, params):
    try:
        module = chain(shape, (type_name, params))
    except BuildError:
        pytest.skip("core refuses this window for this input")
    x = sample(module, 3)
    trace = trace_layer(module, "n0", x)
    with torch.no_grad():
        expected = module.module_for("n0")(x)[0]
    for index in every_index(trace):
        e = trace.explain(index)
        t = e.terms
        assert e.kind == "pool" and e.value == pytest.approx(float(expected[index]), abs=1e-6)
        assert close(e.result, e.value)
        outside = ((t["positions"] < 0) | (t["positions"] >= np.array(shape[1:]))).any(-1)
        assert (t["padded"] == outside).all()
        inside = ~t["padded"]
        channel = x[0, index[0]]
        for tap in zip(*np.nonzero(inside), strict=True):
            position = tuple(int(v) for v in t["positions"][tap])
            assert t["patch"][tap] == pytest.approx(float(channel[position]))
        if t["op"] == "max":
            assert (t["patch"][t["padded"]] == -np.inf).all()
            assert t["patch"][t["chosen"]] == t["patch"].max() == pytest.approx(e.value)
        else:
            assert (t["patch"][t["padded"]] == 0).all() and t["chosen"] is None
            assert close(t["sum"] / t["count"], e.value)


@pytest.mark.parametrize("op", ["Avg", "Max"])
@pytest.mark.parametrize(("size_in", "size_out"), [((7, 5), (3, 2)), ((5, 9), (5, 4)),
                                                   ((6, 6), (1, 1)), ((4, 5), (4, None))])
def test_adaptive_pool_uses_torchs_windows(op, size_in, size_out):
    module = chain([2, *size_in], (f"Adaptive{op}Pool2d", {"output_size": list(size_out)}))
    x = sample(module, 5)
    trace = trace_layer(module, "n0", x)
    with torch.no_grad():
        expected = module.module_for("n0")(x)[0]
    assert trace.output_shape == tuple(expected.shape)
    for index in every_index(trace):
        e = trace.explain(index)
        assert close(e.result, e.value) and e.value == pytest.approx(float(expected[index]))
        for d, (start, stop) in enumerate(e.terms["window"]):
            i, n_in, n_out = index[1 + d], size_in[d], expected.shape[1 + d]
            assert (start, stop) == (int(np.floor(i * n_in / n_out)),
                                     int(np.ceil((i + 1) * n_in / n_out)))
        if op == "Max":
            assert e.terms["patch"][e.terms["chosen"]] == e.terms["patch"].max()
        else:
            assert e.terms["count"] == e.terms["patch"].size


@pytest.mark.parametrize("name", ["digits-lenet", "resnet", "inception", "unet", "cnn1d"])
def test_every_node_of_the_templates_explains_its_strongest_value(name):
    module = build_module(get_template(name).graph())
    x = sample(module)
    with torch.no_grad():
        outputs = module.eval().forward_all(x)
    for node in module.node_ids:
        trace = trace_layer(module, node, x)
        e = trace.explain(trace.strongest())
        assert isinstance(e, ValueExplanation) and (e.node, e.index) == (node, trace.strongest())
        assert e.value == float(outputs[node][0][e.index]) == float(trace.output.max())
        scale = float(np.abs(e.terms["products"]).sum()) if e.kind == "conv" else 1.0
        assert close(e.result, e.value, scale), (node, e.type_name)


# ---- BatchNorm, Flatten, Linear, Softmax --------------------------------------------


def randomize_statistics(module: GraphModule, node: str) -> None:
    layer = module.module_for(node)
    if layer.running_mean is not None:
        with torch.no_grad():
            layer.running_mean.uniform_(-2, 2)
            layer.running_var.uniform_(0.1, 3)


@pytest.mark.parametrize(("type_name", "shape"), [("BatchNorm2d", [3, 4, 5]),
                                                  ("BatchNorm1d", [3, 6]),
                                                  ("BatchNorm1d", [5])])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("running", [True, False])
def test_batchnorm_formula_with_the_statistics_torch_uses(type_name, shape, affine, running):
    params = {"affine": affine, "track_running_stats": running, "eps": 1e-3}
    module = chain(shape, (type_name, params))
    randomize_statistics(module, "n0")
    x = sample(module, 7)
    if not running and len(shape) == 1:  # torch needs more than one value per channel
        with pytest.raises(ValueError, match="n0"):
            trace_layer(module, "n0", x)
        return
    trace = trace_layer(module, "n0", x)
    layer = module.module_for("n0")
    assert layer.training  # the trace ran in eval mode and left the module as found
    with torch.no_grad():
        expected = module.eval()(x)[0]
    for index in every_index(trace):
        e = trace.explain(index)
        t = e.terms
        assert e.kind == "batchnorm" and e.value == pytest.approx(float(expected[index]), abs=1e-6)
        assert close(e.result, e.value)
        assert t["x"] == pytest.approx(float(x[0][index]))
        if running:
            assert t["mean"] == pytest.approx(float(layer.running_mean[index[0]]))
            assert t["var"] == pytest.approx(float(layer.running_var[index[0]]))
        assert (t["gamma"], t["beta"]) == ((1.0, 0.0) if not affine else (
            pytest.approx(float(layer.weight.detach()[index[0]])),
            pytest.approx(float(layer.bias.detach()[index[0]]))))
        assert close((t["x"] - t["mean"]) / np.sqrt(t["var"] + t["eps"]) * t["gamma"] + t["beta"],
                     e.value)


@pytest.mark.parametrize(("shape", "start", "end"), [([2, 3, 4], 1, -1), ([2, 3, 4], 2, -1),
                                                     ([2, 3, 4], 1, 2), ([3, 5], 1, -1)])
def test_flatten_source_is_where_torch_takes_the_value_from(shape, start, end):
    module = chain(shape, ("Flatten", {"start_dim": start, "end_dim": end}))
    trace = trace_layer(module, "n0", sample(module))
    numbers = torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(1, *shape)
    with torch.no_grad():
        labels = module.module_for("n0")(numbers)[0]  # each output's flat input position
    for index in every_index(trace):
        e = trace.explain(index)
        flat = int(labels[index])
        assert e.terms["source"] == tuple(int(i) for i in np.unravel_index(flat, shape))
        assert e.result == e.value == pytest.approx(float(trace.inputs[0][e.terms["source"]]))


@pytest.mark.parametrize(("shape", "bias"), [([40], True), ([5], False), ([3, 20], True)])
def test_linear_contributions_others_and_bias_sum_to_the_value(shape, bias):
    module = chain(shape, ("Linear", {"out_features": 4, "bias": bias}))
    trace = trace_layer(module, "n0", sample(module, 2))
    weight = module.module_for("n0").weight.detach().numpy()
    for index in every_index(trace):
        e = trace.explain(index)
        t = e.terms
        x = trace.inputs[0][index[:-1]]
        contributions = t["contributions"]
        assert len(contributions) == min(12, shape[-1])
        products = [c[3] for c in contributions]
        assert sorted(map(abs, products), reverse=True) == list(map(abs, products))
        for i, xi, wi, product in contributions:
            assert (xi, wi) == (pytest.approx(float(x[i])), pytest.approx(float(weight[index[-1], i])))
            assert product == pytest.approx(xi * wi)
        smallest = min(map(abs, products))
        rest = [float(x[i] * weight[index[-1], i]) for i in range(shape[-1])
                if i not in {c[0] for c in contributions}]
        assert all(abs(r) <= smallest + 1e-7 for r in rest)
        assert t["others"] == pytest.approx(sum(rest), abs=1e-5)
        assert close(sum(products) + t["others"] + (t["bias"] or 0.0), e.value)
        assert (t["bias"] is None) == (not bias) and close(e.result, e.value)


@pytest.mark.parametrize(("shape", "dim"), [([6], 1), ([6], -1), ([3, 4, 5], 1), ([3, 4, 5], 2),
                                            ([3, 4, 5], -1)])
def test_softmax_probabilities_are_torchs(shape, dim):
    module = chain(shape, ("Softmax", {"dim": dim}))
    x = sample(module, 4) * 3
    trace = trace_layer(module, "n0", x)
    for index in every_index(trace):
        e = trace.explain(index)
        t = e.terms
        axis = dim % (len(shape) + 1) - 1
        logits = x[0][(*index[:axis], slice(None), *index[axis + 1:])]
        np.testing.assert_allclose(t["logits"], logits.numpy(), rtol=1e-6)
        np.testing.assert_allclose(t["probabilities"], torch.softmax(logits, 0).numpy(),
                                   rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(t["exps"], np.exp(t["logits"] - t["logits"].max()))
        assert close(e.result, e.value) and e.result == t["probabilities"][index[axis]]


# ---- merges, element-wise, the rest ----------------------------------------------------


def merge_module(merge: str) -> GraphModule:
    graph = Graph()
    graph.add_node("Input", {"shape": [2, 4, 4]}, id="input")
    for i, channels in enumerate((2, 3, 1)):
        graph.add_node("Conv2d", {"out_channels": 2 if merge == "Add" else channels,
                                  "kernel_size": 1}, id=f"b{i}", inputs=["input"])
    graph.add_node(merge, {}, id="merge", inputs=["b0", "b1", "b2"])
    return build_module(graph)


def test_add_shows_each_inputs_value_and_their_sum():
    module = merge_module("Add")
    x = sample(module)
    trace = trace_layer(module, "merge", x)
    with torch.no_grad():
        outputs = module.forward_all(x)
    for index in every_index(trace):
        e = trace.explain(index)
        assert e.terms["inputs"] == ["b0", "b1", "b2"]
        assert e.terms["values"] == [pytest.approx(float(outputs[b][0][index]))
                                     for b in ("b0", "b1", "b2")]
        assert close(e.result, e.value) and close(sum(e.terms["values"]), e.value)


def test_concat_says_which_input_and_channel_the_value_comes_from():
    module = merge_module("Concat")
    x = sample(module)
    trace = trace_layer(module, "merge", x)
    with torch.no_grad():
        outputs = module.forward_all(x)
    assert trace.explain((0, 0, 0)).terms["ranges"] == [("b0", 0, 2), ("b1", 2, 5), ("b2", 5, 6)]
    for index in every_index(trace):
        e = trace.explain(index)
        node, where = e.terms["source"]
        assert float(outputs[node][0][where]) == e.value == e.result


@pytest.mark.parametrize(("type_name", "params"), [
    ("ReLU", {}), ("LeakyReLU", {"negative_slope": 0.2}), ("ELU", {"alpha": 0.7}),
    ("GELU", {}), ("GELU", {"approximate": "tanh"}), ("SiLU", {}), ("Tanh", {}),
    ("Sigmoid", {}), ("Dropout", {"p": 0.5}), ("Dropout2d", {"p": 0.3})])
def test_elementwise_function_of_x_is_torchs_value(type_name, params):
    module = chain([3, 4, 4], (type_name, params))
    x = sample(module, 9) * 4
    trace = trace_layer(module, "n0", x)
    for index in every_index(trace):
        e = trace.explain(index)
        assert e.kind == "elementwise" and e.terms["function"]
        assert e.terms["x"] == pytest.approx(float(x[0][index]))
        assert close(e.result, e.value)


def test_after_is_the_sole_consumers_activation_only():
    graph = Graph()
    graph.add_node("Input", {"shape": [1, 5, 5]}, id="input")
    graph.add_node("Conv2d", {"out_channels": 2, "kernel_size": 3}, id="c1", inputs=["input"])
    graph.add_node("Tanh", {}, id="t1", inputs=["c1"])
    graph.add_node("Conv2d", {"out_channels": 2, "kernel_size": 1}, id="c2", inputs=["t1"])
    graph.add_node("ReLU", {}, id="r2", inputs=["c2"])
    graph.add_node("Add", {}, id="sum", inputs=["c2", "r2"])
    module = build_module(graph)
    x = sample(module)
    with torch.no_grad():
        outputs = module.forward_all(x)
    e = trace_layer(module, "c1", x).explain((1, 2, 0))
    assert e.after == ("t1", "Tanh", pytest.approx(float(outputs["t1"][0, 1, 2, 0])))
    assert trace_layer(module, "c2", x).explain((0, 0, 0)).after is None  # two consumers
    assert trace_layer(module, "t1", x).explain((0, 0, 0)).after is None  # no activation


@pytest.mark.parametrize(("type_name", "params", "shape"), [
    ("ConvTranspose2d", {"out_channels": 2, "kernel_size": 3, "stride": 2}, [2, 4, 4]),
    ("Maxout", {"pieces": 2}, [4, 3, 3]),
    ("Upsample", {"scale_factor": 2.0}, [2, 3, 4]),
    ("Upsample", {"scale_factor": 1.5}, [2, 5, 3]),
    ("Upsample", {"scale_factor": 3.0, "mode": "nearest-exact"}, [2, 3, 4]),
    ("Upsample", {"size": [7, 5], "mode": "nearest"}, [2, 3, 4]),
    ("Upsample", {"scale_factor": 2.0, "mode": "bilinear"}, [2, 3, 4]),
])
def test_other_layers_have_a_note_and_their_value(type_name, params, shape):
    module = chain(shape, (type_name, params))
    x = sample(module)
    trace = trace_layer(module, "n0", x)
    for index in every_index(trace):
        e = trace.explain(index)
        assert e.kind == "other" and e.note and "\n" not in e.note
        assert close(e.result, e.value)
        if "source" in e.terms:  # nearest upsampling: the copied input value
            assert float(x[0][e.terms["source"]]) == e.value


def test_the_input_node_is_explained_as_other():
    module = chain([1, 3, 3], ("ReLU", {}))
    trace = trace_layer(module, "input", sample(module))
    e = trace.explain((0, 1, 1))
    assert (trace.kind, e.kind, trace.inputs) == ("other", "other", [])
    assert e.after == ("n0", "ReLU", pytest.approx(max(0.0, e.value)))


# ---- errors, the module's state, strongest ------------------------------------------


def test_bad_index_unknown_node_and_wrong_sample_are_refused():
    module = chain([2, 5, 5], ("Conv2d", {"out_channels": 3, "kernel_size": 3}))
    trace = trace_layer(module, "n0", sample(module))
    for bad in [(3, 0, 0), (0, 3, 0), (0, 0), (0, 0, 0, 0), (-1, 0, 0), ("a", 0, 0)]:
        with pytest.raises(IndexError):
            trace.explain(bad)
    with pytest.raises(KeyError):
        trace_layer(module, "nope", sample(module))
    with pytest.raises(ValueError, match="one sample"):
        trace_layer(module, "n0", torch.zeros(2, 2, 5, 5))
    assert trace_layer(module, "n0", sample(module)[0]).output_shape == (3, 3, 3)


def test_the_module_is_left_as_found_and_strongest_is_the_maximum():
    module = chain([2, 6, 6], ("Conv2d", {"out_channels": 3, "kernel_size": 3}),
                   ("BatchNorm2d", {}), ("Dropout", {"p": 0.5}), ("ReLU", {}))
    module.train()
    module.module_for("n2").eval()
    modes = [m.training for m in module.modules()]
    calls: list[str] = []
    handle = module.module_for("n0").register_forward_hook(lambda *a: calls.append("hook"))
    hooks = [(dict(m._forward_hooks), dict(m._forward_pre_hooks)) for m in module.modules()]
    state = {k: v.clone() for k, v in module.state_dict().items()}
    trace = trace_layer(module, "n2", sample(module))
    assert [m.training for m in module.modules()] == modes
    assert [(dict(m._forward_hooks), dict(m._forward_pre_hooks))
            for m in module.modules()] == hooks
    assert all(torch.equal(state[k], v) for k, v in module.state_dict().items())
    assert all(p.grad is None for p in module.parameters())
    handle.remove()
    best = trace.strongest()
    assert trace.output[best] == trace.output.max()
    assert trace.explain(best).after[1] == "ReLU"
