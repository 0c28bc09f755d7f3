"""Runs training for the window: the worker thread, its signals, and the write-back.

Safety while editing: a run trains a private copy of the project taken when Train is
pressed (graph, settings, runs, weights). The user may go on editing the network and
the settings meanwhile; nothing the training thread reads can change under it. When the
run ends, its outcome (weights, run record, resume state) is written into the project
that was open when it started, and the document is marked modified (not undoable: an
undo must never silently drop a trained model). If that project is no longer open, the
outcome is dropped and the log says so.
"""

from __future__ import annotations

import atexit
import contextlib
import weakref
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from cnnstudio.core.graph import Graph
from cnnstudio.project import Project
from cnnstudio.project.origin import imported_from, stopped_run, weights_run
from cnnstudio.project.weights import RESUME_MEMBER
from cnnstudio.train.model_io import Preprocessing, TrainedModel
from cnnstudio.ui.document import Document
from cnnstudio.ui.torch_loading import cuda_devices, fast_switching
from cnnstudio.ui.training.controls import RunControls
from cnnstudio.ui.training.distributed_worker import DistributedTrainingWorker, run_options
from cnnstudio.ui.training.history import from_run, run_offsets, weights_epoch
from cnnstudio.ui.training.live import LiveRun
from cnnstudio.ui.training.panel import IDLE, PAUSED, RUNNING, STARTING, STOPPING
from cnnstudio.ui.training.worker import SamplesWorker, TrainingWorker

EXIT_WAIT_MS = 60_000  # at interpreter exit, how long a training or sample load may take
_orphans: list[tuple[QThread, QObject]] = []  # threads that outlived a shutdown wait
_controllers: weakref.WeakSet[TrainingController] = weakref.WeakSet()


@atexit.register
def _wait_for_threads_at_exit() -> None:
    """Qt aborts the process when a QThread is destroyed while it runs — which is what
    interpreter teardown does to a sample load or a run still going when a script (or a
    test) ends without closing its window. Stop the runs and wait for every thread
    first. (Closing a window does this already, in `shutdown`.)"""
    threads: list[QThread] = [thread for thread, _ in _orphans]
    for controller in list(_controllers):
        controller.controls.request_stop()
        for pair in (controller._loader, (controller._thread, controller._worker)):
            if pair is not None and pair[0] is not None:
                threads.append(pair[0])
    for thread in threads:
        with contextlib.suppress(RuntimeError):  # its C++ object is already gone
            thread.wait(EXIT_WAIT_MS)


@dataclass(frozen=True)
class Origin:
    """Where a run's weights start, in words for the log, and where its epoch 0 lies on
    the curves' axis (a warm start goes on from the epoch its weights came from)."""

    text: str = "new weights (seeded)"
    x_offset: int = 0
    from_run: str | None = None
    from_epoch: int = 0


def run_origin(project: Project, fresh: bool, resuming: bool) -> Origin:
    """The origin of the run `start` is about to begin (what the engine will record as
    its `init`; it may still start fresh if the weights no longer fit the graph)."""
    runs = [r for r in project.runs if isinstance(r, dict)]
    offsets = run_offsets(runs)
    by_id = {str(r.get("id")): r for r in runs}
    if resuming:
        run = runs[-1]
        parent = from_run(run)
        epoch = weights_epoch(by_id[parent]) if parent in by_id else 0
        return Origin(f"continuing {run.get('id')}", offsets.get(str(run.get("id")), 0),
                      parent, epoch)
    if fresh or project.weights is None:
        return Origin("new weights (seeded)" + (", not the trained ones" if fresh
                                                and project.weights is not None else ""))
    parent = weights_run(project)
    if parent not in by_id:
        source = imported_from(project)
        return Origin(f"from the imported weights ({source})" if source
                      else "from the project's weights (of no recorded run)")
    epoch = weights_epoch(by_id[parent])
    return Origin(f"from the weights of {parent} (its epoch {epoch})",
                  offsets.get(parent, 0) + epoch, parent, epoch)


def _samples_key(project: Project) -> str:
    """What a sample load depends on: the data settings, the Input node, the task and
    where relative paths start."""
    node = project.graph.input_node()
    return repr((project.data, node and (node.id, node.params), project.task, str(project.path)))


