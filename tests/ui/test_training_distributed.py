"""Training in several processes from the window: the processes option, a real 2-process
run that fills the live views, Stop, and failures that leave the app usable.

Each real run starts `cnnstudio train --nproc 2` as a child process group (3 imports of
torch): 8-15 s on a 2-core machine.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QSpinBox, QWidget

from cnnstudio.nn import read_weights
from cnnstudio.nn.internals import node_activation
from cnnstudio.project import Project, absolute_data_paths
from cnnstudio.project.weights import RESUME_MEMBER
from cnnstudio.train import distributed_launch
from cnnstudio.train.model_io import TrainedModel
from cnnstudio.train.snapshots import read_watch
from cnnstudio.ui.training import distributed_worker
from cnnstudio.ui.training.controls import RunControls
from cnnstudio.ui.training.distributed_worker import (
    DistributedTrainingWorker,
    _end,
    _resumes_in,
    process_kind,
    run_options,
)
from cnnstudio.ui.training.panel import PAUSE_TIP

RUN_TIMEOUT_MS = 120_000


@pytest.fixture
def ui(window, tmp_path, monkeypatch):
    """The training UI on digits-lenet set for short runs in 2 processes; temporary files
    go to a folder of the test's own (checked empty afterwards), launched jobs are kept."""
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    jobs = []
    real_launch = distributed_launch.launch

    def launch(*args, **kwargs):
        jobs.append(real_launch(*args, **kwargs))
        return jobs[-1]

    monkeypatch.setattr(distributed_launch, "launch", launch)
    window.project.training.update({"epochs": 2, "max_batches_per_epoch": 5, "batch_size": 16,
                                    "device": "cpu"})
    training = window.training
    training.settings.reload()
    training.jobs, training.temp = jobs, temp
    _spin(window).setValue(2)
    return training


def _spin(window) -> QSpinBox:
    spin = window.findChild(QSpinBox, "processesSpin")
    assert spin is not None
    return spin


def _press(qtbot, window, name: str) -> None:
    button = window.findChild(QPushButton, name)
    assert button is not None, name
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _wait_end(qtbot, ui) -> None:
    qtbot.waitUntil(lambda: not ui.controller.running, timeout=RUN_TIMEOUT_MS)


def _processes_of(job) -> list[int]:
    """Live processes of a job: the launcher and its ranks all carry its folder in their
    environment (the ranks are in sessions of their own, so no process group holds them)."""
    if not Path("/proc").is_dir():
        pytest.skip("looks for processes in /proc")
    marker = f"{distributed_launch.OUTCOME_DIR_VAR}={job.folder}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:  # a zombie has ended
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


# ---- the option ----------------------------------------------------------------------


def test_processes_is_a_session_option_labelled_for_the_device(window, qtbot):
    spin = _spin(window)
    label = window.training.settings.processes_label
    assert isinstance(label, QLabel) and label.text() == "Processes"
    assert spin.value() == 1 and spin.minimum() == 1
    assert spin.maximum() == max(2, os.cpu_count() or 1)
    spin.setValue(2)
    options = run_options(window.document)
    assert options.processes == 2
    assert "processes" not in window.project.training  # not a project setting
    assert window.undo_stack.count() == 0 and not window.isWindowModified()
    assert window.training.settings.edit("training", ("device",), "cuda", "device")
    assert label.text() == "GPUs"
    options.note_gpus(1)  # torch has looked: one GPU, so at most one process per run
    assert spin.maximum() == 1 and spin.value() == 1 and options.processes == 1
    window.undo_stack.undo()  # device auto: GPUs where torch sees one
    assert label.text() == "GPUs" and spin.maximum() == 1
    options.note_gpus(0)
    assert label.text() == "Processes" and spin.maximum() == max(2, os.cpu_count() or 1)
    spin.setValue(2)
    window.new_project("digits-lenet")  # the option belongs to the window, not the project
    assert run_options(window.document) is options and spin.value() == 2


def test_process_kind_and_absolute_sources(tmp_path):
    cores = max(2, os.cpu_count() or 1)
    assert process_kind("cpu", 4) == ("Processes", cores)
    assert process_kind("auto", 0) == ("Processes", cores)
    assert process_kind("auto", None) == ("Processes", cores)  # torch not loaded yet
    assert process_kind("auto", 3) == ("GPUs", 3)
    assert process_kind("cuda:1", 2) == ("GPUs", 2)
    assert process_kind("cuda", None) == ("GPUs", cores)
    project = Project(data={"source": {"kind": "folder", "path": "images"}},
                      path=tmp_path / "p.cnnproj")
    project.data = absolute_data_paths(project.data, project.path.parent)
    assert project.data["source"]["path"] == str((tmp_path / "images").resolve())
    unsaved = Project(data={"source": {"kind": "idx", "images": "/abs/x", "labels": "y"}})
    unsaved.data = absolute_data_paths(unsaved.data, None)  # None: the working folder
    assert unsaved.data["source"] == {"kind": "idx", "images": "/abs/x",
                                      "labels": str(Path.cwd() / "y")}


