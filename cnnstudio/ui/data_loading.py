"""Loading a project's data off the GUI thread.

`DataLoader.start(request)` runs `cnnstudio.data.load_dataset` in a fresh `QThread`; it
reports progress, then the Dataset with a small NumPy `Preview` (thumbnails, labels, class
counts), or a one-line error. Starting another load cancels the running one: its progress
callback raises at the next report and its result, if any, is dropped.

torch is imported inside the worker only, so the window never waits for it.
"""

from __future__ import annotations

import atexit
import itertools
import os
import time
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from cnnstudio.core.data_sources import path_keys
from cnnstudio.core.errors import FormatError, GraphError
from cnnstudio.project.model import Project
from cnnstudio.train.model_io import DataRequest

YIELD_SECONDS = 0.001


def request_for(project: Project) -> DataRequest | str:
    """What `project` asks to load (what training loads), or the one-line reason it cannot
    be loaded (invalid data settings, no usable Input node)."""
    try:
        return DataRequest.of(project)
    except FormatError as err:
        return str(err)
    except GraphError as err:  # a half-typed shape must not break the view
        if project.graph.input_node() is None:
            return f"{err}: the data is converted to its shape"
        return f"the Input's shape is not usable: {err}"


def source_root(request: DataRequest) -> str | None:
    """The folder skipped files are shown relative to: the source's path, or the common
    folder of its two paths (images/ and masks/)."""
    keys = path_keys(request.source.get("kind"))
    paths = [str(request.base_dir / Path(str(request.source[k])).expanduser())
             for k in keys if k in request.source]
    if not paths:
        return None
    try:
        return paths[0] if len(paths) == 1 else os.path.commonpath(paths)
    except ValueError:  # different drives
        return None


class LoadCancelled(Exception):
    """Raised from the progress callback of a load nobody waits for any more."""


# ---- the worker (runs in its own QThread) -----------------------------------------------


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class _LoadWorker(QObject):
    """Loads one request; lives in its own thread, talks only through signals."""

    progressed = Signal(int, str, int, int)  # job, stage, done, total
    loaded = Signal(int, object, object)  # job, Dataset, Preview
    failed = Signal(int, str)  # job, one-line message
    done = Signal()

    def __init__(self, job: int, request: DataRequest) -> None:
        super().__init__()
        self.job, self.request = job, request
        self.cancelled = False  # set from the GUI thread; a plain bool read is atomic enough

    def _progress(self, stage: str, done: int, total: int) -> None:
        if self.cancelled:
            raise LoadCancelled
        self.progressed.emit(self.job, stage, int(done), int(total))
        # Hand the GIL over for real. Scanning and decoding release it for every stat and
        # read, but take it back before the waiting GUI thread wakes up, so the GUI could
        # starve for a whole load; a short sleep lets it run (≤ ~50 reports per stage).
        time.sleep(YIELD_SECONDS)

    @Slot()
    def run(self) -> None:
        try:
            self._progress("starting", 0, 0)
            began = time.perf_counter()
            from cnnstudio.data import DataError  # torch loads here, not in GUI
            from cnnstudio.ui.data_samples import make_preview

            r = self.request
            try:
                dataset = r.load(self._progress)
            except DataError as err:
                self.failed.emit(self.job, _one_line(err))
                return
            self._progress("preview", 0, 1)
            kind = str(r.source.get("kind", ""))
            preview = make_preview(dataset, files=kind in ("folder", "segmentation_folder"))
            # The chart's pyqtgraph takes ~1 s to import: here, not in the GUI thread.
            import cnnstudio.ui.data_chart  # noqa: F401
            preview.seconds = time.perf_counter() - began
            if not self.cancelled:
                self.loaded.emit(self.job, dataset, preview)
        except LoadCancelled:
            pass
        except Exception as err:  # never let a bug or a strange file take the window down
            self.failed.emit(self.job, f"cannot load the data: {_one_line(err)}")
        finally:
            self.done.emit()


# Load threads, held here (not by a widget) so that closing the window never destroys a
# running QThread, which would abort the process. Finished ones are dropped at the next start.
_LIVE: dict[int, tuple[QThread, _LoadWorker]] = {}
_jobs = itertools.count(1)


def _prune() -> None:
    for job, (thread, _worker) in list(_LIVE.items()):
        if thread.isFinished():
            thread.wait()  # returns at once; makes sure the OS thread is gone before delete
            del _LIVE[job]


@atexit.register
def _stop_all() -> None:
    for thread, worker in list(_LIVE.values()):
        worker.cancelled = True
        thread.quit()
        thread.wait(10_000)
    _LIVE.clear()


class DataLoader(QObject):
    """Starts loads in worker threads and forwards the latest one's signals."""

    progressed = Signal(str, int, int)  # stage, done, total
    loaded = Signal(object, object)  # Dataset, Preview
    failed = Signal(str)  # one-line message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._current = 0  # job id of the load whose results count; 0: none

    def is_busy(self) -> bool:
        """True from `start` until the latest load reported its dataset or its error."""
        return self._current != 0

    def start(self, request: DataRequest) -> None:
        """Load `request` in a new thread, cancelling the load in progress."""
        self.cancel()
        _prune()
        job = next(_jobs)
        self._current = job
        thread = QThread()
        thread.setObjectName(f"cnnstudio-data-load-{job}")
        worker = _LoadWorker(job, request)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # quit() is thread-safe: end the thread at once, without a trip through the GUI.
        worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        worker.progressed.connect(self._on_progress)
        worker.loaded.connect(self._on_loaded)
        worker.failed.connect(self._on_failed)
        _LIVE[job] = (thread, worker)
        thread.start()

    def cancel(self) -> None:
        """Drop the load in progress (its thread stops at its next progress report)."""
        entry = _LIVE.get(self._current)
        if entry is not None:
            entry[1].cancelled = True
        self._current = 0

    def _on_progress(self, job: int, stage: str, done: int, total: int) -> None:
        if job == self._current:
            self.progressed.emit(stage, done, total)

    def _on_loaded(self, job: int, dataset: object, preview: object) -> None:
        if job == self._current:
            self._current = 0
            self.loaded.emit(dataset, preview)

    def _on_failed(self, job: int, message: str) -> None:
        if job == self._current:
            self._current = 0
            self.failed.emit(message)
