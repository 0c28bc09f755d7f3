"""Pooling: max and average (1-D, 2-D, 3-D) and adaptive pooling, as torch computes them."""

from __future__ import annotations

import math
from typing import Any

from cnnstudio.core.errors import ShapeError
from cnnstudio.core.layer_type import (
    LayerResult,
    LayerType,
    RFStep,
    Shape,
    fmt_pair,
    spatial_names,
)
from cnnstudio.core.layers.conv import expect_rank
from cnnstudio.core.params import BOOL, INT, INTS, LIMIT, REQUIRED, SIZE, Param

CATEGORY = "Pooling"


def _pool_params(is_max: bool, ndim: int) -> tuple[Param, ...]:
    params = [
        Param("kernel_size", INTS, REQUIRED, "Window size.", 1, 1024, initial=2),
        Param("stride", INTS, None, "Step between windows; empty means the window size.", 1, 1024,
              nullable=True),
        Param("padding", INTS, 0, "Implicit padding on each border (at most half the window).",
              0, 512),
    ]
    if is_max:
        params.append(Param("dilation", INTS, 1, "Spacing between window taps.", 1, 1024))
    params.append(
        Param("ceil_mode", BOOL, False, "Round the output size up, keeping a partial last window.")
    )
    if not is_max:
        params.append(Param("count_include_pad", BOOL, True, "Count padding zeros in the average."))
        if ndim > 1:
            params.append(Param("divisor_override", INT, None, "Divide by this instead of the "
                                "window size.", 1, LIMIT, nullable=True))
    return tuple(params)


