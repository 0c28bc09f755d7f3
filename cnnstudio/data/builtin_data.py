"""Built-in datasets that need no download (their files live in the ``builtin/`` folder).

* ``digits``: the real UCI 8x8 handwritten digits (1797 samples, values 0..16 scaled to
  0..255), shipped in ``builtin/digits.csv.gz`` (see ``builtin/DIGITS_ATTRIBUTION.txt``).
* ``xo``: 9x9 pictures of an X or an O, pixels +1 (stroke, stored 255) or -1 (stored 0),
  randomly shifted, scaled and slightly rotated, with a few flipped pixels.
  Classes ``["O", "X"]`` (alphabetical, as a folder of class subfolders would sort).
* ``shapes``: 32x32 RGB pictures of one circle, square or triangle in a random colour on a
  dark noisy background; classes ``["circle", "square", "triangle"]``.
* ``shapes-seg``: 32x32 RGB pictures with 1-3 such shapes and per-pixel masks;
  classes ``["background", "circle", "square", "triangle"]``.
* ``signals``: 1-channel float32 signals of length 128: ``["sine", "square", "sawtooth",
  "noise"]`` with random frequency, phase and amplitude plus a little noise.

The procedural sets are generated in well under a second, always the same for the same
``seed`` (``source["seed"]``, default 0; independent of the split seed so that runs with
different split seeds see the same pictures) and ``source["samples"]`` (the count).
"""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

from cnnstudio.core.data_sources import BUILTINS

from .convert import array_formats, fit_images, fit_signals, resize_masks
from .errors import DataError
from .sources.base import Decoded, Target


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The UCI digits as ((1797, 1, 8, 8) uint8 in 0..255, (1797,) int64 labels)."""
    res = resources.files("cnnstudio.data").joinpath("builtin", "digits.csv.gz")
    with res.open("rb") as raw, gzip.open(raw, "rt", encoding="ascii") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float64)
    pixels = np.rint(table[:, :64] * (255.0 / 16.0)).astype(np.uint8)
    return pixels.reshape(-1, 1, 8, 8), table[:, 64].astype(np.int64)


def _balanced_labels(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % k).astype(np.int64)


def make_xo(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X-vs-O pictures: ((n, 1, 9, 9) uint8 of 0/255, labels 0 = O, 1 = X)."""
    rng = np.random.default_rng(seed)
    y = _balanced_labels(rng, n, 2)
    v, u = np.mgrid[-4:5, -4:5].astype(np.float64)  # pixel centres, row then column
    angle = np.deg2rad(rng.uniform(-15, 15, (n, 1, 1)))
    scale = rng.uniform(0.85, 1.15, (n, 1, 1))
    du, dv = rng.uniform(-0.8, 0.8, (2, n, 1, 1))
    # Inverse map each pixel into the shape's own frame.
    pu, pv = u - du, v - dv
    su = (np.cos(angle) * pu + np.sin(angle) * pv) / scale
    sv = (-np.sin(angle) * pu + np.cos(angle) * pv) / scale
    on_x = (np.minimum(abs(su - sv), abs(su + sv)) < 0.85) & (np.maximum(abs(su), abs(sv)) < 3.6)
    on_o = abs(np.hypot(su, sv * rng.uniform(0.85, 1.15, (n, 1, 1))) - 3.0) < 0.75
    picture = np.where((y == 1)[:, None, None], on_x, on_o)
    picture ^= rng.random(picture.shape) < 0.02  # salt-and-pepper noise
    return (picture.astype(np.uint8) * 255)[:, None], y


def _shape_masks(kind: np.ndarray, cx: np.ndarray, cy: np.ndarray, r: np.ndarray,
                 angle: np.ndarray, size: int) -> np.ndarray:
    """Boolean (n, size, size) coverage of circles (0), squares (1) or triangles (2)."""
    v, u = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    du, dv = u - cx[:, None, None], v - cy[:, None, None]
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    ru, rv = c * du + s * dv, -s * du + c * dv
    rad = r[:, None, None]
    circle = du ** 2 + dv ** 2 <= rad ** 2
    square = np.maximum(abs(ru), abs(rv)) <= rad * 0.8
    triangle = np.ones_like(circle)
    for k in range(3):  # equilateral: inside three half-planes at the inradius r/2
        a = 2 * np.pi * k / 3
        triangle &= np.cos(a) * ru + np.sin(a) * rv <= rad * 0.55
    kinds = kind[:, None, None]
    return np.where(kinds == 0, circle, np.where(kinds == 1, square, triangle))


