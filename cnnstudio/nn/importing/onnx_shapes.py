"""Constants and the shape arithmetic exporters write around a flatten.

`x.view(x.size(0), -1)` becomes Shape → Gather → Unsqueeze → Concat → Reshape: the
shape vector is followed symbolically (`Dims`, the batch entry unknown) and the Reshape
becomes a Flatten when it flattens a run of dimensions; a Reshape that keeps the shape
vanishes. Any other reshaping is refused."""

from __future__ import annotations

from collections.abc import Callable
from math import prod
from typing import Any

import numpy as np

from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.nn.importing.onnx_mapper import Const, Dims, Mapper, Pending, Tensor, Unsupported
from cnnstudio.nn.importing.onnx_read import tensor_array


def _vector(value: Any) -> tuple[list[int | None], bool]:
    """A Dims or integer Const as (entries, is_scalar); Unsupported otherwise."""
    if isinstance(value, Dims):
        return list(value.values), value.scalar
    if isinstance(value, Const) and value.array.dtype.kind in "iub" and value.array.ndim <= 1:
        return [int(v) for v in value.array.reshape(-1)], value.array.ndim == 0
    raise Unsupported("on data, not on a shape")


def _dims_or_const(values: list[int | None], scalar: bool) -> Any:
    if None in values:
        return Dims(tuple(values), scalar)
    array = np.array(values, dtype=np.int64)
    return Const(array.reshape(()) if scalar else array)


def constant(m: Mapper, attrs: dict[str, Any]) -> None:
    if "value" in attrs:
        m.set(Const(tensor_array(attrs["value"], m.folder)))
    elif "value_float" in attrs or "value_int" in attrs:
        m.set(Const(np.array(attrs.get("value_float", attrs.get("value_int")))))
    elif "value_floats" in attrs or "value_ints" in attrs:
        m.set(Const(np.array(attrs.get("value_floats", attrs.get("value_ints")))))
    else:
        raise Unsupported("sparse or string constants")


def shape(m: Mapper, attrs: dict[str, Any]) -> None:
    value = m.input(0)
    if isinstance(value, Pending):
        value = value.source if value.kind != "pad" else m.tensor(0)
    if isinstance(value, Tensor):
        entries: list[int | None] = [None, *value.shape]
        if m.fixed_batch is not None:
            entries[0] = m.fixed_batch
    elif isinstance(value, Const):
        entries = list(value.array.shape)
    else:
        raise Unsupported("of a shape")
    start, end = int(attrs.get("start", 0)), attrs.get("end")
    entries = entries[start:None if end is None else int(end)]
    m.set(_dims_or_const(entries, False))


def gather(m: Mapper, attrs: dict[str, Any]) -> None:
    data, indices = m.input(0), m.const(1, "the indices")
    if isinstance(data, Const) and data.array.dtype.kind in "iub" and data.array.ndim <= 1 \
            or isinstance(data, Dims):
        entries, _ = _vector(data)
        picked = [entries[int(i)] for i in indices.reshape(-1)]
        m.set(_dims_or_const(picked, indices.ndim == 0))
        return
    if isinstance(data, Const):
        m.set(Const(np.take(data.array, indices, axis=int(attrs.get("axis", 0)))))
        return
    raise Unsupported("on data (an embedding or indexing)")


def _axes(m: Mapper, attrs: dict[str, Any]) -> list[int] | None:
    axes = attrs.get("axes")
    if axes is None:
        given = m.const(1, "axes")
        return None if given is None else [int(a) for a in given.reshape(-1)]
    return [int(a) for a in axes]


def unsqueeze(m: Mapper, attrs: dict[str, Any]) -> None:
    value, axes = m.input(0), _axes(m, attrs)
    if axes is None:
        raise Unsupported("without axes")
    if isinstance(value, Tensor | Pending):
        x = m.tensor(0)
        rank = len(x.shape) + 1 + len(axes)
        inserted = tuple(sorted(a % rank for a in axes))
        if 0 in inserted or 1 in inserted:
            raise Unsupported(f"adding dimensions to {fmt_shape(x.shape)} data")
        # Only a later Squeeze of the same axes (maybe after a global pooling) undoes it.
        m.set(Pending("unsqueeze", x, "Unsqueeze", "unsqueeze", inserted))
        return
    if isinstance(value, Dims):
        if not (value.scalar and axes == [0]):
            raise Unsupported("of a shape")
        m.set(Dims(value.values, False))
        return
    m.set(Const(np.expand_dims(value.array, tuple(axes))))


def squeeze(m: Mapper, attrs: dict[str, Any]) -> None:
    value, axes = m.input(0), _axes(m, attrs)
    if isinstance(value, Pending) and value.kind == "unsqueeze" and axes is not None:
        rank = len(value.source.shape) + 1 + len(value.data)
        if tuple(sorted(a % rank for a in axes)) == value.data:
            m.set(value.source)
            return
    if isinstance(value, Tensor):
        rank = len(value.shape) + 1
        batched = (None, *value.shape)
        drop = {a % rank for a in axes} if axes is not None else \
            {i for i, size in enumerate(batched) if size == 1}
        if 0 in drop or any(batched[a] != 1 for a in drop):
            raise Unsupported("of the batch or of a dimension larger than 1")
        reshape_to(m, value, [s for i, s in enumerate(value.shape) if i + 1 not in drop])
        return
    if isinstance(value, Dims):
        if len(value.values) != 1:
            raise Unsupported("of a shape")
        m.set(Dims(value.values, True))
        return
    if isinstance(value, Const):
        m.set(Const(np.squeeze(value.array, None if axes is None else tuple(axes))))
        return
    m.tensor(0)


