"""build_module: the graph as a torch module, its names, metadata and errors."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from cnnstudio.core.graph import Graph
from cnnstudio.core.ids import RESERVED_IDS
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.core.templates import TEMPLATES
from cnnstudio.nn import BuildError, GraphModule, build_module
from cnnstudio.nn.modules import Add, Concat, Maxout

torch.set_num_threads(1)


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Like torch.testing.assert_close, whose first call imports for a second."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert torch.allclose(actual, expected, rtol=1e-5, atol=1e-5), (actual - expected).abs().max()


def chain(*layers: tuple[str, str, dict], shape: list[int] | None = None) -> Graph:
    """Input → layers, each fed by the one before."""
    graph = Graph()
    graph.add_node("Input", {"shape": shape or [1, 8, 8]}, id="input")
    previous = "input"
    for node_id, type_name, params in layers:
        graph.add_node(type_name, params, id=node_id, inputs=[previous])
        previous = node_id
    return graph


def residual_graph() -> Graph:
    graph = chain(("conv1", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
                  ("bn1", "BatchNorm2d", {}), ("relu1", "ReLU", {"inplace": True}))
    graph.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": "same"},
                   id="conv2", inputs=["relu1"])
    graph.add_node("Add", {}, id="add", inputs=["conv2", "relu1"])
    graph.add_node("Conv2d", {"out_channels": 2, "kernel_size": 1}, id="side", inputs=["relu1"])
    graph.add_node("Concat", {}, id="cat", inputs=["add", "side"])
    graph.add_node("Maxout", {"pieces": 3}, id="maxout", inputs=["cat"])
    graph.add_node("Flatten", {}, id="flat", inputs=["maxout"])
    graph.add_node("Linear", {"out_features": 3}, id="fc", inputs=["flat"])
    return graph


def test_state_dict_keys_are_node_id_dot_param() -> None:
    module = build_module(residual_graph())
    assert list(module.state_dict()) == [
        "conv1.weight", "conv1.bias",
        "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
        "bn1.num_batches_tracked",
        "conv2.weight", "conv2.bias", "side.weight", "side.bias", "fc.weight", "fc.bias",
    ]
    # Every node is a direct child (hooks and module_for reach each one).
    assert [name for name, _ in module.named_children()] == list(module.node_ids)


def test_metadata_and_accessors() -> None:
    graph = residual_graph()
    module = build_module(graph)
    assert isinstance(module, GraphModule)
    assert module.input_shape == (1, 8, 8)
    assert module.input_id == "input"
    assert module.output_id == "fc" == infer_shapes(graph).output
    assert module.node_ids == tuple(graph.topological_order())
    assert isinstance(module.module_for("conv1"), nn.Conv2d)
    assert module.module_for("conv1").in_channels == 1
    assert isinstance(module.module_for("add"), Add)
    assert isinstance(module.module_for("cat"), Concat)
    assert isinstance(module.module_for("maxout"), Maxout)
    assert module.module_for("fc").in_features == 2 * 8 * 8
    with pytest.raises(KeyError, match="no node 'nope'"):
        module.module_for("nope")


def test_layers_never_work_in_place() -> None:
    module = build_module(residual_graph())
    assert module.module_for("relu1").inplace is False  # the file said inplace: true


def test_forward_equals_forward_all_output_and_matches_shapes() -> None:
    graph = residual_graph()
    module = build_module(graph).eval()
    inference = infer_shapes(graph)
    x = torch.randn(5, 1, 8, 8)
    outputs = module.forward_all(x)
    assert list(outputs) == list(module.node_ids)
    for node_id, tensor in outputs.items():
        assert tuple(tensor.shape) == (5, *inference.nodes[node_id].shape), node_id
    assert torch.equal(module(x), outputs["fc"])
    assert sum(p.numel() for p in module.parameters()) == inference.total_params


def test_forward_is_the_hand_written_network() -> None:
    graph = residual_graph()
    module = build_module(graph).eval()
    m = module.module_for
    x = torch.randn(3, 1, 8, 8)
    h = torch.relu(m("bn1")(m("conv1")(x)))
    added = m("conv2")(h) + h
    cat = torch.cat([added, m("side")(h)], 1)
    pooled = cat.reshape(3, 2, 3, 8, 8).amax(2)
    expected = m("fc")(pooled.flatten(1))
    assert_close(module(x), expected)


def test_intermediate_tensors_are_dropped_after_their_last_use() -> None:
    module = build_module(residual_graph())
    freed = {module.node_ids[i] for *_, free in module._plan for i in free}
    # Everything but the output is freed once; relu1 feeds three nodes, freed after the last.
    assert freed == set(module.node_ids) - {"fc"}
    step_of = {name: index for index, (name, *_) in enumerate(module._plan)}
    relu1_slot = module.node_ids.index("relu1")
    where = [index for index, (*_, free) in enumerate(module._plan) if relu1_slot in free]
    assert where == [max(step_of["conv2"], step_of["add"], step_of["side"])]


def test_wrong_input_shape_is_one_clear_line() -> None:
    module = build_module(residual_graph())
    with pytest.raises(ValueError, match=r"batch of 1×8×8 samples, got a tensor of shape 2×3×8×8"):
        module(torch.zeros(2, 3, 8, 8))


def test_graph_with_problems_raises_build_error_in_one_line() -> None:
    graph = chain(("conv1", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
                  ("conv2", "Conv2d", {"out_channels": 4, "kernel_size": 5}),
                  shape=[1, 5, 5])
    graph.add_node("Conv2d", {"out_channels": 4, "kernel_size": 7}, id="conv3", inputs=["conv1"])
    graph.add_node("Add", {}, id="add", inputs=["conv2", "conv3"])
    with pytest.raises(BuildError) as caught:
        build_module(graph)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "conv2: kernel 5×5 is larger than its input 3×3 with padding 0 (and 1 more problem)")
    assert len(caught.value.problems) == 2


def test_empty_graph_raises_build_error() -> None:
    with pytest.raises(BuildError, match="empty"):
        build_module(Graph())


def test_reserved_ids_cover_every_public_name_of_nn_module() -> None:
    public = {name for name in dir(nn.Module()) if not name.startswith("_")}
    assert public <= RESERVED_IDS, sorted(public - RESERVED_IDS)


def test_graph_module_api_names_are_reserved_node_ids() -> None:
    """GraphModule's own public names can never be node ids, so nodes can't shadow them."""
    own = {name for name in dir(GraphModule) if not name.startswith("_")} - set(dir(nn.Module))
    assert own == {"input_id", "output_id", "input_shape", "node_ids", "module_for",
                   "forward_all"}
    assert own <= RESERVED_IDS


def test_deep_copy_and_moved_layers_stay_coherent() -> None:
    module = build_module(residual_graph()).eval()
    clone = copy.deepcopy(module)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        clone.module_for("fc").bias.add_(1.0)
    assert_close(clone(x), module(x) + 1.0)


def test_backward_reaches_every_parameter() -> None:
    module = build_module(residual_graph())
    module(torch.randn(4, 1, 8, 8)).sum().backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None, name


def test_own_modules_match_plain_torch() -> None:
    a, b, c = torch.randn(3, 2, 6, 4, 4).unbind(0)
    assert_close(Add()(a, b, c), a + b + c)
    assert_close(Concat()(a, b), torch.cat([a, b], 1))
    x = torch.randn(2, 6, 3, 5)
    expected = torch.stack([x[:, i:i + 3].amax(1) for i in (0, 3)], 1)
    assert_close(Maxout(3)(x), expected)
    # Maxout on a flat vector and on a channels-last map.
    assert_close(Maxout(2)(torch.tensor([[1.0, 5.0, 3.0, 2.0]])),
                               torch.tensor([[5.0, 3.0]]))
    y = x.to(memory_format=torch.channels_last)
    assert_close(Maxout(3)(y), expected)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_builds_with_core_shapes_and_counts(name: str) -> None:
    graph = TEMPLATES[name].graph()
    inference = infer_shapes(graph)
    module = build_module(graph).eval()
    x = torch.randn(2, *module.input_shape)
    with torch.no_grad():
        outputs = module.forward_all(x)
    for node_id, tensor in outputs.items():
        assert tuple(tensor.shape[1:]) == inference.nodes[node_id].shape, node_id
    assert sum(p.numel() for p in module.parameters()) == inference.total_params
