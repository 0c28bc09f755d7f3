"""Weights as safetensors bytes: round trips, and strict one-line refusals."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from cnnstudio.core.graph import Graph
from cnnstudio.nn import (
    WeightsError,
    build_module,
    load_weights,
    read_weights,
    weights_metadata,
    weights_to_bytes,
)

torch.set_num_threads(1)


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Like torch.testing.assert_close, whose first call imports for a second."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert torch.allclose(actual, expected, rtol=1e-5, atol=1e-5), (actual - expected).abs().max()


def lenet(filters: int = 16) -> Graph:
    graph = Graph()
    graph.add_node("Input", {"shape": [1, 8, 8]}, id="input")
    graph.add_node("Conv2d", {"out_channels": filters, "kernel_size": 3}, id="conv1",
                   inputs=["input"])
    graph.add_node("BatchNorm2d", {}, id="bn1", inputs=["conv1"])
    graph.add_node("ReLU", {}, id="relu1", inputs=["bn1"])
    graph.add_node("Flatten", {}, id="flat", inputs=["relu1"])
    graph.add_node("Linear", {"out_features": 10}, id="fc", inputs=["flat"])
    return graph


def trained(graph: Graph) -> torch.nn.Module:
    """A module whose weights and running statistics differ from a fresh build."""
    torch.manual_seed(1)
    module = build_module(graph)
    module.train()
    module(torch.randn(8, *module.input_shape))  # moves the BatchNorm running stats
    return module.eval()


def test_round_trip_gives_identical_outputs() -> None:
    source = trained(lenet())
    data = weights_to_bytes(source)
    assert isinstance(data, bytes)
    target = build_module(lenet()).eval()
    x = torch.randn(4, 1, 8, 8)
    assert not torch.equal(target(x), source(x))
    load_weights(target, data)
    assert torch.equal(target(x), source(x))
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_file_keys_are_node_id_dot_param_and_metadata_is_kept() -> None:
    data = weights_to_bytes(trained(lenet()), metadata={"epoch": "3"})
    tensors = load_safetensors(data)
    assert set(tensors) == {"conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias",
                            "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
                            "fc.weight", "fc.bias"}
    assert tensors["bn1.num_batches_tracked"].item() == 1
    assert weights_metadata(data) == {"epoch": "3"}
    assert weights_metadata(weights_to_bytes(build_module(lenet()))) == {}
    for junk in (b"", b"\xff" * 12, data[:20]):
        with pytest.raises(WeightsError, match="^the weights file is unreadable"):
            weights_metadata(junk)


def test_non_contiguous_weights_are_saved() -> None:
    module = build_module(lenet())
    with torch.no_grad():
        module.module_for("fc").weight = torch.nn.Parameter(torch.randn(576, 10).t())
    assert not module.module_for("fc").weight.is_contiguous()
    restored = build_module(lenet())
    load_weights(restored, weights_to_bytes(module))
    assert torch.equal(restored.module_for("fc").weight, module.module_for("fc").weight)


def test_shape_mismatch_names_the_node_in_one_line() -> None:
    data = weights_to_bytes(trained(lenet(filters=16)))
    edited = build_module(lenet(filters=32))
    before = {k: v.clone() for k, v in edited.state_dict().items()}
    with pytest.raises(WeightsError) as caught:
        load_weights(edited, data)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "weights don't fit the graph: conv1.weight has shape 16×1×3×3 in the file but"
        " 32×1×3×3 in the model (was conv1 edited after training?)"
    )
    assert "more mismatches" in message
    for key, value in edited.state_dict().items():  # nothing was loaded
        assert torch.equal(value, before[key]), key


def test_missing_and_unexpected_keys_are_refused() -> None:
    module = build_module(lenet())
    tensors = {k: v.contiguous() for k, v in module.state_dict().items()}
    missing = dict(tensors)
    del missing["fc.bias"]
    with pytest.raises(WeightsError, match=r"^weights don't fit the graph: the file has no"
                                           r" fc\.bias \(was fc added"):
        load_weights(module, save_safetensors(missing))
    extra = dict(tensors, **{"fc2.weight": torch.zeros(2, 2)})
    with pytest.raises(WeightsError, match=r"the file has fc2\.weight, which the model lacks"
                                           r" \(was fc2 removed or renamed"):
        load_weights(module, save_safetensors(extra))


def test_unreadable_bytes_are_one_line() -> None:
    module = build_module(lenet())
    for junk in (b"", b"not a safetensors file at all", weights_to_bytes(module)[:40]):
        with pytest.raises(WeightsError, match="^the weights file is unreadable") as caught:
            load_weights(module, junk)
        assert "\n" not in str(caught.value)


def test_read_weights_gives_cpu_tensors() -> None:
    tensors = read_weights(weights_to_bytes(build_module(lenet())))
    assert all(t.device.type == "cpu" for t in tensors.values())


def test_values_are_converted_to_the_model_dtype() -> None:
    source = trained(lenet()).double()
    target = build_module(lenet()).eval()
    load_weights(target, weights_to_bytes(source))
    assert target.module_for("conv1").weight.dtype == torch.float32
    x = torch.randn(2, 1, 8, 8)
    assert_close(target(x), source(x.double()).float())
