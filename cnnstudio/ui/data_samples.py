"""What the data view draws of a loaded Dataset, as plain NumPy made in the worker thread.

Imported by the load worker only: NumPy and torch stay out of the window's start-up.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PREVIEW_SAMPLES = 48  # 8 columns × 6 rows of thumbnails
MASK_ALPHA = 0.5
# Tab10, the colours people know from matplotlib: distinct on light and dark backgrounds.
CLASS_COLORS = np.array([
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
], dtype=np.float32)


@dataclass
class Preview:
    """Plain NumPy copies of what the data view draws, made in the worker thread.

    `images` are (H, W, 3) uint8 RGB pictures (masks already overlaid) or, when `kind`
    is "signal", (C, L) float32 signals. `counts` maps each split to samples per class
    (pixels per class for segmentation, `unit` says which).
    """

    kind: str  # "image" or "signal"
    images: list[np.ndarray]
    labels: list[str]
    indices: list[int]
    class_names: list[str]
    counts: dict[str, list[int]]
    split_sizes: dict[str, int]
    unit: str  # "samples" or "pixels"
    sample_shape: tuple[int, ...] = ()
    dtype: str = ""
    seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # What the source held before fitting to the Input, and what it became: one line
    # ("" when not known), and the Input shape that would keep the data as it is (None
    # when the Input has it already, or when the data is no image).
    formats_line: str = ""
    converted: bool = False
    suggested_shape: tuple[int, ...] | None = None


# Pillow modes in words, and the channels a network Input keeps of them.
MODE_NAMES = {"L": "grey", "1": "black & white", "LA": "grey + alpha", "P": "palette colour",
              "PA": "palette colour + alpha", "I": "32-bit grey", "I;16": "16-bit grey",
              "I;16B": "16-bit grey", "I;16L": "16-bit grey", "F": "float grey",
              "RGB": "RGB", "RGBA": "RGBA", "CMYK": "CMYK", "YCbCr": "YCbCr"}
MODE_CHANNELS = {"L": 1, "1": 1, "LA": 1, "I": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "F": 1,
                 "P": 3, "PA": 4, "RGB": 3, "RGBA": 4, "CMYK": 3, "YCbCr": 3}
CHANNEL_NAMES = {1: "grey", 3: "RGB", 4: "RGBA"}
SUGGEST_SIDE = 256  # a bigger picture is no Input size for a first network: keep the size
SHOWN_FORMATS = 3


def mode_name(mode: str) -> str:
    """'L' → 'grey'; an array's '5ch' → '5-channel'."""
    if mode.endswith("ch") and mode[:-2].isdigit():
        return f"{mode[:-2]}-channel"
    return MODE_NAMES.get(mode, mode)


def mode_channels(mode: str) -> int:
    if mode.endswith("ch") and mode[:-2].isdigit():
        return int(mode[:-2])
    return MODE_CHANNELS.get(mode, 3)


def describe_formats(formats: dict[tuple[int, int, str], int], shape: tuple[int, ...],
                     files: bool) -> tuple[str, bool, tuple[int, ...] | None]:
    """(line, converted, suggested Input shape) for images of `formats` ({(height, width,
    mode): count}) fitted to the Input `shape` (C, H, W), e.g. ("files: 32×32 RGB;
    converted to 1×8×8 grey for the Input node", True, (3, 32, 32)). Sizes are width×height
    as image viewers give them; shapes are channels×height×width as the Input has them."""
    if not formats or len(shape) != 3:
        return "", False, None
    ranked = sorted(formats.items(), key=lambda kv: (-kv[1], kv[0]))
    several = len(ranked) > 1
    parts = [f"{w}×{h} {mode_name(m)}" + (f" ({n:,})" if several else "")
             for (h, w, m), n in ranked[:SHOWN_FORMATS]]
    if len(ranked) > SHOWN_FORMATS:
        parts.append(f"{len(ranked) - SHOWN_FORMATS} more kinds")
    channels, height, width = shape
    converted = any((h, w) != (height, width) or mode_channels(m) != channels
                    or m not in ("L", "RGB", "RGBA") and not m.endswith("ch")
                    for (h, w, m) in formats)
    target = f"{channels}×{height}×{width} {CHANNEL_NAMES.get(channels, f'{channels}-channel')}"
    line = f"{'files' if files else 'data'}: {', '.join(parts)}; " + (
        f"converted to {target} for the Input node" if converted
        else f"used as {'they are' if files else 'it is'} by the Input node")
    (h, w, m), _n = ranked[0]
    c = mode_channels(m) if mode_channels(m) in CHANNEL_NAMES else channels
    suggested: tuple[int, ...] | None = (c, h, w) if max(h, w) <= SUGGEST_SIDE \
        else (c, height, width)
    if suggested == tuple(shape):
        suggested = None
    return line, converted, suggested


