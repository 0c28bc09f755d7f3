"""ONNX activations, merges and element-wise arithmetic → our layers.

Arithmetic is only mapped inside the patterns exporters write for layers we have:
x·Sigmoid(x) is SiLU; x·½·(1 + erf(x/√2)) is GELU; a constant added after a MatMul or a
bias-free convolution is its bias; two tensors added are an Add."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnnstudio.nn.importing.onnx_mapper import (
    Const,
    Mapper,
    Pending,
    Tensor,
    Unknown,
    Unsupported,
)
from cnnstudio.nn.importing.onnx_ops import fold_bias, number

_SQRT2 = math.sqrt(2.0)


def activation(type_name: str, **defaults: Any) -> Any:
    """A converter for a one-input activation; `defaults` maps our param → (ONNX
    attribute, default value)."""

    def convert(m: Mapper, attrs: dict[str, Any]) -> None:
        x = m.tensor(0)
        params = {ours: number(attrs.get(theirs, default))
                  for ours, (theirs, default) in defaults.items()}
        m.set(m.add(type_name, params, [x]))

    return convert


def gelu(m: Mapper, attrs: dict[str, Any]) -> None:
    x = m.tensor(0)
    approximate = attrs.get("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise Unsupported(f"approximate {approximate}")
    m.set(m.add("GELU", {"approximate": approximate}, [x]))


def softmax(m: Mapper, attrs: dict[str, Any]) -> None:
    x = m.tensor(0)
    rank = len(x.shape) + 1
    axis = int(attrs.get("axis", -1 if m.opset >= 13 else 1))
    axis = axis % rank if -rank <= axis < rank else -1
    if axis <= 0:
        raise Unsupported("over the batch")
    if m.opset < 13 and axis != rank - 1:
        # Before opset 13 Softmax flattens every axis from `axis` on into one.
        raise Unsupported("over several axes at once")
    m.set(m.add("Softmax", {"dim": axis}, [x]))


def _near(array: np.ndarray, target: float) -> bool:
    return array.size == 1 and abs(float(array.reshape(-1)[0]) - target) < 1e-4 * abs(target)


def _tensor_and_const(m: Mapper) -> tuple[Any, np.ndarray | None, int]:
    """(the non-constant operand, the constant or None, the non-constant's index)."""
    a, b = m.input(0), m.input(1)
    if isinstance(b, Const):
        return a, b.array, 0
    if isinstance(a, Const):
        return b, a.array, 1
    return None, None, -1


def add(m: Mapper, attrs: dict[str, Any]) -> None:
    value, constant, index = _tensor_and_const(m)
    if constant is not None:
        if isinstance(value, Pending) and value.kind == "gelu:erf" and _near(constant, 1.0):
            m.set(Pending("gelu:1+erf", value.source, value.op, value.name))
            return
        # After a refused operator (Unknown) there is no layer to take it as its bias.
        if isinstance(value, Tensor) and not isinstance(value, Unknown) \
                and fold_bias(m, value, index, constant):
            return
        raise Unsupported("adding a constant (not a bias)")
    merge(m, "Add")


def sum_op(m: Mapper, attrs: dict[str, Any]) -> None:
    if len(m.node.input) == 1:
        m.set(m.tensor(0))
    else:
        merge(m, "Add")


def merge(m: Mapper, type_name: str) -> None:
    inputs = [m.tensor(i) for i in range(len(m.node.input))]
    if type_name == "Add" and any(t.shape != inputs[0].shape for t in inputs):
        raise Unsupported("of tensors of different shapes (broadcasting)")
    m.set(m.add(type_name, {}, inputs))


def concat(m: Mapper, attrs: dict[str, Any]) -> None:
    from cnnstudio.nn.importing.onnx_shapes import concat_dims

    values = [m.input(i) for i in range(len(m.node.input))]
    if not any(isinstance(v, Tensor | Pending) for v in values):
        concat_dims(m, values, int(attrs.get("axis", 0)))
        return
    inputs = [m.tensor(i) for i in range(len(values))]
    rank = len(inputs[0].shape) + 1
    if int(attrs.get("axis", 1)) % rank != 1 or len(inputs) < 2:
        raise Unsupported("along another axis than the channels")
    m.set(m.add("Concat", {}, inputs))


def div(m: Mapper, attrs: dict[str, Any]) -> None:
    x, divisor = m.input(0), m.input(1)
    if isinstance(x, Tensor) and isinstance(divisor, Const) and _near(divisor.array, _SQRT2):
        m.set(Pending("gelu:x/√2", x, "Div", _name(m)))
        return
    from cnnstudio.nn.importing.onnx_shapes import shape_arithmetic

    shape_arithmetic(m, np.floor_divide)


def erf(m: Mapper, attrs: dict[str, Any]) -> None:
    value = m.input(0)
    if isinstance(value, Pending) and value.kind == "gelu:x/√2":
        m.set(Pending("gelu:erf", value.source, value.op, value.name))
        return
    raise Unsupported("outside the GELU pattern")


def mul(m: Mapper, attrs: dict[str, Any]) -> None:
    a, b = m.input(0), m.input(1)
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if _silu(m, a, b, 1) or _silu(m, b, a, 0):
            return
        raise Unsupported("of two tensors")
    for first, second in ((a, b), (b, a)):
        if isinstance(first, Tensor) and isinstance(second, Const):
            if _near(second.array, 1 / _SQRT2):  # x·(1/√2): the other way to write x/√2
                m.set(Pending("gelu:x/√2", first, "Mul", _name(m)))
                return
            if _near(second.array, 0.5):
                m.set(Pending("gelu:x/2", first, "Mul", _name(m)))
                return
        if isinstance(first, Tensor) and isinstance(second, Pending) \
                and second.kind == "gelu:1+erf" and second.source == first:
            m.set(Pending("gelu:x(1+erf)", first, second.op, second.name))
            return
        if isinstance(first, Pending) and isinstance(second, Const) \
                and first.kind == "gelu:x(1+erf)" and _near(second.array, 0.5):
            _finish_gelu(m, first)
            return
        if isinstance(first, Pending) and isinstance(second, Pending) \
                and first.kind == "gelu:x/2" and second.kind == "gelu:1+erf" \
                and first.source == second.source:
            _finish_gelu(m, second)
            return
    if isinstance(a, Tensor | Pending) or isinstance(b, Tensor | Pending):
        if isinstance(a, Pending) or isinstance(b, Pending):
            m.tensor(0 if isinstance(a, Pending) else 1)  # refuses the pattern's start
        raise Unsupported("scaling by a constant")
    from cnnstudio.nn.importing.onnx_shapes import shape_arithmetic

    shape_arithmetic(m, np.multiply)


def _finish_gelu(m: Mapper, pending: Pending) -> None:
    m.set(m.add("GELU", {}, [pending.source], name=pending.name))


def _silu(m: Mapper, x: Tensor, gate: Tensor, gate_index: int) -> bool:
    """x·Sigmoid(x) → SiLU (the Sigmoid node, when only this Mul reads it, is replaced)."""
    sigmoid = m.graph.node(gate.node)
    if sigmoid.type != "Sigmoid" or sigmoid.inputs != [x.node]:
        return False
    if m.single_use(gate_index):
        node_id = sigmoid.id
        m.remove(node_id)
        m.set(m.add("SiLU", {}, [x], node_id=node_id))
        m.taken.add(node_id)
    else:
        m.set(m.add("SiLU", {}, [x]))
    return True


def _name(m: Mapper) -> str:
    from cnnstudio.nn.importing.onnx_mapper import nice_name

    return nice_name(m.node) or "gelu"


def dropout(m: Mapper, attrs: dict[str, Any]) -> None:
    x = m.tensor(0)
    if len(m.node.output) > 1 and m.node.output[1] and m.consumers[m.node.output[1]]:
        raise Unsupported("its mask output")
    ratio = m.const(1, "the ratio")
    p = ratio.reshape(-1)[0] if ratio is not None and ratio.size else attrs.get("ratio", 0.5)
    m.set(m.add("Dropout", {"p": number(p)}, [x]))


def identity(m: Mapper, attrs: dict[str, Any]) -> None:
    m.set(m.input(0))
