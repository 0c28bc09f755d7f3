"""The state of an ONNX → graph mapping: what every ONNX value has become so far.

A value is one of
* `Tensor` — the output of one of our nodes (its per-sample shape known),
* `Const` — a constant (an initializer, a Constant, or folded shape arithmetic),
* `Dims` — a shape vector computed at run time from a tensor (`x.size(0)` and friends),
  whose batch entry is unknown (None),
* `Pending` — the first steps of a pattern that becomes one layer later (a Pad folded into
  the next convolution, Div → Erf → … → GELU); any other use of it refuses the operator
  that began the pattern,
* `Poison` — downstream of a refused operator (refused once, not again per consumer).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnstudio.core import registry
from cnnstudio.core.errors import ParameterError, ShapeError
from cnnstudio.core.graph import Graph
from cnnstudio.core.layer_type import Shape
from cnnstudio.nn.importing.common import ModelImportError, valid_node_id
from cnnstudio.nn.importing.onnx_read import tensor_array


@dataclass(frozen=True)
class Tensor:
    node: str
    shape: Shape


@dataclass(frozen=True)
class Const:
    array: np.ndarray = field(compare=False)


@dataclass(frozen=True)
class Dims:
    values: tuple[int | None, ...]  # None: the batch size
    scalar: bool = False


@dataclass(frozen=True)
class Pending:
    kind: str
    source: Tensor
    op: str  # the ONNX operator that began the pattern (named when it is refused)
    name: str  # a name for the node the pattern becomes
    data: Any = None


class Poison:
    """A value downstream of a refused operator; `data` when it stands for data computed
    from the input (not a shape vector), so its consumers can still be judged."""

    def __init__(self, data: bool = False) -> None:
        self.data = data


class Unknown(Tensor):
    """While judging an operator whose data input comes from a refused one: that input.
    Whatever needs its node or shape stops the judging (`_Poisoned`), so only what the
    operator's own attributes and constants say can refuse it."""

    def __init__(self) -> None:  # no fields: they are the properties below
        pass

    @property
    def node(self) -> str:  # type: ignore[override]
        raise _Poisoned

    @property
    def shape(self) -> Shape:  # type: ignore[override]
        raise _Poisoned


