"""Training in several processes (or GPUs) from the window: the job as a child process group.

torch.distributed needs one process per rank, and the window's process cannot be one of
them (its GIL is the window's, and a rank that crashes must not take the window down). So
the training copy is saved to a temporary `.cnnproj`, `cnnstudio train TMP --nproc N
--json` runs it (`distributed_launch.launch`), and the worker thread turns the job's JSON
lines into the signals the in-process run emits. What comes back is what rank 0 prints:
every batch's loss and learning rate, and each epoch's record with its confusion matrix
(the validation sums are all-reduced: it covers the whole validation split). Filters and
feature maps are live once per epoch, not per second: the worker writes what the views
watch into the job's folder (`job.watch`, again whenever the user picks another layer or
sample), and rank 0, at each epoch's end, writes a snapshot of those layers there and
announces it with a line (`cnnstudio.train.snapshots`); a pick shows at the next epoch's
end. Not live: the training accuracy (the in-process bridge counts it from `BatchInfo`)
and the weights a confusion cell's samples are classified with (the saved ones, until the
run ends). Pause is not offered (a paused rank would block its peers inside a collective
until the group timed out); Stop writes the job's stop file, and the ranks stop together
after the current batch and save.

The number of processes is a session option of the window (`RunOptions`), not a project
setting: it describes this machine (its cores, its GPUs), and the project format has no
field for it. torch is imported on the worker thread only.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from cnnstudio.core.errors import first_line
from cnnstudio.project import absolute_data_paths, read_project, write_project
from cnnstudio.project.weights import RESUME_MEMBER
from cnnstudio.train.events import BatchCoalescer
from cnnstudio.ui.training.worker import TrainingWorker

END_GRACE_S = 30.0  # after its output closed (or SIGTERM), the launcher may take this long


class RunOptions(QObject):
    """How the window's next runs are started (per window, for the session; not saved).

    `processes`: 1 trains in the window's process with every live view; more runs a
    distributed job. `gpus`: the CUDA devices torch sees, None until torch was loaded
    (on a worker thread: the window starts without torch).
    """

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runOptions")
        self.processes = 1
        self.gpus: int | None = None

    def set_processes(self, count: int) -> None:
        count = max(1, int(count))
        if count != self.processes:
            self.processes = count
            self.changed.emit()

    def note_gpus(self, count: int | None) -> None:
        if count is not None and count != self.gpus:
            self.gpus = count
            self.changed.emit()


def run_options(document: QObject) -> RunOptions:
    """The run options of the window editing `document` (created on first use)."""
    options = document.findChild(RunOptions, "runOptions")
    return options if options is not None else RunOptions(document)


def cpu_process_limit() -> int:
    """The most CPU processes a run may have: one per core (the command line's rule)."""
    return max(2, os.cpu_count() or 1)


def process_kind(device: str, gpus: int | None) -> tuple[str, int]:
    """(label, maximum) of the processes setting for a device setting: one process per
    GPU when the ranks will train on CUDA (`cuda…`, or `auto` where torch sees a GPU),
    else CPU processes, one per core."""
    name = (device or "auto").lower()
    if name.startswith("cuda") or (name == "auto" and gpus):
        return "GPUs", max(1, gpus) if gpus is not None else cpu_process_limit()
    return "Processes", cpu_process_limit()


class _JobControl:
    """Takes the Trainer's place in RunControls: Stop → the job's stop file (the ranks
    stop together after the current batch and save, however long validation and saving
    take: no deadline, which could throw a long run away). Only `abort` — the window
    closing and its wait running out — ends the processes at once."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.aborted = False

    def request_stop(self) -> None:
        self.job.stop()

    def abort(self) -> None:
        self.aborted = True
        self.job.abort()

    def pause(self) -> None:
        """Not offered for a distributed run (the controller says so)."""

    def resume(self) -> None:
        """Nothing was paused."""


def _resumes_in(resume: bytes | None, processes: int) -> bool:
    """Whether the engine will continue the stored stopped run with this many processes
    (it starts afresh otherwise: a stop position counts one rank's batches), so the views
    show its earlier epochs only then."""
    from cnnstudio.train.resume import ResumeError, ResumeState

    if resume is None:
        return False
    try:
        return ResumeState.from_bytes(resume).extra.get("world_size", 1) == processes
    except ResumeError:
        return False


def _end(job: Any, terminate: bool = False) -> int:
    """Wait for the launcher and return its exit status: SIGTERM first if `terminate`, or
    once it outlived its output by `END_GRACE_S`; SIGKILL if it ignores SIGTERM too."""
    if terminate:
        job.abort()
    with contextlib.suppress(subprocess.TimeoutExpired):
        return job.wait(timeout=END_GRACE_S)
    if not terminate:
        job.abort()
        with contextlib.suppress(subprocess.TimeoutExpired):
            return job.wait(timeout=END_GRACE_S)
    job.process.kill()
    return job.wait()


class _Refused(Exception):
    """The run cannot start; `str()` is the one-line reason."""


class DistributedTrainingWorker(TrainingWorker):
    """Trains `project` in `processes` child processes; emits what `TrainingWorker` does
    (`run_started` with the first batch, `batches_done`, `epoch_finished` with the
    confusion matrix, `snapshot_taken` once per epoch, `run_finished`)."""

    def __init__(self, project: Any, controls: Any, token: int, *, processes: int,
                 resume: bool = True, epochs: int | None = None, fresh: bool = False) -> None:
        super().__init__(project, controls, token, resume=resume, epochs=epochs, fresh=fresh)
        self.processes = processes
        self.job: Any = None  # the running DistributedJob
        self._context: dict[str, Any] = {}
        self._started = False
        self._batches = BatchCoalescer()  # the bridge's interval

    def _run_training(self) -> dict[str, Any]:
        try:
            with tempfile.TemporaryDirectory(prefix="cnnstudio-run-") as folder:
                return self._run(Path(folder) / "training.cnnproj")
        except _Refused as err:
            return self._failed(str(err))

    def _run(self, path: Path) -> dict[str, Any]:
        from cnnstudio.train.distributed_launch import launch

        unit = self._prepare(path)
        if self.controls.stop_requested:  # while the data loaded: nothing to start
            return {"token": self.token, "status": "stopped", "changed": False,
                    "message": "stopped before training started"}
        self.loading.emit(f"Starting {self.processes} {unit}", 0, 0)
        job = self.job = launch(path, self.processes, epochs=self.epochs, batch_events=0.0,
                                snapshots=True, fresh=self.fresh)
        self._watch(job)  # long before rank 0 ends its first epoch
        # A pick during validation (no lines then) must reach rank 0 before it reads the
        # watch file at the epoch's end: write it from the focus change itself.
        self.controls.focus_listener = lambda: self._watch(job)
        control = self.control = _JobControl(job)
        self.controls.attach(control)  # from now on Stop reaches the job
        try:
            end = self._follow(job)
            code = _end(job)
        finally:
            self.controls.focus_listener = None
            if job.process.poll() is None:  # an error on this side: leave nothing running
                _end(job, terminate=True)
        if end is None and control.aborted:
            return self._failed("the training processes were ended at once (the window"
                                " closed): this run's progress is not kept")
        return self._outcome(path, end, code, job.error)

    def abort_job(self) -> None:
        """End the processes now (from the GUI thread, when the window closes)."""
        control = getattr(self, "control", None)
        if control is not None:
            control.abort()

    def _prepare(self, path: Path) -> str:
        """Check what every rank would fail on (said once, and before any process
        starts), load the samples the views show, save the copy the job trains to `path`.
        Returns the unit ("processes" or "GPUs"); raises _Refused."""
        from cnnstudio.project import ProjectError, fill_training
        from cnnstudio.train.distributed import DistError, rank_device
        from cnnstudio.ui.training.bridge import load_samples_context

        project, n = self.project, self.processes
        try:
            settings = fill_training(project.training)
            device = rank_device(settings["device"], n - 1)
            if device.type == "cpu" and n > cpu_process_limit():
                raise DistError(f"{n} processes are more than this machine has CPU cores"
                                f" ({os.cpu_count()}): each process needs one")
            # Rank 0 loads the same data (same request: source, split seed and fraction),
            # so its view sample i (`view_index`) is the one shown here as sample i.
            context = load_samples_context(project, self._progress)  # ranks read its cache
        except Exception as err:  # DistError, DataError, GraphError, FormatError
            raise _Refused(first_line(err)) from None
        last = project.runs[-1] if project.runs else None
        resuming = (self.resume and isinstance(last, dict) and last.get("status") == "stopped"
                    and _resumes_in(project.attachments.get(RESUME_MEMBER), n))
        unit = "GPUs" if device.type == "cuda" else "processes"
        context.update({"token": self.token, "device": f"{device.type} × {n} {unit}",
                        "threads": None, "epochs": self.epochs or settings["epochs"],
                        "batch_size": settings["batch_size"] * n,  # every rank's batch
                        "amp": False, "processes": n,
                        "records": list(last.get("epochs") or []) if resuming else []})
        self._context = context
        if not self.resume:
            project.attachments.pop(RESUME_MEMBER, None)  # "New run": no resume state
        # Relative data paths start at the project's folder; the copy is saved elsewhere.
        base = Path(project.path).parent if project.path is not None else None  # None: cwd
        project.data = absolute_data_paths(project.data, base)
        try:
            write_project(project, path, backup=False)
        except ProjectError as err:
            raise _Refused(str(err)) from None
        return unit

    # ---- the job's lines → the signals the views know ---------------------------------

    def _follow(self, job: Any) -> dict[str, Any] | None:
        """Turn the job's lines into signals until its output ends; its end line."""
        end = None
        for event in job.events():
            if self.controls.refresh_requested:  # the user picked another layer or sample
                self._watch(job)
            kind = event.get("event")
            if kind == "batch":
                self._batch(event)
            elif kind == "epoch":
                self._epoch(event)
            elif kind == "snapshot":
                self._snapshot(job, event)
            elif kind == "end":
                end = event
        self._flush()
        return end

    def _start_views(self, batches: int) -> None:
        """The run context goes out with the first line: only then is the number of
        batches per epoch known (each rank has its share of the data)."""
        if not self._started:
            self._started = True
            self._context["batches"] = batches
            self.run_started.emit(self._context)
            self._batches = BatchCoalescer()  # its clock starts with the views

    def _batch(self, event: dict[str, Any]) -> None:
        self._start_views(int(event["batches"]))
        # An epoch's last batch is sent at once: validation comes before the next line.
        if self._batches.add(event) or int(event["batch"]) == int(event["batches"]):
            self._flush()

    def _flush(self) -> None:
        batch = self._batches.take()
        if batch is not None:
            self.batches_done.emit({"token": self.token, **batch})

    def _epoch(self, event: dict[str, Any]) -> None:
        from cnnstudio.train.record import epoch_entry

        self._flush()
        self._start_views(int(self._batches.last.get("batches") or 1))
        record = epoch_entry(event)
        record["train_accuracy"] = None  # counted by the in-process bridge only
        cm = event.get("confusion_matrix")
        self.epoch_finished.emit({"token": self.token, "record": record, "per_class": {},
                                  "confusion": None if cm is None else np.asarray(cm, np.int64),
                                  "state": None})

    def _watch(self, job: Any) -> None:
        """Tell rank 0 what the views watch now: at once from a focus change (GUI
        thread), and again from `_follow` if that write failed. The flag is cleared first,
        so a pick made meanwhile is written the next time."""
        controls = self.controls
        controls.refresh_requested = False
        try:
            job.watch(filter_node=controls.filter_node, activation_node=controls.activation_node,
                      sample_index=controls.sample_index)
        except OSError:  # a busy file (or the job ending): try again at the next line
            controls.refresh_requested = True

    def _snapshot(self, job: Any, event: dict[str, Any]) -> None:
        """Rank 0's snapshot line and file → what the in-process bridge sends."""
        snap: dict[str, Any] = {"token": self.token, "sample": event.get("sample", 0)}
        snap.update({k: event[k] for k in ("missing", "error") if event.get(k)})
        try:
            arrays = job.snapshot_arrays(event)
        except Exception as err:  # a view's trouble must never end the run
            snap["error"] = f"the snapshot could not be read: {err}"
            arrays = {}
        for node, key in (("filter_node", "filters"), ("activation_node", "activation")):
            if event.get(node):
                snap[node] = event[node]
                snap[key] = arrays.get(key)
        self.snapshot_taken.emit(snap)

    # ---- the end ---------------------------------------------------------------------

    def _outcome(self, path: Path, end: dict[str, Any] | None, code: int,
                 error: str) -> dict[str, Any]:
        """The outcome `run_finished` carries, from the end line and the saved file."""
        if end is None:  # killed, or crashed before it could say how: stderr's last line
            return self._failed(error.strip() or f"the training processes ended"
                                f" without a result (exit status {code})")
        status, message = str(end.get("status")), str(end.get("message") or "")
        outcome: dict[str, Any] = {"token": self.token, "status": status, "message": message,
                                   "device": end.get("device"), "processes": self.processes,
                                   "best_epoch": end.get("best_epoch"), "changed": False}
        if not end.get("saved"):
            return outcome
        saved = read_project(path)
        project = self.project
        weights = saved.weights  # what the engine kept (its rule after a failure too)
        outcome.update({"weights": weights, "runs": saved.runs,
                        "resume": saved.attachments.get(RESUME_MEMBER),
                        "changed": saved.runs != project.runs or weights != project.weights})
        return outcome
