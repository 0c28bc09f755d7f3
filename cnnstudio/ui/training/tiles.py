"""Image grids for filters and feature maps, in NumPy (no Qt, no torch).

A grid is a float array with NaN in the one-pixel gaps between tiles; `to_rgba` turns it
into the RGBA bytes shown on screen with explicit levels (symmetric around zero for
weights), so a filter's colours mean the same thing from one refresh to the next.
"""

from __future__ import annotations

import math

import numpy as np

GAP = 1
MAX_TILES = 1024  # more tiles than pixels on screen help nobody; the rest is left out
PERCENTILE_SAMPLE = 1 << 20  # values a display level's percentile looks at, at most
GAP_RGBA = (128, 128, 128, 255)
DARK_GAP_RGBA = (40, 40, 40, 255)  # where mid-grey means something (0 in RGB filters)


def grid_columns(n: int, aspect: float = 1.0) -> int:
    """Columns for `n` tiles arranged about square (wider by `aspect`)."""
    return max(1, min(n, math.ceil(math.sqrt(n * aspect))))


def tile(images: np.ndarray, cols: int | None = None, gap: int = GAP) -> np.ndarray:
    """Lay `images` (n, h, w) or (n, h, w, 3) out in a grid, row by row, with `gap`
    pixels of NaN between tiles; returns (rows·(h+gap)−gap, cols·(w+gap)−gap[, 3])."""
    images = np.asarray(images, np.float32)
    n, h, w = images.shape[:3]
    cols = cols or grid_columns(n)
    rows = math.ceil(n / cols) if n else 0
    shape = (max(0, rows * (h + gap) - gap), max(0, cols * (w + gap) - gap), *images.shape[3:])
    out = np.full(shape, np.nan, np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = images[i]
    return out


def fit_columns(n: int, tile_shape: tuple[int, int], area: tuple[float, float],
                gap: int = GAP) -> int:
    """Columns for `n` tiles of `tile_shape` (h, w) that draw them largest in an `area`
    (width, height) in pixels; among equally large layouts, the one with fewest empty
    cells. A square-ish grid in a wide panel left most of it empty."""
    if n <= 1:
        return 1
    width, height = area
    if width <= 0 or height <= 0:
        return grid_columns(n)
    h, w = tile_shape
    best, best_key = 1, (-1.0, 0)
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        if cols > 1 and rows == math.ceil(n / (cols - 1)):
            continue  # as many rows as with one column fewer: only wider
        scale = min(width / (cols * (w + gap) - gap), height / (rows * (h + gap) - gap))
        key = (round(scale, 6), -(rows * cols - n))
        if key > best_key:
            best, best_key = cols, key
    return best


def tile_origin(index: int, tile_shape: tuple[int, int], cols: int,
                gap: int = GAP) -> tuple[int, int]:
    """(top, left) grid pixel of tile `index`."""
    h, w = tile_shape
    r, c = divmod(index, cols)
    return r * (h + gap), c * (w + gap)


def tile_at(grid_shape: tuple[int, ...], tile_shape: tuple[int, int], cols: int,
            row: int, col: int, gap: int = GAP) -> tuple[int, int, int] | None:
    """(tile index, y, x within the tile) under grid pixel (row, col); None on a gap."""
    h, w = tile_shape
    tr, y = divmod(row, h + gap)
    tc, x = divmod(col, w + gap)
    if y >= h or x >= w or tc >= cols or row < 0 or col < 0 or row >= grid_shape[0]:
        return None
    return tr * cols + tc, y, x


def filter_tiles(weights: np.ndarray) -> tuple[np.ndarray, int, str]:
    """Tiles for convolution weights (out, in, kh, kw): (tiles, columns, kind).

    3 input channels: one RGB tile per filter ("rgb"); 1: one tile per filter ("single");
    otherwise one tile per (filter, input channel) pair: a column per filter, a row per
    input channel ("pairs"; wide, as the views are).
    """
    out_c, in_c = weights.shape[:2]
    if in_c == 3:
        tiles = np.moveaxis(weights, 1, -1)[:MAX_TILES]
        return tiles, grid_columns(len(tiles)), "rgb"
    if in_c == 1:
        tiles = weights[:, 0][:MAX_TILES]
        return tiles, grid_columns(len(tiles)), "single"
    cols = min(out_c, 64)
    rows = min(in_c, max(1, MAX_TILES // cols))
    tiles = weights[:cols, :rows].transpose(1, 0, 2, 3).reshape(rows * cols,
                                                                *weights.shape[2:])
    return tiles, cols, "pairs"


def map_tiles(maps: np.ndarray) -> tuple[np.ndarray, int]:
    """Tiles for one sample's activations: (C, H, W) maps one tile each; (C, L) one row
    of L per channel, stacked; (C,) values one pixel each. Returns (tiles, columns)."""
    maps = np.asarray(maps, np.float32)
    if maps.ndim == 3:
        maps = maps[:MAX_TILES]
        return maps, grid_columns(len(maps), maps.shape[1] / max(1, maps.shape[2]))
    if maps.ndim == 2:
        return maps[None, :MAX_TILES], 1
    if maps.ndim == 1:
        n = len(maps)
        cols = grid_columns(n)
        padded = np.full(math.ceil(n / cols) * cols, np.nan, np.float32)
        padded[:n] = maps
        return padded.reshape(1, -1, cols), 1
    flat = maps.reshape(maps.shape[0], maps.shape[1], -1)[:MAX_TILES]  # 3-D maps: D×H flattened
    return flat, grid_columns(len(flat))


def symmetric_level(values: np.ndarray, percentile: float = 100.0) -> float:
    """The largest magnitude, or that `percentile` of the magnitudes (1.0 for an all-zero
    or all-NaN array): levels ±m."""
    values = np.asarray(values)
    if percentile < 100 and values.size > PERCENTILE_SAMPLE:
        # 64 maps of 224×224 are 3·10^6 values: a regular sample of 10^6 gives the same
        # level to the eye in a fraction of the time (the GUI thread draws them).
        values = values.ravel()[::values.size // PERCENTILE_SAMPLE + 1]
    finite = np.abs(values[np.isfinite(values)])
    if not finite.size:
        return 1.0
    top = float(finite.max() if percentile >= 100 else np.percentile(finite, percentile))
    return top if top > 0 else 1.0


def to_rgba(grid: np.ndarray, levels: tuple[float, float], lut: np.ndarray,
            gap: tuple[int, int, int, int] = GAP_RGBA) -> np.ndarray:
    """A float grid (H, W) through the colour table `lut` (n × 3 or n × 4 bytes), or an
    RGB grid (H, W, 3) scaled per channel, with `levels` (low, high) mapping to the
    table's ends; NaN gaps become `gap` (grey). Returns (H, W, 4) uint8."""
    low, high = levels
    span = high - low if high > low else 1.0
    nan = ~np.isfinite(grid if grid.ndim == 2 else grid[..., 0])
    # In place, one pass per step: 64 maps of 224×224 took 110–130 ms with temporaries.
    scaled = np.subtract(grid, low, dtype=np.result_type(grid, 1.0))  # ints: as floats
    scaled /= span
    np.clip(scaled, 0.0, 1.0, out=scaled)
    if grid.ndim == 3:
        out = np.empty((*grid.shape[:2], 4), np.uint8)
        out[..., :3] = np.round(np.nan_to_num(scaled, nan=0.0) * 255).astype(np.uint8)
        out[..., 3] = 255
    else:
        scaled *= len(lut) - 1
        np.rint(scaled, out=scaled)
        scaled[~np.isfinite(scaled)] = 0  # NaN: the gap colour follows
        table = np.empty((len(lut), 4), np.uint8)  # one 4-byte word per colour
        table[:, :3] = lut[:, :3]
        table[:, 3] = lut[:, 3] if lut.shape[1] == 4 else 255
        words = table.view(np.uint32).ravel()[scaled.astype(np.intp)]
        out = words.view(np.uint8).reshape(*grid.shape[:2], 4)
    out[nan] = gap
    return out


def correlate2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """`kernel` (kh × kw) slid over `image` (H × W) with zero padding, output the size of
    the input: what torch's conv2d(padding="same") computes (cross-correlation, the extra
    pad after when kh or kw is even). NumPy, so the kernel playground answers at once
    without waiting for torch; tests hold it equal to `cnnstudio.nn.internals.apply_kernel`."""
    img = np.asarray(image, np.float32)
    k = np.asarray(kernel, np.float32)
    kh, kw = k.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = np.zeros((img.shape[0] + kh - 1, img.shape[1] + kw - 1), np.float32)
    padded[top:top + img.shape[0], left:left + img.shape[1]] = img
    out = np.zeros(img.shape, np.float32)
    for dy in range(kh):
        for dx in range(kw):
            if k[dy, dx]:
                out += k[dy, dx] * padded[dy:dy + img.shape[0], dx:dx + img.shape[1]]
    return out