def pooled_size(size: int, k: int, s: int, pad: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape: the last window must start inside the input or left padding."""
    numerator = size + 2 * pad - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = numerator // s + 1
    if ceil_mode and (out - 1) * s >= size + pad:
        out -= 1
    return out


def _caption(p: dict[str, Any]) -> str:
    stride = p["stride"] or p["kernel_size"]
    text = f"{fmt_pair(p['kernel_size'])} s{fmt_pair(stride[:1] if len(set(stride)) == 1 else stride)}"
    return text + (" ceil" if p["ceil_mode"] else "")


def _pool_rule(layer: str, ndim: int, is_max: bool):
    def rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
        shape = inputs[0]
        expect_rank(layer, shape, ndim)
        k, pad = p["kernel_size"], p["padding"]
        s = p["stride"] or k
        d = p.get("dilation") or (1,) * ndim
        names = spatial_names(ndim)
        out_sizes, formulas = [], []
        for i, size in enumerate(shape[1:]):
            if layer == "AvgPool3d" and size < k[i]:
                # torch's avg_pool3d alone checks the window against the unpadded input.
                raise ShapeError(
                    f"window {fmt_pair(k)} is larger than its input {fmt_pair(shape[1:])}"
                    " (AvgPool3d does not count the padding here)"
                )
            if pad[i] > k[i] // 2:
                raise ShapeError(f"padding {pad[i]} must be at most half the window {k[i]}")
            out = pooled_size(size, k[i], s[i], pad[i], d[i], p["ceil_mode"])
            # Only an empty output is refused: with ceil_mode torch keeps one partial
            # window even when the window is larger than the padded input.
            if out < 1:
                # The window fits when d·(k − 1) + 1 ≤ size + 2·padding: offer that k.
                fit = [min(k[j], (shape[1 + j] + 2 * pad[j] - 1) // d[j] + 1)
                       for j in range(ndim)]
                fit = [max(v, 2 * pad[j]) for j, v in enumerate(fit)]  # padding ≤ k/2 stays
                span = str(k[i]) if d[i] == 1 else f"{d[i]}·({k[i]} − 1) − 1"
                left, right = ("⌈", "⌉") if p["ceil_mode"] else ("⌊", "⌋")
                formula = (f"{names[i]}_out = {left}({size} + 2·{pad[i]} − {span})/{s[i]}"
                           f"{right} + 1 = {str(out).replace('-', '−')} < 1")
                raise ShapeError(
                    f"window {fmt_pair(k)} is larger than its input {fmt_pair(shape[1:])}"
                    f" with padding {pad[i]}", [formula],
                    [(f"Shrink kernel_size to {fmt_pair(fit[:1] if len(set(fit)) == 1 else fit)}",
                      "kernel_size",
                      fit[0] if len(set(fit)) == 1 else fit)])
            extent = str(k[i]) if d[i] == 1 else f"{d[i]}·({k[i]} − 1) − 1"
            left, right = ("⌈", "⌉") if p["ceil_mode"] else ("⌊", "⌋")
            # ceil_mode drops a last window that would start in the right padding: say so,
            # or the formula's own arithmetic would disagree with its result.
            rounded_up = (size + 2 * pad[i] - d[i] * (k[i] - 1) - 1 + s[i] - 1) // s[i] + 1
            dropped = p["ceil_mode"] and out < rounded_up
            last = " − 1 (the last window would start in the padding)" if dropped else ""
            formulas.append(
                f"{names[i]}_out = {left}({size} + 2·{pad[i]} − {extent})/{s[i]}{right} + 1{last}"
                f" = {out}"
            )
            out_sizes.append(out)
        formulas.append("params = 0")
        rf = RFStep(tuple(float(d[i] * (k[i] - 1) + 1) for i in range(ndim)),
                    tuple(float(v) for v in s))
        return LayerResult((shape[0], *out_sizes), 0, 0, formulas, rf)

    return rule


def _adaptive_rule(layer: str, ndim: int):
    def rule(inputs: list[Shape], p: dict[str, Any]) -> LayerResult:
        shape = inputs[0]
        expect_rank(layer, shape, ndim)
        sizes = shape[1:]
        out_sizes = tuple(o if o is not None else size for o, size in zip(p["output_size"], sizes,
                                                                           strict=True))
        names = spatial_names(ndim)
        formulas = [f"{names[i]}_out = {o} (fixed by output_size)" for i, o in enumerate(out_sizes)]
        formulas.append("params = 0")
        # Windows are about ⌈in/out⌉ wide and start ⌊in/out⌋ apart.
        rf = RFStep(tuple(float(math.ceil(a / b)) for a, b in zip(sizes, out_sizes, strict=True)),
                    tuple(float(max(1, a // b)) for a, b in zip(sizes, out_sizes, strict=True)))
        return LayerResult((shape[0], *out_sizes), 0, 0, formulas, rf)

    return rule


def _pool(name: str, ndim: int, is_max: bool) -> LayerType:
    kind = "maximum" if is_max else "average"
    return LayerType(
        name=name, category=CATEGORY,
        help=f"Keeps the {kind} of each window: shrinks the map, adds tolerance to shifts.",
        params=_pool_params(is_max, ndim), rule=_pool_rule(name, ndim, is_max),
        spatial_role="window", ndim=ndim,
        torch_class=name, caption=_caption,
    )


def _adaptive(name: str, kind: str) -> LayerType:
    return LayerType(
        name=name, category=CATEGORY,
        help=f"{kind} pooling to a fixed output size, whatever the input size.",
        params=(Param("output_size", SIZE, REQUIRED, "Output size (empty keeps that dimension).",
                      1, LIMIT, initial=1),),
        rule=_adaptive_rule(name, 2), spatial_role="resample", ndim=2, torch_class=name,
        caption=lambda p: "→" + fmt_pair("·" if o is None else o for o in p["output_size"]),
    )


LAYERS = [
    _pool("MaxPool1d", 1, True),
    _pool("MaxPool2d", 2, True),
    _pool("MaxPool3d", 3, True),
    _pool("AvgPool1d", 1, False),
    _pool("AvgPool2d", 2, False),
    _pool("AvgPool3d", 3, False),
    _adaptive("AdaptiveAvgPool2d", "Average"),
    _adaptive("AdaptiveMaxPool2d", "Max"),
]
