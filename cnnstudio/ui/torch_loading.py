"""Loading torch on a worker thread without holding the GUI thread over 50 ms.

`import torch` on any thread used to stall the window 0.2–0.4 s at once and 80–170 ms
several times more: the import machinery holds the GIL while it dlopens torch's 400 MB
libraries (their static initialisers run inside dlopen), and the ~10^6 objects the import
allocates trigger full garbage collections that scan the whole heap (Qt's, pyqtgraph's
modules) under the GIL. Here the libraries are read ahead and dlopened first through a
ctypes call (ctypes releases the GIL around a foreign call), and the import runs with the
collector off; `gc.freeze()` then moves what is alive out of its reach, so later full
collections scan only what training and inspection allocate.

Call these off the GUI thread. They are idempotent, and a second caller waits for the
first: the training worker, the sample loader and the inspection worker all call them.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

# dlopen resolves each one's own dependencies (libgomp, CUDA's libraries) by its rpath.
_LIBRARIES = ("libc10", "libtorch_cpu", "libtorch_cuda", "libtorch", "libtorch_python")
FAST_SWITCH_S = 0.001  # the GIL switch interval while a worker is busy (see `fast_switching`)
_lock = threading.RLock()
_loaded = _warm = False
_cuda_devices: int | None = None
_switching = threading.Lock()
_fast_holders = 0
_slow_interval = 0.0


@contextlib.contextmanager
def fast_switching() -> Iterator[None]:
    """A GIL switch interval of 1 ms (instead of 5) meanwhile, for all threads.

    The GUI thread enters Python for every paint callback, and PySide hands the GIL back
    around Qt calls; each entry waits for the GIL, which a busy worker thread hands over
    only after the switch interval. With 1 ms while torch loads, the first Train's worst
    stall fell from 46–50 ms to 19–27 ms, a first prediction's from 55–78 ms to ≤ 20 ms.
    Nested and concurrent holders share one saved interval."""
    global _fast_holders, _slow_interval
    with _switching:
        if _fast_holders == 0:
            _slow_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_slow_interval, FAST_SWITCH_S))
        _fast_holders += 1
    try:
        yield
    finally:
        with _switching:
            _fast_holders -= 1
            if _fast_holders == 0:
                sys.setswitchinterval(_slow_interval)


T = TypeVar("T")


def _read_ahead(path: Path) -> None:
    """Ask the kernel to read a file into the page cache (asynchronously, no copy): dlopen
    only maps a library, and the page faults of its first calls (torch._C's set-up, under
    the GIL) otherwise wait for the disk — 570 ms once, with a library partly evicted.
    (Reading it through instead cost the window more than it saved: 50–70 ms.)"""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            advise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)


def _preload_libraries() -> None:
    """Read ahead and dlopen torch's shared libraries with the GIL released; `import
    torch`'s own dlopen then finds them in memory. One that fails to load is left to the
    import (and its error message)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None or sys.platform == "win32":
        return
    try:
        dlopen = ctypes.CDLL(None).dlopen
    except (OSError, AttributeError):
        return
    dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    folder = Path(spec.origin).parent / "lib"
    for name in _LIBRARIES:
        for path in (folder / f"{name}.so", folder / f"{name}.dylib"):
            if path.exists():
                _read_ahead(path)
                dlopen(os.fsencode(path), os.RTLD_NOW | os.RTLD_LOCAL)


@contextlib.contextmanager
def _collector_off() -> Iterator[None]:
    """No garbage collection meanwhile; then everything alive is frozen (never scanned
    again by a full collection)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if enabled:
            gc.enable()


def load_torch() -> None:
    """Import torch (once per process) without long holds of the GIL."""
    global _loaded, _cuda_devices
    with _lock:
        if _loaded:
            return
        _preload_libraries()
        with fast_switching(), _collector_off():
            # np.percentile (the feature maps' colour levels) imports numpy.ma on first
            # use: 12 ms that the first maps shown would hold the GUI thread.
            import numpy.ma  # noqa: F401
            import torch

            # Asked here, off the GUI thread: the first CUDA query can take a moment.
            _cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
        _loaded = True


def prepare_torch() -> None:
    """`load_torch`, then `warm_up()`: the ~800 imports (and 130 MB) the first optimizer
    step would do, so that a run's first step does not wait for them."""
    global _warm
    with _lock:
        if _warm:
            return
        load_torch()
        from cnnstudio.train.optim import warm_up

        with fast_switching(), _collector_off():
            warm_up()
        _warm = True


def cuda_devices() -> int | None:
    """The CUDA devices torch sees; None until a worker thread has loaded torch."""
    return _cuda_devices


def collector_off(job: Callable[[], T]) -> T:
    """`job()` after `load_torch`, with the collector off, then what is alive frozen, as for
    torch's import. For one-time heavy work (a first ONNX export imports torch.export,
    sympy, onnxscript: 10^5 objects, and full collections of 0.1–0.25 s came with them);
    the cyclic garbage it leaves (~5·10^4 objects, once) is frozen too."""
    load_torch()
    with _collector_off():
        return job()
