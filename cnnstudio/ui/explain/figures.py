"""Lay out the arithmetic of one explained value (`ValueExplanation`) as a `Figure`:
grids of the real numbers, the operators between them, the sums and the result.

One builder per kind; all share the header (which value, of which layer) and the line
about the activation that follows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnnstudio.ui.explain.arithmetic_text import (
    after_line,
    fmt,
    index_text,
    magnitude,
    per_dim,
    summary_lines,
)
from cnnstudio.ui.explain.number_grid import (
    ACCENT,
    CELL_H,
    CELL_PAD,
    CELL_W,
    MUTED,
    Bar,
    Figure,
    Grid,
    Label,
    Metrics,
    cell_text,
)

SHOWN_CHANNELS = 4  # input channels drawn in full; the rest are listed with their sums
LISTED_SUMS = 8  # partial sums of the channels not drawn, listed by name
TABLE_ROWS = 12  # rows of a softmax table (the chosen class always among them)
GAP = 14.0
BIG = 1.3  # the result line's font scale
POSITIVE_BAR = (214, 96, 77)
NEGATIVE_BAR = (67, 147, 195)
ROW_MARK = (255, 228, 196)


def as_rows(values: np.ndarray) -> np.ndarray:
    """A tap array as a 2-D grid: (k,) → (1, k); (kh, kw) as is; more dims stacked."""
    a = np.asarray(values, np.float64)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1)
    return a.reshape(-1, a.shape[-1])


class Layout:
    """A figure being built top to bottom: `y` is where the next line goes."""

    def __init__(self, metrics: Metrics, room: float = float("inf")) -> None:
        self.m = metrics
        self.figure = Figure()
        self.y = 0.0
        self.room = room  # the width that fits without scrolling, in logical units

    def _cell_width(self, rows: np.ndarray, mask: np.ndarray | None) -> float:
        flags = mask if mask is not None else np.zeros(rows.shape, bool)
        texts = [cell_text(v, bool(p)) for v, p in zip(rows.ravel(), flags.ravel(),
                                                         strict=True)]
        return max([CELL_W, *(self.m.width(t) + CELL_PAD for t in texts)])

    def grid_width(self, values: np.ndarray, padded: Any = None) -> float:
        rows = as_rows(values)
        mask = None if padded is None else np.asarray(padded, bool).reshape(rows.shape)
        return self._cell_width(rows, mask) * rows.shape[1]

    def text(self, x: float, text: str, size: float = 1.0, bold: bool = False,
             colour: tuple[int, int, int] | None = None, y: float | None = None) -> float:
        """Put `text` at (x, y or the current line); returns its right edge."""
        top = self.y if y is None else y
        width = self.m.width(text, size, bold)
        label = Label(x, top, text, size, bold) if colour is None else \
            Label(x, top, text, size, bold, colour)
        self.figure.add(label, x + width, top + self.m.height(size))
        return x + width

    def line(self, text: str, size: float = 1.0, bold: bool = False,
             colour: tuple[int, int, int] | None = None, gap: float = 4.0) -> None:
        """A line of text, broken at spaces where it is wider than the room."""
        for part in self.wrap(text, size, bold):
            self.text(0.0, part, size, bold, colour)
            self.y += self.m.height(size)
        self.y += gap

    def wrap(self, text: str, size: float, bold: bool) -> list[str]:
        if self.m.width(text, size, bold) <= self.room:
            return [text]
        lines: list[str] = []
        for word in text.split(" "):
            if lines and self.m.width(f"{lines[-1]} {word}", size, bold) <= self.room:
                lines[-1] = f"{lines[-1]} {word}"
            else:
                lines.append(word)
        return lines

    def grid(self, x: float, values: np.ndarray, scale: float, padded: Any = None,
             highlight: tuple[int, int] | None = None, y: float | None = None) -> Grid:
        rows = as_rows(values)
        mask = None if padded is None else np.asarray(padded, bool).reshape(rows.shape)
        grid = Grid(x, self.y if y is None else y, rows, scale,
                    cell_w=self._cell_width(rows, mask), padded=mask,
                    highlight=highlight)
        self.figure.add(grid, grid.x + grid.width, grid.y + grid.height)
        return grid


def header(layout: Layout, e: Any) -> None:
    layout.line(f"{e.node} ({e.type_name}) · {index_text(e.index)} = {fmt(e.value)}",
                size=1.15, bold=True)


def result_lines(layout: Layout, text: str, e: Any) -> None:
    layout.y += 4
    layout.line(text, size=BIG, bold=True)
    follow = after_line(e.after, e.result)
    if follow:
        layout.line(follow, size=1.1, colour=ACCENT)


def conv_figure(layout: Layout, e: Any) -> None:
    t = e.terms
    channels = [int(c) for c in np.atleast_1d(t["channels"])]
    patch, kernel = np.asarray(t["patch"], np.float64), np.asarray(t["kernel"], np.float64)
    products, padded = np.asarray(t["products"], np.float64), np.asarray(t["padded"], bool)
    groups = int(t.get("groups", 1) or 1)
    layout.line(f"stride {per_dim(t['stride'])} · padding {per_dim(t['padding'])} (the zero"
                f" border, hatched) · dilation {per_dim(t['dilation'])}"
                + (f" · groups {groups}" if groups > 1 else ""), colour=MUTED, gap=8)
    scales = magnitude(patch), magnitude(kernel), magnitude(products)
    partial = products.reshape(len(channels), -1).sum(axis=1)
    shown = min(len(channels), SHOWN_CHANNELS)
    for row in range(shown):
        if len(channels) > 1:  # one channel: the input map's title says which
            layout.text(0.0, f"input channel {channels[row]}", bold=True)
            layout.y += layout.m.height() + 2
        conv_row(layout, [(None, patch[row], padded[row], scales[0], "input patch"),
                          ("×", kernel[row], None, scales[1], "kernel (weights)"),
                          ("=", products[row], None, scales[2], "products")],
                 f"Σ = {fmt(partial[row])}", titles=row == 0)
        layout.y += GAP
    if len(channels) > shown:
        rest = partial[shown:]
        listed = ", ".join(f"ch {c}: {fmt(s)}" for c, s in
                           zip(channels[shown:shown + LISTED_SUMS], rest, strict=False))
        more = len(channels) - shown
        layout.line(f"and {more} more channel{'s' if more != 1 else ''}, each summed the"
                    f" same way: {listed}{' …' if more > LISTED_SUMS else ''}", colour=MUTED)
        layout.line(f"their sums together: {fmt(float(rest.sum()))}", colour=MUTED)
    text = f"Σ over {len(channels)} channels = {fmt(t['sum'])}" if len(channels) > 1 \
        else f"Σ = {fmt(t['sum'])}"
    if t.get("bias") is not None:
        text += f"  + bias {fmt(t['bias'])}"
    result_lines(layout, f"{text}  = {fmt(e.result)}", e)


def conv_row(layout: Layout, parts: list[tuple[str | None, Any, Any, float, str]],
             total: str, titles: bool) -> None:
    """Grids joined by operators ("patch × kernel = products  Σ = s"), flowing onto
    further lines where the room ends; `titles` names each grid above it."""
    m = layout.m
    sum_size = 1.15
    placed: list[list[tuple[str | None, Any, Any, float, str]]] = [[]]
    x = 0.0
    for part in parts:
        op, values, padded, _, title = part
        # A title wider than its grid (a 1×1 kernel) claims its own width: no overlap.
        width = (m.width(op, BIG) + 12 if op else 0.0) + max(
            layout.grid_width(values, padded), m.width(title) if titles else 0.0)
        if placed[-1] and x + width > layout.room:
            placed.append([])
            x = 0.0
        placed[-1].append(part)
        x += width + 6
    for k, line in enumerate(placed):
        title_y = layout.y
        if titles:
            layout.y += m.height() + 2
        top, x, height = layout.y, 0.0, 0.0
        mid = top + CELL_H * as_rows(line[0][1]).shape[0] / 2 - m.height(BIG) / 2
        for op, values, padded, scale, title in line:
            if op:
                x = layout.text(x, op, BIG, y=mid) + 6
            grid = layout.grid(x, values, scale, padded, y=top)
            right = grid.x + grid.width
            if titles:
                right = max(right, layout.text(x, title, colour=MUTED, y=title_y))
            x, height = right + 6, max(height, grid.height)
        if k == len(placed) - 1:
            if x + 4 + m.width(total, sum_size, True) > layout.room:  # Σ on a line of its own
                layout.y = top + height + 4
                top, mid, x, height = layout.y, layout.y, 0.0, m.height(sum_size)
            layout.text(x + 4, total, sum_size, True, y=mid)
        layout.y = top + height + 6


def pool_figure(layout: Layout, e: Any) -> None:
    t = e.terms
    patch, padded = np.asarray(t["patch"], np.float64), np.asarray(t["padded"], bool)
    rows = as_rows(patch)
    chosen = t.get("chosen")
    highlight = None
    if chosen is not None:
        flat = int(np.ravel_multi_index(tuple(int(i) for i in chosen), patch.shape))
        highlight = divmod(flat, rows.shape[1])
    layout.line(f"the window of channel {e.index[0]}: {'×'.join(map(str, patch.shape))} values"
                + (" (hatched: padding)" if padded.any() else ""), colour=MUTED, gap=6)
    grid = layout.grid(0.0, patch, magnitude(patch), padded, highlight)
    layout.y += grid.height + GAP
    if t["op"] == "max":
        text = f"max = {fmt(e.result)}"
    else:
        text = f"mean = {fmt(float(np.where(padded, 0.0, patch).sum()))} / {t['count']} = " \
            f"{fmt(e.result)}"
    result_lines(layout, text, e)


def batchnorm_figure(layout: Layout, e: Any) -> None:
    t = e.terms
    layout.line("(x − μ) / √(σ² + ε) · γ + β", size=BIG, gap=8)
    layout.line("μ, σ²: this channel's running mean and variance, learnt in training",
                colour=MUTED, gap=0)
    layout.line("γ, β: its learnt weight and bias", colour=MUTED, gap=10)
    parts = [("x", t["x"]), ("μ", t["mean"]), ("σ²", t["var"]), ("ε", t["eps"]),
             ("γ", t["gamma"]), ("β", t["beta"])]
    layout.line("   ".join(f"{name} = {fmt(value)}" for name, value in parts), size=1.1)
    result_lines(layout, f"({fmt(t['x'])} − {fmt(t['mean'])}) / √({fmt(t['var'])} + "
                 f"{fmt(t['eps'])}) · {fmt(t['gamma'])} + {fmt(t['beta'])} = "
                 f"{fmt(e.result)}", e)


def table(layout: Layout, headings: list[str], rows: list[list[str]],
          bars: list[float] | None = None, marked: int | None = None,
          signed: bool = True) -> None:
    """Right-aligned columns of numbers (the first column left-aligned), with an optional
    bar per row and one row marked. Bars: −1…1 from the bar column's middle (`signed`),
    else 0…1 from its left."""
    m = layout.m
    widths = [max(m.width(h, bold=True), *(m.width(r[i]) for r in rows)) + 18
              for i, h in enumerate(headings)]
    lefts = [float(sum(widths[:i])) for i in range(len(widths))]
    bar_w = 110.0
    bar_x = sum(widths) + 12.0 + (bar_w / 2 if signed else 0.0)  # where a bar's 0 is
    row_h = m.height() + 5
    total = sum(widths) + 24.0 + bar_w if bars is not None else sum(widths)
    for i, heading in enumerate(headings):
        layout.text(lefts[i] + (0 if i == 0 else widths[i] - 18 - m.width(heading, bold=True)),
                    heading, bold=True, colour=MUTED)
    layout.y += row_h
    for k, row in enumerate(rows):
        if k == marked:
            layout.figure.items.insert(0, Bar(0, layout.y - 2, total, row_h, ROW_MARK))
        for i, cell in enumerate(row):
            x = lefts[i] if i == 0 else lefts[i] + widths[i] - 18 - m.width(cell)
            layout.text(x, cell)
        if bars is not None:
            v = max(-1.0, min(1.0, bars[k]))
            colour = POSITIVE_BAR if v >= 0 else NEGATIVE_BAR
            length = v * bar_w / 2 if signed else v * bar_w
            layout.figure.add(Bar(bar_x, layout.y + 2, length, row_h - 8, colour),
                              total, layout.y + row_h)
        layout.y += row_h
    layout.y += 6


def linear_figure(layout: Layout, e: Any, input_labels: Callable[[int], str]) -> None:
    t = e.terms
    contributions = list(t["contributions"])
    layout.line(f"the {len(contributions)} largest contributions input × weight"
                " (largest |product| first)", colour=MUTED, gap=6)
    scale = magnitude([p for *_, p in contributions])
    rows = [[input_labels(int(i)), fmt(x), fmt(w), fmt(p)] for i, x, w, p in contributions]
    table(layout, ["input", "x", "× weight", "= product"], rows,
          [float(p) / scale for *_, p in contributions])
    layout.line(f"all the other inputs together: {fmt(t['others'])}", colour=MUTED)
    text = f"Σ = {fmt(t['sum'])}"
    if t.get("bias") is not None:
        text += f"  + bias {fmt(t['bias'])}"
    result_lines(layout, f"{text}  = {fmt(e.result)}", e)


def softmax_figure(layout: Layout, e: Any, labels: list[str] | None) -> None:
    t = e.terms
    logits = np.asarray(t["logits"], np.float64).ravel()
    exps = np.asarray(t["exps"], np.float64).ravel()
    probs = np.asarray(t["probabilities"], np.float64).ravel()
    k = int(e.index[-1])
    order = list(np.argsort(-probs, kind="stable")[:TABLE_ROWS])
    if k not in order:
        order[-1] = k
    order.sort()
    name = (lambda i: labels[i]) if labels and len(labels) == len(probs) else str
    rows = [[name(int(i)), fmt(logits[i]), fmt(exps[i]), fmt(probs[i])] for i in order]
    layout.line("logits → exp(logit − largest logit) → divided by their sum", colour=MUTED,
                gap=6)
    table(layout, ["class", "logit", "exp(logit − max)", "probability"], rows,
          [float(probs[i]) for i in order], order.index(k), signed=False)
    if len(order) < len(probs):
        layout.line(f"({len(probs) - len(order)} less likely classes not listed)",
                    colour=MUTED)
    result_lines(layout, f"{fmt(exps[k])} / Σ {fmt(float(exps.sum()))} = {fmt(e.result)}", e)


def add_figure(layout: Layout, e: Any) -> None:
    t = e.terms
    values = [float(v) for v in t["values"]]
    inputs = list(t.get("inputs") or [f"input {i}" for i in range(len(values))])
    table(layout, ["input", "value"], [[str(n), fmt(v)] for n, v in
                                       zip(inputs, values, strict=False)])
    result_lines(layout, " + ".join(fmt(v) for v in values) + f" = {fmt(e.result)}", e)


def concat_figure(layout: Layout, e: Any) -> None:
    t = e.terms
    node, where = t["source"]
    ranges = list(t["ranges"])
    marked = next((i for i, (n, _, _) in enumerate(ranges) if n == node), None)
    table(layout, ["input", "channels here"],
          [[str(n), f"{start}–{stop - 1}"] for n, start, stop in ranges], marked=marked)
    result_lines(layout, f"this value is {node}'s {index_text(tuple(int(i) for i in where))}"
                 f" = {fmt(e.result)}", e)


def classifier_terms(logits: Any, k: int) -> Any:
    """What the softmax after a classifier's last layer makes of its `logits` (the
    layer's whole output), shaped like a Softmax node's explanation of unit `k`."""
    from types import SimpleNamespace

    z = np.asarray(logits, np.float64).ravel()
    exps = np.exp(z - z.max())
    probs = exps / exps.sum()
    return SimpleNamespace(terms={"logits": z, "exps": exps, "probabilities": probs},
                           index=(k,), result=float(probs[k]), after=None)


def build_figure(e: Any, metrics: Metrics, labels: list[str] | None = None,
                 input_labels: Callable[[int], str] | None = None,
                 room: float = float("inf"), logits: Any = None) -> Figure:
    """The figure of explanation `e`; `labels` name the output units (class names of a
    classifier), `input_labels(i)` a vector input's element i; `room`: the width that
    fits (a convolution's rows break in two when narrower). `logits`: the layer's whole
    output when it is a classifier's last layer without a Softmax node (training applies
    the softmax in its loss): the figure goes on to the class probabilities."""
    layout = Layout(metrics, room)
    header(layout, e)
    kind = e.kind
    if kind == "conv":
        conv_figure(layout, e)
    elif kind == "pool":
        pool_figure(layout, e)
    elif kind == "batchnorm":
        batchnorm_figure(layout, e)
    elif kind == "linear":
        linear_figure(layout, e, input_labels or str)
    elif kind == "softmax":
        softmax_figure(layout, e, labels)
    elif kind == "add":
        add_figure(layout, e)
    elif kind == "concat":
        concat_figure(layout, e)
    else:  # flatten, elementwise, other: the arithmetic is one line
        lines = summary_lines(e)
        follow = after_line(e.after, e.result)
        body = [ln for ln in lines if ln != follow]
        for ln in body[:-1]:
            layout.line(ln, size=1.1)
        if body:
            result_lines(layout, body[-1], e)
    if e.note and kind not in ("other", "flatten", "elementwise"):
        layout.line(e.note, colour=MUTED)
    if logits is not None:
        layout.y += 8
        layout.line("then the classifier's softmax (in the loss and in predictions):",
                    size=1.1, bold=True)
        softmax_figure(layout, classifier_terms(logits, int(e.index[-1])), labels)
    layout.figure.lines = summary_lines(e)
    return layout.figure
