"""Training from the window: Train fills every live view; Stop, Pause/Resume and NaN
losses behave; editing or closing during a run loses nothing."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressBar, QPushButton, QWidget

from cnnstudio.data import load_dataset
from cnnstudio.nn import read_weights
from cnnstudio.train import Callback
from cnnstudio.ui.commands import SetParamsCommand

RUN_TIMEOUT_MS = 60_000


class Gate(Callback):
    """Records every batch and the weights after it; holds the training thread at batch
    `hold` until the test has pressed a button (then `release()`)."""

    def __init__(self, hold: int | None = None, delay: float = 0.0) -> None:
        self.hold, self.delay = hold, delay
        self.batches: list[tuple[int, int]] = []
        self.states: list[dict[str, torch.Tensor]] = []
        self.reached = threading.Event()
        self.go = threading.Event()

    def on_batch_end(self, trainer, info) -> None:
        self.batches.append((info.epoch, info.batch))
        time.sleep(self.delay)  # slower batches: each one reaches the GUI
        self.states.append({k: v.detach().clone() for k, v in trainer.module.state_dict().items()})
        if self.hold is not None and len(self.batches) == self.hold:
            self.reached.set()
            self.go.wait(20)

    def release(self) -> None:
        self.go.set()


@pytest.fixture
def ui(window, tmp_path, monkeypatch):
    """The window's training UI on digits-lenet, set for short runs."""
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    window.project.training.update({"epochs": 2, "max_batches_per_epoch": 5, "batch_size": 32})
    window.training.settings.reload()
    return window.training


def _button(window, name: str) -> QPushButton:
    button = window.findChild(QPushButton, name)
    assert button is not None, name
    return button


def _press(qtbot, window, name: str) -> None:
    qtbot.mouseClick(_button(window, name), Qt.MouseButton.LeftButton)


def _wait_end(qtbot, ui) -> None:
    qtbot.waitUntil(lambda: not ui.controller.running, timeout=RUN_TIMEOUT_MS)


def _val_size(project) -> int:
    data = project.data_settings()
    dataset = load_dataset(data["source"], input_shape=[1, 8, 8], val_fraction=data["val_fraction"])
    return len(dataset.splits["val"])


def test_train_button_fills_the_plots_filters_activations_and_confusion(window, ui, qtbot, errors):
    names = ("trainButton", "pauseButton", "stopButton", "trainingProgress", "lossPlot",
             "accuracyPlot", "filterView", "activationView", "confusionMatrix")
    assert all(window.findChild(QWidget, n) is not None for n in names)
    assert window.undo_stack.isClean()
    _press(qtbot, window, "trainButton")
    assert ui.controller.running and not _button(window, "trainButton").isEnabled()
    _wait_end(qtbot, ui)
    assert not errors
    run = window.project.runs[-1]
    assert run["status"] == "completed" and len(run["epochs"]) == 2
    assert window.project.weights is not None
    assert window.isWindowModified() and not window.undo_stack.isClean()  # asked on close
    loss = ui.curves.curve_data(window.findChild(QWidget, "lossPlot"))
    assert len(loss["train (batch)"][1]) == 10 and len(loss["train (smoothed)"][1]) == 10
    assert np.all(np.isfinite(loss["train (batch)"][1]))
    assert list(loss["validation"][0]) == [1.0, 2.0]
    accuracy = ui.curves.curve_data(window.findChild(QWidget, "accuracyPlot"))
    assert len(accuracy["validation"][1]) == 2 and np.all(accuracy["validation"][1] <= 100)
    assert len(accuracy["train"][1]) == 2
    filters = window.findChild(QWidget, "filterView")
    assert filters.tile_count == 16 and filters.image.shape == (4 * 4 - 1, 4 * 4 - 1)
    assert np.isnan(filters.image).sum() == 15 * 15 - 16 * 9  # the gaps
    tiles = filters.image[:3, :3]
    torch_w = read_weights(window.project.weights)["conv1.weight"][0, 0].numpy()
    assert tiles.shape == torch_w.shape
    activations = window.findChild(QWidget, "activationView")
    assert activations.maps.shape == (16, 8, 8)
    assert activations.image.shape == (4 * 9 - 1, 4 * 9 - 1)
    matrix = window.findChild(QWidget, "confusionMatrix").matrix
    assert matrix.shape == (10, 10) and matrix.sum() == _val_size(window.project)
    progress = window.findChild(QProgressBar, "trainingProgress")
    assert progress.format().startswith("Completed")
    assert any(line.startswith("epoch 2/2") for line in ui.log.lines())
    assert "cpu" in ui.controls.device.text()
    assert "cpu" in window.status.device.text()


def test_progress_shows_epoch_batch_speed_and_eta_while_training(window, ui, qtbot):
    gate = Gate(hold=3, delay=0.06)
    ui.controller.extra_callbacks = [gate]
    _press(qtbot, window, "trainButton")
    qtbot.waitUntil(gate.reached.is_set, timeout=RUN_TIMEOUT_MS)
    try:
        qtbot.waitUntil(lambda: "batch 3/5" in ui.controls.progress.format(), timeout=5000)
        text = ui.controls.progress.format()
        assert text.startswith("Epoch 1/2 · batch 3/5 · ") and "img/s" in text and "ETA" in text
    finally:
        gate.release()
    _wait_end(qtbot, ui)


