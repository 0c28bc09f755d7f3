"""Graph → torch module: one torch layer per node, run in topological order.

Every layer is built from its registry description (`LayerType.torch_class` and the
node's resolved params) plus the sizes shape inference supplies, so what the
inspector shows is exactly what torch runs. Each node's module is registered under
the node's id, which makes `state_dict()` keys `<node id>.<torch param name>`, the
key layout of the project file's `weights.safetensors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cnnstudio.core import registry
from cnnstudio.core.errors import first_line, with_more
from cnnstudio.core.graph import Graph
from cnnstudio.core.layer_type import Shape, fmt_shape
from cnnstudio.core.shapes import Problem, infer_shapes
from cnnstudio.nn import modules as own_modules


class BuildError(Exception):
    """The graph cannot become a module; `str()` is one line, `problems` lists every error."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


def make_layer(type_name: str, params: dict[str, Any], input_shapes: Sequence[Shape]) -> nn.Module:
    """The torch module for one node of type `type_name`.

    `params` are the node's resolved params (`Node.resolved_params()`) and `input_shapes`
    its per-sample input shapes (from `infer_shapes`). Raises UnknownTypeError for an
    unknown type, and whatever torch raises when it refuses the arguments.
    """
    layer = registry.get(type_name)
    if layer.torch_class is None:
        return getattr(own_modules, str(layer.own_class))(**params)
    kwargs = {**params, **layer.inferred_sizes(input_shapes[0])}
    if "inplace" in kwargs:
        # Branches may share one tensor (a skip connection reads what a ReLU would
        # overwrite), and autograd refuses some in-place updates: always out of place.
        kwargs["inplace"] = False
    return getattr(nn, layer.torch_class)(**kwargs)


