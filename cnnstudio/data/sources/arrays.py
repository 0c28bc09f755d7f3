"""Array sources: NumPy ``.npz`` and CSV files, plus the labelling and fitting they share
with the binary formats (IDX, CIFAR-10)."""

from __future__ import annotations

import math
import warnings
import zipfile
from pathlib import Path

import numpy as np

from cnnstudio.core.errors import first_line

from ..convert import (
    array_formats,
    fit_images,
    fit_signals,
    image_dtype,
    layout_images,
    resize_masks,
)
from ..errors import DataError
from .base import Allocator, Decoded, Progress, ProgressFn, SourcePlan, Target, file_fingerprint


def encode_labels(y: np.ndarray, names: list[str] | None, what: str
                  ) -> tuple[np.ndarray, list[str]]:
    """Return (N,) int64 labels and the class names for labels given as ints or names.

    Integer labels index ``names`` (default ``"0".."max"``); string labels are looked up in
    ``names`` (default: the sorted distinct labels); a one-hot (N, K) array is accepted.
    Raises DataError for negative, fractional or unknown labels.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.size and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
        y = y.argmax(axis=1)  # one-hot rows
    if y.ndim != 1:
        raise DataError(f"{what}: labels must be one per sample, got shape {y.shape}")
    if y.dtype.kind in "SU":
        strings = np.char.strip(y.astype(str))
        try:
            as_int = strings.astype(np.float64)
        except ValueError:
            if names is None:
                names = sorted(set(strings.tolist()))
            index = {n: i for i, n in enumerate(names)}
            unknown = sorted(set(strings.tolist()) - set(index))
            if unknown:
                raise DataError(f"{what}: label {unknown[0]!r} is not a known class") from None
            return np.array([index[s] for s in strings.tolist()], np.int64), list(names)
        y = as_int
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise DataError(f"{what}: labels of type {y.dtype} are neither integers nor names")
    if y.size and (not np.isfinite(y).all() or (y != np.round(y)).any()):
        raise DataError(f"{what}: labels must be whole numbers or class names")
    y = y.astype(np.int64)
    lo, hi = (int(y.min()), int(y.max())) if y.size else (0, -1)
    if lo < 0:
        raise DataError(f"{what}: label {lo} is negative; labels are class indices from 0")
    if names is None:
        names = [str(i) for i in range(hi + 1)]
    elif hi >= len(names):
        raise DataError(f"{what}: label {hi} but only {len(names)} class names")
    return y, list(names)


def fit_samples(x: np.ndarray, target: Target, what: str,
                formats: dict[tuple[int, int, str], int] | None = None) -> np.ndarray:
    """Fit an array of samples to the Input: images, 1-D signals, or an exact N-D shape.
    For images, `formats` (when given) receives their size and mode before fitting."""
    if target.is_image:
        x = layout_images(x, target, what)
        if formats is not None:
            formats.update(array_formats(x))
        return fit_images(x, target, what)
    if target.is_signal:
        return fit_signals(x, target, what)
    if tuple(x.shape[1:]) != target.shape:
        raise DataError(f"{what}: samples shaped {list(x.shape[1:])} do not match the Input "
                        f"shape {list(target.shape)}")
    return image_dtype(x, what)


def finish(x: np.ndarray, y: np.ndarray, names: list[str] | None, target: Target, task: str,
           what: str, group: np.ndarray | None = None) -> Decoded:
    """Check lengths, fit ``x`` to the Input and encode ``y`` for the task."""
    if len(x) != len(y):
        raise DataError(f"{what}: {len(x)} samples but {len(y)} labels")
    if len(x) == 0:
        raise DataError(f"{what}: no sample")
    formats: dict[tuple[int, int, str], int] = {}
    x = fit_samples(x, target, what, formats)
    if task == "segmentation":
        if y.ndim != 3 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{what}: segmentation masks must be integers shaped (N, H, W)")
        if y.min() < 0:
            raise DataError(f"{what}: mask values must be class indices from 0")
        y = resize_masks(y.astype(np.int64), target.spatial)
        if names is None:
            names = [f"class_{i}" for i in range(int(y.max()) + 1)]
        elif y.max() >= len(names):
            raise DataError(f"{what}: mask value {int(y.max())} but only {len(names)} classes")
        return Decoded(x=x, y=y, class_names=list(names), group=group, formats=formats)
    labels, names = encode_labels(y, names, what)
    return Decoded(x=x, y=labels, class_names=names, group=group, formats=formats)


def plan_npz(path: Path, target: Target, task: str) -> SourcePlan:
    """Plan reading a ``.npz`` holding ``x``, ``y`` and optionally ``class_names``."""
    fingerprint = ["npz", file_fingerprint(path, path.name)]
    what = str(path)

    def decode(alloc: Allocator, progress: ProgressFn | None) -> Decoded:
        report = Progress(progress, "reading", 1)
        if not zipfile.is_zipfile(path):  # np.load would take other files for pickles or .npy
            raise DataError(f"cannot read {what}: not a valid .npz file (not a zip archive)")
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("x", "y") if k not in z.files]
                if missing:
                    raise DataError(f"{what} has no array '{missing[0]}' "
                                    f"(it holds: {', '.join(z.files) or 'nothing'})")
                arrays = {k: z[k] for k in ("x", "y", "class_names") if k in z.files}
        except DataError:
            raise
        except ValueError as exc:
            if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                raise DataError(f"{what} holds Python objects, which are not loaded (no pickle): "
                                "save plain numeric arrays and class names as a str array"
                                ) from None
            raise DataError(f"cannot read {what}: {exc}") from None
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"cannot read {what}: not a valid .npz file ({exc})") from None
        names = None
        if "class_names" in arrays:
            raw = arrays["class_names"]
            if raw.dtype.kind not in "SU":
                raise DataError(f"{what}: class_names must be a str array")
            names = [s.decode() if isinstance(s, bytes) else str(s) for s in raw.ravel().tolist()]
        report.finish()
        return finish(arrays["x"], arrays["y"], names, target, task, what)

    return SourcePlan(root=path.parent, fingerprint=fingerprint, decode=decode)


_LABEL_HEADERS = {"label", "labels", "class", "classes", "target", "y", "category", "digit"}


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _csv_layout(path: Path) -> tuple[str, int, int]:
    """Return (delimiter, header rows 0/1, columns) from the first line of a CSV file."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            first = f.readline()
            while first and not first.strip():
                first = f.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not first.strip():
        raise DataError(f"{path} is empty")
    delimiter = max((",", ";", "\t"), key=first.count)
    cells = [c.strip().strip('"') for c in first.rstrip("\r\n").split(delimiter)]
    if len(cells) < 2:
        raise DataError(f"{path}: expected a label column and value columns, separated by commas")
    # A header has a non-numeric value column, or names the label column (then the value
    # columns may well be numbered 0, 1, 2...).
    header = int(not all(_is_number(c) for c in cells[1:]) or cells[0].lower() in _LABEL_HEADERS)
    return delimiter, header, len(cells)


