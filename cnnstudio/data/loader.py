"""``load_dataset``: from a project's ``data.source`` to a ready :class:`Dataset`."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnstudio.core.data_sources import SOURCE_KINDS, TASKS, path_keys

from .builtin_data import load_builtin
from .cache import CacheEntry, cache_key, default_cache_dir, default_memory_budget
from .dataset import Dataset, channel_stats
from .errors import DataError, SkippedFile
from .sources.arrays import plan_csv, plan_npz
from .sources.base import Decoded, ProgressFn, SourcePlan, Target
from .sources.binary import plan_cifar10, plan_idx
from .sources.folder import plan_folder, plan_segmentation_folder
from .split import make_splits


def _paths(source: dict[str, Any], kind: str, base_dir: Path) -> list[Path]:
    out = []
    for key in path_keys(kind):
        value = source.get(key)
        if not isinstance(value, str | Path) or not str(value):
            raise DataError(f"data source '{kind}' needs a '{key}' path")
        if "\x00" in str(value):  # the OS would raise ValueError, not OSError, further on
            raise DataError(f"data source '{kind}': the '{key}' path contains a NUL character")
        path = Path(value).expanduser()
        out.append(path if path.is_absolute() else base_dir / path)
    return out


def _plan(kind: str, paths: list[Path], target: Target, task: str,
          progress: ProgressFn | None) -> SourcePlan:
    if kind == "folder":
        return plan_folder(paths[0], target, progress)
    if kind == "segmentation_folder":
        return plan_segmentation_folder(paths[0], paths[1], target, progress)
    if kind == "npz":
        return plan_npz(paths[0], target, task)
    if kind == "csv":
        return plan_csv(paths[0], target)
    if kind == "idx":
        return plan_idx(paths[0], paths[1], target)
    return plan_cifar10(paths[0], target)


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    if not arr.flags.writeable:  # torch would warn; a private copy is cheap for small arrays
        arr = np.array(arr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(arr)


def _decode_cached(plan: SourcePlan, target: Target, task: str, cache_dir: Path,
                   budget: int, progress: ProgressFn | None) -> Decoded:
    entry = CacheEntry(cache_dir, cache_key(plan.fingerprint, target.shape, task), budget)
    decoded = entry.load()
    if decoded is None:
        try:
            decoded = plan.decode(entry.alloc, progress)
            decoded = entry.store(decoded)
        finally:
            entry.discard_temps()
    decoded.skipped = [SkippedFile(str(plan.root / s.path), s.reason) for s in decoded.skipped]
    if decoded.files is not None:  # relative in the cache: the same entry serves a moved root
        # Absolute (not resolved: a symbolic link keeps the name the user gave), so that a
        # file stays findable whatever the working folder later is.
        root = Path(os.path.abspath(plan.root))
        decoded.files = [str(root / name) for name in decoded.files]
    return decoded


def load_dataset(source: dict[str, Any], *, input_shape: Sequence[int],
                 task: str = "classification", base_dir: str | Path = ".",
                 val_fraction: float = 0.2, seed: int = 0,
                 cache_dir: str | Path | None = None, memory_budget: int | None = None,
                 progress: ProgressFn | None = None) -> Dataset:
    """Load a project's data source into a :class:`Dataset` fitted to ``input_shape``.

    ``source`` is the project file's ``data.source`` (docs/PROJECT_FORMAT.md); relative paths are resolved
    against ``base_dir``. Images are converted to the Input's channels and size (see
    :mod:`cnnstudio.data.convert` for the rules). Files that cannot be used are skipped and
    listed in ``Dataset.skipped``. Decoded file sources are cached on disk (``cache_dir``,
    default ``$CNNSTUDIO_CACHE_DIR`` or ``~/.cache/cnnstudio/datasets``); over
    ``memory_budget`` bytes (default a quarter of RAM) ``x``/``y`` are memory-mapped from
    that cache. ``progress(stage, done, total)`` is called from this thread, about 50 times
    per stage at most; stages are "scanning", "decoding", "reading" and "generating".

    Returns the dataset with stratified, seeded splits (or the source's own train/val/test)
    and per-channel mean/std of the training split. Raises DataError, with one line for
    the user, when the source is malformed, holds no usable sample, or cannot be fitted.
    """
    if not isinstance(source, dict):
        raise DataError("data source must be an object with a 'kind'")
    kind = source.get("kind")
    if kind not in SOURCE_KINDS:
        raise DataError(f"unknown data source kind {kind!r}: expected one of "
                        f"{', '.join(SOURCE_KINDS)}")
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}: expected classification or segmentation")
    if task not in SOURCE_KINDS[kind].tasks:
        raise DataError(f"a '{kind}' data source gives {SOURCE_KINDS[kind].tasks[0]} data; "
                        f"the project task is {task}")
    target = Target.parse(input_shape)
    if not isinstance(val_fraction, int | float) or not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction {val_fraction!r} must be at least 0 and below 1")
    budget = default_memory_budget() if memory_budget is None else int(memory_budget)

    if kind == "builtin":
        if progress:
            progress("generating", 0, 1)
        decoded = load_builtin(source, target, task)
        if progress:
            progress("generating", 1, 1)
        where = f"built-in dataset {source.get('name')}"
    else:
        paths = _paths(source, kind, Path(base_dir).expanduser())
        plan = _plan(kind, paths, target, task, progress)
        folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        decoded = _decode_cached(plan, target, task, folder, budget, progress)
        where = str(paths[0])
    if len(decoded.x) == 0:
        raise DataError(_nothing_usable(kind, where, decoded.skipped))
    return _assemble(decoded, task, val_fraction, seed)


def _nothing_usable(kind: str, where: str, skipped: list[SkippedFile]) -> str:
    """The one-line message for a source without a single usable sample."""
    files = [s for s in skipped if not s.reason.startswith("empty class")]
    noun = "image" if kind in ("folder", "segmentation_folder") else "sample"
    plural = "s" if len(files) != 1 else ""
    message = f"no usable {noun} in {where}: {len(files)} file{plural} skipped"
    if files:
        message += f" ({Path(files[0].path).name}: {files[0].reason})"
    return message


def _assemble(decoded: Decoded, task: str, val_fraction: float, seed: int) -> Dataset:
    x, y = _to_tensor(decoded.x), _to_tensor(decoded.y)
    splits = make_splits(decoded.y if task == "classification" else np.empty(len(decoded.y)),
                         task, decoded.group, float(val_fraction), seed)
    mean, std = channel_stats(x, splits["train"])
    return Dataset(x=x, y=y, class_names=list(decoded.class_names), task=task, splits=splits,
                   skipped=list(decoded.skipped), mean=mean, std=std,
                   source_formats=dict(decoded.formats),
                   files=None if decoded.files is None else list(decoded.files))