class GraphModule(nn.Module):
    """A network graph as a torch module.

    Submodules are named by node id (`state_dict()` keys `conv1.weight`, …). The
    metadata lives in `_`-prefixed attributes behind read-only properties: core forbids
    node ids that start with `_`, so no node can shadow them.
    """

    def __init__(self, modules: dict[str, nn.Module], inputs: dict[str, list[str]],
                 input_id: str, output_id: str, input_shape: Shape) -> None:
        """`modules` in topological order; `inputs` maps each node id to its input ids."""
        super().__init__()
        order = list(modules)
        self._node_ids = tuple(order)
        self._input_id = input_id
        self._output_id = output_id
        self._input_shape = tuple(input_shape)
        for node_id, module in modules.items():
            if hasattr(type(self), node_id):
                # One of this class's own names that core does not reserve (e.g. a node
                # called `forward_all`): keep the state_dict key, bypass add_module's
                # clash check. Attribute access still finds the method; use module_for.
                self._modules[node_id] = module
            else:
                self.add_module(node_id, module)
        slot = {node_id: i for i, node_id in enumerate(order)}
        self._slots = len(order)
        self._input_slot = slot[input_id]
        self._output_slot = slot[output_id]
        # The plan holds names, not modules: modules are looked up in `_modules` on every
        # call, so replicas (DataParallel), deep copies and swapped layers stay coherent.
        steps = [(node_id, tuple(slot[s] for s in inputs[node_id]), slot[node_id])
                 for node_id in order if node_id != input_id]
        last_use: dict[int, int] = {}
        for index, (_, args, _) in enumerate(steps):
            for arg in args:
                last_use[arg] = index
        frees: list[list[int]] = [[] for _ in steps]
        for arg, index in last_use.items():
            if arg != self._output_slot:
                frees[index].append(arg)
        self._plan = [(node_id, args, out, tuple(free))
                      for (node_id, args, out), free in zip(steps, frees, strict=True)]

    # ---- metadata ------------------------------------------------------------------------

    @property
    def input_id(self) -> str:
        """Id of the Input node."""
        return self._input_id

    @property
    def output_id(self) -> str:
        """Id of the node whose output the module returns."""
        return self._output_id

    @property
    def input_shape(self) -> Shape:
        """Per-sample input shape, channels first (the Input node's `shape`)."""
        return self._input_shape

    @property
    def node_ids(self) -> tuple[str, ...]:
        """Every node id, in the order the nodes run (topological)."""
        return self._node_ids

    def module_for(self, node_id: str) -> nn.Module:
        """The module that computes node `node_id`; raises KeyError for an unknown id."""
        try:
            return self._modules[node_id]  # type: ignore[return-value]
        except KeyError:
            raise KeyError(f"the model has no node {node_id!r}") from None

    # ---- running -------------------------------------------------------------------------

    def _check_input(self, x: torch.Tensor) -> None:
        if x.shape[1:] != self._input_shape:
            raise ValueError(
                f"the model takes a batch of {fmt_shape(self._input_shape)} samples,"
                f" got a tensor of shape {fmt_shape(tuple(x.shape))}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run a batch (N × input_shape) through the network; return the output node's tensor."""
        self._check_input(x)
        modules = self._modules
        values: list[Any] = [None] * self._slots
        values[self._input_slot] = x
        for node_id, args, out, free in self._plan:
            if len(args) == 1:  # most nodes: skip building an argument list
                values[out] = modules[node_id](values[args[0]])
            else:
                values[out] = modules[node_id](*[values[i] for i in args])
            for i in free:
                values[i] = None  # drop it after its last use: peak memory stays low
        return values[self._output_slot]

    def forward_all(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run a batch and return every node's output, keyed by node id (Input included)."""
        self._check_input(x)
        modules = self._modules
        values: list[Any] = [None] * self._slots
        values[self._input_slot] = x
        outputs = {self._input_id: x}
        for node_id, args, out, _ in self._plan:
            values[out] = outputs[node_id] = modules[node_id](*[values[i] for i in args])
        return {node_id: outputs[node_id] for node_id in self._node_ids}


# Free functions, not methods: a GraphModule's public names are reserved node ids
# (core.ids), and these need not take ids away from users.

def node_inputs(module: GraphModule, node_id: str) -> tuple[str, ...]:
    """The ids of the nodes `node_id` takes its inputs from, in argument order (none for
    the Input). Raises KeyError for an unknown id."""
    if node_id == module._input_id:
        return ()
    for step_id, args, _, _ in module._plan:
        if step_id == node_id:
            return tuple(module._node_ids[i] for i in args)
    raise KeyError(f"the model has no node {node_id!r}")


def forward_to(module: GraphModule, x: torch.Tensor, node_id: str) -> torch.Tensor:
    """Run a batch through only the nodes `node_id` depends on; return its output.

    Nodes on other branches and every node after it are skipped (what the Explain view's
    top-k search over a dataset needs), and each value is dropped after its last use, as
    `forward` does. Raises KeyError for an unknown id and ValueError for a batch of the
    wrong shape."""
    module._check_input(x)
    plan = module._plan
    slot = {step[0]: step[2] for step in plan}
    slot[module._input_id] = module._input_slot
    if node_id not in slot:
        raise KeyError(f"the model has no node {node_id!r}")
    target = slot[node_id]
    needed = {target}
    for _, args, out, _ in reversed(plan):
        if out in needed:
            needed.update(args)
    steps = [(step_id, args, out) for step_id, args, out, _ in plan if out in needed]
    last_use = {arg: index for index, (_, args, _) in enumerate(steps) for arg in args}
    modules = module._modules
    values: list[Any] = [None] * module._slots
    values[module._input_slot] = x
    for index, (step_id, args, out) in enumerate(steps):
        values[out] = modules[step_id](*[values[i] for i in args])
        if out == target:
            break
        for arg in args:
            if last_use[arg] == index and arg != target:
                values[arg] = None  # peak memory: only what later nodes still read
    return values[target]


def build_module(graph: Graph) -> GraphModule:
    """Build the torch module for `graph`.

    Raises BuildError (one-line message: the first error, and how many more there are)
    when shape inference reports errors, when the graph is empty, or when torch refuses
    a layer that shape inference accepted.
    """
    inference = infer_shapes(graph)
    if inference.errors:
        raise BuildError(with_more(inference.errors), inference.errors)
    input_node = graph.input_node()
    if inference.output is None or input_node is None:
        raise BuildError("the network is empty: add an Input node and some layers")
    modules: dict[str, nn.Module] = {}
    inputs: dict[str, list[str]] = {}
    for node_id in inference.order:
        node = graph.node(node_id)
        try:
            modules[node_id] = make_layer(node.type, node.resolved_params(),
                                          inference.nodes[node_id].input_shapes)
        except (TypeError, ValueError, RuntimeError) as err:
            # Shape inference should have caught it; say which node, in one line.
            raise BuildError(f"{node_id}: torch refuses this {node.type}:"
                             f" {first_line(err)}") from err
        inputs[node_id] = list(node.inputs)
    input_shape = inference.nodes[input_node.id].shape
    assert input_shape is not None  # no errors, so the Input has its shape
    return GraphModule(modules, inputs, input_node.id, inference.output, input_shape)
