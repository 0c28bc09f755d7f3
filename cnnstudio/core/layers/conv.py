"""Convolutions: Conv1d/2d/3d and ConvTranspose2d, with torch's exact arithmetic."""

from __future__ import annotations

from math import prod
from typing import Any

from cnnstudio.core.errors import ParameterError, ShapeError
from cnnstudio.core.layer_type import (
    LayerResult,
    LayerType,
    RFStep,
    Shape,
    fmt_pair,
    fmt_shape,
    spatial_names,
)
from cnnstudio.core.params import BOOL, CHOICE, INT, INTS, LIMIT, PADDING, REQUIRED, Param

CATEGORY = "Convolution"


def expect_rank(layer: str, shape: Shape, ndim: int) -> None:
    """Raise a ShapeError a student can act on when `shape` is not C × ndim spatial sizes."""
    if len(shape) == ndim + 1:
        return
    wanted = "×".join(("C",) + spatial_names(ndim))
    hint = ""
    if len(shape) == 1:
        hint = " (a flat vector: this layer must come before Flatten/Linear)"
    elif len(shape) == ndim + 2:
        hint = f" (use the {ndim + 1}-D version of this layer)"
    elif len(shape) == ndim:
        hint = f" (use the {ndim - 1}-D version of this layer)" if ndim > 1 else ""
    raise ShapeError(f"{layer} needs a {wanted} input, got {fmt_shape(shape)}{hint}")


def _conv_params(ndim: int, transposed: bool) -> tuple[Param, ...]:
    params = [
        Param("out_channels", INT, REQUIRED, "Number of filters (output channels).", 1, LIMIT,
              initial=16),
        Param("kernel_size", INTS, REQUIRED, "Filter size, one number or one per dimension.",
              1, 1024, initial=3),
        Param("stride", INTS, 1, "Step between filter positions.", 1, 1024),
    ]
    if transposed:
        params += [
            Param("padding", INTS, 0, "Rows/columns removed from each border of the output.",
                  0, 1024),
            Param("output_padding", INTS, 0, "Extra size added to one side of the output.",
                  0, 1024),
        ]
    else:
        params.append(
            Param("padding", PADDING, 0, "Zeros added on each border; 'same' keeps the size.",
                  0, 1024)
        )
    params += [
        Param("dilation", INTS, 1, "Spacing between filter taps (atrous convolution).", 1, 1024),
        Param("groups", INT, 1, "Split channels into independent groups.", 1, LIMIT),
        Param("bias", BOOL, True, "Add a learned bias per output channel."),
    ]
    modes = ("zeros",) if transposed else ("zeros", "reflect", "replicate", "circular")
    params.append(Param("padding_mode", CHOICE, "zeros", "How borders are padded.", choices=modes))
    return tuple(params)


def _caption(p: dict[str, Any]) -> str:
    pad = p["padding"]
    pad_text = pad if isinstance(pad, str) else fmt_pair(_squash(pad))
    return f"{p['out_channels']}@{fmt_pair(p['kernel_size'])} s{fmt_pair(_squash(p['stride']))} p{pad_text}"


def _squash(values: tuple) -> tuple:
    """(1, 1) → (1,): captions show one number when all dimensions agree."""
    return values[:1] if len(set(values)) == 1 else values


def _check_conv(p: dict[str, Any]) -> None:
    if p["padding"] == "same" and any(s != 1 for s in p["stride"]):
        raise ParameterError("'same' needs stride 1 (torch refuses strided 'same')", param="padding")


def _conv_input(layer: str, ndim: int, inputs: list[Shape],
                p: dict[str, Any]) -> tuple[int, Shape, tuple[str, ...]]:
    """The input's channels and spatial sizes, once its rank and groups are checked, and
    the names of its spatial axes."""
    shape = inputs[0]
    expect_rank(layer, shape, ndim)
    g = p["groups"]
    c_in = shape[0]
    if c_in % g:
        raise ShapeError(f"input channels {c_in} are not divisible by groups {g}")
    if p["out_channels"] % g:
        raise ShapeError(f"out_channels {p['out_channels']} is not divisible by groups {g}")
    return c_in, shape[1:], spatial_names(ndim)


