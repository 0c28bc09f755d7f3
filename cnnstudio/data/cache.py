"""Disk cache of decoded datasets, and the memory budget that decides memory vs memmap.

An entry is a folder named by a hash of what the source is made of (relative file names,
sizes, mtimes), the Input shape, the task and :data:`CACHE_VERSION`. It holds ``x.npy``,
``y.npy``, optionally ``group.npy`` and a ``meta.json`` (class names, skipped files, the
samples' sizes and modes before fitting, each sample's file). No
pickle: arrays are plain ``.npy`` loaded with ``allow_pickle=False``. Every file is written
to a temporary name and moved into place with ``os.replace``; ``meta.json`` goes last, so
an entry without it is incomplete. An entry that fails validation is ignored and rebuilt.

Datasets whose decoded size exceeds the memory budget are served from the ``.npy`` files
memory-mapped copy-on-write (``mmap_mode="c"``): pages are read on demand, and a write
into such a tensor changes only this process's copy, never the cache. (With
``mmap_mode="r"`` the tensor would be read-only, and torch ignores that flag: an in-place
op would crash the process with SIGSEGV.)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SkippedFile
from .sources.base import Decoded

#: Bump when decoding changes what an entry holds: older entries are then never read.
CACHE_VERSION = 3  # 2: meta.json holds the samples' sizes and modes before fitting;
# 3: and each sample's file (explain's answers name them)
_FORMAT = "cnnstudio.datacache"
_STALE_TEMP_S = 24 * 3600
_log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$CNNSTUDIO_CACHE_DIR``, else ``~/.cache/cnnstudio/datasets``."""
    env = os.environ.get("CNNSTUDIO_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "cnnstudio" / "datasets"


def total_ram() -> int | None:
    """Physical memory in bytes, or None when the system does not say."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        if pages > 0 and page_size > 0:
            return int(pages) * int(page_size)
    except (AttributeError, ValueError, OSError):
        pass  # not POSIX: try /proc, then give up
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_memory_budget() -> int:
    """A quarter of physical memory; 2 GiB when it is unknown."""
    ram = total_ram()
    return ram // 4 if ram else 2 << 30


def cache_key(fingerprint: Any, input_shape: tuple[int, ...], task: str) -> str:
    """Hash of the source's fingerprint, Input shape, task and cache version."""
    blob = json.dumps([_FORMAT, CACHE_VERSION, task, list(input_shape), fingerprint],
                      separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:40]


def _nbytes(spec: dict[str, tuple[tuple[int, ...], Any]]) -> int:
    return sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in spec.values())


