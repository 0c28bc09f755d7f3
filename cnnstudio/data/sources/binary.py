"""Binary dataset formats: MNIST IDX files (plain or gzip) and CIFAR-10 binary batches."""

from __future__ import annotations

import gzip
import math
import re
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError
from .arrays import finish
from .base import GROUP_TEST, GROUP_TRAIN, Progress, SourcePlan, Target, file_fingerprint

if TYPE_CHECKING:  # the decoders' annotations only
    from .base import Allocator, Decoded, ProgressFn

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CIFAR_RECORD = 1 + 3 * 32 * 32


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not, told by its magic bytes) into an array.

    Raises DataError when the file is not IDX or is shorter than its header says.
    """
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (MNIST format)")
    ndim = data[3]
    if ndim < 1 or len(data) < 4 + 4 * ndim:
        raise DataError(f"{path} is not an IDX file (MNIST format)")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    count = math.prod(dims)
    payload = memoryview(data)[4 + 4 * ndim:]
    if len(payload) < count * dtype.itemsize:
        raise DataError(f"{path} is truncated: its header announces {dims} values")
    return np.frombuffer(payload, dtype, count).reshape(dims).astype(dtype.newbyteorder("="))


def plan_idx(images: Path, labels: Path, target: Target) -> SourcePlan:
    """Plan reading an IDX image file and its IDX label file."""
    fingerprint = ["idx", file_fingerprint(images, "images"), file_fingerprint(labels, "labels")]

    def decode(alloc: Allocator, progress: ProgressFn | None) -> Decoded:
        report = Progress(progress, "reading", 2)
        x = read_idx(images)
        report.update(1)
        y = read_idx(labels)
        report.finish()
        return finish(x, y, None, target, "classification", f"IDX {images.name}")

    return SourcePlan(root=images.parent, fingerprint=fingerprint, decode=decode)


def _natural(path: Path) -> list[int | str]:
    """Sort key: data_batch_2 before data_batch_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _cifar_files(folder: Path) -> tuple[Path, list[Path], Path | None]:
    """Find (folder, training batches, test batch), looking into cifar-10-batches-bin too."""
    if not folder.is_dir():
        raise DataError(f"CIFAR-10 folder not found: {folder}")
    for base in (folder, folder / "cifar-10-batches-bin"):
        train = sorted(base.glob("data_batch_*.bin"), key=_natural)
        test = base / "test_batch.bin"
        if train or test.is_file():
            return base, train, test if test.is_file() else None
    raise DataError(f"no CIFAR-10 batches (data_batch_*.bin, test_batch.bin) in {folder}")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        raw = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    if raw.size == 0 or raw.size % _CIFAR_RECORD:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of CIFAR-10 records "
                        f"({_CIFAR_RECORD} bytes each)")
    records = raw.reshape(-1, _CIFAR_RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


def plan_cifar10(folder: Path, target: Target) -> SourcePlan:
    """Plan reading CIFAR-10 binary batches: data batches train, ``test_batch.bin`` tests."""
    base, train, test = _cifar_files(folder)
    if not train:
        raise DataError(f"no CIFAR-10 training batches (data_batch_*.bin) in {base}")
    meta = base / "batches.meta.txt"
    files = train + ([test] if test else [])
    fingerprint: list = ["cifar10", [file_fingerprint(p, p.name) for p in files],
                         file_fingerprint(meta, meta.name) if meta.is_file() else None]

    def decode(alloc: Allocator, progress: ProgressFn | None) -> Decoded:
        report = Progress(progress, "reading", len(files))
        xs, ys, groups = [], [], []
        for k, path in enumerate(files):
            x, y = _read_cifar_batch(path)
            xs.append(x)
            ys.append(y)
            groups.append(np.full(len(y), GROUP_TEST if path == test else GROUP_TRAIN, np.int8))
            report.update(k + 1)
        names = None
        if meta.is_file():
            try:
                text = meta.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"cannot read {meta}: {exc}") from None
            names = [line.strip() for line in text.splitlines() if line.strip()] or None
        return finish(np.concatenate(xs), np.concatenate(ys), names, target, "classification",
                      f"CIFAR-10 {base}", group=np.concatenate(groups))

    return SourcePlan(root=base, fingerprint=fingerprint, decode=decode)