# ---- real runs -------------------------------------------------------------------------


def test_a_two_process_run_streams_curves_and_saves_the_run(window, ui, qtbot, errors):
    window.project.training["checkpoint"] = "last"  # the saved weights: the last epoch's
    ui.controller.set_focus(activation_node="conv2", sample_index=3)
    epochs_seen, snaps = [], []
    ui.controller.epoch_added.connect(epochs_seen.append)
    _press(qtbot, window, "trainButton")
    assert ui.controller.running
    # Long before the processes have trained an epoch: every snapshot is seen.
    ui.controller._worker.snapshot_taken.connect(snaps.append)
    _wait_end(qtbot, ui)
    assert not errors, errors
    # Each epoch's record arrived as it ended, with its confusion matrix.
    assert [e["record"]["epoch"] for e in epochs_seen] == [1, 2]
    ctx = ui.controller.live.context
    assert len(ctx["y"]) == ctx["total"] == 359  # the whole validation split is shown
    for epoch in epochs_seen:
        assert epoch["confusion"].shape == (10, 10) and epoch["confusion"].sum() == 359
    run = window.project.runs[-1]
    assert run["status"] == "completed" and len(run["epochs"]) == 2
    assert run["distributed"]["world_size"] == 2 and run["distributed"]["global_batch_size"] == 32
    assert window.project.weights is not None and not window.undo_stack.isClean()
    loss = ui.curves.curve_data(window.findChild(QWidget, "lossPlot"))
    x, values = loss["train (batch)"]
    assert len(values) == 10 and np.all(np.isfinite(values))  # every batch of rank 0
    assert np.allclose(x, np.arange(1, 11) / 5)  # in epochs: 5 batches each
    assert list(loss["validation"][0]) == [1.0, 2.0]
    accuracy = ui.curves.curve_data(window.findChild(QWidget, "accuracyPlot"))
    assert len(accuracy["validation"][1]) == 2
    best = epochs_seen[run["best_epoch"] - 1]["confusion"]
    assert best.tolist() == run["confusion_matrix"]  # live = what the run recorded
    # Rank 0 sent the watched layers at each epoch's end (a completed run: no more).
    assert [s["token"] for s in snaps] == [ui.controller._token] * 2
    assert all(s["sample"] == 3 and s["filter_node"] == "conv1"
               and s["activation_node"] == "conv2" for s in snaps)
    assert all(s["filters"].shape == (16, 1, 3, 3) and np.isfinite(s["filters"]).all()
               for s in snaps)
    assert not np.array_equal(snaps[0]["filters"], snaps[1]["filters"])  # it trained
    saved = read_weights(window.project.weights)
    assert np.array_equal(snaps[1]["filters"], saved["conv1.weight"].numpy())
    # Rank 0 picked the sample shown here as sample 3: the same maps from the saved weights.
    source = TrainedModel.saved(window.project)
    maps = node_activation(source.module(), "conv2", source.prep.to_float(ctx["x"][3:4]))[0]
    assert snaps[1]["activation"].shape == (32, 8, 8)
    assert np.allclose(snaps[1]["activation"], maps.numpy(), atol=1e-5)
    filters = window.findChild(QWidget, "filterView")
    assert filters.tile_count == 16
    assert np.allclose(filters.image[:3, :3], saved["conv1.weight"][0, 0].numpy())
    matrix = window.findChild(QWidget, "confusionMatrix").matrix
    assert matrix.shape == (10, 10) and matrix.sum() == len(ctx["y"])
    assert "2 processes" in ui.controls.device.text()
    assert ui.controls.progress.format().startswith("Completed")
    assert any("training in 2 processes" in line and "each epoch's end" in line
               for line in ui.log.lines())
    [job] = ui.jobs
    assert not _processes_of(job) and not list(ui.temp.glob("cnnstudio-*"))  # nothing left behind


