"""What a layer type is: its parameters, its shape rule, and how to read its numbers.

One `LayerType` per layer describes everything the rest of the program needs: the
palette (category, help), the inspector (parameters, formulas), shape inference
(`rule`), the torch builder (`torch_class`, or `own_class` and `code` for our own
types), the receptive-field views (`spatial_role`) and file validation (`resolve`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnstudio.core.errors import ParameterError
from cnnstudio.core.params import Param, normalize

Shape = tuple[int, ...]

SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}

# What a layer does to the spatial grid: elementwise keeps the shape, each output position
# from the same input position; channels too, but changes the channel count (Maxout); window
# slides a kernel with stride and padding; resample scales the grid or sets its size;
# global collapses the spatial axes (Flatten, Linear); merge joins inputs (Add, Concat).
SPATIAL_ROLES = ("input", "elementwise", "channels", "window", "resample", "global", "merge")


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
    spatial_role: str
    min_inputs: int = 1
    max_inputs: int | None = 1
    ndim: int = 0  # spatial dimensions of list-valued parameters (kernel_size…), 0 if none
    torch_class: str | None = None  # torch.nn class name; None for our own types
    own_class: str | None = None  # our own types: the class in cnnstudio.nn.modules
    # Our own types in exported source: the expression from the argument names, the
    # resolved params and the first input shape.
    code: Callable[[list[str], dict[str, Any], Shape], str] | None = None
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

    def inferred_sizes(self, shape: Shape) -> dict[str, int]:
        """The `reserved` constructor sizes torch needs, for an input of `shape`."""
        sizes = {"in_channels": shape[0], "in_features": shape[-1], "num_features": shape[0]}
        return {name: sizes[name] for name in self.reserved}  # Linear: the last dimension

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


def spatial_names(ndim: int) -> tuple[str, ...]:
    return SPATIAL_NAMES.get(ndim, tuple(f"S{i}" for i in range(ndim)))