def _csv_images(values: np.ndarray, target: Target, what: str) -> np.ndarray:
    """Rows of pixels to (N, C, H, W): exactly C*H*W values, else a square (gray) or
    three square planes (RGB, channels first, as in CIFAR)."""
    n, k = values.shape
    if k == math.prod(target.shape):
        return values.reshape(n, *target.shape)
    side = math.isqrt(k)
    if side * side == k:
        return values.reshape(n, 1, side, side)
    side = math.isqrt(k // 3)
    if k % 3 == 0 and side * side * 3 == k:
        return values.reshape(n, 3, side, side)
    raise DataError(f"{what}: {k} pixel values per row fit neither the Input shape "
                    f"{list(target.shape)} nor a square gray or RGB image")


def plan_csv(path: Path, target: Target) -> SourcePlan:
    """Plan reading a CSV file: label column first, then pixel (0..255) or signal values.

    The delimiter (comma, semicolon or tab) and a header row are detected from the first
    line. For an image Input a row holds C*H*W values (channels first), or s*s gray values,
    or 3*s*s RGB values as three planes; whole numbers in 0..255 become uint8 images, other
    values stay float32. For a 1-D Input ``[C, L]`` a row's K values are C channels of K/C
    values, one channel after the other, resampled to L. Labels are integers or names.
    """
    fingerprint = ["csv", file_fingerprint(path, path.name)]
    what = str(path)

    def decode(alloc: Allocator, progress: ProgressFn | None) -> Decoded:
        report = Progress(progress, "reading", 1)
        delimiter, header, ncols = _csv_layout(path)
        common = dict(delimiter=delimiter, skiprows=header, encoding="utf-8-sig",
                      comments=None, quotechar='"')
        try:
            with warnings.catch_warnings():  # NumPy's note about blank lines is no news here
                warnings.simplefilter("ignore", UserWarning)
                labels = np.loadtxt(path, usecols=0, dtype=str, ndmin=1, **common)
                values = np.loadtxt(path, usecols=range(1, ncols), dtype=np.float32, ndmin=2,
                                    **common)
        except (ValueError, OSError) as exc:
            raise DataError(f"cannot read {what}: {first_line(exc)}") from None
        report.finish()
        if target.is_signal:
            c, n = target.channels, len(values)
            if values.shape[1] % c:
                raise DataError(f"{what}: {values.shape[1]} values per row cannot be split into "
                                f"{c} channels")
            x: np.ndarray = values.reshape(n, c, -1)
        else:
            target.require_image(what)
            x = _csv_images(values, target, what)
            whole = x.size == 0 or bool((x == np.rint(x)).all())
            if whole and x.size and 0 <= x.min() and x.max() <= 255:
                x = x.astype(np.uint8)  # pixel values: uint8 images
        return finish(x, labels, None, target, "classification", what)

    return SourcePlan(root=path.parent, fingerprint=fingerprint, decode=decode)