def test_stop_ends_within_one_batch_and_keeps_the_last_step(window, ui, qtbot, errors):
    window.project.training.update({"epochs": 3, "max_batches_per_epoch": None})
    gate = Gate(hold=4)
    ui.controller.extra_callbacks = [gate]
    _press(qtbot, window, "trainButton")
    qtbot.waitUntil(gate.reached.is_set, timeout=RUN_TIMEOUT_MS)
    _press(qtbot, window, "stopButton")
    gate.release()
    _wait_end(qtbot, ui)
    assert gate.batches == [(1, 1), (1, 2), (1, 3), (1, 4)]  # not one batch more
    run = window.project.runs[-1]
    assert run["status"] == "stopped" and not errors
    saved = read_weights(window.project.weights)
    assert all(torch.equal(saved[k], v) for k, v in gate.states[-1].items())
    assert _button(window, "trainButton").text() == "Resume"
    _press(qtbot, window, "pauseButton")  # disabled while idle: nothing happens
    assert not ui.controller.running


def test_pause_and_resume_continue_the_same_run(window, ui, qtbot):
    gate = Gate(hold=3)
    ui.controller.extra_callbacks = [gate]
    runs_before = len(window.project.runs)
    _press(qtbot, window, "trainButton")
    qtbot.waitUntil(gate.reached.is_set, timeout=RUN_TIMEOUT_MS)
    _press(qtbot, window, "pauseButton")
    assert _button(window, "pauseButton").text() == "Resume"
    gate.release()
    qtbot.wait(400)
    assert len(gate.batches) == 3 and ui.controller.running  # held before batch 4
    _press(qtbot, window, "pauseButton")
    _wait_end(qtbot, ui)
    assert gate.batches == [(1, b) for b in range(1, 6)] + [(2, b) for b in range(1, 6)]
    assert len(window.project.runs) == runs_before + 1
    assert window.project.runs[-1]["status"] == "completed"


def test_resume_after_stop_continues_where_it_stopped(window, ui, qtbot):
    gate = Gate(hold=2)
    ui.controller.extra_callbacks = [gate]
    _press(qtbot, window, "trainButton")
    qtbot.waitUntil(gate.reached.is_set, timeout=RUN_TIMEOUT_MS)
    _press(qtbot, window, "stopButton")
    gate.release()
    _wait_end(qtbot, ui)
    assert [r["status"] for r in window.project.runs] == ["stopped"]
    gate.batches.clear()
    assert _button(window, "trainButton").text() == "Resume"
    _press(qtbot, window, "trainButton")
    _wait_end(qtbot, ui)
    assert gate.batches[0] == (1, 3)  # the batch counter goes on
    assert [r["status"] for r in window.project.runs] == ["completed"]  # one run record


def test_a_nan_loss_shows_the_message_and_leaves_a_usable_project(window, ui, qtbot, errors):
    assert ui.settings.edit("training", ("optimizer", "lr"), 1e6, "learning rate")
    _press(qtbot, window, "trainButton")
    _wait_end(qtbot, ui)
    assert errors and "Training failed" in errors[-1]
    assert "NaN" in errors[-1] or "infinite" in errors[-1]
    assert any("probably too high" in line for line in ui.log.lines())
    assert window.project.runs[-1]["status"] == "failed"
    assert window.project.weights is None  # nothing better than before was learned
    window.undo_stack.undo()  # the lr edit
    assert window.project.training["optimizer"].get("lr") != 1e6
    errors.clear()
    _press(qtbot, window, "trainButton")
    _wait_end(qtbot, ui)
    assert not errors and window.project.runs[-1]["status"] == "completed"


def test_editing_the_graph_during_training_does_not_touch_the_run(window, ui, qtbot):
    gate = Gate(hold=2)
    ui.controller.extra_callbacks = [gate]
    _press(qtbot, window, "trainButton")
    qtbot.waitUntil(gate.reached.is_set, timeout=RUN_TIMEOUT_MS)
    params = dict(window.project.graph.node("conv1").params, out_channels=8)
    window.undo_stack.push(SetParamsCommand(window.document, "conv1", params))
    gate.release()
    _wait_end(qtbot, ui)
    assert window.project.runs[-1]["status"] == "completed"
    assert read_weights(window.project.weights)["conv1.weight"].shape[0] == 16
    assert any("edited during training" in line for line in ui.log.lines())
    window.undo_stack.undo()  # back to 16 filters: the weights fit again
    assert window.project.graph.node("conv1").params["out_channels"] == 16


def test_closing_during_training_stops_it_and_keeps_the_result(window, ui, qtbot):
    gate = Gate(hold=2)
    ui.controller.extra_callbacks = [gate]
    _press(qtbot, window, "trainButton")
    qtbot.waitUntil(gate.reached.is_set, timeout=RUN_TIMEOUT_MS)
    threading.Timer(0.2, gate.release).start()
    assert window.maybe_save()  # what close, open and new ask first
    assert not ui.controller.running
    assert window.project.runs[-1]["status"] == "stopped"
    assert len(gate.batches) <= 3


def test_the_layer_lists_refill_once_per_turn_and_only_when_the_layers_change(window, ui,
                                                                               qtbot):
    from cnnstudio.ui.commands import RemoveNodesCommand

    fills = []
    fill = ui._fill_layers
    ui._fill_layers = lambda: (fills.append(1), fill())
    doc, combo = window.document, ui.activations.header.layer
    params = dict(window.project.graph.node("conv1").params, out_channels=8)
    window.undo_stack.push(SetParamsCommand(doc, "conv1", params))
    qtbot.wait(50)
    assert fills == []  # the same layers: the lists stay as they are
    count = combo.count()
    window.undo_stack.push(RemoveNodesCommand(doc, ["conv1"]))  # several events, one turn
    qtbot.waitUntil(lambda: fills == [1])
    assert combo.count() == count - 1 and combo.findText("conv1") < 0
    window.undo_stack.undo()
    qtbot.waitUntil(lambda: fills == [1, 1])
    assert combo.findText("conv1") >= 0