def test_stop_ends_every_process_and_keeps_the_weights(window, ui, qtbot, errors):
    window.project.training.update({"epochs": 200, "max_batches_per_epoch": None})
    _press(qtbot, window, "trainButton")
    qtbot.waitUntil(lambda: len(ui.controller.live.epochs) >= 1, timeout=RUN_TIMEOUT_MS)
    [job] = ui.jobs
    assert len(_processes_of(job)) >= 3  # the launcher and 2 ranks
    pause = window.findChild(QPushButton, "pauseButton")
    assert not pause.isEnabled() and "not available" in pause.toolTip()  # not offered
    window.training.toggle_pause()  # the menu's Pause (Ctrl+Shift+P): says so, runs on
    assert ui.controller.state == "running"
    assert not pause.isChecked()
    assert any("Pause is not available" in line for line in ui.log.lines())
    _press(qtbot, window, "stopButton")
    _wait_end(qtbot, ui)
    assert not errors, errors
    run = window.project.runs[-1]
    assert run["status"] == "stopped" and 1 <= len(run["epochs"]) < 200
    assert window.project.weights is not None
    assert window.findChild(QPushButton, "trainButton").text() == "Resume"
    assert not _processes_of(job) and not list(ui.temp.glob("cnnstudio-*"))
    assert pause.toolTip() == PAUSE_TIP  # idle again: the usual tip for the next runs
    # The stored stop position counts 2 ranks' batches: only 2 processes continue it (the
    # views show its earlier epochs only then; otherwise the engine starts afresh).
    resume = window.project.attachments[RESUME_MEMBER]
    assert _resumes_in(resume, 2) and not _resumes_in(resume, 1)
    assert not _resumes_in(None, 2) and not _resumes_in(b"not a resume state", 2)


def test_closing_the_window_ends_a_job_that_does_not_stop(window, ui, qtbot, monkeypatch):
    window.project.training.update({"epochs": 200, "max_batches_per_epoch": None})
    _press(qtbot, window, "trainButton")
    qtbot.waitUntil(lambda: len(ui.controller.live.step) > 0, timeout=RUN_TIMEOUT_MS)
    [job] = ui.jobs
    monkeypatch.setattr(job, "stop", lambda: None)  # a job deaf to the stop file
    assert ui.controller.shutdown(timeout_s=3)  # waits 3 s, then ends the processes
    outcome = ui.controller.last_outcome
    assert outcome["status"] == "failed" and "ended at once" in outcome["message"]
    assert not _processes_of(job) and not list(ui.temp.glob("cnnstudio-*"))


class _LinesJob:
    """A job that replays lines, its folder a real one (watch and snapshot files)."""

    def __init__(self, folder: Path, lines) -> None:
        self.folder, self.lines = folder, lines

    def events(self):
        yield from self.lines(self)

    watch = distributed_launch.DistributedJob.watch
    snapshot_arrays = distributed_launch.DistributedJob.snapshot_arrays


def test_the_worker_turns_lines_and_files_into_the_bridges_signals(qtbot, tmp_path):
    controls = RunControls()
    controls.focus(filter_node="conv1", activation_node="conv1", sample_index=2)
    worker = DistributedTrainingWorker(Project(), controls, 7, processes=2)
    epochs, snaps = [], []
    worker.epoch_finished.connect(epochs.append)
    worker.snapshot_taken.connect(snaps.append)
    filters = np.arange(18, dtype=np.float32).reshape(2, 1, 3, 3)
    np.savez(tmp_path / "snapshot-1.npz", filters=filters, activation=np.ones((2, 4, 4)))
    (tmp_path / "snapshot-2.npz").write_bytes(b"not a zip")
    watched = []

    def lines(job):
        worker._watch(job)  # as _run does, right after launch()
        watched.append(read_watch(tmp_path))
        yield {"event": "batch", "epoch": 1, "batch": 1, "batches": 1, "loss": 0.5, "lr": 0.1}
        controls.focus(activation_node="relu1", sample_index=5)  # the user picked a layer
        yield {"event": "epoch", "epoch": 1, "train_loss": 0.5, "val_loss": 0.4,
               "confusion_matrix": [[3, 1], [0, 4]]}
        watched.append(read_watch(tmp_path))  # written before that line was handled
        yield {"event": "snapshot", "epoch": 1, "path": str(tmp_path / "snapshot-1.npz"),
               "sample": 2, "filter_node": "conv1", "activation_node": "conv1"}
        yield {"event": "snapshot", "epoch": 1, "path": "snapshot-2.npz", "sample": 5,
               "filter_node": "conv1"}
        yield {"event": "snapshot", "epoch": 2, "path": None, "sample": 5,
               "filter_node": "conv9", "missing": True}
        yield {"event": "end", "status": "completed"}

    end = worker._follow(_LinesJob(tmp_path, lines))
    assert end == {"event": "end", "status": "completed"}
    assert watched == [{"filter_node": "conv1", "activation_node": "conv1", "sample_index": 2},
                       {"filter_node": "conv1", "activation_node": "relu1", "sample_index": 5}]
    [epoch] = epochs
    assert epoch["confusion"].tolist() == [[3, 1], [0, 4]] and epoch["confusion"].dtype == np.int64
    assert "confusion_matrix" not in epoch["record"] and epoch["token"] == 7
    first, unreadable, missing = snaps
    assert first["token"] == 7 and first["sample"] == 2
    assert np.array_equal(first["filters"], filters) and first["activation"].shape == (2, 4, 4)
    assert unreadable["error"].startswith("the snapshot could not be read")
    assert unreadable["filter_node"] == "conv1" and unreadable["filters"] is None
    assert missing == {"token": 7, "sample": 5, "missing": True, "filter_node": "conv9",
                       "filters": None}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["watch.json"]  # files consumed


