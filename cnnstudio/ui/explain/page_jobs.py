"""The jobs of the "What the filters respond to" page on the host's one worker: each with
its cancel flag and the host's progress row, a newer job of a kind cancelling the older
one, jobs stopped when the page is left (and started again when it is shown), and every
job forgotten when the host's worker drops its results (the project went, the window
closes), so the progress row never outlives them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cnnstudio.core.errors import first_line
from cnnstudio.ui.explain import response_jobs as jobs

if TYPE_CHECKING:
    from cnnstudio.ui.explain.host import ExplainHost

Report = Callable[[str, int, int], None]
Work = Callable[[Report, Callable[[], bool]], Any]


class PageJobs:
    """`running`: job kind → its cancel flag, while the job has not reported back."""

    def __init__(self, host: ExplainHost, prefix: str,
                 paused: Callable[[str], None]) -> None:
        self.host = host
        self.prefix = prefix  # the worker's kinds: prefix + "." + kind
        self.running: dict[str, threading.Event] = {}
        self._paused: set[threading.Event] = set()  # flags set because the page was left
        self._on_paused = paused  # kind: it stopped because the page was left
        host.jobs_forgotten.connect(self.forget)

    def submit(self, kind: str, text: str, work: Work, done: Callable[[Any], None],
               failed: Callable[[str, bool], None]) -> None:
        """Run `work(report, cancelled)` on the host's worker with progress and Cancel;
        then `done(result)` or `failed(one line, was it cancelled)` on the GUI thread."""
        old = self.running.get(kind)
        if old is not None:
            old.set()  # superseded: it stops at its next check, its result is dropped
        flag = self.running[kind] = threading.Event()
        report = self.host.start_progress(text, self.cancel)

        def finish() -> bool:
            """False when this job was forgotten or superseded (its outcome is stale)."""
            if self.running.get(kind) is not flag:
                return False
            del self.running[kind]
            if not self.running:
                self.host.finish_progress()
            return True

        def ok(result: Any) -> None:
            if finish():
                self._paused.discard(flag)
                done(result)

        def bad(err: BaseException) -> None:
            if not finish():
                return
            if flag in self._paused:
                self._paused.discard(flag)
                self._on_paused(kind)
                return
            failed(first_line(err), flag.is_set())

        training = self.host.training_running()  # it owns torch's thread count

        def run() -> Any:
            with jobs.worker_threads(training):
                return work(report, flag.is_set)

        self.host.background.submit(f"{self.prefix}.{kind}", run, ok, bad)

    def cancel(self) -> None:
        """Stop every job (Cancel in the progress row)."""
        for flag in self.running.values():
            flag.set()

    def pause(self) -> None:
        """The page was left: stop every job; `paused(kind)` follows for those stopped
        before they finished."""
        for flag in self.running.values():
            if not flag.is_set():
                flag.set()
                self._paused.add(flag)

    def forget(self) -> None:
        """The worker dropped every undelivered result: stop the jobs and forget them."""
        for flag in self.running.values():
            flag.set()
        self.running.clear()
        self._paused.clear()
        self.host.finish_progress()
