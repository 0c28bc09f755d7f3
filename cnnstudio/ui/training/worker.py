"""The training worker: a QObject moved to a QThread that runs `train_project`.

It trains a private copy of the project (see `controller`), so the GUI thread never
shares a mutable object with the training thread; what comes back are signals carrying
plain Python/NumPy values. torch is imported here, on the worker thread, the first time
a run starts, together with `warm_up()` (the ~800 imports the first optimizer step would
do), so the window never waits for them (see `torch_loading`: how, without stalling it).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from cnnstudio.core.errors import first_line
from cnnstudio.project import Project
from cnnstudio.project.weights import RESUME_MEMBER
from cnnstudio.ui.torch_loading import load_torch, prepare_torch
from cnnstudio.ui.training.controls import RunControls


class TrainingWorker(QObject):
    """Trains `project` (a copy the worker owns) once; signals carry copies only. The
    bridge emits the first four itself, on the training thread."""

    run_started = Signal(dict)  # the run's context: samples, classes, device, sizes
    batches_done = Signal(dict)  # coalesced batches: steps, losses, lrs, progress
    epoch_finished = Signal(dict)  # the epoch's record, confusion matrix, weights copy
    snapshot_taken = Signal(dict)  # filters / feature maps of the watched layers
    loading = Signal(str, int, int)  # data loading: stage, done, total
    run_finished = Signal(dict)  # the outcome, with what to write back into the project

    def __init__(self, project: Project, controls: RunControls, token: int, *,
                 resume: bool = True, epochs: int | None = None,
                 callbacks: Sequence[Any] = (), fresh: bool = False) -> None:
        super().__init__()
        self.project, self.controls, self.token = project, controls, token
        self.resume, self.epochs, self.callbacks = resume, epochs, tuple(callbacks)
        self.fresh = fresh  # new weights from the seed, not the project's trained ones
        self.outcome: dict[str, Any] | None = None
        self._last_loading = 0.0

    def _progress(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self._last_loading >= 0.1 or done >= total:  # ≤ 10 signals a second
            self._last_loading = now
            self.loading.emit(stage, done, total)

    # ---- the run -----------------------------------------------------------------------

    @Slot()
    def run(self) -> None:
        """Train, then emit `run_finished` (always, whatever happened)."""
        outcome = self.outcome = self._train()
        _leave_thread(self)
        self.run_finished.emit(outcome)

    def _train(self) -> dict[str, Any]:
        try:
            self.loading.emit("Starting PyTorch", 0, 0)
            prepare_torch()
            return self._run_training()
        except Exception as err:  # an import failure or a bug: say it, keep the app alive
            return self._failed(f"training could not run: {type(err).__name__}: {err}")

    def _failed(self, message: str) -> dict[str, Any]:
        return {"token": self.token, "status": "failed", "changed": False, "message": message}

    def _run_training(self) -> dict[str, Any]:
        from cnnstudio.train import train_project
        from cnnstudio.ui.training.bridge import LiveBridge

        project = self.project
        runs_before, weights_before = copy.deepcopy(project.runs), project.weights
        result = train_project(project, epochs=self.epochs, progress=self._progress,
                               callbacks=[LiveBridge(self, self.controls, self.token),
                                          *self.callbacks], resume=self.resume, fresh=self.fresh)
        # What the project keeps after a failure is the engine's rule, the same as the
        # command line's: after a NaN/inf loss a validated epoch's weights (else those the
        # run started from); after another fault what a completed run keeps (the best
        # epoch with checkpoint "best", else the last completed step).
        return {
            "token": self.token, "status": result.status, "message": result.message,
            "device": result.device, "best_epoch": result.best_epoch,
            "changed": project.runs != runs_before or project.weights is not weights_before,
            "weights": project.weights, "runs": project.runs,
            "resume": project.attachments.get(RESUME_MEMBER),
        }


def _leave_thread(worker: QObject) -> None:
    """End the worker's thread when its slot returns; the object goes back to the GUI
    thread, which deletes it later."""
    QThread.currentThread().quit()
    app = QCoreApplication.instance()
    if app is not None:
        worker.moveToThread(app.thread())


def load_error(err: BaseException) -> str:
    """`err` in one line for the user: our own errors (data, format, build) already read
    as a sentence; anything else is named by its type. Imports nothing: it also runs while
    the interpreter shuts down, when a failed import would escape the worker's thread."""
    text = first_line(err)
    if type(err).__module__.startswith("cnnstudio.") or not str(err).strip():
        return text
    return f"{type(err).__name__}: {text}"


class SamplesWorker(QObject):
    """Loads a project's data off the GUI thread for inspection without a run (a trained
    project just opened): the same samples, split and preprocessing a run would show."""

    loaded = Signal(dict)  # a context like a run's (no sizes of a run), or {"error": …}

    def __init__(self, project: Project, token: int) -> None:
        super().__init__()
        self.project, self.token = project, token

    @Slot()
    def run(self) -> None:
        try:
            load_torch()  # no warm-up: the first run does it, if one comes
            from cnnstudio.ui.training.bridge import load_samples_context

            context = load_samples_context(self.project)
        except Exception as err:  # unreadable data: the views say why (one line)
            context = {"error": load_error(err)}
        context["token"] = self.token
        _leave_thread(self)
        self.loaded.emit(context)
