"""Random valid networks, chains and DAGs: every node's shape and the total count match torch."""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnstudio.core.graph import Graph
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.nn import build_module, load_weights, weights_to_bytes

torch.set_num_threads(1)

_ACTIVATIONS = ["ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Tanh", "Sigmoid"]


class _Builder:
    """Grows a graph one block at a time, keeping only blocks core accepts."""

    def __init__(self, draw: st.DrawFn, graph: Graph, current: str) -> None:
        self.draw, self.graph, self.current = draw, graph, current
        self.count = 0

    def node(self, type_name: str, params: dict[str, Any], inputs: list[str]) -> str:
        self.count += 1
        node_id = f"{type_name.lower()}{self.count}"
        self.graph.add_node(type_name, params, id=node_id, inputs=inputs)
        return node_id

    def shape(self, node_id: str) -> tuple[int, ...]:
        shape = infer_shapes(self.graph).nodes[node_id].shape
        assert shape is not None
        return shape

    def try_block(self, block: str, rank: int) -> None:
        """Add one block after `current`; undo it when core reports a problem."""
        before = set(self.graph.ids)
        draw, x = self.draw, self.current
        conv, pool = f"Conv{rank - 1}d", f"{draw(st.sampled_from(['Max', 'Avg']))}Pool{rank - 1}d"
        if block == "conv":
            out = self.node(conv, {"out_channels": draw(st.integers(1, 8)),
                                   "kernel_size": draw(st.integers(1, 3)),
                                   "stride": draw(st.integers(1, 2)),
                                   "padding": draw(st.sampled_from([0, 1, "valid"])),
                                   "groups": 1, "bias": draw(st.booleans())}, [x])
        elif block == "pool":
            out = self.node(pool, {"kernel_size": draw(st.integers(1, 3)),
                                   "ceil_mode": draw(st.booleans())}, [x])
        elif block == "activation":
            out = self.node(draw(st.sampled_from(_ACTIVATIONS)), {}, [x])
        elif block == "norm":
            norm = "BatchNorm2d" if rank == 3 else "BatchNorm1d"
            out = self.node(norm, {"affine": draw(st.booleans())}, [x])
        elif block == "residual":
            channels = self.shape(x)[0]
            branch = self.node(conv, {"out_channels": channels, "kernel_size": 3,
                                      "padding": "same"}, [x])
            branch = self.node("ReLU", {}, [branch])
            out = self.node("Add", {}, [branch, x] if draw(st.booleans()) else [x, branch])
        elif block == "concat":
            left = self.node(conv, {"out_channels": draw(st.integers(1, 4)), "kernel_size": 1},
                             [x])
            right = self.node(pool, {"kernel_size": 3, "stride": 1, "padding": 1}, [x])
            inputs = draw(st.permutations([left, right, x]))[:draw(st.integers(2, 3))]
            out = self.node("Concat", {}, inputs)
        elif block == "maxout":
            out = self.node("Maxout", {"pieces": draw(st.integers(1, 3))}, [x])
        elif block == "upsample":
            out = self.node("Upsample", {"scale_factor": draw(st.sampled_from([0.5, 1.5, 2.0]))},
                            [x])
        else:
            out = self.node(draw(st.sampled_from(["Dropout", "Dropout2d"])), {}, [x])
        inference = infer_shapes(self.graph)
        if any(p.node in set(self.graph.ids) - before for p in inference.errors):
            for node_id in sorted(set(self.graph.ids) - before, key=self.graph.index_of,
                                  reverse=True):
                self.graph.remove_node(node_id)
        else:
            self.current = out


@st.composite
def random_network(draw: st.DrawFn) -> Graph:
    """Input → random blocks (convs, pools, residual Adds, Concats, …) → Flatten → Linear."""
    graph = Graph()
    rank = draw(st.sampled_from([2, 3]))  # signals C×L or images C×H×W
    spatial = [draw(st.integers(4, 16)) for _ in range(rank - 1)]
    graph.add_node("Input", {"shape": [draw(st.integers(1, 4)), *spatial]}, id="input")
    builder = _Builder(draw, graph, "input")
    blocks = ["conv", "pool", "activation", "norm", "residual", "concat", "maxout", "upsample",
              "dropout"]
    for _ in range(draw(st.integers(1, 8))):
        builder.try_block(draw(st.sampled_from(blocks)), rank)
    x = builder.node("Flatten", {}, [builder.current])
    if draw(st.booleans()):
        x = builder.node("Linear", {"out_features": draw(st.integers(1, 16))}, [x])
        x = builder.node("ReLU", {}, [x])
    builder.node("Linear", {"out_features": draw(st.integers(1, 10))}, [x])
    return graph


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_network())
def test_random_network_matches_core(graph: Graph) -> None:
    inference = infer_shapes(graph)
    assert inference.ok, inference.problems
    module = build_module(graph).eval()
    x = torch.randn(2, *module.input_shape)
    with torch.no_grad():
        outputs = module.forward_all(x)
        y = module(x)
    assert set(outputs) == set(graph.ids)
    for node_id, tensor in outputs.items():
        assert tuple(tensor.shape[1:]) == inference.nodes[node_id].shape, node_id
    assert torch.equal(y, outputs[inference.output])
    assert sum(p.numel() for p in module.parameters()) == inference.total_params
    for node_id in graph.ids:
        own = sum(p.numel() for p in module.module_for(node_id).parameters())
        assert own == inference.nodes[node_id].params, node_id
    # Weights keyed by node id survive a round trip into a fresh build.
    fresh = build_module(graph).eval()
    load_weights(fresh, weights_to_bytes(module))
    with torch.no_grad():
        assert torch.equal(fresh(x), y)
