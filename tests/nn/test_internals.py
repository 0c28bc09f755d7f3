"""Looking inside networks: filters, activations, Grad-CAM, receptive-field boxes, kernels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnstudio.core.graph import Graph
from cnnstudio.core.kernels import KERNEL_PRESETS
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.core.templates import get_template
from cnnstudio.nn import build_module
from cnnstudio.nn.internals import (
    apply_kernel,
    grad_cam,
    last_conv_node,
    layer_filters,
    node_activation,
    receptive_field_box,
    scale_cam,
)


def _chain(*layers: tuple[str, dict]) -> Graph:
    graph = Graph()
    prev = graph.add_node("Input", {"shape": [1, 32, 32]}, id="input").id
    for i, (type_name, params) in enumerate(layers):
        prev = graph.add_node(type_name, params, id=f"n{i}", inputs=[prev]).id
    return graph


def test_filters_and_activations_of_the_digits_lenet():
    torch.manual_seed(0)
    module = build_module(get_template("digits-lenet").graph())
    filters = layer_filters(module, "conv1")
    assert filters.shape == (16, 1, 3, 3) and filters.dtype == np.float32
    np.testing.assert_array_equal(filters, module.conv1.weight.detach().numpy())
    assert layer_filters(module, "fc1") is None
    module.train()
    x = torch.randn(2, 1, 8, 8)
    maps = node_activation(module, "relu1", x)
    assert maps.shape == (2, 16, 8, 8) and bool((maps >= 0).all())
    assert module.training and all(m.training for m in module.modules())  # mode restored
    assert last_conv_node(module) == "conv2"


def test_grad_cam_is_input_sized_non_negative_and_finds_the_region_that_matters():
    # Channel 0 carries a blob at the top left, channel 1 one at the bottom right; the
    # classifier looks only at channel 0, so only the top-left blob matters for class 0.
    graph = Graph()
    graph.add_node("Input", {"shape": [2, 8, 8]}, id="input")
    graph.add_node("Conv2d", {"out_channels": 2, "kernel_size": 1}, id="conv", inputs=["input"])
    graph.add_node("ReLU", {}, id="relu", inputs=["conv"])
    graph.add_node("AdaptiveAvgPool2d", {"output_size": 1}, id="gap", inputs=["relu"])
    graph.add_node("Flatten", {}, id="flat", inputs=["gap"])
    graph.add_node("Linear", {"out_features": 2}, id="fc", inputs=["flat"])
    graph.add_node("Softmax", {"dim": 1}, id="soft", inputs=["fc"])
    module = build_module(graph)
    with torch.no_grad():
        module.conv.weight.copy_(torch.eye(2).reshape(2, 2, 1, 1))
        module.conv.bias.zero_()
        module.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        module.fc.bias.zero_()
    x = torch.zeros(1, 2, 8, 8)
    x[0, 0, :3, :3] = 1.0
    x[0, 1, 5:, 5:] = 1.0
    before = {k: v.clone() for k, v in module.state_dict().items()}
    cam = grad_cam(module, "conv", x, class_index=0)
    assert cam.shape == (8, 8) and cam.dtype == np.float32
    assert cam.min() >= 0 and cam.max() == pytest.approx(1.0)
    assert cam[:3, :3].mean() > 5 * cam[5:, 5:].mean()
    other = grad_cam(module, "conv", x, class_index=1)
    assert other[5:, 5:].mean() > 5 * other[:3, :3].mean()
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert all(p.grad is None and p.requires_grad for p in module.parameters())


def test_scale_cam_maps_the_minimum_to_0_and_the_maximum_to_1():
    cam = np.array([[1.0, 2.0], [3.0, 5.0]], np.float32)
    np.testing.assert_allclose(scale_cam(cam), [[0.0, 0.25], [0.5, 1.0]], atol=1e-7)
    # An offset changes nothing (dividing by the maximum alone gave 0.2 … 1 here).
    np.testing.assert_allclose(scale_cam(cam + 100.0), scale_cam(cam), atol=1e-5)
    flat = np.full((4, 4), 3.7, np.float32)
    assert scale_cam(flat).dtype == np.float32 and not scale_cam(flat).any()  # not hot
    assert not scale_cam(np.zeros((3, 3))).any()
    assert not scale_cam(flat + np.float32(1e-9)).any()  # rounding noise is flat too


def _flat_map_classifier() -> nn.Module:
    """A network whose convolution output is the same everywhere (weight 0, bias 1)."""
    graph = Graph()
    graph.add_node("Input", {"shape": [1, 6, 6]}, id="input")
    graph.add_node("Conv2d", {"out_channels": 1, "kernel_size": 1}, id="conv", inputs=["input"])
    graph.add_node("ReLU", {}, id="relu", inputs=["conv"])
    graph.add_node("AdaptiveAvgPool2d", {"output_size": 1}, id="gap", inputs=["relu"])
    graph.add_node("Flatten", {}, id="flat", inputs=["gap"])
    graph.add_node("Linear", {"out_features": 2}, id="fc", inputs=["flat"])
    module = build_module(graph)
    with torch.no_grad():
        module.conv.weight.zero_()
        module.conv.bias.fill_(1.0)
        module.fc.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    return module


def test_grad_cam_of_a_flat_map_is_not_uniformly_hot():
    cam = grad_cam(_flat_map_classifier(), "relu", torch.rand(1, 1, 6, 6), class_index=0)
    assert cam.shape == (6, 6) and not cam.any()  # divided by its maximum it was all 1.0


def test_grad_cam_equals_the_hand_computed_min_max_scaled_map():
    torch.manual_seed(3)
    module = build_module(get_template("digits-lenet").graph())
    x = torch.randn(1, 1, 8, 8)
    # By hand: A = relu2's maps, α_k = mean of ∂score/∂A_k, ReLU(Σ α_k A_k), then
    # (cam − min) / (max − min) (the input is 8×8 and so are the maps: no resizing).
    store = {}
    handle = module.module_for("relu2").register_forward_hook(
        lambda _m, _a, out: store.setdefault("a", out))
    module.eval()
    xin = x.clone().requires_grad_(True)
    score = module(xin).reshape(-1)[4]
    handle.remove()
    (grad,) = torch.autograd.grad(score, store["a"])
    raw = torch.relu((grad[0].mean(dim=(1, 2))[:, None, None] * store["a"][0]).sum(0))
    raw = raw.detach().numpy()
    expected = (raw - raw.min()) / (raw.max() - raw.min())
    cam = grad_cam(module, "relu2", x, class_index=4)
    assert raw.max() > raw.min()
    np.testing.assert_allclose(cam, expected, atol=1e-5)
    assert cam.min() == 0.0 and cam.max() == pytest.approx(1.0)


def test_grad_cam_refuses_a_layer_without_a_spatial_map():
    module = build_module(get_template("digits-lenet").graph())
    with pytest.raises(ValueError, match="C×H×W"):
        grad_cam(module, "fc1", torch.randn(1, 1, 8, 8), 0)


def test_receptive_field_box_of_a_conv_pool_chain_equals_the_hand_computed_one():
    graph = _chain(("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
                   ("ReLU", {}),
                   ("MaxPool2d", {"kernel_size": 2}),
                   ("Conv2d", {"out_channels": 4, "kernel_size": 5, "stride": 2, "padding": 2}),
                   ("Conv2d", {"out_channels": 4, "kernel_size": 3, "dilation": 2}))
    # By hand, (size, jump, start of output 0) after each layer:
    #   conv 3 p1:      3, 1, -1
    #   pool 2 s2:      4, 2, -1
    #   conv 5 s2 p2:   4+4·2=12, 4, -1-2·2=-5
    #   conv 3 d2 p0:   12+4·4=28, 4, -5
    box = receptive_field_box(graph, "n4", (2, 3))
    assert box is not None
    assert box.size == (28, 28)
    assert box.start == (-5 + 2 * 4, -5 + 3 * 4)
    assert box.clipped((32, 32)) == ((3, 31), (7, 32))
    core = infer_shapes(graph).nodes["n4"].receptive_field
    assert core.size == (28.0, 28.0) and core.jump == (4.0, 4.0)
    assert receptive_field_box(graph, "n0", (0, 0)).start == (-1, -1)
    assert receptive_field_box(graph, "input", (5, 6)).start == (5, 6)


def test_receptive_field_box_with_same_padding_and_none_after_a_dense_layer():
    graph = _chain(("Conv2d", {"out_channels": 2, "kernel_size": 4, "padding": "same"}),
                   ("Flatten", {}), ("Linear", {"out_features": 3}))
    box = receptive_field_box(graph, "n0", (0, 0))
    assert box == receptive_field_box(graph, "n0", (0, 0))
    assert box.size == (4, 4) and box.start == (-1, -1)  # torch pads ⌊3/2⌋ = 1 before
    assert receptive_field_box(graph, "n2", (0,)) is None
    assert receptive_field_box(graph, "missing", (0, 0)) is None


def test_sobel_x_on_a_vertical_edge_responds_along_the_edge():
    image = np.zeros((10, 10), np.float32)
    image[:, 5:] = 1.0
    out = apply_kernel(image, KERNEL_PRESETS["Sobel x"])
    assert out.shape == (10, 10)
    inner = out[1:-1]
    assert np.all(inner[:, 4:6] == 4.0)  # the two columns either side of the edge
    assert np.all(inner[:, :3] == 0.0) and np.all(inner[:, 7:9] == 0.0)
    assert np.abs(apply_kernel(image, KERNEL_PRESETS["Sobel y"])[1:-1]).max() == 0.0
    assert apply_kernel(image, KERNEL_PRESETS["Sobel x"], padding="valid").shape == (8, 8)
    with pytest.raises(ValueError):
        apply_kernel(image, [1.0, 2.0])


def test_node_activation_of_a_plain_module_by_submodule():
    module = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU())
    out = node_activation(module, module[0], torch.ones(1, 1, 5, 5))
    assert out.shape == (1, 3, 3, 3)


def test_the_logits_tap_only_changes_outputs_on_the_thread_that_set_it():
    # The window's workers share one inspection model: a Grad-CAM's tap on one thread
    # must leave another thread's probabilities alone.
    import threading

    from cnnstudio.nn.internals import LogitsTap

    graph = _chain(("Flatten", {}), ("Linear", {"out_features": 3}), ("Softmax", {}))
    module = build_module(graph).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        probabilities = module(x)
        seen: dict[str, torch.Tensor] = {}
        with LogitsTap(module, module.output_id):
            logits = module(x)
            other = threading.Thread(target=lambda: seen.setdefault("out", module(x)))
            other.start()
            other.join()
    assert not torch.allclose(logits, probabilities)
    assert torch.allclose(torch.softmax(logits, 1), probabilities, atol=1e-6)
    assert torch.equal(seen["out"], probabilities)
