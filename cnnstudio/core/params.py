"""Layer parameter descriptions and their validation.

A `Param` says what one constructor keyword of a layer accepts. `normalize` turns a
user value (as found in a project file or typed in the inspector) into the canonical
form the shape rules use: tuples of ints per spatial dimension, floats, bools, None.
Values are checked with torch's own conventions (an int or a list per dimension,
`padding="same"`) so that what the registry accepts the torch builder accepts too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cnnstudio.core.errors import ParameterError

REQUIRED = object()  # sentinel: the torch constructor has no default for this parameter

# Kinds of parameter values.
INT = "int"  # a plain int
FLOAT = "float"  # a number
BOOL = "bool"
CHOICE = "choice"  # one of `choices` (strings)
INTS = "ints"  # an int or a list of `ndim` ints (kernel_size, stride, …)
PADDING = "padding"  # like INTS, or "same" / "valid"
SIZE = "size"  # an int, or a list of `ndim` ints or nulls (output_size, size); may be None
FLOATS = "floats"  # a number or a list of `ndim` numbers (scale_factor); may be None
SHAPE = "shape"  # a list of 1 to 4 positive ints (Input.shape)

LIMIT = 1 << 20  # upper bound for sizes nobody needs larger; keeps arithmetic and memory sane


@dataclass(frozen=True)
class Param:
    """One constructor keyword of a layer type."""

    name: str
    kind: str
    default: Any  # torch's default, or REQUIRED
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False  # None is a valid value (e.g. MaxPool2d.stride, divisor_override)
    initial: Any = None  # value the palette puts in a new node (for REQUIRED params)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _bounds_text(p: Param) -> str:
    if p.minimum is not None and p.maximum is not None:
        return f"between {_fmt(p.minimum)} and {_fmt(p.maximum)}"
    if p.minimum is not None:
        return f"≥ {_fmt(p.minimum)}"
    return f"≤ {_fmt(p.maximum)}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _check_bounds(p: Param, value: float) -> None:
    low_ok = p.minimum is None or value >= p.minimum
    high_ok = p.maximum is None or value <= p.maximum
    if not (low_ok and high_ok):
        raise ParameterError(f"must be {_bounds_text(p)}, got {value}", param=p.name)


def _int(p: Param, value: Any) -> int:
    if not _is_int(value):
        raise ParameterError(f"must be an integer, got {value!r}", param=p.name)
    _check_bounds(p, value)
    return value


def _int_tuple(p: Param, value: Any, ndim: int, allow_null: bool = False) -> Any:
    """An int or a list of `ndim` ints (or nulls when allowed) → a tuple of `ndim` items.

    With ndim 0 (the layer adapts to its input's rank) an int stays an int and a list of
    1 to 3 items becomes a tuple; the shape rule checks the length against the input.
    """
    if _is_int(value):
        _check_bounds(p, value)
        return value if ndim == 0 else (value,) * ndim
    if isinstance(value, (list, tuple)):
        if (ndim == 0 and not 1 <= len(value) <= 3) or (ndim and len(value) != ndim):
            raise ParameterError(
                f"must be an integer or a list of {ndim} integers, got {len(value)} values",
                param=p.name,
            )
        items = []
        for item in value:
            if item is None and allow_null:
                items.append(None)
                continue
            if not _is_int(item):
                raise ParameterError(f"must contain integers, got {item!r}", param=p.name)
            _check_bounds(p, item)
            items.append(item)
        return tuple(items)
    expected = f"an integer or a list of {ndim} integers"
    raise ParameterError(f"must be {expected}, got {value!r}", param=p.name)


def normalize(p: Param, value: Any, ndim: int) -> Any:
    """Check `value` against `p` and return its canonical form.

    `ndim` is the number of spatial dimensions of the layer (1, 2 or 3) for INTS,
    PADDING, SIZE and FLOATS. Raises ParameterError (with `param` set) on a bad value.
    """
    if value is None:
        if p.nullable:
            return None
        raise ParameterError("must not be null", param=p.name)
    if p.kind == INT:
        return _int(p, value)
    if p.kind == FLOAT:
        if not _is_number(value):
            raise ParameterError(f"must be a finite number, got {value!r}", param=p.name)
        _check_bounds(p, value)
        return float(value)
    if p.kind == BOOL:
        if not isinstance(value, bool):
            raise ParameterError(f"must be true or false, got {value!r}", param=p.name)
        return value
    if p.kind == CHOICE:
        if value not in p.choices:
            options = ", ".join(repr(c) for c in p.choices)
            raise ParameterError(f"must be one of {options}, got {value!r}", param=p.name)
        return value
    if p.kind == INTS:
        return _int_tuple(p, value, ndim)
    if p.kind == PADDING:
        if isinstance(value, str):
            if value not in ("same", "valid"):
                raise ParameterError(
                    f"must be an integer, a list, 'same' or 'valid', got {value!r}", param=p.name
                )
            return value
        return _int_tuple(p, value, ndim)
    if p.kind == SIZE:
        return _int_tuple(p, value, ndim, allow_null=True)
    if p.kind == FLOATS:
        if _is_number(value):
            _check_bounds(p, value)
            return float(value) if ndim == 0 else (float(value),) * ndim
        if isinstance(value, (list, tuple)) and (
            len(value) == ndim or (ndim == 0 and 1 <= len(value) <= 3)
        ):
            for item in value:
                if not _is_number(item):
                    raise ParameterError(f"must contain numbers, got {item!r}", param=p.name)
                _check_bounds(p, item)
            return tuple(float(v) for v in value)
        raise ParameterError(f"must be a number or a list of {ndim} numbers", param=p.name)
    if p.kind == SHAPE:
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 4:
            raise ParameterError("must be a list of 1 to 4 positive integers", param=p.name)
        for item in value:
            if not _is_int(item) or not 1 <= item <= LIMIT:
                raise ParameterError(
                    f"must contain integers between 1 and {LIMIT}, got {item!r}", param=p.name
                )
        return tuple(value)
    raise AssertionError(f"unknown parameter kind {p.kind}")


def to_json(value: Any) -> Any:
    """Canonical value → JSON value (tuples become lists)."""
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    return value