class Unsupported(Exception):
    """This node cannot be mapped; `reason` (may be empty) goes into the one-line refusal."""

    def __init__(self, reason: str = "", op: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.op = op


class _Poisoned(Exception):
    pass


def _scoped_name(node: Any) -> str | None:
    """The module path torch.export's exporter records (`pkg.torch.onnx.name_scopes`,
    e.g. ['', 'layer1.0', 'layer1.0.bn1', 'batch_norm']), with the function's name after
    it when a function (not a torch.nn layer) was called inside a module."""
    meta = {p.key: p.value for p in node.metadata_props}
    try:
        scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "None"))
        classes = ast.literal_eval(meta.get("pkg.torch.onnx.class_hierarchy", "[]"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        return None
    module = next((s for s in reversed(scopes[:-1]) if s), "")
    layer = isinstance(classes, list) and len(classes) >= 2 and \
        str(classes[-2]).startswith(("torch.nn.modules.", "cnnstudio.nn.modules."))
    function = re.sub(r"_\d+$", "", scopes[-1])
    if module and (layer or module.rsplit(".", 1)[-1].startswith(function)):
        return module  # a layer, or a module named after what it runs (`add1` runs add)
    return f"{module}.{function}" if module else function


def _module_path(node: Any) -> tuple[str, bool]:
    """(the module path of a torch exporter's node name, whether the operator's own name
    ended it): `/layer1/layer1.0/conv1/Conv` → (`layer1.0.conv1`, True)."""
    name = node.name or (node.output[0] if node.output else "")
    if "/" not in name:
        return name, False
    parts = [p for p in name.split("/") if p]
    operator = bool(parts) and (parts[-1] == node.op_type
                                or parts[-1].startswith(node.op_type + "_"))
    if operator:
        parts.pop()
    kept = [p for i, p in enumerate(parts)
            if not (i + 1 < len(parts) and parts[i + 1].startswith(p + "."))]
    return ".".join(kept), operator


def nice_name(node: Any, containers: frozenset[str] = frozenset()) -> str:
    """A readable name from an ONNX node: `/layer1/layer1.0/conv1/Conv` → `layer1.0.conv1`
    (torch's exporter puts the module path first and the operator last). `containers`:
    module paths that hold other modules (`module_containers`); a function such a module
    calls keeps its operator's name (`/layer1/layer1.0/Add` → `layer1.0.add`), where a
    module of its own (`/features/features.1/Relu`) is named by its path alone."""
    scoped = _scoped_name(node) if len(node.metadata_props) else None
    if scoped:
        return scoped
    path, operator = _module_path(node)
    if operator and path and path in containers:
        return f"{path}.{node.op_type.lower()}"
    return path


def module_containers(nodes: Any) -> frozenset[str]:
    """The module paths that hold other modules, from the node names torch's exporter
    writes (`/blocks/blocks.0/c1/Conv` → `blocks`, `blocks.0`)."""
    found: set[str] = set()
    for node in nodes:
        path, _ = _module_path(node)
        parts = path.split(".") if "/" in (node.name or "") else []
        found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return frozenset(found)


class Mapper:
    """Builds the graph node by node, remembering what each ONNX value became."""

    def __init__(self, folder: Path, initializers: dict[str, Any], consumers: Counter,
                 opset: int, fixed_batch: int | None) -> None:
        self.graph = Graph()
        self.weights: dict[str, np.ndarray] = {}
        self.notes: list[str] = []
        self.values: dict[str, Any] = {}
        self.folder = folder
        self.initializers = initializers
        self.consumers = consumers  # how many node inputs (and graph outputs) read each value
        self.opset = opset
        self.fixed_batch = fixed_batch  # the batch size when the file fixes it, else None
        self.taken: set[str] = set()
        self.refused: Counter = Counter()  # (operator, reason) → count
        self.onnx_of: dict[str, str] = {}  # our node id → the ONNX value it computes
        self.node: Any = None  # the ONNX node being mapped
        self.folded_pad = False  # the node being mapped absorbs a Pad (said in the notes)
        self.judging = False  # mapping only to judge a node fed by a refused one
        self.containers: frozenset[str] = frozenset()  # for nice_name: module_containers

    # ---- reading values ----------------------------------------------------------------

    def value(self, name: str) -> Any:
        """What ONNX value `name` became; raises _Poisoned downstream of a refusal."""
        if name in self.values:
            value = self.values[name]
        elif name in self.initializers:
            value = self.values[name] = Const(tensor_array(self.initializers[name], self.folder))
        else:  # the structure checks ruled this out; be safe
            raise ModelImportError(f"value {name!r} is used but never computed")
        if isinstance(value, Poison):
            if self.judging and value.data and self.node is not None \
                    and self.node.input[:1] == [name]:
                return Unknown()
            raise _Poisoned
        return value

    def input(self, index: int) -> Any:
        """The node's input `index`'s value, or None when absent or empty."""
        if index >= len(self.node.input) or not self.node.input[index]:
            return None
        return self.value(self.node.input[index])

    def tensor(self, index: int = 0) -> Tensor:
        """The node's input `index`, which must be a tensor our graph computes."""
        value = self.input(index)
        if isinstance(value, Tensor):
            return value
        if isinstance(value, Pending):
            raise Unsupported(_PENDING_REASON.get(value.kind.split(":")[0], ""), op=value.op)
        if value is None:
            raise Unsupported("a required input is missing")
        raise Unsupported("applied to a constant, not to the data")

    def const(self, index: int, what: str = "this input") -> np.ndarray | None:
        """The node's input `index` as a constant array (None when absent)."""
        value = self.input(index)
        if value is None:
            return None
        if isinstance(value, Const):
            return value.array
        if isinstance(value, Dims) and None not in value.values:
            return np.array(value.values, dtype=np.int64)
        raise Unsupported(f"{what} is computed at run time, not a constant")

    # ---- writing values ----------------------------------------------------------------

    def set(self, value: Any, index: int = 0) -> None:
        self.values[self.node.output[index]] = value

    def add(self, type_name: str, params: dict[str, Any], inputs: list[Tensor],
            weights: dict[str, np.ndarray] | None = None, *, name: str | None = None,
            node_id: str | None = None) -> Tensor:
        """Add one of our nodes computing the current ONNX node's output; its shape comes
        from our own layer rule. Raises Unsupported when our layer refuses the params."""
        layer = registry.get(type_name)
        try:
            resolved = layer.resolve(params)
            shape = layer.rule([t.shape for t in inputs], resolved).shape
        except (ParameterError, ShapeError) as err:
            raise Unsupported(f"as {type_name}: {err.message if hasattr(err, 'message') else err}"
                              ) from None
        if node_id is None:
            name = name if name is not None else \
                self._weight_owner() or nice_name(self.node, self.containers)
            node_id = valid_node_id(name or type_name.lower(), self.taken)
        self.graph.add_node(type_name, params, id=node_id, inputs=[t.node for t in inputs])
        if self.folded_pad:
            self.notes.append(f"Pad folded into {node_id}")
            self.folded_pad = False
        for key, array in (weights or {}).items():
            self.weights[f"{node_id}.{key}"] = array
        if self.node is not None and self.node.output:
            self.onnx_of[node_id] = self.node.output[0]
        return Tensor(node_id, tuple(shape))

    def _weight_owner(self) -> str | None:
        """`layer1.0.conv1` when the node's weight is the initializer `layer1.0.conv1.weight`:
        torch names initializers by module path, the surest name there is (an exporter
        that folds a BatchNorm into its convolution names the node after the BatchNorm)."""
        inputs = self.node.input if self.node is not None else ()
        if len(inputs) > 1 and inputs[1] in self.initializers and inputs[1].endswith(".weight"):
            return inputs[1][:-len(".weight")]
        return None

    def add_input(self, name: str, shape: Shape) -> None:
        node_id = valid_node_id(name or "input", self.taken)
        self.graph.add_node("Input", {"shape": list(shape)}, id=node_id)
        self.values[name] = Tensor(node_id, tuple(shape))

    def remove(self, node_id: str) -> None:
        """Take back a node a pattern replaces (its id becomes free again)."""
        self.graph.remove_node(node_id)
        self.taken.discard(node_id)
        self.onnx_of.pop(node_id, None)
        for key in [k for k in self.weights if k.startswith(node_id + ".")]:
            del self.weights[key]

    def single_use(self, index: int) -> bool:
        """Whether the node's input `index` is read by this node alone."""
        return self.consumers[self.node.input[index]] == 1

    # ---- driving -----------------------------------------------------------------------

    def map_node(self, node: Any, converter: Any) -> None:
        """Map one ONNX node with `converter(mapper, attrs)`; a refusal is counted and
        poisons the node's outputs."""
        from cnnstudio.nn.importing.onnx_read import attributes

        self.node = node
        try:
            try:
                attrs = attributes(node)
            except Exception:  # malformed attribute protos
                raise Unsupported("malformed attributes") from None
            if not self._fold_constants(node):
                if converter is None:
                    raise Unsupported()
                converter(self, attrs)
        except _Poisoned:
            if converter is None:  # an operator we never map counts wherever it stands
                self.refused[(label(node), "")] += 1
            else:
                self._judge(converter, attrs)
            self._poison(node)
        except Unsupported as refusal:
            self.refused[(refusal.op or label(node), refusal.reason)] += 1
            self._poison(node)
        except (ValueError, TypeError, IndexError, KeyError, OverflowError):
            # Attributes of the wrong kind or length: a malformed node, named in one line.
            self.refused[(label(node), "malformed attributes or inputs")] += 1
            self._poison(node)
        finally:
            self.node = None
            self.folded_pad = False

    def _judge(self, converter: Any, attrs: dict[str, Any]) -> None:
        """A mapped operator whose data input comes from a refused one: map it again with
        that input `Unknown`, so that the refusal line names it too when its own
        attributes or constants cannot be mapped (`x + 1.0` after an unmapped operator)."""
        if not self.node.input or not isinstance(self.values.get(self.node.input[0]), Poison):
            return
        self.judging = True
        try:
            converter(self, attrs)
        except Unsupported as refusal:
            self.refused[(refusal.op or label(self.node), refusal.reason)] += 1
        except Exception:  # noqa: BLE001 — it needed what the refused input would be
            pass
        finally:
            self.judging = False

    def _fold_constants(self, node: Any) -> bool:
        """Compute a node whose inputs are all constants (the shape arithmetic exporters
        write around Pad, say) with onnx's reference evaluator; True when done."""
        names = [name for name in node.input if name]
        if not names or node.op_type not in FOLDABLE or node.domain not in ("", "ai.onnx"):
            return False
        values = [self.value(name) for name in names]
        if not all(isinstance(v, Const) for v in values):
            return False
        arrays = [v.array for v in values]
        if sum(a.size for a in arrays) > MAX_FOLDED or _grows(node.op_type, arrays):
            return False
        from onnx.reference import ReferenceEvaluator

        feeds = dict(zip(names, arrays, strict=True))
        try:
            results = ReferenceEvaluator(node, opsets={"": self.opset}).run(None, feeds)
        except Exception:  # the reference refuses malformed nodes in many ways
            raise Unsupported("malformed constant arithmetic") from None
        for name, result in zip(node.output, results, strict=False):
            if name:
                self.values[name] = Const(np.asarray(result))
        return True

    def _poison(self, node: Any) -> None:
        first = self.values.get(node.input[0]) if node.input and node.input[0] else None
        data = node.op_type not in ("Shape", "Size") and (
            isinstance(first, Tensor | Pending) or isinstance(first, Poison) and first.data)
        for output in node.output:
            if output:
                self.values[output] = Poison(data)

    def refusal_line(self) -> str | None:
        """Every refused operator with its count, in one line; None when all mapped."""
        if not self.refused:
            return None
        by_op: dict[str, list[tuple[str, int]]] = {}
        for (op, reason), count in self.refused.items():
            by_op.setdefault(op, []).append((reason, count))
        parts = []
        for op, reasons in sorted(by_op.items(), key=lambda item: (-sum(c for _, c in item[1]), item[0])):
            total = sum(c for _, c in reasons)
            why = "; ".join(dict.fromkeys(r for r, _ in reasons if r))
            parts.append(f"{op} ×{total}" + (f" ({why})" if why else ""))
        return "unsupported operators: " + ", ".join(parts)


# Operators computed ahead when all their inputs are constants: each one's output is at
# most as large as its inputs, or checked by _grows.
FOLDABLE = frozenset("""Abs Add Cast Ceil Concat ConstantOfShape Div Equal Expand Floor Gather
Greater Identity Less Max Min Mod Mul Neg Not Range ReduceMax ReduceMin ReduceProd ReduceSum
Reshape Shape Slice Sqrt Squeeze Sub Transpose Unsqueeze Where""".split())
MAX_FOLDED = 1 << 22  # values in, and out for the growing operators


def _grows(op: str, arrays: list[np.ndarray]) -> bool:
    """Whether an operator that makes a tensor of a size it reads would make a huge one."""
    try:
        if op in ("ConstantOfShape", "Expand"):
            shape = arrays[-1 if op == "Expand" else 0].reshape(-1)
            return bool(np.prod([max(int(v), 1) for v in shape], dtype=object) > MAX_FOLDED)
        if op == "Range":
            start, limit, delta = (float(a.reshape(-1)[0]) for a in arrays)
            return delta == 0 or abs((limit - start) / delta) > MAX_FOLDED
    except (ValueError, IndexError, OverflowError):
        return True
    return False


_PENDING_REASON = {
    "pad": "only a Pad right before a convolution or pooling can be folded into it",
    "unsqueeze": "adding dimensions to data (only undone by a Squeeze, maybe after a global"
                 " pooling)",
    "gelu": "arithmetic only as part of the GELU pattern x·½·(1 + erf(x/√2))",
}


def label(node: Any) -> str:
    """The operator's name in messages (`com.microsoft.FusedConv` outside the standard)."""
    domain = node.domain if node.domain not in ("", "ai.onnx") else ""
    text = f"{domain}.{node.op_type}" if domain else node.op_type
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)  # stays one line
    return text if len(text) <= 60 else text[:57] + "..."
