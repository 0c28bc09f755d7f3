"""Input, dense, normalization, activation, regularization, reshape and merge layers."""

from __future__ import annotations

import math
from math import prod
from typing import Any

from cnnstudio.core.errors import ParameterError, ShapeError
from cnnstudio.core.layer_type import (
    GLOBAL_RF,
    LayerResult,
    LayerType,
    Note,
    RFStep,
    Shape,
    fmt_pair,
    fmt_shape,
    spatial_names,
)
from cnnstudio.core.params import (
    BOOL,
    CHOICE,
    FLOAT,
    FLOATS,
    INT,
    LIMIT,
    REQUIRED,
    SHAPE,
    SIZE,
    Param,
)

INPLACE = Param("inplace", BOOL, False, "Accepted for torch compatibility; the builder always "
                "computes out of place, since branches may share a tensor.")


def _same(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
    return LayerResult(inputs[0], formulas=["output shape = input shape", "params = 0"])


# ---- input ---------------------------------------------------------------------------


def _input_rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
    return LayerResult(p["shape"], formulas=[f"one sample: {fmt_shape(p['shape'])}"])


INPUT = LayerType(
    name="Input", category="Input", help="The network's input: one sample's shape, channels first.",
    params=(Param("shape", SHAPE, REQUIRED, "Per-sample shape, channels first, e.g. [3, 32, 32].",
                  initial=[1, 28, 28]),),
    rule=_input_rule, spatial_role="input", min_inputs=0, max_inputs=0, own_class="InputLayer",
    caption=lambda p: fmt_shape(p["shape"]))

# ---- dense ---------------------------------------------------------------------------


def _linear_rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
    shape = inputs[0]
    n_in, n_out = shape[-1], p["out_features"]
    count = n_in * n_out + (n_out if p["bias"] else 0)
    text = f"params = ({n_in} + 1)·{n_out} = {count}" if p["bias"] else \
        f"params = {n_in}·{n_out} = {count}"
    rows = prod(shape[:-1])
    macs = rows * n_in * n_out
    notes = []
    if len(shape) > 1:
        notes.append(Note(f"Linear acts on the last dimension only of its {fmt_shape(shape)} input;"
                          " insert Flatten before it to use the whole map", fix="insert_flatten"))
    return LayerResult((*shape[:-1], n_out), count, macs,
                       [f"output = {fmt_shape((*shape[:-1], n_out))}", text,
                        f"MACs = {n_in}·{n_out}" + (f"·{rows}" if rows > 1 else "") + f" = {macs}"],
                       GLOBAL_RF if len(shape) == 1 else None, notes)


LINEAR = LayerType(
    name="Linear", category="Dense", help="Fully connected: every output is a weighted sum of all inputs.",
    params=(Param("out_features", INT, REQUIRED, "Number of outputs (classes, for the last layer).",
                  1, LIMIT, initial=10),
            Param("bias", BOOL, True, "Add a learned bias per output.")),
    rule=_linear_rule, spatial_role="global", torch_class="Linear",
    caption=lambda p: f"→{p['out_features']}", reserved=("in_features",),
)

# ---- reshape -------------------------------------------------------------------------


def _batched_dim(dim: int, rank: int, name: str) -> int:
    if not -rank <= dim < rank:
        raise ShapeError(f"{name}={dim} is out of range for a batch of {rank - 1}-D samples")
    return dim % rank


def _flatten_rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
    batched = (1, *inputs[0])
    start = _batched_dim(p["start_dim"], len(batched), "start_dim")
    end = _batched_dim(p["end_dim"], len(batched), "end_dim")
    if start == 0:
        raise ShapeError("start_dim 0 would merge the samples of a batch; use 1")
    if start > end:
        raise ShapeError("start_dim must not come after end_dim")
    out = (*batched[1:start], prod(batched[start:end + 1]), *batched[end + 1:])
    text = f"{'·'.join(map(str, batched[start:end + 1]))} = {prod(batched[start:end + 1])}"
    # Each flattened value is still one pixel of the map: the receptive field is unchanged.
    return LayerResult(out, formulas=[f"flattened size = {text}", "params = 0"])


FLATTEN = LayerType(
    name="Flatten", category="Reshape", help="Unrolls a feature map into one vector per sample.",
    params=(Param("start_dim", INT, 1, "First dimension to flatten (batch counts as 0)."),
            Param("end_dim", INT, -1, "Last dimension to flatten (-1: the last).")),
    rule=_flatten_rule, spatial_role="global", torch_class="Flatten",
)


def _check_upsample(p: dict[str, Any]) -> None:
    if (p["size"] is None) == (p["scale_factor"] is None):
        raise ParameterError("set exactly one of size and scale_factor", param="scale_factor")
    if isinstance(p["size"], tuple) and None in p["size"]:
        # torch's Upsample refuses empty sizes (unlike the adaptive pools).
        raise ParameterError("needs a number for every dimension", param="size")
    if p["align_corners"] is not None and p["mode"] not in ("linear", "bilinear", "bicubic",
                                                             "trilinear"):
        raise ParameterError("only applies to the linear, bilinear, bicubic and trilinear modes",
                             param="align_corners")


def _per_dim(value: Any, ndim: int, i: int, name: str) -> Any:
    """A scalar applies to every dimension; a list needs one item per dimension."""
    if not isinstance(value, tuple):
        return value
    if len(value) != ndim:
        raise ShapeError(f"{name} has {len(value)} values for a {ndim}-D map")
    return value[i]


_MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def _upsample_rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
    shape = inputs[0]
    ndim = len(shape) - 1
    if not 1 <= ndim <= 3:
        raise ShapeError(f"Upsample needs a C×L, C×H×W or C×D×H×W input, got {fmt_shape(shape)}")
    wanted = _MODE_RANK.get(p["mode"])
    if wanted is not None and wanted != ndim:
        raise ShapeError(f"mode '{p['mode']}' needs a {wanted}-D map, got {fmt_shape(shape)}")
    names = spatial_names(ndim)
    sizes, formulas, strides = [], [], []
    for i, size in enumerate(shape[1:]):
        if p["size"] is not None:
            target = _per_dim(p["size"], ndim, i, "size")
            out = size if target is None else target
            formulas.append(f"{names[i]}_out = {out} (fixed by size)")
        else:
            factor = _per_dim(p["scale_factor"], ndim, i, "scale_factor")
            out = math.floor(size * factor)
            formulas.append(f"{names[i]}_out = ⌊{size}·{factor:g}⌋ = {out}")
        if out < 1:
            raise ShapeError(f"output size {out} along {names[i]} is empty")
        sizes.append(out)
        strides.append(size / out)
    formulas.append("params = 0")
    return LayerResult((shape[0], *sizes), formulas=formulas,
                       rf=RFStep((1.0,) * ndim, tuple(strides)))


def _text(value: Any) -> str:
    return fmt_pair(f"{v:g}" if isinstance(v, float) else v for v in value) \
        if isinstance(value, tuple) else (f"{value:g}" if isinstance(value, float) else str(value))


UPSAMPLE = LayerType(
    name="Upsample", category="Reshape", help="Enlarges a map by interpolation (no learned weights).",
    params=(Param("size", SIZE, None, "Output size (or leave empty and set scale_factor).", 1, LIMIT,
                  nullable=True),
            Param("scale_factor", FLOATS, None, "Multiplier of the spatial size, e.g. 2.",
                  1e-3, 1024, nullable=True, initial=2.0),
            Param("mode", CHOICE, "nearest", "Interpolation.",
                  choices=("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear")),
            Param("align_corners", BOOL, None, "Align corner pixels (linear modes only).",
                  nullable=True)),
    # ndim 0: sizes follow the input's rank, checked by the rule.
    rule=_upsample_rule, spatial_role="resample", ndim=0, torch_class="Upsample",
    check=_check_upsample, caption=lambda p: f"×{_text(p['scale_factor'])} {p['mode']}"
    if p["scale_factor"] else f"→{_text(p['size'])} {p['mode']}")

# ---- normalization and regularization -------------------------------------------------


def _bn_rule(layer: str, ranks: tuple[int, ...]):
    def rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
        shape = inputs[0]
        if len(shape) not in ranks:
            wanted = " or ".join("×".join(("C", *spatial_names(r - 1))) if r > 1 else "C"
                                 for r in ranks)
            raise ShapeError(f"{layer} needs a {wanted} input, got {fmt_shape(shape)}")
        c = shape[0]
        count = 2 * c if p["affine"] else 0
        text = f"params = 2·{c} = {count} (scale and shift per channel)" if p["affine"] else \
            "params = 0 (affine off)"
        return LayerResult(shape, count, 0, ["output shape = input shape", text])

    return rule


def _bn(name: str, ranks: tuple[int, ...]) -> LayerType:
    return LayerType(
        name=name, category="Normalization",
        help="Normalizes each channel over the batch, then scales and shifts it: steadier training.",
        params=(Param("eps", FLOAT, 1e-5, "Added to the variance for stability.", 0, 1),
                Param("momentum", FLOAT, 0.1, "Weight of the current batch in the running stats.",
                      0, 1, nullable=True),
                Param("affine", BOOL, True, "Learn a scale and shift per channel."),
                Param("track_running_stats", BOOL, True, "Keep running mean/variance for eval.")),
        rule=_bn_rule(name, ranks), spatial_role="elementwise", torch_class=name,
        reserved=("num_features",))


def _dropout2d_rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
    if len(inputs[0]) != 3:
        raise ShapeError(f"Dropout2d needs a C×H×W input, got {fmt_shape(inputs[0])}")
    return _same(inputs, p)


def _dropout(name: str, rule, what: str) -> LayerType:
    return LayerType(
        name=name, category="Regularization",
        help=f"While training, zeroes {what} with probability p (and rescales the rest).",
        params=(Param("p", FLOAT, 0.5, "Probability of dropping.", 0, 1), INPLACE),
        rule=rule, spatial_role="elementwise", torch_class=name,
        caption=lambda p: f"p={p['p']:g}")


# ---- activations ---------------------------------------------------------------------


def _activation(name: str, help_text: str, *params: Param) -> LayerType:
    return LayerType(name=name, category="Activation", help=help_text, params=params, rule=_same,
                     spatial_role="elementwise", torch_class=name)


def _softmax_rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
    _batched_dim(p["dim"], len(inputs[0]) + 1, "dim")
    if p["dim"] % (len(inputs[0]) + 1) == 0:
        raise ShapeError("dim 0 is the batch; softmax over channels is dim 1")
    return _same(inputs, p)


def _maxout_rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
    shape, k = inputs[0], p["pieces"]
    if shape[0] % k:
        raise ShapeError(f"{shape[0]} channels cannot be split into groups of {k} pieces")
    out = (shape[0] // k, *shape[1:])
    return LayerResult(out, formulas=[f"channels = {shape[0]}/{k} = {out[0]}", "params = 0"])


# ---- merges --------------------------------------------------------------------------


def _add_rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
    first = inputs[0]
    for other in inputs[1:]:
        if other != first:
            raise ShapeError(f"Add needs equal shapes, got {fmt_shape(first)} and {fmt_shape(other)}")
    return LayerResult(first, formulas=[f"{len(inputs)} inputs of {fmt_shape(first)} summed",
                                        "params = 0"], rf=None)


def _concat_rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
    first = inputs[0]
    for other in inputs[1:]:
        if len(other) != len(first) or other[1:] != first[1:]:
            raise ShapeError(
                "Concat joins along channels and needs the other sizes equal, got "
                f"{fmt_shape(first)} and {fmt_shape(other)}"
            )
    channels = sum(s[0] for s in inputs)
    text = " + ".join(str(s[0]) for s in inputs)
    return LayerResult((channels, *first[1:]), formulas=[f"channels = {text} = {channels}",
                                                         "params = 0"])


def _merge(name: str, help_text: str, rule, code) -> LayerType:
    return LayerType(name=name, category="Merge", help=help_text, params=(), rule=rule,
                     spatial_role="merge", min_inputs=2, max_inputs=None, own_class=name,
                     code=code)


LAYERS = [
    INPUT,
    LINEAR,
    FLATTEN,
    UPSAMPLE,
    _bn("BatchNorm1d", (1, 2)),
    _bn("BatchNorm2d", (3,)),
    _dropout("Dropout", _same, "each value"),
    _dropout("Dropout2d", _dropout2d_rule, "whole channels"),
    _activation("ReLU", "max(0, x): the default non-linearity.", INPLACE),
    _activation("LeakyReLU", "x for x > 0, slope·x otherwise.",
                Param("negative_slope", FLOAT, 0.01, "Slope for negative inputs.", 0, 1e3), INPLACE),
    _activation("ELU", "x for x > 0, α·(eˣ − 1) otherwise.",
                Param("alpha", FLOAT, 1.0, "Saturation value for negative inputs.", 0, 1e3), INPLACE),
    _activation("GELU", "x·Φ(x): smooth ReLU used by transformers.",
                Param("approximate", CHOICE, "none", "Exact or tanh approximation.",
                      choices=("none", "tanh"))),
    _activation("SiLU", "x·σ(x) (swish).", INPLACE),
    _activation("Tanh", "Squashes to (−1, 1)."),
    _activation("Sigmoid", "Squashes to (0, 1); for binary outputs."),
    LayerType(name="Softmax", category="Activation",
              help="Turns scores into probabilities over the channels (classes).",
              params=(Param("dim", INT, 1, "Dimension of the batch tensor to normalize; 1 is the"
                            " channels (our default; torch's implicit choice is deprecated)."),),
              rule=_softmax_rule, spatial_role="elementwise", torch_class="Softmax"),
    LayerType(name="Maxout", category="Activation",
              help="Maximum over groups of `pieces` consecutive channels (Goodfellow et al.).",
              params=(Param("pieces", INT, 2, "Channels per group.", 1, LIMIT),),
              rule=_maxout_rule, spatial_role="channels", own_class="Maxout",
              caption=lambda p: f"k={p['pieces']}",
              # Groups of `pieces` consecutive channels, as cnnstudio's Maxout reshapes them.
              code=lambda args, p, shape: f"{args[0]}.unflatten(1, ({shape[0] // p['pieces']},"
              f" {p['pieces']})).amax(dim=2)"),
    _merge("Add", "Element-wise sum of equal shapes: the skip connection of ResNets.", _add_rule,
           lambda args, p, shape: " + ".join(args)),
    _merge("Concat", "Joins maps along the channels (Inception, U-Net).", _concat_rule,
           lambda args, p, shape: f"torch.cat([{', '.join(args)}], dim=1)"),
]
