"""The Computation page's three maps: the sample with the region the chosen value sees,
the layer's input with the window (its zero border hatched), and the output map filling
in as values are visited. Also how an output index maps to a cell and back.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnstudio.ui.explain.arithmetic_text import magnitude

if TYPE_CHECKING:
    from cnnstudio.ui.explain.computation import ComputationPage
    from cnnstudio.ui.explain.host import ExplainHost

VECTOR_COLUMNS = 16  # a vector (a Linear's units) is drawn in rows of at least this many
MAX_COLUMNS = 64
SIGNAL_COLUMNS = 32  # a 1-D map (Conv1d) longer than this wraps too
INPUT_SHOWN = 12  # of a larger input, this many cells around the window are drawn


def positions(shape: tuple[int, ...]) -> int:
    """How many values one channel's map has (a vector: its length)."""
    return int(shape[0]) if len(shape) == 1 else int(math.prod(shape[1:]))


def display_columns(shape: tuple[int, ...]) -> int:
    """Columns of the drawn map: a 2-D map's width; vectors and long signals wrap."""
    if len(shape) == 1:  # about twice as wide as high, at least a row of 16
        wide = math.ceil(math.sqrt(2 * int(shape[0])))
        return max(1, min(int(shape[0]), max(VECTOR_COLUMNS, min(wide, MAX_COLUMNS))))
    if len(shape) == 2:
        return max(1, min(int(shape[1]), SIGNAL_COLUMNS))
    return max(1, int(shape[-1]))


def output_index(shape: tuple[int, ...], channel: int, position: int) -> tuple[int, ...]:
    """The output index of `position` (flat, row-major) in `channel`'s map."""
    if len(shape) == 1:
        return (int(position),)
    spatial = np.unravel_index(int(position), tuple(int(s) for s in shape[1:]))
    return (int(channel), *(int(i) for i in spatial))


def as_display(values: np.ndarray, columns: int) -> np.ndarray:
    """A flat or 1-D/2-D/3-D map as the rows drawn: wrapped to `columns`, NaN-padded."""
    a = np.asarray(values, np.float64)
    if a.ndim == 2 and a.shape[1] == columns:
        return a
    flat = a.ravel()
    rows = max(1, math.ceil(flat.size / columns))
    out = np.full(rows * columns, np.nan)
    out[:flat.size] = flat
    return out.reshape(rows, columns)


def cell_of(flat: int, columns: int) -> tuple[int, int]:
    return divmod(int(flat), columns)


def sample_picture(sample: np.ndarray) -> np.ndarray:
    """A raw sample (C, H, W) or (C, L) as drawn: grey (H, W), colour (H, W, 3) for three
    channels, or a signal's channels as rows (C, L)."""
    a = np.asarray(sample, np.float64)
    if a.ndim == 3:
        return np.moveaxis(a, 0, -1) if a.shape[0] == 3 else a[0]
    return a.reshape(a.shape[0], -1) if a.ndim >= 2 else a.reshape(1, -1)


def class_labels(host: ExplainHost, trace: Any) -> list[str] | None:
    """Class names for the layer's outputs when it is the network's output and they fit."""
    ctx = host.samples(load=False) or {}
    names = list(ctx.get("class_names") or [])
    graph = host.window.document.graph
    if trace.node not in graph or graph.consumers(trace.node):
        return None
    return names if len(trace.output_shape) == 1 and len(names) == trace.output_shape[0] \
        else None


def classifier_logits(host: ExplainHost, trace: Any) -> np.ndarray | None:
    """The layer's output when it is the last layer of a classifier and no Softmax or
    Sigmoid follows it (its outputs are the logits the loss turns into probabilities)."""
    graph = host.window.document.graph
    if (host.window.project.task != "classification" or trace.node not in graph
            or graph.consumers(trace.node) or len(trace.output_shape) != 1
            or trace.kind in ("softmax", "elementwise")):
        return None
    return np.asarray(trace.output, np.float64).ravel()


def input_label(trace: Any, i: int) -> str:
    """A vector input's element `i`, by the node it comes from."""
    source = trace.input_nodes[0] if trace.input_nodes else "input"
    return f"{source}[{i}]"


def _taps(positions_: Any) -> tuple[list[tuple[int, int]], int]:
    """(row, col) of each tap from (*k, nd) coordinates, and the map's rank (1 or 2)."""
    p = np.asarray(positions_).reshape(-1, np.asarray(positions_).shape[-1])
    if p.shape[1] == 1:
        return [(0, int(c)) for c in p[:, 0]], 1
    return [(int(r), int(c)) for r, c in p[:, -2:]], 2


def _padding_to_show(taps: list[tuple[int, int]], shape: tuple[int, int],
                     declared: Any, rank: int) -> tuple[int, int]:
    """Zero rows/columns to draw: the layer's padding, and at least what the taps reach."""
    pads = [int(v) for v in np.atleast_1d(declared)] if declared is not None else []
    pr = pads[-2] if rank == 2 and len(pads) >= 2 else (pads[0] if rank == 2 and pads else 0)
    pc = pads[-1] if pads else 0
    for r, c in taps:
        pr = max(pr, -r, r - (shape[0] - 1))
        pc = max(pc, -c, c - (shape[1] - 1))
    return max(0, pr), max(0, pc)


def _input_plane(array: np.ndarray, channel: int) -> np.ndarray | None:
    """One channel of an input map as 2-D (a 1-D signal as one row); None for vectors
    and volumes."""
    if array.ndim == 3:
        return array[channel]
    if array.ndim == 2:
        return array[channel][None, :]
    return None