def graph_structure(graph: Graph) -> list[tuple[str, str, Any, list[str]]]:
    """What a trained module depends on in a graph: ids, types, params and inputs."""
    return [(n.id, n.type, n.params, list(n.inputs)) for n in graph]


class TrainingController(QObject):
    """Starts, pauses, stops and follows one run at a time."""

    state_changed = Signal(str)
    context_ready = Signal(dict)  # a run began: its samples, classes, device, sizes
    epoch_added = Signal(dict)  # an epoch's record (and confusion matrix) arrived
    finished = Signal(dict)  # the outcome, after it was written into the project
    samples_loaded = Signal(dict)  # samples for inspection, loaded without a run
    samples_failed = Signal(str)  # why they could not be loaded (one line)
    log = Signal(str)
    loading = Signal(str, int, int)

    def __init__(self, document: Document, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.live = LiveRun()
        self.state = IDLE
        self.controls = RunControls()
        self.focus: dict[str, Any] = {"filter_node": None, "activation_node": None,
                                      "sample_index": 0}
        self.extra_callbacks: list[Any] = []  # more Callbacks for the next runs (tests)
        self.epochs_override: int | None = None
        self.pending_snapshot: dict[str, Any] | None = None
        self.last_outcome: dict[str, Any] | None = None
        self.run_graph: Graph | None = None  # the graph the current/last run trained
        self.processes = 1  # of the current/last run: more than 1 is a distributed job
        self.origin = Origin()  # where the current/last run's weights started
        self._thread: QThread | None = None
        self._worker: TrainingWorker | None = None
        self._token = 0
        self._samples_token = 0
        self._run_project: Project | None = None
        self._fast_switching: contextlib.ExitStack | None = None  # while a run goes on
        self._loader: tuple[QThread, SamplesWorker] | None = None
        self._samples_failure: tuple[str, str] | None = None  # (what was loaded, why not)
        self._loading_key = ""  # what the sample loader loads (see `_samples_key`)
        document.project_replaced.connect(self._project_replaced)
        _controllers.add(self)

    # ---- state -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.state != IDLE

    def resumable(self) -> bool:
        """True when the last run was stopped and can continue where it stopped."""
        return stopped_run(self.doc.project) is not None

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    # ---- commands (GUI thread) -------------------------------------------------------

    def start(self, fresh: bool = False, resume: bool = True,
              delay_ms: int = 0) -> str | None:
        """Start a run; return why not, or None. `resume`: a stopped run continues where
        it stopped; else a new run starts from the project's trained weights, or with
        `fresh` from new weights (seeded), whatever the project holds. `delay_ms`: the
        worker thread starts that much later (the run is STARTING meanwhile)."""
        if self.running:
            return "a training is already running"
        errors = self.doc.inference.errors
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            return f"the network has problems: {errors[0]}{more}"
        project = self.doc.project
        self._token += 1
        self._run_project = project
        self.run_graph = project.graph.copy()
        self.controls = RunControls()
        self.controls.focus(**self.focus)
        self.pending_snapshot = None
        self.processes = run_options(self.doc).processes
        resuming = resume and not fresh and self.resumable()
        self.origin = run_origin(project, fresh, resuming)
        worker: TrainingWorker
        if self.processes > 1:
            worker = DistributedTrainingWorker(project.copy(), self.controls,
                                               self._token, processes=self.processes,
                                               resume=resuming, epochs=self.epochs_override,
                                               fresh=fresh)
        else:
            worker = TrainingWorker(project.copy(), self.controls, self._token,
                                    resume=resuming, epochs=self.epochs_override,
                                    callbacks=list(self.extra_callbacks), fresh=fresh)
        thread = QThread()
        thread.setObjectName("cnnstudio-training")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Receivers are this object's methods: Qt queues them onto the GUI thread.
        worker.run_started.connect(self._on_started)
        worker.batches_done.connect(self._on_batches)
        worker.epoch_finished.connect(self._on_epoch)
        worker.snapshot_taken.connect(self._on_snapshot)
        worker.loading.connect(self._on_loading)
        worker.run_finished.connect(self._on_finished)
        self._thread, self._worker = thread, worker
        # The GUI thread waits for the GIL the training thread holds: see fast_switching.
        if self._fast_switching is None:
            self._fast_switching = contextlib.ExitStack()
            self._fast_switching.enter_context(fast_switching())
        self._set_state(STARTING)
        what = "resuming the stopped run" if resuming else "a new run"
        self.log.emit(f"— {what} of {project.name or 'the project'}: {self.origin.text}")
        if self.processes > 1:
            self.log.emit(f"training in {self.processes} processes: the curves and the"
                          " progress are live; the confusion matrix, filters and activations"
                          " follow at each epoch's end (another layer shows from the next"
                          " one); no training accuracy and no Pause (Stop keeps the weights,"
                          " and Train resumes)")
        if delay_ms:
            QTimer.singleShot(delay_ms, self, lambda: self._launch(thread))
        else:
            thread.start()
        return None

    def _launch(self, thread: QThread) -> None:
        """Start the run's thread if `start` delayed it and it is still the current one
        (a stop meanwhile is seen by the worker at once: it ends with its outcome)."""
        if thread is self._thread and not thread.isRunning() and not thread.isFinished():
            thread.start()

    def pause(self) -> None:
        if self.running and self.processes > 1:
            # A paused rank would block its peers in a collective until the group timed out.
            self.log.emit("Pause is not available while training in several processes:"
                          " Stop keeps the weights, and Train resumes the run")
            self.state_changed.emit(self.state)  # the views un-check the Pause button
            return
        if self.state in (RUNNING, STARTING):
            self.controls.pause()
            self._set_state(PAUSED)
            self.log.emit("paused: training waits after the current batch")

    def resume(self) -> None:
        if self.state == PAUSED:
            self.controls.resume()
            self._set_state(RUNNING if self.live.context else STARTING)
            self.log.emit("resumed")

    def stop(self) -> None:
        if self.running and self.state != STOPPING:
            self.controls.request_stop()
            self._set_state(STOPPING)
            self.log.emit("stopping after the current batch…")

    def set_focus(self, **focus: Any) -> None:
        """What the live views watch (filter_node, activation_node, sample_index)."""
        self.focus.update({k: v for k, v in focus.items() if v is not None})
        self.controls.focus(**focus)

    def shutdown(self, timeout_s: float = 60.0) -> bool:
        """Stop a running training and wait for it (its outcome is written back first).
        True when no training runs any more."""
        self._wait_loader()
        thread, worker = self._thread, self._worker
        if thread is None or worker is None:
            return True
        self._launch(thread)  # a delayed start: now, to stop and write back as any run
        self.stop()
        finished = thread.wait(int(timeout_s * 1000))
        if not finished and isinstance(worker, DistributedTrainingWorker):
            worker.abort_job()  # the window goes: its child processes must not outlive it
            finished = thread.wait(int(timeout_s * 1000))
        if not finished:
            _orphans.append((thread, worker))  # never destroy a running QThread
            return False
        if worker.outcome is not None:
            self._on_finished(worker.outcome)
        return True

    # ---- what the worker reports (queued onto the GUI thread) -------------------------

    def _current(self, payload: dict[str, Any]) -> bool:
        return payload.get("token") == self._token

    @Slot(str, int, int)
    def _on_loading(self, stage: str, done: int, total: int) -> None:
        self.loading.emit(stage, done, total)

    @Slot(dict)
    def _on_started(self, context: dict[str, Any]) -> None:
        if not self._current(context):
            return
        if context.get("init") == "fresh" and self.origin.from_run is not None:
            # Asked to continue, but the engine could not load the weights (the network
            # was edited since): the run starts from new weights, and is drawn so.
            self.origin = Origin("new weights (seeded)")
            self.log.emit("the trained weights do not fit the network (edited since they"
                          " were trained): this run starts from new weights (seeded)")
        self.live.reset(context, self.origin.x_offset)
        if self.state == STARTING:
            self._set_state(RUNNING)
        self.context_ready.emit(context)

    @Slot(dict)
    def _on_batches(self, batch: dict[str, Any]) -> None:
        if self._current(batch):
            self.live.add_batches(batch)

    @Slot(dict)
    def _on_epoch(self, epoch: dict[str, Any]) -> None:
        if self._current(epoch):
            self.live.add_epoch(epoch)
            self.epoch_added.emit(epoch)

    @Slot(dict)
    def _on_snapshot(self, snap: dict[str, Any]) -> None:
        if self._current(snap):
            self.pending_snapshot = snap  # the views' timer shows the newest only

    @Slot(dict)
    def _on_finished(self, outcome: dict[str, Any]) -> None:
        if not self._current(outcome) or self._thread is None:
            return  # a stale run, or already handled by shutdown()
        thread, self._thread, self._worker = self._thread, None, None
        thread.quit()
        thread.wait()
        if self._fast_switching is not None:
            self._fast_switching.close()
            self._fast_switching = None
        self.last_outcome = outcome
        run_options(self.doc).note_gpus(cuda_devices())  # torch is loaded now: GPUs known
        project, self._run_project = self._run_project, None
        if project is not self.doc.project:
            self.log.emit("the run's results were dropped: another project was opened")
            self.live.reset(None)
            self.run_graph = None
        elif outcome.get("changed"):
            self._write_back(project, outcome)
        self._set_state(IDLE)
        self.finished.emit(outcome)

    def _write_back(self, project: Project, outcome: dict[str, Any]) -> None:
        project.weights = outcome.get("weights")
        project.runs = list(outcome.get("runs") or [])
        resume = outcome.get("resume")
        if resume is not None:
            project.attachments[RESUME_MEMBER] = resume
        else:
            project.attachments.pop(RESUME_MEMBER, None)
        # The trained weights are new content: the project must be saved (asked on close).
        self.doc.undo_stack.resetClean()
        if self.run_graph is not None and graph_structure(self.run_graph) != graph_structure(project.graph):
            self.log.emit("note: the network was edited during training; the new weights"
                          " belong to the network as it was when training started")

    def _project_replaced(self) -> None:
        self._samples_token += 1  # samples still loading are the old project's
        self._samples_failure = None
        if self.running:
            self.stop()
        if not self.running:
            self.live.reset(None)
            self.run_graph = None

    # ---- samples without a run ---------------------------------------------------------

    def load_samples(self) -> bool:
        """Load the project's data in the background so a trained project can be inspected
        (activations, confusion samples) before any run; False if not needed or busy."""
        if (self.running or self.live.context is not None or self._loader is not None
                or self.samples_error is not None):
            return False
        project = self.doc.project.copy()
        worker = SamplesWorker(project, self._samples_token)
        self._loading_key = _samples_key(project)
        thread = QThread()
        thread.setObjectName("cnnstudio-samples")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.loaded.connect(self._on_samples)
        self._loader = (thread, worker)
        thread.start()
        return True

    @property
    def loading_samples(self) -> bool:
        return self._loader is not None

    @property
    def samples_error(self) -> str | None:
        """Why the project's samples could not be loaded, while its data, Input and task
        are still those that failed (a changed source is tried again); else None."""
        failure = self._samples_failure
        if failure is None or failure[0] != _samples_key(self.doc.project):
            return None
        return failure[1]

    def retry_samples(self) -> bool:
        """Forget a failed sample load (the files may be readable now); True if one was
        remembered."""
        failed, self._samples_failure = self._samples_failure is not None, None
        return failed

    @Slot(dict)
    def _on_samples(self, context: dict[str, Any]) -> None:
        if self._loader is not None:
            thread, _ = self._loader
            thread.wait()
            self._loader = None
        run_options(self.doc).note_gpus(cuda_devices())
        if context.get("token") != self._samples_token:
            return
        if context.get("error"):
            # Remembered, so that showing the views again does not reload the same
            # broken source; the views say why instead of "Loading…".
            self._samples_failure = (self._loading_key, str(context["error"]))
        if self.running or self.live.context is not None:
            return  # a run began meanwhile: its samples (or its failure) are shown
        if context.get("error"):
            self.samples_failed.emit(str(context["error"]))
            return
        self.live.context = context
        self.samples_loaded.emit(context)

    def _wait_loader(self) -> None:
        if self._loader is not None:
            thread, worker = self._loader
            if not thread.wait(60_000):
                _orphans.append((thread, worker))
            self._loader = None

    # ---- inspection ------------------------------------------------------------------

    def inspection_source(self) -> TrainedModel | None:
        """The freshest model to inspect: the running one's last epoch, else the saved
        weights; None when there is nothing trained."""
        ctx, state = self.live.context, self.live.state
        if self.running and ctx and state is not None and self.run_graph is not None:
            return TrainedModel(self.run_graph, state, Preprocessing.of_samples(ctx), ctx["task"],
                                f"epoch {self.live.confusion_epoch} of the running training")
        return TrainedModel.saved(self.doc.project)