def test_a_pick_reaches_rank_zero_at_once_and_a_failed_write_is_retried(tmp_path):
    controls = RunControls()
    worker = DistributedTrainingWorker(Project(), controls, 7, processes=2)
    job = _LinesJob(tmp_path, lambda _job: iter(()))
    controls.focus_listener = lambda: worker._watch(job)  # as _run sets it after launch()
    controls.focus(filter_node="conv2", sample_index=4)  # during validation: no lines come
    assert read_watch(tmp_path) == {"filter_node": "conv2", "activation_node": None,
                                    "sample_index": 4}
    assert not controls.refresh_requested

    def busy(**_kwargs):
        raise PermissionError("the file is in use")

    job.watch = busy  # this write fails
    controls.focus(sample_index=6)
    assert controls.refresh_requested  # so _follow writes it with the next line
    del job.watch
    worker._watch(job)
    assert read_watch(tmp_path)["sample_index"] == 6 and not controls.refresh_requested


class _DeafJob:
    """A launcher that outlives its grace periods until it is killed."""

    def __init__(self, survives: int) -> None:
        self.calls: list[str] = []
        self.survives = survives
        self.process = self

    def abort(self) -> None:
        self.calls.append("terminate")

    def kill(self) -> None:
        self.calls.append("kill")

    def wait(self, timeout: float | None = None) -> int:
        self.calls.append("wait")
        if self.survives > 0 and timeout is not None:
            self.survives -= 1
            raise subprocess.TimeoutExpired("launcher", timeout)
        return -9 if "kill" in self.calls else 0


def test_a_launcher_is_terminated_then_killed_when_it_does_not_end(monkeypatch):
    monkeypatch.setattr(distributed_worker, "END_GRACE_S", 0.01)
    job = _DeafJob(survives=0)
    assert _end(job) == 0 and job.calls == ["wait"]
    job = _DeafJob(survives=1)
    assert _end(job) == 0 and job.calls == ["wait", "terminate", "wait"]
    job = _DeafJob(survives=2)
    assert _end(job) == -9 and job.calls == ["wait", "terminate", "wait", "kill", "wait"]
    job = _DeafJob(survives=1)
    assert _end(job, terminate=True) == -9 and job.calls == ["terminate", "wait", "kill",
                                                               "wait"]


def test_unreadable_data_fails_at_once_with_one_line(window, ui, qtbot, errors, tmp_path):
    window.project.data = {"source": {"kind": "folder", "path": str(tmp_path / "missing")}}
    _press(qtbot, window, "trainButton")
    _wait_end(qtbot, ui)
    assert len(errors) == 1 and errors[0].startswith("Training failed: ")
    assert "missing" in errors[0] and "\n" not in errors[0]
    assert not ui.jobs and not window.project.runs  # no job was started, nothing changed
    assert window.findChild(QPushButton, "trainButton").isEnabled()  # the app goes on


def test_a_failing_job_reports_its_message_and_the_app_goes_on(window, ui, qtbot, errors):
    window.project.training["optimizer"] = {"name": "SGD", "lr": 1e6}
    _press(qtbot, window, "trainButton")
    _wait_end(qtbot, ui)
    assert len(ui.jobs) == 1 and errors and errors[-1].startswith("Training failed: ")
    assert "NaN" in errors[-1] or "infinite" in errors[-1]
    assert window.project.weights is None  # nothing better than the start was learned
    assert not _processes_of(ui.jobs[0]) and not list(ui.temp.glob("cnnstudio-*"))
    errors.clear()
    window.project.training["optimizer"] = {"name": "SGD", "lr": 0.05}
    _spin(window).setValue(1)  # the same window trains in its own process again
    _press(qtbot, window, "trainButton")
    _wait_end(qtbot, ui)
    assert not errors and window.project.runs[-1]["status"] == "completed"
    assert "distributed" not in window.project.runs[-1] and len(ui.jobs) == 1
