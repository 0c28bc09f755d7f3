"""Fitting decoded samples to the network Input shape: channels, size and dtype.

Rules (the same for every source):

* Images are converted to the Input's channel count as Pillow does it: 1 = ``L`` (luma
  ITU-R 601-2), 3 = ``RGB``, 4 = ``RGBA``; then resized to its H x W with Pillow's bilinear
  filter (antialiased when shrinking). Masks are resized with nearest neighbour.
* uint8 images stay uint8 (0..255). Integer arrays within 0..255 become uint8. Float arrays
  are kept as float32, unscaled: their mean/std are taken as they are.
* 1-D data ``[C, L]``: the channel count must match (a flat row is one channel); the length
  is resampled to L with linear interpolation (Pillow's antialiased bilinear filter along
  the length), as images are resized, so a whole signal is kept rather than cropped.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import DataError
from .sources.base import Target

PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_LUMA = (0.299, 0.587, 0.114)


def array_mode(channels: int) -> str:
    """The Pillow mode an array's channel count stands for ("L", "RGB", "RGBA"), else
    "<C>ch"."""
    return PIL_MODES.get(channels, f"{channels}ch")


def array_formats(x: np.ndarray) -> dict[tuple[int, int, str], int]:
    """{(height, width, mode): count} of (N, C, H, W) images before they are fitted."""
    if x.ndim != 4 or not len(x):
        return {}
    return {(int(x.shape[2]), int(x.shape[3]), array_mode(int(x.shape[1]))): int(len(x))}


def pil_mode(target: Target, what: str) -> str:
    """Return the Pillow mode for the target's channel count; raises DataError if none fits."""
    try:
        return PIL_MODES[target.channels]
    except KeyError:
        raise DataError(
            f"{what}: images can be converted to 1 (gray), 3 (RGB) or 4 (RGBA) channels, "
            f"not to the Input's {target.channels}"
        ) from None


def image_dtype(x: np.ndarray, what: str) -> np.ndarray:
    """Return ``x`` as uint8 (integers in 0..255) or float32 (floats, unscaled).

    Raises DataError for integers outside 0..255 or non-numeric arrays.
    """
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.bool_:
        return x.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(x.dtype, np.integer):
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        if lo < 0 or hi > 255:
            raise DataError(
                f"{what}: integer pixel values span {lo}..{hi}; expected 0..255 "
                "(or give floats, which are used unscaled)"
            )
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32, copy=False)
        if x.size and not np.isfinite(x).all():
            raise DataError(f"{what}: values contain NaN or infinity")
        return x
    raise DataError(f"{what}: unsupported value type {x.dtype}")


def convert_channels(x: np.ndarray, channels: int, what: str) -> np.ndarray:
    """Convert (N, C, H, W) images to ``channels`` the way Pillow's ``convert`` does."""
    c = x.shape[1]
    if c == channels:
        return x
    if c not in PIL_MODES:
        raise DataError(f"{what}: cannot convert {c}-channel images to {channels} channels")
    rgb = x[:, :3] if c >= 3 else np.repeat(x, 3, axis=1)
    if channels == 1:
        if c == 1:
            return x
        if x.dtype == np.uint8:  # Pillow's exact integer luma, so folders and arrays agree
            r, g, b = (rgb[:, i].astype(np.uint32) for i in range(3))
            return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[:, None]
        return np.tensordot(rgb, np.asarray(_LUMA, np.float32), axes=([1], [0]))[:, None]
    if channels == 3:
        return np.ascontiguousarray(rgb)
    if channels == 4:
        alpha_value = 255 if x.dtype == np.uint8 else 1.0
        alpha = np.full((len(x), 1, *x.shape[2:]), alpha_value, x.dtype)
        return np.concatenate([rgb, alpha], axis=1)
    raise DataError(f"{what}: cannot convert images to {channels} channels")


def resize_images(x: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize (N, C, H, W) images to ``size_hw`` with Pillow's bilinear filter."""
    n, c, h, w = x.shape
    if (h, w) == tuple(size_hw):
        return x
    out = np.empty((n, c, *size_hw), x.dtype)
    wh = (size_hw[1], size_hw[0])
    for i in range(n):
        if x.dtype == np.uint8 and c in PIL_MODES:
            hwc = x[i, 0] if c == 1 else np.ascontiguousarray(x[i].transpose(1, 2, 0))
            img = Image.fromarray(hwc)
            arr = np.asarray(img.resize(wh, Image.Resampling.BILINEAR))
            out[i] = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        else:  # any other channel count or float data: channel by channel in mode F
            for j in range(c):
                img = Image.fromarray(np.ascontiguousarray(x[i, j], np.float32))
                out[i, j] = np.asarray(img.resize(wh, Image.Resampling.BILINEAR))
    return out


def resize_masks(y: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize (N, H, W) class-index masks with nearest neighbour (pixel centres)."""
    h, w = y.shape[1:]
    if (h, w) == tuple(size_hw):
        return y
    rows = np.minimum(((np.arange(size_hw[0]) + 0.5) * h / size_hw[0]).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(size_hw[1]) + 0.5) * w / size_hw[1]).astype(np.intp), w - 1)
    return np.ascontiguousarray(y[:, rows][:, :, cols])


def fit_images(x: np.ndarray, target: Target, what: str) -> np.ndarray:
    """Return (N, C, H, W) images fitted to ``target`` (channels, size, dtype)."""
    target.require_image(what)
    x = image_dtype(x, what)
    if x.shape[1] != target.channels:
        x = convert_channels(x, target.channels, what)
    return resize_images(x, target.spatial)


def fit_signals(x: np.ndarray, target: Target, what: str) -> np.ndarray:
    """Return (N, C, L) float32 signals fitted to a ``[C, L]`` target.

    Raises DataError when the channel counts differ or the values are not finite numbers.
    """
    if not target.is_signal:
        raise DataError(
            f"{what} holds 1-D signals but the Input shape {list(target.shape)} is not "
            "[channels, length]"
        )
    if x.ndim == 2:
        x = x[:, None]
    if x.shape[1] != target.channels:
        raise DataError(
            f"{what}: signals have {x.shape[1]} channel(s) but the Input has {target.channels}"
        )
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{what}: unsupported value type {x.dtype}")
    x = np.ascontiguousarray(x, np.float32)
    if x.size and not np.isfinite(x).all():
        raise DataError(f"{what}: values contain NaN or infinity")
    n, c, length = x.shape
    if length == target.spatial[0]:
        return x
    # One tall image, one row per (sample, channel): Pillow resizes only along the rows.
    rows = Image.fromarray(x.reshape(n * c, length))  # float32: mode F
    out = rows.resize((target.spatial[0], n * c), Image.Resampling.BILINEAR)
    return np.asarray(out, np.float32).reshape(n, c, target.spatial[0]).copy()


def layout_images(x: np.ndarray, target: Target, what: str) -> np.ndarray:
    """Bring an image array to (N, C, H, W): accepts (N, H, W), (N, C, H, W), (N, H, W, C).

    A 4-D array is channels first when its axis 1 equals the Input's channels or is 1/3/4
    while the last axis is not; otherwise channels last.
    """
    if x.ndim == 3:
        return x[:, None]
    if x.ndim != 4:
        raise DataError(f"{what}: expected images shaped (N, H, W) or (N, C, H, W), got {x.shape}")
    first, last = x.shape[1], x.shape[3]
    if first == target.channels or (first in PIL_MODES and last not in PIL_MODES):
        return x
    if last in PIL_MODES or last == target.channels:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x
