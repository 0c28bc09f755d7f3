"""An image the user gives the network to classify: read as they see it, and checked
against the training images (a dark digit on white for a network trained on white on
black is flagged). NumPy and Pillow only: this runs on the GUI thread."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ORIGINAL_SIDE = 512  # the original is shown beside the network's view, not analysed


def read_original(path: str | Path) -> np.ndarray:
    """An image file as the user sees it: (H, W, 3) uint8, at most ORIGINAL_SIDE pixels a
    side. Raises ValueError with a one-line reason."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.draft("RGB", (ORIGINAL_SIDE, ORIGINAL_SIDE))
            rgb = img.convert("RGB")
            rgb.thumbnail((ORIGINAL_SIDE, ORIGINAL_SIDE))
            return np.asarray(rgb, np.uint8).copy()
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise ValueError(f"{Path(path).name}: {err}") from None


def _border(images: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels of (N, C, H, W) images, per image (N, ring)."""
    n = images.shape[0]
    ring = [images[:, :, 0, :], images[:, :, -1, :], images[:, :, :, 0], images[:, :, :, -1]]
    return np.concatenate([r.reshape(n, -1) for r in ring], axis=1)


Z_LIMIT = 3.0  # an image mean this many standard deviations from the training ones: warn


def input_warning(image: np.ndarray, mean: list[float], std: list[float],
                  samples: np.ndarray | None = None) -> str | None:
    """One line when `image` (C, H, W uint8, as the network's Input wants it) lies far
    outside the training data, else None: its background brightness on the other side
    of the training images' (a dark digit on white for a network trained on white digits
    on black), or its mean brightness more than Z_LIMIT standard deviations off.

    `samples` (N, C, H, W; uint8, or floats used unscaled; training or validation
    images) give the training data's per-image statistics; without them the stored
    normalisation (`mean`, `std`, per channel on a 0…1 scale) stands in for them."""
    x = np.asarray(image, np.float64) / 255.0
    if x.ndim != 3 or not x.size:
        return None
    level = float(x.mean())
    edge = float(np.median(_border(x[None])))
    if samples is not None and len(samples) and np.ndim(samples) == 4:
        s = np.asarray(samples, np.float64)
        if np.asarray(samples).dtype == np.uint8:  # float data is used unscaled (0…1): as it is
            s /= 255.0
        means = s.mean(axis=(1, 2, 3))
        train_level, spread = float(means.mean()), max(float(means.std()), 0.02)
        train_edge = float(np.median(np.median(_border(s), axis=1)))
    else:
        train_level = float(np.mean(mean)) if mean else 0.5
        spread = max(float(np.mean(std)) if std else 0.25, 0.02)
        # Mostly-dark training data has a dark background (and mostly-light a light one).
        train_edge = 0.0 if train_level < 0.35 else 1.0 if train_level > 0.65 else edge
    if abs(edge - train_edge) > 0.5:
        mine, theirs = ("light", "dark") if edge > train_edge else ("dark", "light")
        return (f"This image has a {mine} background, the training images a {theirs} one:"
                " the answer means little; try the image inverted.")
    z = (level - train_level) / spread
    if abs(z) > Z_LIMIT:
        word = "brighter" if z > 0 else "darker"
        return (f"This image is much {word} than the training images (mean {level:.2f} vs"
                f" {train_level:.2f}, z = {z:+.1f}): the answer may mean little.")
    return None
