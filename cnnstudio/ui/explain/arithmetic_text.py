"""Numbers and words of the Computation page: how a value is written, which colour a cell
gets, and the arithmetic of one explained value as plain lines of text.

No Qt here: the same lines are the page's accessible text, its tooltips and what tests
read back (`summary_lines`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

POSITIVE = (214, 96, 77)  # warm: a value adds to the sum
NEGATIVE = (67, 147, 195)  # cool: a value takes away
NEUTRAL = (247, 247, 247)
PADDING = (205, 205, 205)  # a tap in the zero padding


def fmt(value: float, digits: int = 4) -> str:
    """A number with `digits` significant digits at most, short and without "-0":
    0.1234, −12.35, 1.2e−5, 1234, 1.235e4; "−∞" for minus infinity (a max pool's
    padding)."""
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "−∞" if v < 0 else "∞"
    if v == 0:
        return "0"
    magnitude = abs(v)
    if magnitude >= 10 ** digits or magnitude < 1e-3:
        text = f"{v:.{max(0, digits - 1)}e}"
        mantissa, exponent = text.split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}".replace("-", "−")
    decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    text = f"{v:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", "0"):
        return "0"
    return text.replace("-", "−")


def cell_colour(value: float, scale: float) -> tuple[int, int, int]:
    """A cell's background: red for positive, blue for negative, stronger with the
    magnitude relative to `scale` (the largest magnitude shown beside it); light enough
    for black text to stay readable."""
    v = float(value)
    if not math.isfinite(v) or scale <= 0:
        return PADDING if math.isinf(v) else NEUTRAL
    t = min(1.0, abs(v) / scale) * 0.75  # at most 75 % of the way: text stays legible
    target = POSITIVE if v > 0 else NEGATIVE
    return tuple(int(round(n + (c - n) * t)) for n, c in zip(NEUTRAL, target, strict=True))


def magnitude(*arrays: Any) -> float:
    """The largest finite |value| among `arrays` (1.0 when there is none)."""
    best = 0.0
    for a in arrays:
        values = np.asarray(a, np.float64)
        finite = values[np.isfinite(values)]
        if finite.size:
            best = max(best, float(np.abs(finite).max()))
    return best or 1.0


def index_text(index: tuple[int, ...]) -> str:
    """An output index as the user reads it: (channel 3, row 2, col 5)."""
    if len(index) == 1:
        return f"unit {index[0]}"
    names = {2: ("position",), 3: ("row", "col"), 4: ("depth", "row", "col")}
    spatial = names.get(len(index), tuple(f"d{i}" for i in range(len(index) - 1)))
    parts = [f"channel {index[0]}"] + [f"{n} {i}" for n, i in zip(spatial, index[1:], strict=True)]
    return ", ".join(parts)


def per_dim(value: Any) -> str:
    """A stride/padding/dilation tuple as "2" when all dims agree, else "2×1"."""
    values = [int(v) for v in np.atleast_1d(value)]
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


def after_line(after: tuple[str, str, float] | None, result: float) -> str:
    """The activation that follows: "→ relu1 (ReLU): 0.4123 → 0.4123"; "" when none."""
    if after is None:
        return ""
    node, type_name, value = after
    return f"then {node} ({type_name}): {fmt(result)} → {fmt(value)}"


def conv_lines(terms: dict[str, Any], result: float) -> list[str]:
    """The convolution's sum per input channel, the total, the bias and the result."""
    channels = [int(c) for c in np.atleast_1d(terms["channels"])]
    products = np.asarray(terms["products"], np.float64)
    partial = products.reshape(len(channels), -1).sum(axis=1)
    lines = [f"input channel {c}: Σ patch × kernel = {fmt(s)}"
             for c, s in zip(channels, partial, strict=True)]
    bias = terms.get("bias")
    total = f"Σ over {len(channels)} channels = {fmt(terms['sum'])}" if len(channels) > 1 \
        else f"Σ = {fmt(terms['sum'])}"
    if bias is not None:
        total += f", + bias {fmt(bias)}"
    lines.append(f"{total} = {fmt(result)}")
    return lines


def pool_lines(terms: dict[str, Any], result: float) -> list[str]:
    patch = np.asarray(terms["patch"], np.float64)
    if terms["op"] == "max":
        return [f"max of {patch.size} values = {fmt(result)}"]
    real = patch[~np.asarray(terms.get("padded", np.zeros(patch.shape, bool)), bool)]
    return [f"mean = {fmt(float(patch.sum()))} / {terms['count']} = {fmt(result)}"
            + ("" if real.size == patch.size else " (padding counts as 0)")]


def batchnorm_lines(terms: dict[str, Any], result: float) -> list[str]:
    x, mean, var, eps = (float(terms[k]) for k in ("x", "mean", "var", "eps"))
    gamma, beta = float(terms["gamma"]), float(terms["beta"])
    return ["(x − μ) / √(σ² + ε) · γ + β",
            f"({fmt(x)} − {fmt(mean)}) / √({fmt(var)} + {fmt(eps)}) · {fmt(gamma)} + "
            f"{fmt(beta)} = {fmt(result)}"]


def linear_lines(terms: dict[str, Any], result: float) -> list[str]:
    lines = [f"input {i}: {fmt(x)} × {fmt(w)} = {fmt(p)}"
             for i, x, w, p in terms["contributions"]]
    lines.append(f"the other inputs together: {fmt(terms['others'])}")
    bias = terms.get("bias")
    lines.append(f"Σ = {fmt(terms['sum'])}" + (f", + bias {fmt(bias)}" if bias is not None
                                             else "") + f" = {fmt(result)}")
    return lines


def softmax_lines(terms: dict[str, Any], index: tuple[int, ...], result: float) -> list[str]:
    exps = np.asarray(terms["exps"], np.float64)
    k = index[-1] if index else 0
    return [f"exp(logit − max) = {fmt(exps.flat[k])}",
            f"{fmt(exps.flat[k])} / Σ {fmt(float(exps.sum()))} = {fmt(result)}"]


def summary_lines(explanation: Any) -> list[str]:
    """The arithmetic of a `ValueExplanation` as lines of text, the last one ending with
    the result; the activation that follows, when there is one, comes last."""
    e = explanation
    t, kind = e.terms, e.kind
    if kind == "conv":
        lines = conv_lines(t, e.result)
    elif kind == "pool":
        lines = pool_lines(t, e.result)
    elif kind == "batchnorm":
        lines = batchnorm_lines(t, e.result)
    elif kind == "flatten":
        source = tuple(int(i) for i in t["source"])
        lines = [f"value {e.index[-1]} of the flat vector is the input's "
                 f"{index_text(source)} = {fmt(e.result)}"]
    elif kind == "linear":
        lines = linear_lines(t, e.result)
    elif kind == "softmax":
        lines = softmax_lines(t, e.index, e.result)
    elif kind == "add":
        values = [float(v) for v in t["values"]]
        lines = [" + ".join(fmt(v) for v in values) + f" = {fmt(e.result)}"]
    elif kind == "concat":
        node, where = t["source"]
        lines = [f"this value is {node}'s {index_text(tuple(int(i) for i in where))}"
                 f" = {fmt(e.result)}"]
    elif kind == "elementwise":
        lines = [f"{t.get('function', 'f(x)')} with x = {fmt(t['x'])}: {fmt(e.result)}"]
    else:
        lines = [e.note or f"{e.type_name}: no step-by-step explanation for this layer"]
    if e.note and kind != "other":
        lines.append(e.note)
    follow = after_line(e.after, e.result)
    return lines + ([follow] if follow else [])
