"""What every source reader shares: the target shape, progress throttling, decode results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, SkippedFile

ProgressFn = Callable[[str, int, int], None]

#: Allocates named arrays, e.g. ``{"x": ((N, 1, 28, 28), np.uint8)}``: in memory, or as
#: memory-mapped files in the disk cache when the total is over the memory budget.
Allocator = Callable[[dict[str, tuple[tuple[int, ...], Any]]], dict[str, np.ndarray]]

# Sample origin recorded per sample when the source defines its own splits.
GROUP_TRAIN, GROUP_VAL, GROUP_TEST = 0, 1, 2


@dataclass(frozen=True)
class Target:
    """The network Input's per-sample shape, channels first: ``[C, L]`` or ``[C, H, W]``."""

    channels: int
    spatial: tuple[int, ...]

    @classmethod
    def parse(cls, shape: Sequence[int]) -> Target:
        """Return the target for ``shape``; raises DataError unless it is C plus 1-3 sizes > 0."""
        try:
            dims = [int(d) for d in shape]
        except (TypeError, ValueError):
            raise DataError(f"input shape {shape!r} is not a list of sizes") from None
        if not 2 <= len(dims) <= 4 or any(d <= 0 for d in dims):
            raise DataError(
                f"input shape {dims} must be channels first with positive sizes, "
                "e.g. [1, 28, 28] or [1, 128]"
            )
        return cls(dims[0], tuple(dims[1:]))

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.channels, *self.spatial)

    @property
    def is_image(self) -> bool:
        return len(self.spatial) == 2

    @property
    def is_signal(self) -> bool:
        return len(self.spatial) == 1

    @property
    def pil_size(self) -> tuple[int, int]:
        """(width, height), the order Pillow wants."""
        return self.spatial[1], self.spatial[0]

    def require_image(self, what: str) -> None:
        """Raise DataError unless the target is a 2-D image shape."""
        if not self.is_image:
            raise DataError(
                f"{what} holds images but the Input shape {list(self.shape)} is not "
                "[channels, height, width]"
            )


class Progress:
    """Forwards ``progress(stage, done, total)`` about 50 times per stage at most."""

    def __init__(self, fn: ProgressFn | None, stage: str, total: int) -> None:
        self._fn = fn
        self._stage = stage
        self._total = max(int(total), 0)
        self._step = max(1, self._total // 50)
        self._last = -1
        self.update(0)

    def update(self, done: int) -> None:
        """Report ``done`` if it crossed the next step (or is the end)."""
        if self._fn is None or done == self._last:
            return
        if done in (0, self._total) or done // self._step != self._last // self._step:
            self._last = done
            self._fn(self._stage, done, self._total)

    def finish(self) -> None:
        self.update(self._total)


@dataclass
class Decoded:
    """A source read into arrays, before splitting and normalisation."""

    x: np.ndarray  # (N, C, *spatial) uint8 or float32, possibly a np.memmap
    y: np.ndarray  # (N,) or (N, H, W) int64
    class_names: list[str]
    group: np.ndarray | None = None  # (N,) int8 GROUP_*; None when the source has no splits
    skipped: list[SkippedFile] = field(default_factory=list)  # paths relative to the plan root
    # What the samples were before fitting to the Input: (height, width, Pillow mode) →
    # how many samples had it ("L", "RGB", "P"…; arrays: "L"/"RGB"/"RGBA" or "<C>ch").
    # Images only; empty for signals and for sources that do not say.
    formats: dict[tuple[int, int, str], int] = field(default_factory=dict)
    # Each sample's file, relative to the plan root with forward slashes, in the order of
    # `x`; None for sources whose samples are not files of their own (arrays, built-in).
    files: list[str] | None = None


@dataclass
class SourcePlan:
    """A file source after scanning: what identifies its content, and how to decode it.

    ``fingerprint`` (JSON-able: relative names, sizes, mtimes) goes into the disk-cache key;
    ``decode`` reads the files for real.
    """

    root: Path
    fingerprint: list[Any]
    decode: Callable[[Allocator, ProgressFn | None], Decoded]


def compact(arrays: dict[str, np.ndarray], keep: np.ndarray, alloc: Allocator,
            chunk: int = 1024) -> dict[str, np.ndarray]:
    """Return the rows of ``arrays`` where ``keep`` is true, allocated with ``alloc``.

    Copies in chunks so that memory-mapped inputs never need to fit in memory.
    """
    if keep.all():
        return arrays
    rows = np.flatnonzero(keep)
    out = alloc({k: ((len(rows), *a.shape[1:]), a.dtype) for k, a in arrays.items()})
    for start in range(0, len(rows), chunk):
        sel = rows[start:start + chunk]
        for k, a in arrays.items():
            out[k][start:start + len(sel)] = a[sel]
    return out


def file_fingerprint(path: Path, name: str) -> list[Any]:
    """``[name, size, mtime_ns]`` of one file; raises DataError if it cannot be read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    if not path.is_file():
        raise DataError(f"not a file: {path}")
    return [name, st.st_size, st.st_mtime_ns]