def _atomic_write(final: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``final``, then move it into place."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=final.suffix, dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _reserve(path: Path) -> None:
    """Allocate a sparse file's blocks now: a full disk must fail here with OSError, not
    later with SIGBUS when a page of the map is written."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        # EOPNOTSUPP/EINVAL: the file system cannot reserve; proceed as before.
    finally:
        os.close(fd)


class CacheEntry:
    """One dataset's entry: look it up, allocate while decoding, then store it.

    ``cache_dir=None`` disables the disk (nothing is read or written; all stays in memory).
    """

    def __init__(self, cache_dir: Path | None, key: str, memory_budget: int) -> None:
        self.dir = None if cache_dir is None else cache_dir / key
        self.key = key
        self.budget = memory_budget
        self._temps: dict[str, Path] = {}  # memmap file name -> temp path

    # -- reading --------------------------------------------------------------------------
    def load(self) -> Decoded | None:
        """Return the cached dataset, or None when absent, stale or corrupt."""
        if self.dir is None or not (self.dir / "meta.json").is_file():
            return None
        try:
            meta = json.loads((self.dir / "meta.json").read_text(encoding="utf-8"))
            if (meta.get("format"), meta.get("version"), meta.get("key")) != (
                    _FORMAT, CACHE_VERSION, self.key):
                return None
            arrays: dict[str, np.ndarray] = {}
            for name, info in meta["arrays"].items():
                arr = np.load(self.dir / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                if list(arr.shape) != info["shape"] or arr.dtype.str != info["dtype"]:
                    return None
                arrays[name] = arr
            over = sum(a.nbytes for a in arrays.values()) > self.budget
            loaded = {name: self._open(name, mapped=over and name != "group")
                      for name in arrays}
            return Decoded(
                x=loaded["x"], y=loaded["y"], class_names=[str(c) for c in meta["class_names"]],
                group=loaded.get("group"),
                skipped=[SkippedFile(str(p), str(r)) for p, r in meta["skipped"]],
                formats={(int(h), int(w), str(m)): int(n) for h, w, m, n in meta["formats"]},
                files=_files(meta["files"], len(loaded["x"])),
            )
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            _log.info("ignoring dataset cache entry %s: %s", self.dir, exc)
            return None

    def _open(self, name: str, mapped: bool) -> np.ndarray:
        assert self.dir is not None
        path = self.dir / f"{name}.npy"
        if mapped:
            return np.load(path, mmap_mode="c", allow_pickle=False)
        return np.load(path, allow_pickle=False)

    # -- writing --------------------------------------------------------------------------
    def alloc(self, spec: dict[str, tuple[tuple[int, ...], Any]]) -> dict[str, np.ndarray]:
        """Allocate arrays: memory-mapped temp files when over budget, else in memory."""
        total = _nbytes(spec)
        if self.dir is not None and total > self.budget and total > 0:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                out = {}
                for name, (shape, dtype) in spec.items():
                    tmp = self.dir / f".tmp-{uuid.uuid4().hex}-{name}.npy"
                    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
                    self._temps[str(arr.filename)] = tmp
                    _reserve(tmp)
                    out[name] = arr
                return out
            except OSError as exc:
                _log.warning("dataset cache %s not writable (%s): decoding in memory",
                             self.dir, exc)
        return {name: np.empty(shape, dtype) for name, (shape, dtype) in spec.items()}

    def store(self, decoded: Decoded) -> Decoded:
        """Write ``decoded`` to the entry; return it, memory-mapped when over budget.

        Failing to write (full disk, read-only folder) only costs the cache: the data in
        memory is returned.
        """
        if self.dir is None:
            return decoded
        arrays = {"x": decoded.x, "y": decoded.y}
        if decoded.group is not None:
            arrays["group"] = decoded.group
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._remove_stale_temps()
            for name, arr in arrays.items():
                final = self.dir / f"{name}.npy"
                tmp = self._temps.pop(str(getattr(arr, "filename", "")), None)
                if tmp is not None:
                    arr.flush()
                    os.replace(tmp, final)
                else:
                    _atomic_write(final, lambda f, a=arr: np.save(f, np.asarray(a),
                                                                  allow_pickle=False))
            meta = {
                "format": _FORMAT, "version": CACHE_VERSION, "key": self.key,
                "created": time.time(), "class_names": decoded.class_names,
                "skipped": [[s.path, s.reason] for s in decoded.skipped],
                "formats": [[h, w, m, n] for (h, w, m), n in decoded.formats.items()],
                "files": decoded.files,
                "arrays": {k: {"shape": list(a.shape), "dtype": a.dtype.str}
                           for k, a in arrays.items()},
            }
            text = json.dumps(meta, indent=1).encode("utf-8")
            _atomic_write(self.dir / "meta.json", lambda f: f.write(text))
        except OSError as exc:
            _log.warning("could not write dataset cache %s: %s", self.dir, exc)
            return decoded
        finally:
            self.discard_temps()
        mapped = any(isinstance(a, np.memmap) for a in arrays.values())
        if not mapped and sum(a.nbytes for a in arrays.values()) <= self.budget:
            return decoded
        # Re-open copy-on-write: the writable maps used while decoding point at the cache.
        return Decoded(x=self._open("x", True), y=self._open("y", True),
                       class_names=decoded.class_names, group=decoded.group,
                       skipped=decoded.skipped, formats=decoded.formats, files=decoded.files)

    def discard_temps(self) -> None:
        """Delete this entry's temporary files that were not moved into place."""
        for tmp in self._temps.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._temps.clear()

    def _remove_stale_temps(self) -> None:
        # Left by a crashed run; recent ones may belong to another process writing now.
        assert self.dir is not None
        now = time.time()
        for tmp in self.dir.glob(".tmp-*"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > _STALE_TEMP_S:
                    tmp.unlink()


def _files(saved: Any, samples: int) -> list[str] | None:
    """The entry's per-sample files; ValueError unless None or one name per sample."""
    if saved is None:
        return None
    if not isinstance(saved, list) or len(saved) != samples or \
            not all(isinstance(name, str) for name in saved):
        raise ValueError("meta.json's files do not name one file per sample")
    return saved


def clear_cache(cache_dir: str | Path | None = None) -> int:
    """Delete every cached dataset in ``cache_dir`` (default :func:`default_cache_dir`).

    Returns the number of entries removed. Raises nothing for a missing folder.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if not root.is_dir():
        return 0
    removed = 0
    for entry in root.iterdir():
        # Only folders named like our keys: never delete what we did not write.
        if entry.is_dir() and len(entry.name) == 40 and all(
                c in "0123456789abcdef" for c in entry.name):
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed
