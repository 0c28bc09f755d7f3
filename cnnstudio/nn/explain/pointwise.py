"""One output value of the layers without a sliding window: BatchNorm, Flatten, Linear,
Softmax, Add, Concat, element-wise activations and dropout, nearest upsampling, and a
one-line note for the rest. Pure NumPy."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnstudio.nn.explain.explanation import Kept, ValueExplanation, fmt

LINEAR_TOP = 12  # contributions a Linear explanation lists one by one


def explain_batchnorm(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """(x − μ)/√(σ² + ε)·γ + β with the running statistics of channel `index[0]` (the
    sample's own statistics when the layer keeps none); affine off: γ = 1, β = 0."""
    s = kept.settings
    channel = index[0]
    x = float(kept.inputs[0][index])
    note = ""
    if s["mean"] is None:  # track_running_stats off: torch normalizes with the batch's stats
        values = kept.inputs[0][channel].astype(np.float64)
        mean, var = float(values.mean()), float(values.var())
        note = "no running statistics kept: μ and σ² are this sample's own, over the channel"
    else:
        mean, var = float(s["mean"][channel]), float(s["var"][channel])
    gamma = 1.0 if s["weight"] is None else float(s["weight"][channel])
    beta = 0.0 if s["bias"] is None else float(s["bias"][channel])
    eps = float(s["eps"])
    result = (x - mean) / math.sqrt(var + eps) * gamma + beta
    terms = {"x": x, "mean": mean, "var": var, "eps": eps, "gamma": gamma, "beta": beta,
             "affine": s["weight"] is not None, "running": s["mean"] is not None}
    return kept.explanation("batchnorm", index, result, terms, note)


def explain_flatten(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """Where the flattened value comes from: its index in the input map."""
    shape = kept.inputs[0].shape
    rank = len(shape) + 1  # torch's dims count the batch
    start = kept.settings["start_dim"] % rank - 1
    end = kept.settings["end_dim"] % rank - 1
    unrolled = np.unravel_index(index[start], shape[start:end + 1])
    source = (*index[:start], *(int(i) for i in unrolled), *index[start + 1:])
    terms = {"source": source, "input_shape": tuple(shape)}
    return kept.explanation("flatten", index, float(kept.inputs[0][source]), terms)


def explain_linear(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """Output unit `index[-1]`: Σ xᵢ·wᵢ + b, the largest |xᵢ·wᵢ| listed, the rest summed."""
    weight, bias = kept.settings["weight"], kept.settings["bias"]
    unit = index[-1]
    x = kept.inputs[0][index[:-1]].astype(np.float64)  # Linear acts on the last dimension
    w = weight[unit].astype(np.float64)
    products = x * w
    size = np.abs(products)
    # A partial sort: a Linear after Flatten may have tens of thousands of inputs.
    top = np.arange(len(products)) if len(products) <= LINEAR_TOP else \
        np.argpartition(-size, LINEAR_TOP - 1)[:LINEAR_TOP]
    top = top[np.argsort(-size[top], kind="stable")]
    contributions = [(int(i), float(x[i]), float(w[i]), float(products[i])) for i in top]
    rest = products.copy()
    rest[top] = 0.0
    others = float(rest.sum())
    total = float(products.sum())
    b = None if bias is None else float(bias[unit])
    terms = {"contributions": contributions, "others": others, "others_count": int(
        max(0, len(products) - LINEAR_TOP)), "sum": total, "bias": b, "inputs": len(products)}
    return kept.explanation("linear", index, total + (b or 0.0), terms)


def _softmax_axis(dim: int | None, rank: int) -> int:
    """The sample axis (no batch) a Softmax normalizes; -1 when it is the batch axis.
    `dim=None` is torch's deprecated implicit choice (dim 0 for 1-D or 3-D tensors)."""
    if dim is None:
        dim = 0 if rank + 1 in (0, 1, 3) else 1
    return dim % (rank + 1) - 1


def explain_softmax(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """logits → exp(logit − max) → exps / Σ exps, along the Softmax's dim."""
    x = kept.inputs[0]
    axis = _softmax_axis(kept.settings["dim"], x.ndim)
    if axis < 0:
        return kept.explanation("other", index, kept.value(index),
                                note="softmax over the batch axis: one sample gives 1")
    where = (*index[:axis], slice(None), *index[axis + 1:])
    logits = x[where].astype(np.float64)
    exps = np.exp(logits - logits.max())
    probabilities = exps / exps.sum()
    position = index[axis]
    terms = {"logits": logits, "exps": exps, "probabilities": probabilities,
             "sum": float(exps.sum()), "max": float(logits.max()), "position": position,
             "dim": axis + 1}
    return kept.explanation("softmax", index, float(probabilities[position]), terms)


def explain_add(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """Each input's value at `index`, and their sum."""
    values = [float(x[index]) for x in kept.inputs]
    terms = {"values": values, "inputs": list(kept.input_nodes)}
    return kept.explanation("add", index, float(np.sum(values, dtype=np.float64)), terms)


def explain_concat(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """Which input, and which channel of it, the value comes from."""
    ranges, start = [], 0
    source: tuple[str, tuple[int, ...]] | None = None
    result = 0.0
    for node, x in zip(kept.input_nodes, kept.inputs, strict=True):
        stop = start + x.shape[0]
        ranges.append((node, start, stop))
        if start <= index[0] < stop:
            source = (node, (index[0] - start, *index[1:]))
            result = float(x[source[1]])
        start = stop
    return kept.explanation("concat", index, result, {"ranges": ranges, "source": source})


def _gelu(x: float, s: dict[str, Any]) -> float:
    if s.get("approximate") == "tanh":
        return 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + math.erf(x / math.sqrt(2)))


def _sigmoid(x: float) -> float:
    # Both branches avoid exp overflow for large |x|.
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


def _elu(x: float, s: dict[str, Any]) -> float:
    return x if x > 0 else s["alpha"] * math.expm1(x)


# type → (the function as the view writes it, the function itself)
ELEMENTWISE: dict[str, tuple[Callable[[dict[str, Any]], str],
                             Callable[[float, dict[str, Any]], float]]] = {
    "ReLU": (lambda s: "max(0, x)", lambda x, s: max(0.0, x)),
    "LeakyReLU": (lambda s: f"x if x > 0, else {fmt(s['negative_slope'])}·x",
                  lambda x, s: x if x > 0 else s["negative_slope"] * x),
    "ELU": (lambda s: f"x if x > 0, else {fmt(s['alpha'])}·(eˣ − 1)", _elu),
    "GELU": (lambda s: "x·½·(1 + tanh(√(2/π)·(x + 0.044715·x³)))"
             if s.get("approximate") == "tanh" else "x·Φ(x)  (Φ: the normal distribution)",
             _gelu),
    "SiLU": (lambda s: "x·σ(x) = x/(1 + e⁻ˣ)", lambda x, s: x * _sigmoid(x)),
    "Tanh": (lambda s: "tanh(x)", lambda x, s: math.tanh(x)),
    "Sigmoid": (lambda s: "σ(x) = 1/(1 + e⁻ˣ)", lambda x, s: _sigmoid(x)),
    "Dropout": (lambda s: "x  (dropout is off when the network predicts)", lambda x, s: x),
    "Dropout2d": (lambda s: "x  (dropout is off when the network predicts)", lambda x, s: x),
}


def explain_elementwise(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """y = f(x) for an activation or dropout (identity when predicting)."""
    text, function = ELEMENTWISE[kept.type_name]
    x = float(kept.inputs[0][index])
    terms = {"x": x, "function": text(kept.settings)}
    return kept.explanation("elementwise", index, function(x, kept.settings), terms)


def _nearest_source(i: int, size_in: int, size_out: int, scale: float | None,
                    exact: bool) -> int:
    """torch's nearest-neighbour source index (float32 arithmetic, as its CPU kernel)."""
    if not exact and size_out == size_in:
        return i
    if not exact and size_out == 2 * size_in:
        return i >> 1
    step = np.float32(1.0 / scale) if scale else np.float32(size_in) / np.float32(size_out)
    where = np.float32(i + 0.5 if exact else i) * step
    return min(int(np.floor(where)), size_in - 1)


def explain_upsample(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """Nearest modes: the input value copied (kind "other", said in the note); other modes
    interpolate and only get a note."""
    s = kept.settings
    mode = s["mode"]
    if mode not in ("nearest", "nearest-exact"):
        return kept.explanation("other", index, kept.value(index),
                                note=f"{mode} upsampling blends neighbouring input values")
    x = kept.inputs[0]
    ndim = x.ndim - 1
    scales = s["scale_factor"]
    if not isinstance(scales, tuple):
        scales = (scales,) * ndim
    source = (index[0], *(
        _nearest_source(index[1 + d], x.shape[1 + d], kept.output.shape[1 + d], scales[d],
                        mode == "nearest-exact") for d in range(ndim)))
    result = float(x[source])
    note = f"{mode} upsampling copies input value {source} = {fmt(result)}"
    return kept.explanation("other", index, result, {"source": source}, note)


NOTES = {
    "Input": "the network's input: the sample's own values",
    "ConvTranspose2d": "a transposed convolution spreads each input value over a kernel-sized"
                       " patch of the output; no step-by-step view for it",
}


def explain_other(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """No arithmetic shown: the value, and a line saying why."""
    note = NOTES.get(kept.type_name, f"no step-by-step view for {kept.type_name}")
    return kept.explanation("other", index, kept.value(index), note=note)
