"""Walk a model traced by `torch.fx` and plan our graph: one node per layer call.

Every call is looked up in the tables of `fx_ops`; the ones that have no layer type are
counted by name, so the user learns every operation that stands in the way at once,
never a half-imported model.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

from cnnstudio.core import registry
from cnnstudio.core.errors import ParameterError
from cnnstudio.core.params import normalize
from cnnstudio.nn.importing.common import ModelImportError, valid_node_id
from cnnstudio.nn.importing.fx_ops import (
    FUNCTIONS,
    METHODS,
    Alias,
    BatchSize,
    Call,
    Layer,
    SizeOf,
    Unsupported,
    function_label,
    module_layer,
)

INPUT_ID = "input"


@dataclass
class Planned:
    """One node of the graph to be: its id, type, file params and input ids."""

    id: str
    type: str
    params: dict[str, Any]
    inputs: list[str]
    module: str | None = None  # the module path whose state_dict holds this node's weights


class _Poison:
    """The result of an unsupported call: whatever uses it is not planned."""


_POISON = _Poison()


def _plain(value: Any) -> Any:
    """Canonical values as a project file holds them (lists, not tuples)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def file_params(type_name: str, raw: dict[str, Any], label: str) -> dict[str, Any]:
    """The params worth writing: the required ones and those that differ from the default.

    Raises Unsupported when our layer type refuses a value (e.g. BatchNorm momentum None).
    """
    layer = registry.get(type_name)
    try:
        resolved = layer.resolve(dict(raw))
    except ParameterError as err:
        raise Unsupported(f"{label} ({err})") from None
    kept: dict[str, Any] = {}
    for p in layer.params:
        if p.name not in raw:
            continue
        if not p.required:
            try:
                if normalize(p, p.default, layer.ndim) == resolved[p.name]:
                    continue
            except ParameterError:
                pass  # a default our rules cannot normalise alone: write the value
        kept[p.name] = _plain(resolved[p.name])
    return kept


def _node_name(node: fx.Node) -> str:
    """A module's path (`layer1.0.conv1`); a function's name inside the module that calls
    it (`layer1.0.add`), so ids say where a node comes from."""
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    scope = str(list(stack.values())[-1][0]) if stack else ""
    base = re.sub(r"_\d+$", "", node.name)
    return f"{scope}.{base}" if scope else base


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


class FxMapper:
    """Plans our graph from a traced module whose nodes carry ShapeProp's `tensor_meta`."""

    def __init__(self, traced: fx.GraphModule, original: nn.Module) -> None:
        self.traced = traced
        self.original = original  # the traced copy keeps only the submodules forward uses
        self.planned: list[Planned] = []
        self.unsupported: Counter[str] = Counter()
        self.notes: list[str] = []
        self._values: dict[fx.Node, Any] = {}
        self._taken: set[str] = set()
        self._shared: set[str] = set()
        self._calls = Counter(n.target for n in traced.graph.nodes if n.op == "call_module")
        self.output: str | None = None

    # ---- the walk ------------------------------------------------------------------------

    def run(self) -> list[Planned]:
        """Plan every node; raise ModelImportError listing each unsupported operation and
        how often it occurs."""
        for node in self.traced.graph.nodes:
            try:
                self._values[node] = self._visit(node)
            except Unsupported as err:
                self.unsupported[str(err)] += 1
                self._values[node] = _POISON
        if self.unsupported:
            listed = ", ".join(f"{label} ×{count}" for label, count in self.unsupported.items())
            raise ModelImportError(f"unsupported operations: {listed}")
        if self.output is None or self.output == INPUT_ID:
            raise ModelImportError("forward returns its input unchanged; there is nothing to"
                                   " import")
        self._note_unused()
        return self.planned

    def _visit(self, node: fx.Node) -> Any:
        if node.op == "placeholder":
            return self._placeholder(node)
        if node.op == "get_attr":
            if node.users:
                raise Unsupported(f"direct use of self.{node.target}")
            return _POISON
        if node.op == "output":
            return self._output(node)
        if node.op == "call_module":
            return self._call_module(node)
        if node.op == "call_function":
            return self._call_function(node)
        if node.op == "call_method":
            converter = METHODS.get(str(node.target))
            label = f"Tensor.{node.target}"
            if converter is None:
                raise Unsupported(label)
            return self._apply(node, converter(self._call(node, label)), label)
        raise Unsupported(str(node.op))

    def _placeholder(self, node: fx.Node) -> Any:
        if not self.planned:
            self.planned.append(Planned(valid_node_id(INPUT_ID, self._taken), "Input", {}, []))
            return INPUT_ID
        if node.users:
            raise Unsupported(f"a second forward argument ({node.target})")
        return _POISON

    def _output(self, node: fx.Node) -> Any:
        result = node.args[0]
        value = self._values.get(result) if isinstance(result, fx.Node) else None
        if value is _POISON:
            return _POISON
        if not isinstance(value, str):
            raise Unsupported("forward returning something other than one tensor")
        self.output = value
        return value

    def _call_module(self, node: fx.Node) -> Any:
        target = str(node.target)
        module = self.traced.get_submodule(target)
        label = type(module).__name__
        if _has_state(module) and self._calls[target] > 1:
            if target in self._shared:
                return _POISON  # named once, with the number of its uses
            self._shared.add(target)
            raise Unsupported(f"shared weights ({target} used {self._calls[target]} times)")
        if len(node.args) != 1 or node.kwargs:
            raise Unsupported(f"{label} called with more than one argument")
        result = module_layer(module, node.args[0])
        return self._apply(node, result, label, module=target if _has_state(module) else None)

    def _call_function(self, node: fx.Node) -> Any:
        target = node.target
        if target in (getattr, operator.getitem) and self._values.get(node.args[0]) is _POISON:
            return _POISON  # unpacking an unsupported call's result (`out, _ = lstm(x)`)
        if target is getattr and node.args[1:] == ("shape",):
            return SizeOf()
        if target is operator.getitem and isinstance(self._values.get(node.args[0]), SizeOf):
            if node.args[1] in (0, -self._rank(node.args[0])):
                return BatchSize()
            raise Unsupported(f"x.shape[{node.args[1]}] (only the batch size is supported)")
        label = function_label(target)
        converter = FUNCTIONS.get(target)
        if converter is None:
            raise Unsupported(label)
        return self._apply(node, converter(self._call(node, label)), label)

    # ---- helpers -------------------------------------------------------------------------

    def _shape(self, arg: Any) -> tuple[int, ...]:
        """The batched shape ShapeProp recorded for a tensor argument; () otherwise."""
        meta = arg.meta.get("tensor_meta") if isinstance(arg, fx.Node) else None
        shape = getattr(meta, "shape", None)
        return tuple(shape) if shape is not None else ()

    def _rank(self, arg: Any) -> int:
        return len(self._shape(arg))

    def _call(self, node: fx.Node, label: str) -> Call:
        first = node.args[0] if node.args else next(iter(node.kwargs.values()), None)
        if isinstance(first, (list, tuple)) and first:
            first = first[0]
        args = fx.node.map_arg(node.args, self._marker)
        kwargs = fx.node.map_arg(node.kwargs, self._marker)
        return Call(tuple(args), dict(kwargs), self._shape(first), label)

    def _marker(self, arg: fx.Node) -> Any:
        """A size value stands for itself in a converter's arguments; tensors stay nodes."""
        value = self._values.get(arg)
        return value if isinstance(value, (BatchSize, SizeOf)) else arg

    def _apply(self, node: fx.Node, result: Any, label: str, module: str | None = None) -> Any:
        """Turn a converter's result into the value the node stands for."""
        if isinstance(result, Alias):
            arg = node.args[0] if node.args else None
            return self._tensor(arg, label)
        if not isinstance(result, Layer):
            return result
        inputs = [self._tensor(arg, label) for arg in result.inputs]
        if any(i is _POISON for i in inputs):
            return _POISON
        steps = [(result.type, result.params), *result.then]
        planned = [(type_name, file_params(type_name, raw, label)) for type_name, raw in steps]
        node_id, name = "", _node_name(node)
        for index, (type_name, params) in enumerate(planned):
            node_id = valid_node_id(f"{name}_{type_name.lower()}" if index else name,
                                    self._taken)
            self.planned.append(Planned(node_id, type_name, params, inputs, module))
            inputs, module = [node_id], None
        return node_id

    def _tensor(self, arg: Any, label: str) -> Any:
        """Our node id for a tensor argument; raises Unsupported for a constant."""
        value = self._values.get(arg) if isinstance(arg, fx.Node) else None
        if value is _POISON or isinstance(value, str):
            return value
        raise Unsupported(f"{label} with a constant or non-tensor argument")

    def _note_unused(self) -> None:
        used = {p.module for p in self.planned if p.module}
        for name, module in self.original.named_modules():
            if not name or next(module.children(), None) is not None:
                continue
            if _has_state(module) and name not in used and not any(
                    u.startswith(name + ".") for u in used):
                self.notes.append(f"left out {name} ({type(module).__name__}): forward never"
                                  " uses it")