def slice_op(m: Mapper, attrs: dict[str, Any]) -> None:
    value = m.input(0)
    if not isinstance(value, Dims | Const):
        raise Unsupported("of data (cropping)")
    if "starts" in attrs:  # opset < 10
        starts, ends = attrs["starts"], attrs["ends"]
        axes, steps = attrs.get("axes"), None
    else:
        starts, ends = m.const(1, "starts"), m.const(2, "ends")
        axes, steps = m.const(3, "axes"), m.const(4, "steps")
    if isinstance(value, Const) and value.array.ndim != 1:
        raise Unsupported("of a multi-dimensional constant")
    entries, _ = _vector(value) if isinstance(value, Dims) else \
        (list(value.array.reshape(-1)), False)
    if axes is not None and [int(a) for a in np.reshape(axes, -1)] not in ([0], [-1]):
        raise Unsupported("of a shape along another axis")
    step = 1 if steps is None else int(np.reshape(steps, -1)[0])
    start, end = int(np.reshape(starts, -1)[0]), int(np.reshape(ends, -1)[0])
    big = 2**62
    picked = entries[max(start, -big):min(end, big):step]
    if isinstance(value, Const):
        m.set(Const(np.array(picked, dtype=value.array.dtype)))
    else:
        m.set(_dims_or_const(picked, False))


def cast(m: Mapper, attrs: dict[str, Any]) -> None:
    from onnx import helper

    value = m.input(0)
    to = np.dtype(helper.tensor_dtype_to_np_dtype(int(attrs.get("to", 1))))
    if isinstance(value, Dims):
        m.set(value)
    elif isinstance(value, Const):
        m.set(Const(value.array.astype(to)))
    elif to == np.float32:
        m.set(m.tensor(0))  # our tensors are float32 already
    else:
        raise Unsupported(f"of data to {to}")


def concat_dims(m: Mapper, values: list[Any], axis: int) -> None:
    """Concat of shape vectors and constants (no tensor among them)."""
    if all(isinstance(v, Const) for v in values):
        m.set(Const(np.concatenate([v.array for v in values], axis=axis)))
        return
    entries: list[int | None] = []
    for value in values:
        entries += _vector(value)[0]
    m.set(_dims_or_const(entries, False))


def shape_arithmetic(m: Mapper, operation: Callable[[Any, Any], Any]) -> None:
    """Mul/Div of shape entries (`x.size(1) * x.size(2)`), the batch staying unknown."""
    a, b = m.input(0), m.input(1)
    if isinstance(a, Tensor | Pending) or isinstance(b, Tensor | Pending):
        m.tensor(0 if isinstance(a, Tensor | Pending) else 1)
        raise Unsupported("of data by a constant")
    if isinstance(a, Const) and isinstance(b, Const):
        m.set(Const(operation(a.array, b.array)))
        return
    (left, scalar_a), (right, scalar_b) = _vector(a), _vector(b)
    if len(left) == 1 and len(right) > 1:
        left = left * len(right)
    if len(right) == 1 and len(left) > 1:
        right = right * len(left)
    out = [None if x is None or y is None else int(operation(x, y))
           for x, y in zip(left, right, strict=True)]
    m.set(_dims_or_const(out, scalar_a and scalar_b))


def reshape(m: Mapper, attrs: dict[str, Any]) -> None:
    value = m.input(0)
    target, _ = _vector(m.input(1))
    if isinstance(value, Const):
        m.set(Const(value.array.reshape([v if v is not None else -1 for v in target])))
        return
    x = m.tensor(0)
    batched: list[int | None] = [None, *x.shape]
    if not int(attrs.get("allowzero", 0)):
        target = [batched[i] if v == 0 and i < len(batched) else v for i, v in enumerate(target)]
    first, rest = (target[0], target[1:]) if target else (None, [])
    size = prod(x.shape)
    if first is None or (m.fixed_batch is not None and first == m.fixed_batch):
        pass
    elif first == -1 and all(v is not None and v > 0 for v in rest) and prod(rest) == size:
        pass  # `view(-1, C·H·W)`: the batch is what is left
    else:
        raise Unsupported(f"to {target} (it mixes samples of the batch)")
    if any(v is None for v in rest) or rest.count(-1) > 1:
        raise Unsupported(f"to {target}")
    if -1 in rest:
        known = prod(v for v in rest if v != -1)
        if known <= 0 or size % known:
            raise Unsupported(f"to {target}")
        rest = [size // known if v == -1 else v for v in rest]
    reshape_to(m, x, rest)


def flatten(m: Mapper, attrs: dict[str, Any]) -> None:
    x = m.tensor(0)
    axis = int(attrs.get("axis", 1))
    if axis % (len(x.shape) + 1) != 1:
        raise Unsupported("at another axis than 1 (it would mix samples or keep channels)")
    reshape_to(m, x, [prod(x.shape)])


def reshape_to(m: Mapper, x: Tensor, target: list[int]) -> None:
    """Make the current node's output `x` reshaped to the per-sample `target`: nothing
    when it keeps the shape, a Flatten when it merges one run of dimensions."""
    target = [int(v) for v in target]
    if tuple(target) == x.shape:
        m.set(x)
        return
    for start in range(len(x.shape)):
        for end in range(start + 1, len(x.shape)):
            merged = [*x.shape[:start], prod(x.shape[start:end + 1]), *x.shape[end + 1:]]
            if merged == target:
                params = {} if (start, end) == (0, len(x.shape) - 1) else \
                    {"start_dim": start + 1, "end_dim": end + 1}
                m.set(m.add("Flatten", params, [x]))
                return
    raise Unsupported(f"from {fmt_shape(x.shape)} to {fmt_shape(tuple(target))}"
                      " (only flattening maps to a layer)")