def _check_padding_mode(mode: str, pad: int, size: int) -> None:
    """torch's limits on non-zero padding modes (`pad` is the larger side's padding)."""
    if mode == "reflect" and pad >= size:
        raise ShapeError(f"reflect padding {pad} must be smaller than the input size {size}")
    if mode == "circular" and pad > size:
        raise ShapeError(f"circular padding {pad} must not exceed the input size {size}")


def _params_formula(k: tuple[int, ...], c_per_group: int, out: int, bias: bool) -> tuple[int, str]:
    taps = "·".join(str(v) for v in k) + f"·{c_per_group}"
    weights = prod(k) * c_per_group * out
    if bias:
        return weights + out, f"params = ({taps} + 1)·{out} = {weights + out}"
    return weights, f"params = {taps}·{out} = {weights}"


def minus(value: int) -> str:
    """A number as formulas print it: a true minus sign, not a hyphen."""
    return str(value).replace("-", "−")


def _uniform(values: list[int]) -> int | list[int]:
    """One number when every dimension agrees (how a student types it), else the list."""
    return values[0] if len(set(values)) == 1 else values


def _kernel_too_large(p: dict[str, Any], sizes: Shape, names: tuple[str, ...],
                      too_small: list[int], formulas: list[str]) -> ShapeError:
    """The error for a kernel that does not fit its padded input: the failing arithmetic,
    what each dimension lacks, and two repairs (shrink the kernel, pad the input)."""
    k, d, pad = p["kernel_size"], p["dilation"], p["padding"]
    pads = [0 if pad == "valid" else pad[i] for i in range(len(sizes))]
    extents = [d[i] * (k[i] - 1) + 1 for i in range(len(sizes))]
    what = "dilated kernel" if any(d[i] > 1 for i in too_small) else "kernel"
    lines = list(formulas)
    gaps = {(extents[i], sizes[i] + 2 * pads[i]) for i in too_small}
    for i in too_small:  # one line when every dimension falls short alike
        where = f"{names[i]}: " if len(gaps) > 1 else ""
        lines.append(f"{where}the {what} spans {extents[i]}, the padded input only"
                     f" {sizes[i] + 2 * pads[i]}")
        if len(gaps) == 1:
            break
    fitting = [min(k[i], (sizes[i] + 2 * pads[i] - 1) // d[i] + 1) for i in range(len(sizes))]
    needed = [max(pads[i], -(-(extents[i] - sizes[i]) // 2)) for i in range(len(sizes))]
    fixes: list[tuple[str, str, object]] = [
        (f"Shrink kernel_size to {fmt_pair(_squash(tuple(fitting)))}", "kernel_size",
         _uniform(fitting)),
        (f"Set padding to {fmt_pair(_squash(tuple(needed)))}", "padding", _uniform(needed)),
    ]
    return ShapeError(
        f"{what} {fmt_pair(k)} is larger than its input {fmt_pair(sizes)}"
        f" with padding {fmt_pair(_squash(tuple(pads)))}", lines, fixes)


def _conv_rule(layer: str, ndim: int):
    def rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
        c_in, sizes, names = _conv_input(layer, ndim, inputs, p)
        k, s, d, pad = p["kernel_size"], p["stride"], p["dilation"], p["padding"]
        out_sizes, formulas, too_small = [], [], []
        for i, size in enumerate(sizes):
            extent = d[i] * (k[i] - 1) + 1
            if pad == "same":
                # torch pads 'same' with ⌊(extent − 1)/2⌋ before and the rest after.
                _check_padding_mode(p["padding_mode"], extent - 1 - (extent - 1) // 2, size)
                out_sizes.append(size)
                formulas.append(f"{names[i]}_out = {size} (padding 'same', stride 1)")
                continue
            pi = 0 if pad == "valid" else pad[i]
            _check_padding_mode(p["padding_mode"], pi, size)
            out = (size + 2 * pi - extent) // s[i] + 1
            dil = f"{k[i]}" if d[i] == 1 else f"{d[i]}·({k[i]} − 1) − 1"
            text = f"{names[i]}_out = ⌊({size} + 2·{pi} − {dil})/{s[i]}⌋ + 1 = {minus(out)}"
            if size + 2 * pi < extent:
                too_small.append(i)
                text += " < 1"
            formulas.append(text)
            out_sizes.append(out)
        if too_small:
            raise _kernel_too_large(p, sizes, names, too_small, formulas)
        c_out = p["out_channels"]
        c_group = c_in // p["groups"]
        count, params_text = _params_formula(k, c_group, c_out, p["bias"])
        macs = c_out * prod(out_sizes) * c_group * prod(k)
        formulas.append(params_text)
        formulas.append(
            f"MACs = {c_out}·{'·'.join(map(str, out_sizes))} · {'·'.join(map(str, k))}·{c_group} = {macs}"
        )
        rf = RFStep(tuple(float(d[i] * (k[i] - 1) + 1) for i in range(ndim)),
                    tuple(float(v) for v in s))
        return LayerResult((c_out, *out_sizes), count, macs, formulas, rf)

    return rule


def _check_transposed(p: dict[str, Any]) -> None:
    for op, s, d in zip(p["output_padding"], p["stride"], p["dilation"], strict=True):
        if op >= s and op >= d:
            raise ParameterError(
                f"must be smaller than the stride or the dilation, got {op}",
                param="output_padding",
            )


def _transposed_rule(layer: str, ndim: int):
    def rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
        c_in, sizes, names = _conv_input(layer, ndim, inputs, p)
        k, s, d = p["kernel_size"], p["stride"], p["dilation"]
        pad, op = p["padding"], p["output_padding"]
        out_sizes, formulas = [], []
        for i, size in enumerate(sizes):
            out = (size - 1) * s[i] - 2 * pad[i] + d[i] * (k[i] - 1) + op[i] + 1
            if out < 1:
                raise ShapeError(
                    f"padding {pad[i]} removes more than the output has ({names[i]} would be {out})"
                )
            formulas.append(
                f"{names[i]}_out = ({size} − 1)·{s[i]} − 2·{pad[i]} + {d[i]}·({k[i]} − 1)"
                f" + {op[i]} + 1 = {out}"
            )
            out_sizes.append(out)
        c_out = p["out_channels"]
        out_group = c_out // p["groups"]
        weights = c_in * out_group * prod(k)
        count = weights + (c_out if p["bias"] else 0)
        taps = "·".join(map(str, k))
        formulas.append(
            f"params = {taps}·{c_in}·{out_group}" + (f" + {c_out}" if p["bias"] else "")
            + f" = {count}"
        )
        macs = c_in * prod(sizes) * out_group * prod(k)
        formulas.append(f"MACs = {c_in}·{'·'.join(map(str, sizes))} · {taps}·{out_group} = {macs}")
        rf = RFStep(tuple(float(d[i] * (k[i] - 1) + 1) / s[i] for i in range(ndim)),
                    tuple(1.0 / v for v in s))
        return LayerResult((c_out, *out_sizes), count, macs, formulas, rf)

    return rule


def _conv(name: str, ndim: int, help_text: str) -> LayerType:
    return LayerType(
        name=name, category=CATEGORY, help=help_text, params=_conv_params(ndim, False),
        rule=_conv_rule(name, ndim), spatial_role="window", ndim=ndim, torch_class=name,
        caption=_caption, check=_check_conv, reserved=("in_channels",),
    )


LAYERS = [
    _conv("Conv1d", 1, "Slides learned filters along a signal (C×L)."),
    _conv("Conv2d", 2, "Slides learned filters over an image (C×H×W): the heart of a CNN."),
    _conv("Conv3d", 3, "Slides learned filters through a volume (C×D×H×W)."),
    LayerType(
        name="ConvTranspose2d", category=CATEGORY,
        help="Learned upsampling: spreads each input pixel over a kernel-sized patch.",
        params=_conv_params(2, True), rule=_transposed_rule("ConvTranspose2d", 2),
        spatial_role="resample", ndim=2,
        torch_class="ConvTranspose2d", caption=_caption, check=_check_transposed,
        reserved=("in_channels",),
    ),
]