def _pick(labels: np.ndarray | None, pool: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` indices from `pool`; for classification every class in turn, so a grid of
    digits shows 0 1 2 … 9 0 1 … rather than whatever the shuffle put first."""
    rng = np.random.default_rng(seed)
    pool = rng.permutation(pool)
    if labels is None:
        return pool[:count]
    # Group the shuffled pool by class without a pass per class (there may be thousands).
    ordered = pool[np.argsort(labels[pool], kind="stable")]
    _, starts = np.unique(labels[ordered], return_index=True)
    by_class = [group[:count] for group in np.split(ordered, starts[1:])]
    rounds = itertools.zip_longest(*by_class)
    picked = [i for row in rounds for i in row if i is not None]
    return np.asarray(picked[:count], dtype=np.int64)


def sample_to_rgb(sample: np.ndarray) -> np.ndarray:
    """A (C, H, W) sample as an (H, W, 3) uint8 picture: grey for 1 channel, RGB for 3 or
    4, the first channel otherwise; float data is stretched to its own min…max."""
    if sample.dtype != np.uint8:
        work = np.nan_to_num(sample.astype(np.float32))
        low, high = float(work.min()), float(work.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        sample = ((work - low) * scale).astype(np.uint8)
    if sample.shape[0] in (3, 4):
        return np.ascontiguousarray(sample[:3].transpose(1, 2, 0))
    return np.ascontiguousarray(np.repeat(sample[0][:, :, None], 3, axis=2))


def overlay_mask(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`rgb` with every non-background (non-zero) class of `mask` tinted in its colour."""
    if mask.shape != rgb.shape[:2]:
        return rgb
    colors = CLASS_COLORS[(mask - 1) % len(CLASS_COLORS)]
    tinted = rgb.astype(np.float32) * (1 - MASK_ALPHA) + colors * MASK_ALPHA
    out = np.where((mask > 0)[:, :, None], tinted, rgb.astype(np.float32))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _segment_label(mask: np.ndarray, names: list[str]) -> str:
    present = [names[c] if c < len(names) else str(c) for c in np.unique(mask) if c > 0]
    return ", ".join(present) if present else (names[0] if names else "empty")


def make_preview(dataset: Any, count: int = PREVIEW_SAMPLES, seed: int = 0,
                 files: bool = True) -> Preview:
    """Thumbnails from the training split (all samples when it is empty), split sizes and
    class counts per split, as NumPy copies the GUI thread can draw without torch; what
    the source held before fitting (`files`: it was image files, else arrays)."""
    names = list(dataset.class_names)
    splits = {name: index.numpy() for name, index in dataset.splits.items()}
    pool = splits.get("train")
    if pool is None or len(pool) == 0:
        pool = np.arange(len(dataset.x))
    y = dataset.y.numpy()
    segmentation = dataset.task == "segmentation"
    chosen = np.sort(_pick(None, pool, count, seed)) if segmentation else _pick(y, pool, count,
                                                                                    seed)
    x = dataset.x.numpy()[chosen]
    signal = x.ndim == 3
    images: list[np.ndarray] = []
    labels: list[str] = []
    for row, index in enumerate(chosen):
        if signal:
            images.append(np.array(x[row], dtype=np.float32))
        else:
            rgb = sample_to_rgb(x[row])
            images.append(overlay_mask(rgb, y[index]) if segmentation else rgb)
        if segmentation:
            labels.append(_segment_label(y[index], names))
        else:
            labels.append(names[int(y[index])] if int(y[index]) < len(names) else str(y[index]))
    counts = {name: dataset.class_counts(name) for name, index in splits.items() if len(index)}
    line, converted, suggested = describe_formats(
        dict(getattr(dataset, "source_formats", None) or {}), tuple(dataset.sample_shape), files)
    return Preview(kind="signal" if signal else "image", images=images, labels=labels,
                   indices=[int(i) for i in chosen], class_names=names, counts=counts,
                   split_sizes={name: len(index) for name, index in splits.items()},
                   unit="pixels" if segmentation else "samples",
                   sample_shape=tuple(dataset.sample_shape), dtype=str(dataset.x.dtype),
                   skipped=[(s.path, s.reason) for s in dataset.skipped],
                   formats_line=line, converted=converted, suggested_shape=suggested)


