"""Small file writers shared by the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, array: np.ndarray, fmt: str | None = None) -> Path:
    """Write an (H, W) or (H, W, C) uint8 array as an image file; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path, format=fmt)
    return path


def gray(value: int, size: int = 8) -> np.ndarray:
    """A uniform gray (size, size) picture."""
    return np.full((size, size), value, np.uint8)


def rgb(color: tuple[int, int, int], size: int = 8) -> np.ndarray:
    """A uniform (size, size, 3) colour picture."""
    return np.broadcast_to(np.asarray(color, np.uint8), (size, size, 3)).copy()


def make_class_folder(root: Path, classes: dict[str, list[np.ndarray]], ext: str = "png") -> Path:
    """root/<class>/<i>.<ext> for every picture; returns root."""
    for name, pictures in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, pic in enumerate(pictures):
            write_image(root / name / f"{i:03d}.{ext}", pic)
    return root


def truncated_png(path: Path, size: int = 32) -> Path:
    """A PNG cut in the middle of its pixel data."""
    rng = np.random.default_rng(1)
    write_image(path, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path
