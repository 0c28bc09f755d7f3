"""The torch operations a traced PyTorch model may use, and the layer type each becomes.

`torch.fx` turns a model's `forward` into a list of calls: of submodules (`call_module`),
of functions (`call_function`: `torch.flatten`, `+`, `F.relu`, …) and of tensor methods
(`call_method`: `x.view(...)`, `x.relu()`). The tables below say, for each call we can
express, which layer type it is and where its parameters come from; `fx_mapping.FxMapper`
walks the traced graph with them. A call that is not in a table is unsupported.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnstudio.core import registry


class Unsupported(Exception):
    """A call that has no layer type; `str()` is the short label counted in the message."""


class Alias:
    """A call whose result is its (only) tensor input: Identity, `x.contiguous()`."""


class BatchSize:
    """The value of `x.size(0)` / `x.shape[0]`: only ever used to flatten a batch."""


class SizeOf:
    """The value of `x.size()` / `x.shape`: only ever indexed at 0."""


@dataclass
class Layer:
    """What one call becomes: a layer type, its raw params and its tensor inputs (fx args)."""

    type: str
    params: dict[str, Any]
    inputs: list[Any]
    # Layers that follow on the result, each fed by the one before (mean over H, W is a
    # global average pool and a Flatten).
    then: tuple[tuple[str, dict[str, Any]], ...] = ()


ALIAS = Alias()

# ---- modules --------------------------------------------------------------------------

# Torch classes whose constructor keywords our registry describes under the same names.
MODULE_TYPES: dict[type, str] = {
    getattr(nn, t.torch_class): t.name for t in registry.all_types()
    if t.torch_class is not None and isinstance(getattr(nn, t.torch_class, None), type)
}
DROPPED_MODULES: tuple[type, ...] = (nn.Identity,)


def known_class(module: nn.Module) -> type | None:
    """The torch class we map `module` as: its own, or the one it subclasses without
    changing `forward` (a user's `class MyConv(nn.Conv2d)` that only sets defaults)."""
    for base in type(module).__mro__:
        if base in MODULE_TYPES or base in DROPPED_MODULES:
            return base if type(module).forward is base.forward else None
    return None


def module_layer(module: nn.Module, arg: Any) -> Layer | Alias:
    """The layer for a call of a torch leaf module on `arg`; raises Unsupported."""
    cls = known_class(module)
    if cls is None:
        raise Unsupported(type(module).__name__)
    if cls in DROPPED_MODULES:
        return ALIAS
    type_name = MODULE_TYPES[cls]
    layer = registry.get(type_name)
    params: dict[str, Any] = {}
    for p in layer.params:
        if p.name == "inplace":
            continue  # our builder never works in place; the numbers are the same
        if p.name == "bias":
            params["bias"] = getattr(module, "bias", None) is not None
        elif hasattr(module, p.name):
            params[p.name] = getattr(module, p.name)
    if getattr(module, "return_indices", False):
        raise Unsupported(f"{cls.__name__}(return_indices=True)")
    if cls is nn.Upsample and getattr(module, "recompute_scale_factor", None):
        raise Unsupported("Upsample(recompute_scale_factor=True)")
    if cls is nn.Softmax and module.dim is None:
        raise Unsupported("Softmax without dim")
    return Layer(type_name, params, [arg])


# ---- functions and methods ------------------------------------------------------------

_REQUIRED = object()


def bind(names: tuple[tuple[str, Any], ...], args: tuple[Any, ...],
         kwargs: dict[str, Any], label: str) -> dict[str, Any]:
    """Positional and keyword arguments → one dict by parameter name, defaults filled."""
    if len(args) > len(names):
        raise Unsupported(label)
    bound = {name: value for (name, _), value in zip(names, args, strict=False)}
    for key, value in kwargs.items():
        if key not in dict(names) or key in bound:
            raise Unsupported(f"{label}({key}=…)")
        bound[key] = value
    for name, default in names:
        if name not in bound:
            if default is _REQUIRED:
                raise Unsupported(label)
            bound[name] = default
    return bound


def _batched_dim(dim: Any, rank: int, label: str) -> int:
    if not isinstance(dim, int) or isinstance(dim, bool) or not -rank <= dim < rank:
        raise Unsupported(f"{label}(dim={dim!r})")
    return dim % rank


@dataclass(frozen=True)
class Call:
    """One call's arguments, with the batched ranks of its tensor inputs (from a zero batch)."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    shape: tuple[int, ...]  # batched shape of the first tensor argument (() when unknown)
    label: str

    @property
    def rank(self) -> int:
        return len(self.shape)


Converter = Callable[[Call], "Layer | Alias | BatchSize | SizeOf"]


def _simple(type_name: str, *names: tuple[str, Any], fixed: dict[str, Any] | None = None,
            check: Callable[[dict[str, Any], Call], None] | None = None) -> Converter:
    """A function of one tensor whose other arguments are our layer's params by name."""
    def convert(call: Call) -> Layer:
        bound = bind((("input", _REQUIRED), *names), call.args, call.kwargs, call.label)
        if check is not None:
            check(bound, call)
        tensor = bound.pop("input")
        bound.pop("inplace", None)
        params = {k: v for k, v in bound.items() if not k.startswith("_")}
        params.update(fixed or {})
        return Layer(type_name, params, [tensor])
    return convert


def _no_indices(bound: dict[str, Any], call: Call) -> None:
    if bound.pop("return_indices", False):
        raise Unsupported(f"{call.label}(return_indices=True)")


def _softmax(call: Call) -> Layer:
    bound = bind((("input", _REQUIRED), ("dim", None), ("_stacklevel", 3), ("dtype", None)),
                 call.args, call.kwargs, call.label)
    if bound["dim"] is None or bound["dtype"] is not None:
        raise Unsupported(f"{call.label} without dim" if bound["dim"] is None
                          else f"{call.label}(dtype=…)")
    return Layer("Softmax", {"dim": _batched_dim(bound["dim"], call.rank, call.label)},
                 [bound["input"]])


def _flatten(call: Call) -> Layer:
    bound = bind((("input", _REQUIRED), ("start_dim", 0), ("end_dim", -1)),
                 call.args, call.kwargs, call.label)
    start = _batched_dim(bound["start_dim"], call.rank, call.label)
    end = _batched_dim(bound["end_dim"], call.rank, call.label)
    if start == 0:
        raise Unsupported(f"{call.label}(start_dim=0)")
    return Layer("Flatten", {"start_dim": start, "end_dim": end - call.rank}, [bound["input"]])


def _cat(call: Call) -> Layer:
    bound = bind((("tensors", _REQUIRED), ("dim", 0)), call.args, call.kwargs, call.label)
    tensors = bound["tensors"]
    if not isinstance(tensors, (list, tuple)) or len(tensors) < 2:
        raise Unsupported(call.label)
    if _batched_dim(bound["dim"], call.rank, call.label) != 1:
        raise Unsupported(f"{call.label}(dim={bound['dim']})")
    return Layer("Concat", {}, list(tensors))


def _add(call: Call) -> Layer:
    bound = bind((("input", _REQUIRED), ("other", _REQUIRED), ("alpha", 1)),
                 call.args, call.kwargs, call.label)
    if bound["alpha"] != 1:
        raise Unsupported(f"{call.label}(alpha=…)")
    return Layer("Add", {}, [bound["input"], bound["other"]])


def _dropout(type_name: str) -> Converter:
    def convert(call: Call) -> Layer:
        bound = bind((("input", _REQUIRED), ("p", 0.5), ("training", True), ("inplace", False)),
                     call.args, call.kwargs, call.label)
        if bound["training"] is True:
            # Traced in eval mode: a literal True drops values at inference too, which no
            # layer of ours does. `training=self.training` is what the user meant.
            raise Unsupported(f"{call.label} that ignores eval mode (pass training=self.training)")
        return Layer(type_name, {"p": bound["p"]}, [bound["input"]])
    return convert


def _interpolate(call: Call) -> Layer:
    bound = bind((("input", _REQUIRED), ("size", None), ("scale_factor", None),
                  ("mode", "nearest"), ("align_corners", None),
                  ("recompute_scale_factor", None), ("antialias", False)),
                 call.args, call.kwargs, call.label)
    if bound["recompute_scale_factor"] or bound["antialias"]:
        raise Unsupported(f"{call.label}(recompute_scale_factor/antialias)")
    params = {k: bound[k] for k in ("size", "scale_factor", "mode", "align_corners")}
    return Layer("Upsample", params, [bound["input"]])


def _pool_spec(max_pool: bool, ndim: int) -> tuple[tuple[str, Any], ...]:
    if max_pool:
        return (("kernel_size", _REQUIRED), ("stride", None), ("padding", 0), ("dilation", 1),
                ("ceil_mode", False), ("return_indices", False))
    spec: tuple[tuple[str, Any], ...] = (("kernel_size", _REQUIRED), ("stride", None),
                                         ("padding", 0), ("ceil_mode", False),
                                         ("count_include_pad", True))
    return spec + ((("divisor_override", None),) if ndim > 1 else ())


def _pool(name: str, max_pool: bool, ndim: int) -> Converter:
    return _simple(name, *_pool_spec(max_pool, ndim), check=_no_indices)


def _with_inplace(type_name: str, *names: tuple[str, Any]) -> Converter:
    return _simple(type_name, *names, ("inplace", False))


def _adaptive(name: str, max_pool: bool) -> Converter:
    spec = (("output_size", _REQUIRED),) + ((("return_indices", False),) if max_pool else ())
    return _simple(name, *spec, check=_no_indices)


FUNCTIONS: dict[Any, Converter] = {
    operator.add: _add, operator.iadd: _add, torch.add: _add,
    torch.cat: _cat, torch.concat: _cat, torch.concatenate: _cat,
    torch.flatten: _flatten,
    F.relu: _with_inplace("ReLU"), torch.relu: _simple("ReLU"),
    F.gelu: _simple("GELU", ("approximate", "none")),
    F.silu: _with_inplace("SiLU"),
    torch.sigmoid: _simple("Sigmoid"), F.sigmoid: _simple("Sigmoid"),
    torch.tanh: _simple("Tanh"), F.tanh: _simple("Tanh"),
    F.leaky_relu: _with_inplace("LeakyReLU", ("negative_slope", 0.01)),
    F.elu: _with_inplace("ELU", ("alpha", 1.0)),
    F.softmax: _softmax, torch.softmax: _softmax,
    F.max_pool1d: _pool("MaxPool1d", True, 1), F.max_pool2d: _pool("MaxPool2d", True, 2),
    F.max_pool3d: _pool("MaxPool3d", True, 3),
    F.avg_pool1d: _pool("AvgPool1d", False, 1), F.avg_pool2d: _pool("AvgPool2d", False, 2),
    F.avg_pool3d: _pool("AvgPool3d", False, 3),
    F.adaptive_avg_pool2d: _adaptive("AdaptiveAvgPool2d", False),
    F.adaptive_max_pool2d: _adaptive("AdaptiveMaxPool2d", True),
    F.dropout: _dropout("Dropout"), F.dropout2d: _dropout("Dropout2d"),
    F.interpolate: _interpolate,
}


def _flatten_batch(call: Call) -> Layer:
    """`x.view(x.size(0), -1)` / `x.reshape(n, -1)` with n = x.size(0) or x.shape[0], and
    the older tutorials' `x.view(-1, K)` where K is the size of one sample (C·H·W): the
    same flattening for every batch size (the importer's numeric check confirms it)."""
    shape = call.args[1:]
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    per_sample = 1
    for size in call.shape[1:]:
        per_sample *= int(size)
    if (not call.kwargs and len(shape) == 2 and shape[0] == -1 and call.rank >= 2
            and isinstance(shape[1], int) and shape[1] == per_sample):
        return Layer("Flatten", {"start_dim": 1, "end_dim": -1}, [call.args[0]])
    if call.kwargs or len(shape) != 2 or not isinstance(shape[0], BatchSize) or shape[1] != -1:
        raise Unsupported(f"{call.label} other than x.{call.label.split('.')[-1]}"
                          "(x.size(0), -1)")
    return Layer("Flatten", {"start_dim": 1, "end_dim": -1}, [call.args[0]])


def _size(call: Call) -> BatchSize | SizeOf:
    bound = bind((("input", _REQUIRED), ("dim", None)), call.args, call.kwargs, call.label)
    if bound["dim"] is None:
        return SizeOf()
    if _batched_dim(bound["dim"], call.rank, call.label) != 0:
        raise Unsupported(f"{call.label}({bound['dim']}) (only the batch size is supported)")
    return BatchSize()


def _contiguous(call: Call) -> Alias:
    if len(call.args) != 1 or call.kwargs:
        raise Unsupported(call.label)
    return ALIAS


def _dims(value: Any, call: Call) -> list[int]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return sorted(_batched_dim(v, call.rank, call.label) for v in values)


def _mean(call: Call) -> Layer:
    """The mean over H and W of a batch of maps: a global average pool."""
    bound = bind((("input", _REQUIRED), ("dim", None), ("keepdim", False), ("dtype", None)),
                 call.args, call.kwargs, call.label)
    if bound["dim"] is None or bound["dtype"] is not None or call.rank != 4 \
            or _dims(bound["dim"], call) != [2, 3]:
        raise Unsupported(f"{call.label} other than the mean over H and W of a 2-D map")
    then = () if bound["keepdim"] else (("Flatten", {"start_dim": 1, "end_dim": -1}),)
    return Layer("AdaptiveAvgPool2d", {"output_size": 1}, [bound["input"]], then)


def _squeeze(call: Call) -> Layer:
    """Dropping one dimension of size 1 (not the batch) is a Flatten of it with its
    neighbour, which leaves every other size as it was."""
    bound = bind((("input", _REQUIRED), ("dim", None)), call.args, call.kwargs, call.label)
    if bound["dim"] is None or isinstance(bound["dim"], (list, tuple)):
        raise Unsupported(f"{call.label} without one dim (it could drop the batch)")
    dim = _batched_dim(bound["dim"], call.rank, call.label)
    if dim == 0 or call.shape[dim] != 1 or call.rank < 3:
        raise Unsupported(f"{call.label}({bound['dim']}) of a dimension that is not 1")
    start = dim - 1 if dim > 1 else 1
    return Layer("Flatten", {"start_dim": start, "end_dim": start + 1 - call.rank},
                 [bound["input"]])


FUNCTIONS[torch.mean] = _mean
FUNCTIONS[torch.squeeze] = _squeeze

METHODS: dict[str, Converter] = {
    "mean": _mean, "squeeze": _squeeze,
    "relu": _simple("ReLU"), "sigmoid": _simple("Sigmoid"), "tanh": _simple("Tanh"),
    "softmax": _softmax, "flatten": _flatten, "add": _add,
    "view": _flatten_batch, "reshape": _flatten_batch, "size": _size,
    "contiguous": _contiguous,
}


def function_label(function: Any) -> str:
    """How a function is named in messages: `torch.matmul`, `F.pad`, `operator.mul`."""
    name = getattr(function, "__name__", None) or repr(function)
    for prefix, space in (("torch", torch), ("F", F), ("operator", operator)):
        if getattr(space, name, None) is function:
            return f"{prefix}.{name}"
    module = getattr(function, "__module__", None)
    return f"{module}.{name}" if module else name
