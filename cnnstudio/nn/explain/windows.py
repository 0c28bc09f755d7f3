"""Sliding windows: one output value of a convolution or pooling, tap by tap, as torch
computes it (stride, padding incl. 'same', dilation, groups, ceil_mode edge windows,
count_include_pad, adaptive windows). Pure NumPy."""

from __future__ import annotations

import numpy as np

from cnnstudio.nn.explain.explanation import Kept, ValueExplanation, fmt


def tap_positions(out_pos: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
                  padding: tuple[int, ...], dilation: tuple[int, ...]) -> np.ndarray:
    """Input coordinates of every tap of the window of output position `out_pos`, shape
    (*kernel, ndim); < 0 or ≥ the input size where the tap lies in the padding."""
    taps = np.indices(kernel, dtype=np.int64)  # (ndim, *kernel)
    ndim = len(kernel)
    origin = np.array([out_pos[i] * stride[i] - padding[i] for i in range(ndim)], np.int64)
    step = np.array(dilation, np.int64)
    return np.moveaxis(taps, 0, -1) * step + origin


def _outside(positions: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """(*kernel) bool: the taps whose position lies outside an input of spatial `sizes`."""
    return ((positions < 0) | (positions >= np.array(sizes, np.int64))).any(axis=-1)


def _source(positions: np.ndarray, sizes: tuple[int, ...], mode: str) -> np.ndarray:
    """The input coordinate a tap reads under torch's padding `mode` (taps outside the input
    under "zeros" are clipped here and zeroed by the caller)."""
    n = np.array(sizes, np.int64)
    if mode == "reflect":  # mirror without repeating the edge, as torch and np.pad do
        reflected = np.where(positions < 0, -positions, positions)
        return np.where(reflected >= n, 2 * (n - 1) - reflected, reflected)
    if mode == "circular":
        return np.mod(positions, n)
    return np.clip(positions, 0, n - 1)  # "replicate", and "zeros" before zeroing


def _gather(x: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """x (C, *sizes) at `coords` (*kernel, ndim) → (C, *kernel)."""
    return x[(slice(None), *(coords[..., i] for i in range(coords.shape[-1])))]


def check_index(index: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """`index` as a tuple of ints inside `shape`; raises IndexError otherwise."""
    try:
        index = tuple(int(i) for i in index)
    except (TypeError, ValueError):
        raise IndexError(f"an output index is a tuple of integers, got {index!r}") from None
    if len(index) != len(shape) or any(not 0 <= i < n for i, n in zip(index, shape, strict=True)):
        raise IndexError(f"index {index} is outside the layer's output of shape {shape}")
    return index


def explain_conv(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """Output channel `index[0]` at `index[1:]`: the input patch of every input channel of
    the filter's group, times the kernel, summed, plus the bias."""
    s = kept.settings
    x = kept.inputs[0]
    weight = s["weight"]  # (C_out, C_in / groups, *kernel)
    out_channel, out_pos = index[0], index[1:]
    per_group_in = weight.shape[1]
    per_group_out = weight.shape[0] // s["groups"]
    first = (out_channel // per_group_out) * per_group_in
    channels = np.arange(first, first + per_group_in)
    kernel_size = tuple(weight.shape[2:])
    sizes = tuple(x.shape[1:])
    positions = tap_positions(out_pos, kernel_size, s["stride"], s["padding"], s["dilation"])
    outside = _outside(positions, sizes)
    patch = _gather(x[first:first + per_group_in], _source(positions, sizes, s["padding_mode"]))
    patch = patch.astype(np.float64)
    if s["padding_mode"] == "zeros":
        patch[:, outside] = 0.0
    kernel = weight[out_channel].astype(np.float64)
    products = patch * kernel
    total = float(products.sum())
    bias = None if s["bias"] is None else float(s["bias"][out_channel])
    terms = {
        "channels": channels, "patch": patch,
        "padded": np.broadcast_to(outside, patch.shape).copy(), "positions": positions,
        "kernel": kernel, "products": products, "sum": total, "bias": bias,
        "stride": s["stride"], "padding": s["padding"], "dilation": s["dilation"],
        "groups": s["groups"], "padding_mode": s["padding_mode"],
    }
    note = "" if s["padding_mode"] == "zeros" else \
        f"the border is padded by '{s['padding_mode']}': padding taps repeat input values"
    return kept.explanation("conv", index, total + (bias or 0.0), terms, note)


def explain_pool(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """Channel `index[0]` at `index[1:]`: the window's values and their maximum or mean."""
    s = kept.settings
    x = kept.inputs[0][index[0]]
    sizes = tuple(x.shape)
    kernel_size, stride, padding = s["kernel_size"], s["stride"], s["padding"]
    positions = tap_positions(index[1:], kernel_size, stride, padding, s["dilation"])
    outside = _outside(positions, sizes)
    values = _gather(x[None], _source(positions, sizes, "zeros"))[0].astype(np.float64)
    terms = {"op": s["op"], "padded": outside, "positions": positions,
             "kernel_size": kernel_size, "stride": stride, "padding": padding,
             "dilation": s["dilation"], "ceil_mode": s["ceil_mode"]}
    if s["op"] == "max":
        values[outside] = -np.inf
        chosen = tuple(int(i) for i in np.unravel_index(int(np.argmax(values)), kernel_size))
        terms.update(patch=values, chosen=chosen, count=None)
        return kept.explanation("pool", index, float(values[chosen]), terms)
    values[outside] = 0.0
    # torch's avg_pool: the window is cut at the padded input's end (ceil_mode's last
    # window may reach past it); count_include_pad counts the padding inside that cut.
    padded_end = np.array(sizes) + np.array(padding)
    counted = (positions < padded_end).all(axis=-1)
    if not s["count_include_pad"]:
        counted &= ~outside
    note = ""
    if s["divisor_override"]:
        count = int(s["divisor_override"])
        note = f"divisor_override: the sum is divided by {count}, not by the window size"
    else:
        count = int(counted.sum())
    total = float(values.sum())
    terms.update(patch=values, chosen=None, count=count, counted=counted, sum=total,
                 count_include_pad=s["count_include_pad"])
    return kept.explanation("pool", index, total / count, terms, note)


def adaptive_window(i: int, size_in: int, size_out: int) -> tuple[int, int]:
    """torch's adaptive pooling window of output index `i`: [⌊i·in/out⌋, ⌈(i+1)·in/out⌉)."""
    return (i * size_in) // size_out, -((-(i + 1) * size_in) // size_out)


def explain_adaptive(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """Channel `index[0]` at `index[1:]`: the adaptive window's values, max or mean."""
    x = kept.inputs[0][index[0]]
    sizes, out_sizes = x.shape, kept.output.shape[1:]
    window = tuple(adaptive_window(index[1 + d], sizes[d], out_sizes[d]) for d in range(x.ndim))
    values = x[tuple(slice(a, b) for a, b in window)].astype(np.float64)
    kernel_size = tuple(values.shape)
    origin = np.array([a for a, _ in window], np.int64)
    positions = np.moveaxis(np.indices(kernel_size, dtype=np.int64), 0, -1) + origin
    terms = {"op": kept.settings["op"], "patch": values,
             "padded": np.zeros(kernel_size, bool), "positions": positions, "window": window,
             "kernel_size": kernel_size}
    note = "adaptive window: from ⌊i·in/out⌋ to ⌈(i+1)·in/out⌉ along each axis"
    if kept.settings["op"] == "max":
        chosen = tuple(int(i) for i in np.unravel_index(int(np.argmax(values)), kernel_size))
        terms.update(chosen=chosen, count=None)
        return kept.explanation("pool", index, float(values[chosen]), terms, note)
    total = float(values.sum())
    terms.update(chosen=None, count=int(values.size), sum=total)
    return kept.explanation("pool", index, total / values.size, terms, note)


def explain_maxout(kept: Kept, index: tuple[int, ...]) -> ValueExplanation:
    """Maxout: the maximum over `pieces` consecutive channels (kind "other", said in the note)."""
    pieces = kept.settings["pieces"]
    first = index[0] * pieces
    values = [float(kept.inputs[0][(first + j, *index[1:])]) for j in range(pieces)]
    result = max(values)
    shown = ", ".join(fmt(v) for v in values)
    note = f"maximum of channels {first}–{first + pieces - 1}: max({shown}) = {fmt(result)}"
    terms = {"channels": tuple(range(first, first + pieces)), "values": values}
    return kept.explanation("other", index, result, terms, note)
