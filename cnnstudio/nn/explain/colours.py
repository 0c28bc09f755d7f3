"""Colour maps as small lookup tables: NumPy only, for the pictures and any view."""

from __future__ import annotations

from functools import cache

import numpy as np

# Evenly spaced anchor colours of each map; a table interpolates them linearly to 256
# entries. "viridis" and "magma" are perceptually ordered dark → light (the sequential maps
# of matplotlib by those names, sampled at nine points); "diverging" runs blue → light
# gray → red, for values around zero.
_ANCHORS: dict[str, tuple[str, ...]] = {
    "viridis": ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962",
                "#addc30", "#fde725"),
    "magma": ("#000004", "#1c1044", "#4f127b", "#812581", "#b5367a", "#e55964", "#fb8761",
              "#fec287", "#fcfdbf"),
    "diverging": ("#3a4cc0", "#6a8bef", "#9abbff", "#c9d7f0", "#ededed", "#f4c6ad", "#f49a7b",
                  "#dd604c", "#b40426"),
    "gray": ("#000000", "#ffffff"),
}
CMAPS = tuple(_ANCHORS)


@cache
def colour_table(cmap: str) -> np.ndarray:
    """The (256, 3) uint8 lookup table of colour map `cmap` (one of CMAPS).
    Raises ValueError for an unknown name."""
    if cmap not in _ANCHORS:
        raise ValueError(f"unknown colour map {cmap!r}: expected one of {', '.join(CMAPS)}")
    anchors = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in _ANCHORS[cmap]],
                       np.float64)
    where = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(t, where, anchors[:, k]) for k in range(3)], axis=1)
    table = np.rint(table).astype(np.uint8)
    table.flags.writeable = False  # shared by every caller
    return table


def value_range(values: np.ndarray, cmap: str = "viridis") -> tuple[float, float]:
    """The (lo, hi) `colorize` uses by default: the finite minimum and maximum, or ±the
    largest magnitude for the diverging map (zero in its middle); (0, 0) with no finite
    value."""
    v = np.asarray(values, np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return 0.0, 0.0
    if cmap == "diverging":
        top = float(np.abs(finite).max())
        return -top, top
    return float(finite.min()), float(finite.max())


def colorize(values: np.ndarray, cmap: str = "viridis", lo: float | None = None,
             hi: float | None = None) -> np.ndarray:
    """Colour `values` (any shape) with `cmap`: (*shape, 3) uint8. `lo` maps to the
    table's first colour and `hi` to its last (defaults: `value_range`); values outside
    are clipped. A flat range gives the map's middle colour for the diverging map and
    its first otherwise; NaN and infinities count as `lo`. Raises ValueError for an
    unknown map."""
    table = colour_table(cmap)
    v = np.asarray(values, np.float64)
    default_lo, default_hi = value_range(v, cmap)
    lo = default_lo if lo is None else float(lo)
    hi = default_hi if hi is None else float(hi)
    if not hi - lo > 1e-12 * max(1.0, abs(lo), abs(hi)):
        t = np.full(v.shape, 0.5 if cmap == "diverging" else 0.0)
    else:
        t = np.clip((np.nan_to_num(v, nan=lo, posinf=lo, neginf=lo) - lo) / (hi - lo), 0, 1)
    return table[np.rint(t * 255).astype(np.intp)]
