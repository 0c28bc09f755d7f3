"""What a layer type is: its parameters, its shape rule, and how to read its numbers.

One `LayerType` per layer describes everything the rest of the program needs: the
palette (category, help), the inspector (parameters, formulas), shape inference
(`rule`), the torch builder (`torch_class`) and file validation (`resolve`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnstudio.core.errors import ParameterError
from cnnstudio.core.params import Param, normalize

Shape = tuple[int, ...]

SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


@dataclass(frozen=True)
class RFStep:
    """How a layer changes the receptive field, per spatial dimension.

    `kernel` is the effective (dilated) kernel extent and `stride` the factor the
    jump between neighbouring outputs is multiplied by (below 1 when upsampling).
    `is_global` marks layers whose every output sees the whole input (Flatten, Linear).
    """

    kernel: tuple[float, ...] = ()
    stride: tuple[float, ...] = ()
    is_global: bool = False


GLOBAL_RF = RFStep(is_global=True)


@dataclass
class Note:
    """A non-fatal remark on a valid layer (a warning), with an optional quick-fix kind."""

    message: str
    fix: str | None = None


@dataclass
class LayerResult:
    """What a shape rule computes for one node."""

    shape: Shape
    params: int = 0  # trainable parameters, as sum(p.numel() for p in module.parameters())
    macs: int = 0  # multiply-accumulate operations per sample
    formulas: list[str] = field(default_factory=list)
    rf: RFStep | None = None  # None: the layer keeps the receptive field as it is
    notes: list[Note] = field(default_factory=list)


Rule = Callable[[list[Shape], dict[str, Any]], LayerResult]


@dataclass(frozen=True)
class LayerType:
    """The single description of one layer type."""

    name: str
    category: str
    help: str
    params: tuple[Param, ...]
    rule: Rule
    min_inputs: int = 1
    max_inputs: int | None = 1
    ndim: int = 0  # spatial dimensions of list-valued parameters (kernel_size…), 0 if none
    torch_class: str | None = None  # torch.nn class name; None for our own types
    caption: Callable[[dict[str, Any]], str] = lambda p: ""
    check: Callable[[dict[str, Any]], None] | None = None  # cross-parameter constraints
    reserved: tuple[str, ...] = ()  # torch sizes supplied by shape inference, never in files

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def resolve(self, params: dict[str, Any], node: str | None = None) -> dict[str, Any]:
        """Validate user params; return every param in canonical form, defaults filled.

        Raises ParameterError naming `node` and the parameter for an unknown, missing
        or invalid value.
        """
        if not isinstance(params, dict):
            raise ParameterError("params must be an object", node=node)
        known = set(self.param_names)
        for key in params:
            if key in self.reserved:
                raise ParameterError(
                    "is inferred from the input shape; remove it", node=node, param=key
                )
            if key not in known:
                raise ParameterError(
                    f"unknown parameter for {self.name} (it takes: {', '.join(self.param_names) or 'none'})",
                    node=node,
                    param=key,
                )
        resolved: dict[str, Any] = {}
        for p in self.params:
            if p.name in params:
                value = params[p.name]
            elif p.required:
                raise ParameterError("is required", node=node, param=p.name)
            else:
                value = p.default
            try:
                resolved[p.name] = normalize(p, value, self.ndim)
            except ParameterError as err:
                err.node = node
                raise
        if self.check is not None:
            try:
                self.check(resolved)
            except ParameterError as err:
                err.node = node
                raise
        return resolved

    def initial_params(self) -> dict[str, Any]:
        """Params a freshly dropped node starts with: the required ones, and those with a
        suggested starting value (e.g. Upsample's scale_factor, which torch leaves empty)."""
        return {p.name: p.initial for p in self.params if p.required or p.initial is not None}


# ---- helpers shared by the shape rules -------------------------------------------------


def fmt_shape(shape: Sequence[int]) -> str:
    """(16, 8, 8) → '16×8×8'."""
    return "×".join(str(s) for s in shape) if shape else "scalar"


def fmt_pair(values: Sequence[Any]) -> str:
    """(3, 3) → '3×3', (3, 5) → '3×5', (2,) → '2'."""
    return "×".join(str(v) for v in values)


def fmt_count(n: int) -> str:
    return f"{n:,}"


def prod(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def spatial_names(ndim: int) -> tuple[str, ...]:
    return SPATIAL_NAMES.get(ndim, tuple(f"S{i}" for i in range(ndim)))
