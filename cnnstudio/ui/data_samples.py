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


def make_preview(dataset: Any, count: int = PREVIEW_SAMPLES, seed: int = 0) -> Preview:
    """Thumbnails from the training split (all samples when it is empty), split sizes and
    class counts per split, as NumPy copies the GUI thread can draw without torch."""
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
    return Preview(kind="signal" if signal else "image", images=images, labels=labels,
                   indices=[int(i) for i in chosen], class_names=names, counts=counts,
                   split_sizes={name: len(index) for name, index in splits.items()},
                   unit="pixels" if segmentation else "samples",
                   sample_shape=tuple(dataset.sample_shape), dtype=str(dataset.x.dtype),
                   skipped=[(s.path, s.reason) for s in dataset.skipped])


