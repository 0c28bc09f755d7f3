"""The desktop application (PySide6). Only this package imports Qt.

`MainWindow` is loaded on first use, so `import cnnstudio.ui` stays cheap and
`from cnnstudio.ui import MainWindow` works.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnstudio.ui.main_window import MainWindow

__all__ = ["MainWindow"]


def _shiboken_drops_none_references() -> bool:
    """True if calling a Qt method that returns nothing loses a reference to None.

    shiboken6 6.12 does, and every `signal.emit()` loses one to True: it treats None, True
    and False as immortal, as they are from CPython 3.12 on. On 3.11 their counts fall by
    one per call until the interpreter aborts with "Fatal Python error: none_dealloc" (or
    bool_dealloc) — mid-session or at exit.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(64):
        probe.setObjectName("probe")
    return sys.getrefcount(None) < before - 32


def _keep_singletons_alive() -> None:
    """Give None, True and False references they can lose for centuries, if this binding
    loses them (a no-op on CPython 3.12+, where they are immortal)."""
    if _shiboken_drops_none_references():
        import ctypes

        for singleton in (None, True, False):
            # ob_refcnt is PyObject's first field in CPython 3.11 release builds.
            ctypes.c_ssize_t.from_address(id(singleton)).value += 1 << 60


_keep_singletons_alive()


def __getattr__(name: str) -> Any:
    if name == "MainWindow":
        from cnnstudio.ui.main_window import MainWindow

        return MainWindow
    raise AttributeError(f"module 'cnnstudio.ui' has no attribute {name!r}")
