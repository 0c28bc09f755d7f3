"""The course's worked examples: core's numbers and formula text, and torch's own counts."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from cnnstudio.core.graph import Graph  # noqa: E402
from cnnstudio.core.shapes import infer_shapes  # noqa: E402
from cnnstudio.core.templates import get_template  # noqa: E402

torch.set_num_threads(1)


def _one_layer(shape: list[int], type_name: str, params: dict) -> Graph:
    graph = Graph()
    graph.add_node("Input", {"shape": shape}, id="input")
    graph.add_node(type_name, params, id="layer", inputs=["input"])
    return graph


def _torch_out(module: nn.Module, shape: list[int]) -> tuple[int, ...]:
    return tuple(module(torch.zeros(2, *shape)).shape[1:])


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_conv_10_filters_5x5_pad_2_keeps_32x32_with_760_params() -> None:
    graph = _one_layer([3, 32, 32], "Conv2d", {"out_channels": 10, "kernel_size": 5,
                                               "stride": 1, "padding": 2})
    info = infer_shapes(graph).nodes["layer"]
    assert info.shape == (10, 32, 32)
    assert info.params == 760
    assert "H_out = ⌊(32 + 2·2 − 5)/1⌋ + 1 = 32" in info.formulas
    assert "W_out = ⌊(32 + 2·2 − 5)/1⌋ + 1 = 32" in info.formulas
    assert "params = (5·5·3 + 1)·10 = 760" in info.formulas
    conv = nn.Conv2d(3, 10, 5, stride=1, padding=2)
    assert _torch_out(conv, [3, 32, 32]) == (10, 32, 32)
    assert _count(conv) == 760


def test_conv_stride_2_halves_to_16x16() -> None:
    graph = _one_layer([3, 32, 32], "Conv2d", {"out_channels": 10, "kernel_size": 5,
                                               "stride": 2, "padding": 2})
    info = infer_shapes(graph).nodes["layer"]
    assert info.shape == (10, 16, 16)
    assert "H_out = ⌊(32 + 2·2 − 5)/2⌋ + 1 = 16" in info.formulas
    assert _torch_out(nn.Conv2d(3, 10, 5, stride=2, padding=2), [3, 32, 32]) == (10, 16, 16)


def test_three_5x5_filters_without_padding_give_3x28x28() -> None:
    graph = _one_layer([3, 32, 32], "Conv2d", {"out_channels": 3, "kernel_size": 5})
    info = infer_shapes(graph).nodes["layer"]
    assert info.shape == (3, 28, 28)
    assert info.params == (5 * 5 * 3 + 1) * 3
    conv = nn.Conv2d(3, 3, 5)
    assert _torch_out(conv, [3, 32, 32]) == (3, 28, 28)
    assert _count(conv) == info.params


def test_maxpool_2x2_stride_2_ceil_mode_on_7x7_gives_4x4() -> None:
    graph = _one_layer([1, 7, 7], "MaxPool2d", {"kernel_size": 2, "stride": 2,
                                                "ceil_mode": True})
    info = infer_shapes(graph).nodes["layer"]
    assert info.shape == (1, 4, 4)
    assert "H_out = ⌈(7 + 2·0 − 2)/2⌉ + 1 = 4" in info.formulas
    assert _torch_out(nn.MaxPool2d(2, 2, ceil_mode=True), [1, 7, 7]) == (1, 4, 4)


def test_ceil_mode_drops_a_last_window_that_starts_in_the_padding() -> None:
    graph = _one_layer([1, 5, 5], "MaxPool2d", {"kernel_size": 2, "stride": 2, "padding": 1,
                                                "ceil_mode": True})
    info = infer_shapes(graph).nodes["layer"]
    assert info.shape == (1, 3, 3)
    assert ("H_out = ⌈(5 + 2·1 − 2)/2⌉ + 1 − 1 (the last window would start in the padding)"
            " = 3") in info.formulas
    assert _torch_out(nn.MaxPool2d(2, 2, padding=1, ceil_mode=True), [1, 5, 5]) == (1, 3, 3)


def _mxnet_graph() -> Graph:
    graph = Graph()
    chain = [
        ("input", "Input", {"shape": [1, 28, 28]}),
        ("conv1", "Conv2d", {"out_channels": 64, "kernel_size": 5}),
        ("relu1", "ReLU", {}),
        ("pool1", "MaxPool2d", {"kernel_size": 2}),
        ("conv2", "Conv2d", {"out_channels": 128, "kernel_size": 5}),
        ("relu2", "ReLU", {}),
        ("pool2", "MaxPool2d", {"kernel_size": 2}),
        ("flat", "Flatten", {}),
        ("fc1", "Linear", {"out_features": 1024}),
        ("relu3", "ReLU", {}),
        ("drop", "Dropout", {}),
        ("fc2", "Linear", {"out_features": 10}),
    ]
    previous: list[str] = []
    for node_id, type_name, params in chain:
        graph.add_node(type_name, params, id=node_id, inputs=previous)
        previous = [node_id]
    return graph


def test_two_conv_mnist_net_has_2315018_params_in_core_and_torch() -> None:
    inference = infer_shapes(_mxnet_graph(), num_classes=10)
    assert inference.ok, inference.problems
    assert inference.nodes["pool2"].shape == (128, 4, 4)
    assert inference.nodes["fc2"].shape == (10,)
    assert inference.total_params == 2_315_018
    reference = nn.Sequential(
        nn.Conv2d(1, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128 * 4 * 4, 1024), nn.ReLU(), nn.Dropout(),
        nn.Linear(1024, 10),
    )
    assert _count(reference) == 2_315_018
    assert _torch_out(reference, [1, 28, 28]) == (10,)
    # The template of the same net agrees.
    assert infer_shapes(get_template("mxnet-mnist").graph()).total_params == 2_315_018