def _backgrounds(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    base = rng.uniform(0, 90, (n, 3, 1, 1)).astype(np.float32)
    return base + 8 * rng.standard_normal((n, 3, size, size), dtype=np.float32)


def make_shapes(n: int = 1500, seed: int = 0, size: int = 32
                ) -> tuple[np.ndarray, np.ndarray]:
    """One shape per picture: ((n, 3, size, size) uint8, labels circle/square/triangle)."""
    rng = np.random.default_rng(seed)
    y = _balanced_labels(rng, n, 3)
    r = rng.uniform(0.2, 0.32, n) * size
    cx, cy = rng.uniform(r, size - r, (2, n))
    mask = _shape_masks(y, cx, cy, r, rng.uniform(0, 2 * np.pi, n), size)
    color = rng.uniform(130, 255, (n, 3, 1, 1)).astype(np.float32)
    img = np.where(mask[:, None], color, _backgrounds(rng, n, size))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), y


def make_shapes_seg(n: int = 600, seed: int = 0, size: int = 32
                    ) -> tuple[np.ndarray, np.ndarray]:
    """1-3 shapes per picture: ((n, 3, size, size) uint8, (n, size, size) int64 masks with
    0 = background, 1 = circle, 2 = square, 3 = triangle; later shapes cover earlier)."""
    rng = np.random.default_rng(seed)
    count = rng.integers(1, 4, n)
    img = _backgrounds(rng, n, size)
    masks = np.zeros((n, size, size), np.int64)
    for slot in range(3):
        kind = rng.integers(0, 3, n)
        r = rng.uniform(0.12, 0.22, n) * size
        cx, cy = rng.uniform(r, size - r, (2, n))
        cover = _shape_masks(kind, cx, cy, r, rng.uniform(0, 2 * np.pi, n), size)
        cover &= (slot < count)[:, None, None]
        color = rng.uniform(130, 255, (n, 3, 1, 1)).astype(np.float32)
        img = np.where(cover[:, None], color, img)
        masks[cover] = np.broadcast_to(kind[:, None, None] + 1, cover.shape)[cover]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), masks


def make_signals(n: int = 1000, seed: int = 0, length: int = 128
                 ) -> tuple[np.ndarray, np.ndarray]:
    """((n, 1, length) float32 signals, labels sine/square/sawtooth/noise)."""
    rng = np.random.default_rng(seed)
    y = _balanced_labels(rng, n, 4)
    t = np.arange(length) / length
    phase = rng.uniform(2, 8, (n, 1)) * t + rng.uniform(0, 1, (n, 1))
    amp = rng.uniform(0.5, 1.5, (n, 1))
    waves = np.stack([
        np.sin(2 * np.pi * phase),
        np.sign(np.sin(2 * np.pi * phase)),
        2 * (phase % 1.0) - 1,
        rng.normal(0, 0.7, (n, length)),
    ])
    x = amp * waves[y, np.arange(n)] + rng.normal(0, 0.1, (n, length))
    return x.astype(np.float32)[:, None], y


def load_builtin(source: dict, target: Target, task: str) -> Decoded:
    """Generate (or read) a built-in dataset and fit it to the Input shape.

    Raises DataError for an unknown name, a task the dataset does not serve, or an Input
    shape it cannot be fitted to.
    """
    name = source.get("name")
    builtin = BUILTINS.get(name) if isinstance(name, str) else None
    if builtin is None:
        raise DataError(f"unknown built-in dataset {name!r}: expected one of "
                        f"{', '.join(BUILTINS)}")
    if task != builtin.task:
        raise DataError(f"built-in dataset '{name}' is for {builtin.task}; "
                        f"the project task is {task}")
    try:
        seed = int(source.get("seed", 0))
        n = int(source.get("samples", builtin.samples))
    except (TypeError, ValueError):
        raise DataError(f"built-in dataset '{name}': seed and samples must be integers") from None
    if name != "digits" and not 1 <= n <= 1_000_000:
        raise DataError(f"built-in dataset '{name}': samples must be between 1 and 1000000")
    what, names = f"built-in dataset '{name}'", list(builtin.classes)
    if name == "signals":
        x, y = make_signals(n, seed)
        return Decoded(fit_signals(x, target, what), y, names)
    target.require_image(what)
    x, y = load_digits() if name == "digits" else {
        "xo": make_xo, "shapes": make_shapes, "shapes-seg": make_shapes_seg}[name](n, seed)
    if builtin.task == "segmentation":
        y = resize_masks(y, target.spatial)
    return Decoded(fit_images(x, target, what), y, names, formats=array_formats(x))
