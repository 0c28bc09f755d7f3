"""What the filters respond to: the top-k samples per filter against a direct computation
over the dataset, their receptive-field boxes, cancelling, and the module left alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnstudio.core.graph import Graph
from cnnstudio.core.templates import get_template
from cnnstudio.nn import build_module
from cnnstudio.nn.builder import forward_to, node_inputs
from cnnstudio.nn.explain import Cancelled, top_activations
from cnnstudio.nn.internals import receptive_field_box


def _to_float(x: torch.Tensor) -> torch.Tensor:
    scaled = x.to(torch.float32) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float32)
    return (scaled - 0.3) / 0.4


def _chain(shape: list[int], *layers: tuple[str, str, dict]) -> Graph:
    graph = Graph()
    previous = graph.add_node("Input", {"shape": shape}, id="input").id
    for node_id, type_name, params in layers:
        previous = graph.add_node(type_name, params, id=node_id, inputs=[previous]).id
    return graph


def _brute_force(module, graph, node, x, k, ids):
    """Per filter: (dataset ids, activations, positions, boxes) of the k best samples,
    one sample at a time through the whole network (`forward_all`), ranked with NumPy."""
    with torch.no_grad():
        maps = np.stack([module.forward_all(_to_float(x[i:i + 1]))[node][0].numpy()
                         for i in range(len(x))])  # (N, filters, *map)
    flat = maps.reshape(len(x), maps.shape[1], -1)
    best, where = flat.max(axis=2), flat.argmax(axis=2)
    spatial = tuple(module.input_shape[1:])
    expected = []
    for f in range(maps.shape[1]):
        order = np.argsort(-best[:, f], kind="stable")[:k]
        positions = [tuple(int(v) for v in np.unravel_index(where[i, f], maps.shape[2:]))
                     for i in order]
        boxes = []
        for p in positions:
            field = receptive_field_box(graph, node, p) if p else None
            if field is None:
                boxes.append(None)
                continue
            ranges = field.clipped(spatial)
            boxes.append((0, *ranges[0][:1], 1, ranges[0][1]) if len(ranges) == 1 else
                         (ranges[0][0], ranges[1][0], ranges[0][1], ranges[1][1]))
        expected.append(([ids[i] for i in order], best[order, f], positions, boxes))
    return expected


@pytest.mark.parametrize("node", ["conv1", "conv2", "pool1", "fc1"])
def test_top_k_equals_a_direct_computation_over_the_dataset(node):
    torch.manual_seed(0)
    graph = get_template("digits-lenet").graph()
    module = build_module(graph)
    generator = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (150, 1, 8, 8), dtype=torch.uint8, generator=generator)
    x[40] = x[7]  # an exact tie: the earlier sample ranks first
    ids = [1000 + 3 * i for i in range(len(x))]
    found = top_activations(module, graph, node, x, _to_float, 5, sample_ids=ids,
                            batch_size=32)  # several batches: the merge is exercised
    expected = _brute_force(module, graph, node, x, 5, ids)
    assert [top.filter for top in found] == list(range(len(expected)))
    for top, (samples, values, positions, boxes) in zip(found, expected, strict=True):
        assert [h.sample for h in top.hits] == samples
        np.testing.assert_allclose([h.activation for h in top.hits], values, rtol=1e-5,
                                   atol=1e-6)
        assert [h.position for h in top.hits] == positions
        assert [h.box for h in top.hits] == boxes
    if node == "fc1":  # a Linear unit sees the whole input: no position, no box
        assert all(h.position == () and h.box is None for t in found for h in t.hits)


def test_boxes_are_the_hand_computed_receptive_fields_clipped_to_the_input():
    # digits-lenet: conv1 and conv2 are 3×3 with padding 1, so a conv2 value sees 5×5
    # input pixels centred on it; at the corner 3×3 of them lie inside the 8×8 input.
    torch.manual_seed(0)
    graph = get_template("digits-lenet").graph()
    module = build_module(graph)
    x = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    x[1, 0, 0, 0] = 255  # a lone bright pixel in the corner
    x[2, 0, 4, 5] = 255
    tops = top_activations(module, graph, "input", x, _to_float, 1)
    assert tops[0].hits[0].sample in (1, 2)
    hit = tops[0].hits[0]
    assert hit.box == (hit.position[0], hit.position[1], hit.position[0] + 1,
                       hit.position[1] + 1)  # the Input sees itself: a 1×1 box
    tops = top_activations(module, graph, "conv2", x, _to_float, 4)
    for top in tops:
        for h in top.hits:
            r, c = h.position
            assert h.box == (max(0, r - 2), max(0, c - 2), min(8, r + 3), min(8, c + 3))


def test_one_dimensional_inputs_get_a_0_x0_1_x1_box():
    graph = _chain([1, 32], ("conv", "Conv1d", {"out_channels": 3, "kernel_size": 5}),
                   ("pool", "MaxPool1d", {"kernel_size": 2}))
    torch.manual_seed(0)
    module = build_module(graph)
    x = torch.randn(20, 1, 32)
    for top in top_activations(module, graph, "pool", x, _to_float, 3):
        for h in top.hits:
            (p,) = h.position
            assert h.box == (0, 2 * p, 1, 2 * p + 6)  # pool 2 over a 5-tap kernel
    # The same samples as the brute force, ranked the same way.
    expected = _brute_force(module, graph, "pool", x, 3, list(range(20)))
    found = top_activations(module, graph, "pool", x, _to_float, 3, batch_size=7)
    assert [[h.sample for h in t.hits] for t in found] == [e[0] for e in expected]


def test_cancel_raises_and_progress_counts_samples():
    graph = get_template("digits-lenet").graph()
    module = build_module(graph)
    x = np.zeros((100, 1, 8, 8), np.uint8)  # NumPy samples are taken as they are
    seen: list[tuple[int, int]] = []
    top_activations(module, graph, "conv1", x, _to_float, 2, batch_size=40,
                    progress=lambda done, total: seen.append((done, total)))
    assert seen == [(40, 100), (80, 100), (100, 100)]
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 1  # cancel before the second batch

    with pytest.raises(Cancelled):
        top_activations(module, graph, "conv1", x, _to_float, 2, batch_size=40,
                        cancelled=cancelled)
    assert len(calls) == 2


def test_bad_layers_and_samples_get_a_one_line_value_error():
    graph = get_template("digits-lenet").graph()
    module = build_module(graph)
    x = torch.zeros(3, 1, 8, 8)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        top_activations(module, graph, "nope", x, _to_float)
    with pytest.raises(ValueError, match="takes"):
        top_activations(module, graph, "conv1", torch.zeros(3, 1, 9, 9), _to_float)
    with pytest.raises(ValueError, match="at least 1"):
        top_activations(module, graph, "conv1", x, _to_float, 0)
    assert top_activations(module, graph, "conv1", x[:0], _to_float) == []


def test_the_module_is_left_as_found_and_no_random_number_is_drawn():
    graph = get_template("digits-lenet").graph()  # has a Dropout: eval mode matters
    module = build_module(graph)
    module.train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    x = torch.randint(0, 256, (30, 1, 8, 8), dtype=torch.uint8)
    rng = torch.get_rng_state()
    # The classifier comes after the Dropout: in train mode it would draw and differ.
    twice = [top_activations(module, graph, "classifier", x, _to_float, 3) for _ in range(2)]
    assert twice[0] == twice[1]  # eval mode: Dropout does not change the ranking
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(m.training for m in module.modules())
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert all(p.grad is None and p.requires_grad for p in module.parameters())


def test_forward_to_runs_only_the_nodes_a_layer_needs():
    graph = Graph()
    graph.add_node("Input", {"shape": [1, 6, 6]}, id="input")
    graph.add_node("Conv2d", {"out_channels": 2, "kernel_size": 3}, id="left", inputs=["input"])
    graph.add_node("Conv2d", {"out_channels": 2, "kernel_size": 3}, id="right", inputs=["input"])
    graph.add_node("Add", {}, id="sum", inputs=["left", "right"])
    graph.add_node("ReLU", {}, id="relu", inputs=["sum"])
    module = build_module(graph)
    ran: list[str] = []
    for node_id in module.node_ids:
        module.module_for(node_id).register_forward_hook(
            lambda m, a, o, node_id=node_id: ran.append(node_id))
    x = torch.randn(2, 1, 6, 6)
    with torch.no_grad():
        every = module.forward_all(x)
        ran.clear()
        assert torch.equal(forward_to(module, x, "left"), every["left"])
        assert ran == ["left"]
        ran.clear()
        assert torch.equal(forward_to(module, x, "sum"), every["sum"])
        assert ran == ["left", "right", "sum"]
        assert torch.equal(forward_to(module, x, "input"), x)
    assert node_inputs(module, "sum") == ("left", "right") and node_inputs(module, "input") == ()
    with pytest.raises(KeyError):
        forward_to(module, x, "missing")


def test_forward_to_equals_forward_all_and_drops_values_after_their_last_use():
    import weakref

    torch.manual_seed(0)
    graph = get_template("inception").graph()
    module = build_module(graph).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        every = module.forward_all(x)
        for node_id in module.node_ids:
            assert torch.equal(forward_to(module, x, node_id), every[node_id]), node_id
    # A chain a → b → c → d: while d runs, a's output (last read by b) is gone already.
    chain = _chain([1, 6, 6], ("a", "ReLU", {}), ("b", "Tanh", {}), ("c", "Sigmoid", {}),
                   ("d", "ReLU", {}))
    module = build_module(chain)
    outputs: dict[str, weakref.ref] = {}
    alive_when_d_ran: dict[str, bool] = {}
    for node_id in ("a", "b", "c"):
        module.module_for(node_id).register_forward_hook(
            lambda m, a, o, node_id=node_id: outputs.__setitem__(node_id, weakref.ref(o)))
    module.module_for("d").register_forward_pre_hook(
        lambda m, a: alive_when_d_ran.update({k: r() is not None for k, r in outputs.items()}))
    with torch.no_grad():
        result = forward_to(module, torch.randn(3, 1, 6, 6), "d")
    assert alive_when_d_ran == {"a": False, "b": False, "c": True}
    assert result.shape == (3, 1, 6, 6)


def test_the_batch_size_comes_from_a_memory_budget():
    from cnnstudio.nn.explain.responses import BATCH_BYTES, budget_batch_size, sample_bytes

    assert budget_batch_size(1) == 256 and budget_batch_size(0) == 256
    assert budget_batch_size(BATCH_BYTES // 10) == 10
    assert budget_batch_size(10 * BATCH_BYTES) == 1  # never 0
    assert budget_batch_size(1, limit=7) == 7
    # a 64-channel convolution of a 3×112×112 input: its output alone is 3.2 MB a sample
    graph = _chain([3, 112, 112], ("conv", "Conv2d", {"out_channels": 64, "kernel_size": 3,
                                                     "padding": 1}))
    module = build_module(graph)
    per_sample = sample_bytes(graph, module, "conv")
    assert per_sample >= 64 * 112 * 112 * 4 + 3 * 112 * 112 * 4
    assert sample_bytes(graph, module, "input") == 3 * 3 * 112 * 112 * 4 < per_sample
    size = budget_batch_size(per_sample)
    assert 1 <= size < 40
    steps: list[int] = []
    x = torch.randint(0, 256, (40, 3, 112, 112), dtype=torch.uint8)
    top_activations(module, graph, "conv", x, _to_float, 1,
                    progress=lambda done, total: steps.append(done))
    assert steps == [size, 40]  # two batches, not one of 256


def test_a_conv_with_a_negative_bias_reports_its_own_negative_values_not_the_relus():
    graph = _chain([1, 8, 8], ("conv", "Conv2d", {"out_channels": 2, "kernel_size": 3,
                                                  "padding": 1}), ("relu", "ReLU", {}))
    torch.manual_seed(0)
    module = build_module(graph)
    with torch.no_grad():
        module.module_for("conv").bias.fill_(-100.0)
    x = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        conv = module.forward_all(_to_float(x))["conv"]
    best = conv.flatten(2).max(dim=2).values  # (samples, filters)
    for top in top_activations(module, graph, "conv", x, _to_float, 3):
        values = [h.activation for h in top.hits]
        assert all(v < -50 for v in values)  # the convolution's, not max(0, ·)
        np.testing.assert_allclose(values, np.sort(best[:, top.filter].numpy())[::-1][:3],
                                   rtol=1e-6)
    for top in top_activations(module, graph, "relu", x, _to_float, 3):
        assert all(h.activation == 0.0 for h in top.hits)
