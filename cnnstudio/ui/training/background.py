"""Inspection work off the GUI thread: one worker thread runs jobs in order; each result
comes back to the GUI thread through a queued signal, and only the newest job of each
kind is delivered (a snapshot for a layer the user has since left is dropped).

Building a module, importing torch the first time, a Grad-CAM on a large network: any of
them may take seconds, and the window must keep answering meanwhile. Every job needs
torch: the worker loads it first (`load_torch`: without holding the GUI thread).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from cnnstudio.ui.torch_loading import fast_switching, load_torch

IDLE_EXIT_S = 5.0  # the worker thread ends after this long without work (and comes back)


class Background(QObject):
    """Runs `submit`ted functions on one worker thread, in order, newest first per kind.

    The worker is a plain Python thread fed by a queue (no QRunnable: Qt deletes a
    finished runnable behind PySide's back, and a later Qt object at the same address
    would be handed the stale Python wrapper)."""

    _done = Signal(object)

    def __init__(self, parent: QObject | None = None, needs_torch: bool = True) -> None:
        super().__init__(parent)
        self._needs_torch = needs_torch  # False: jobs without torch (reading a project)
        self._latest: dict[str, int] = {}
        self._count = 0
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue()
        self._idle = threading.Condition()
        self._busy = 0  # jobs queued or running
        self._thread: threading.Thread | None = None
        self._done.connect(self._deliver)  # emitted on the worker: queued to this thread

    def submit(self, kind: str, job: Callable[[], Any], done: Callable[[Any], None],
               failed: Callable[[BaseException], None] | None = None) -> int:
        """Run `job()` on the worker; then `done(result)` (or `failed(error)`) on this
        thread, unless a newer job of the same `kind` was submitted meanwhile."""
        self._count += 1
        token = self._latest[kind] = self._count

        def run() -> None:
            if self._latest.get(kind) != token:
                return  # superseded before it began: skip the work
            try:
                if self._needs_torch:  # loaded so that the window never waits
                    load_torch()
                with fast_switching():  # the GUI thread gets the GIL back within 1 ms
                    payload: tuple[bool, Any] = (True, job())
            except Exception as err:  # a job's fault is reported, never raised in Qt
                payload = (False, err)
            try:
                self._done.emit((kind, token, payload, done, failed))
            except RuntimeError:  # the window (and this object) went meanwhile
                pass

        with self._idle:
            self._busy += 1
            self._jobs.put(run)
            if self._thread is None:
                # A daemon: a job still running when the interpreter ends must not keep it.
                self._thread = threading.Thread(target=self._work, daemon=True,
                                                name="cnnstudio-inspect")
                self._thread.start()
        return token

    def _work(self) -> None:
        while True:
            try:
                run = self._jobs.get(timeout=IDLE_EXIT_S)
            except queue.Empty:
                with self._idle:  # submit() queues under this lock: nothing is missed
                    if self._jobs.empty():
                        self._thread = None
                        return
                continue
            try:
                run()
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    @Slot(object)
    def _deliver(self, message: tuple[Any, ...]) -> None:
        kind, token, (ok, value), done, failed = message
        if self._latest.get(kind) != token:
            return
        del self._latest[kind]
        if ok:
            done(value)
        elif failed is not None:
            failed(value)

    def pending(self, kind: str | None = None) -> bool:
        """True while a job (of `kind`) waits for its result to be delivered."""
        return kind in self._latest if kind else bool(self._latest)

    def forget(self) -> None:
        """Drop every result not yet delivered (the project they were for has gone)."""
        self._latest.clear()

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Wait for the worker to finish what it was given; True when it is idle."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout_ms / 1000)