def draw_input(page: ComputationPage, e: Any) -> None:
    trace, view = page.trace, page.input_map
    t = e.terms
    inputs = trace.inputs
    if not inputs:
        view.clear()
        return
    window: list[tuple[int, int]] = []
    highlight: tuple[int, int] | None = None
    which, channel, declared = 0, int(e.index[0]) if len(e.index) > 1 else 0, None
    if e.kind in ("conv", "pool") and "positions" in t:
        if e.kind == "conv":
            channel = int(np.atleast_1d(t["channels"])[0])
            declared = t.get("padding")
        window, _ = _taps(t["positions"])
    elif e.kind == "flatten":
        source = tuple(int(i) for i in t["source"])
        channel = source[0] if len(source) > 1 else 0
        highlight = (0, source[-1]) if len(source) == 2 else \
            tuple(source[-2:]) if len(source) >= 3 else None  # type: ignore[assignment]
    elif e.kind == "concat":
        node, where = t["source"]
        which = trace.input_nodes.index(node) if node in trace.input_nodes else 0
        where = tuple(int(i) for i in where)
        channel = where[0] if len(where) > 1 else 0
        highlight = (where[-2], where[-1]) if len(where) >= 3 else (0, where[-1])
    elif len(e.index) > 1:  # batchnorm, element-wise, add: the same position
        highlight = (e.index[-2], e.index[-1]) if len(e.index) >= 3 else (0, e.index[-1])
    array = np.asarray(inputs[which], np.float64)
    plane = _input_plane(array, channel) if array.ndim in (2, 3) else None
    name = trace.input_nodes[which] if trace.input_nodes else "input"
    if plane is None:  # a vector: wrapped, the inputs that count most marked
        cols = display_columns(array.shape) if array.ndim == 1 else VECTOR_COLUMNS
        grid = as_display(array, cols)
        if e.kind == "linear":
            window = [cell_of(int(i), cols) for i, *_ in t["contributions"][:1]]
            highlight = window[0] if window else None
            window = []
        elif e.kind == "softmax":
            highlight = cell_of(int(e.index[-1]), cols)
        view.show_values(grid, magnitude(array), name, blank=np.isnan(grid))
        view.set_marks(highlight=highlight)
        return
    pad = _padding_to_show(window, plane.shape, declared, 2 if array.ndim == 3 else 1) \
        if window else (0, 0)
    focus = window or ([highlight] if highlight is not None else [(0, 0)])
    region = (*around([r for r, _ in focus], plane.shape[0], pad[0]),
              *around([c for _, c in focus], plane.shape[1], pad[1]))
    title = f"{name} · channel {channel}" if array.ndim >= 2 else name
    if region[1] - region[0] < plane.shape[0] + 2 * pad[0] or \
            region[3] - region[2] < plane.shape[1] + 2 * pad[1]:
        title += f" · rows {max(0, region[0])}–{min(plane.shape[0], region[1]) - 1}," \
            f" cols {max(0, region[2])}–{min(plane.shape[1], region[3]) - 1}"
    view.show_values(plane, magnitude(plane), title, pad=pad, region=region)
    view.set_marks(window=window, highlight=highlight)


def around(taps: list[int], size: int, pad: int) -> tuple[int, int]:
    """The [start, stop) of at most INPUT_SHOWN cells of one axis (padding included)
    around `taps`: large inputs are shown near the window, large enough to read."""
    low, high = -pad, size + pad
    if high - low <= INPUT_SHOWN:
        return low, high
    centre = (min(taps) + max(taps) + 1) // 2
    start = max(low, min(centre - INPUT_SHOWN // 2, high - INPUT_SHOWN))
    return start, start + INPUT_SHOWN


def draw_output(page: ComputationPage, e: Any) -> None:
    trace, view = page.trace, page.output_map
    shape = trace.output_shape
    cols = display_columns(shape)
    channel_map = trace.output if len(shape) == 1 else trace.output[page.channel]
    grid = as_display(channel_map, cols)
    visited = np.zeros(grid.size, bool)
    visited[:page.visited.size] = page.visited
    blank = ~visited.reshape(grid.shape) | np.isnan(grid)
    labels = class_labels(page.host, trace)
    what = f"class {labels[page.position]}" if labels else \
        "unit" if len(shape) == 1 else f"channel {page.channel}"
    view.show_values(grid, magnitude(channel_map), f"{trace.node}, {what}: click a value",
                     blank=blank)
    view.set_marks(highlight=cell_of(page.position, cols))


def draw_picture(page: ComputationPage, e: Any) -> None:
    view, field = page.picture, page.field
    box = None
    if field is not None and len(e.index) >= 2:
        start, jump, size = field
        spatial = e.index[1:]
        lo = [s + i * j for s, i, j in zip(start, spatial, jump, strict=False)]
        rows, cols = view.values.shape[:2]
        if len(lo) == 1:  # a signal: its channels are the rows
            box = (0, max(0, lo[0]), rows, min(cols, lo[0] + size[0]))
        elif len(lo) >= 2:  # clipped: the field's part in the padding is no picture
            box = (max(0, lo[-2]), max(0, lo[-1]), min(rows, lo[-2] + size[-2]),
                   min(cols, lo[-1] + size[-1]))
    view.title = "sample · red: field" if box else "sample"
    view.set_marks(box=box)


def draw_maps(page: ComputationPage, e: Any) -> None:
    """Redraw the three maps for explanation `e`."""
    draw_output(page, e)
    draw_input(page, e)
    draw_picture(page, e)
