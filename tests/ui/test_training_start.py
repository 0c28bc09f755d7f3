"""Train on trained weights asks: continue from them (the run records it, History shows
it, the curves go on along the epoch axis) or start fresh (seeded new weights); resuming
a stopped run asks nothing. Pausing freezes the progress text; the overlay legend stays
inside its plot."""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QPushButton

from cnnstudio.nn import read_weights
from cnnstudio.train import Callback
from cnnstudio.ui.training.history import COLUMNS, run_offsets, weights_epoch

RUN_TIMEOUT_MS = 60_000
START = COLUMNS.index("starts from")


class Hold(Callback):
    """Holds the training thread after batch `at` until released."""

    def __init__(self, at: int, delay: float = 0.0) -> None:
        self.at, self.count, self.delay = at, 0, delay
        self.reached, self.go = threading.Event(), threading.Event()

    def on_batch_end(self, trainer, info) -> None:
        time.sleep(self.delay)  # slower batches: each one reaches the GUI
        self.count += 1
        if self.count == self.at:
            self.reached.set()
            self.go.wait(20)


@pytest.fixture
def ui(window, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    # "last": the weights a run leaves are its last epoch's, so a warm start's place on
    # the axis does not depend on which epoch validated best.
    window.project.training.update({"epochs": 2, "max_batches_per_epoch": 5, "batch_size": 32,
                                    "checkpoint": "last"})
    return window.training


class Asker:
    """Stands in for the question: records what it was asked, answers `answer`."""

    def __init__(self, answer: str | None) -> None:
        self.answer, self.asked = answer, []

    def __call__(self, run_id):
        self.asked.append(run_id)
        return self.answer


def _train(qtbot, window, ui, answer: str | None = None) -> Asker:
    asker = Asker(answer)
    ui.chooser.ask = asker
    qtbot.mouseClick(window.findChild(QPushButton, "trainButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not ui.controller.running, timeout=RUN_TIMEOUT_MS)
    return asker


def _weights(project) -> dict[str, torch.Tensor]:
    return read_weights(project.weights)


def _row(ui, run_id: str):
    return next(ui.history.topLevelItem(i) for i in range(ui.history.topLevelItemCount())
                if ui.history.topLevelItem(i).text(0) == run_id)


def test_train_on_trained_weights_asks_then_continues_or_starts_fresh(window, ui, qtbot):
    first = _train(qtbot, window, ui, "continue")
    assert first.asked == []  # nothing trained yet: nothing to choose
    assert window.project.runs[-1]["init"] == "fresh"
    run1 = _weights(window.project)

    warm = _train(qtbot, window, ui, "continue")
    assert warm.asked == ["run-1"]
    assert window.project.runs[-1]["init"] == {"from_run": "run-1"}
    assert _row(ui, "run-2").text(START) == "run-1" and _row(ui, "run-1").text(START) == "fresh"
    assert "its epoch 2" in _row(ui, "run-2").toolTip(START)
    loss = ui.curves.curve_data(ui.curves.loss_plot)
    assert list(loss["validation"][0]) == [3.0, 4.0]  # goes on after run-1's 2 epochs
    assert loss["train (batch)"][0][0] > 2.0
    assert "continues run-1 after its epoch 2" in ui.curves.loss_plot.getPlotItem().titleLabel.text
    assert any("from the weights of run-1 (its epoch 2)" in line for line in ui.log.lines())

    fresh = _train(qtbot, window, ui, "fresh")
    assert fresh.asked == ["run-2"]
    assert window.project.runs[-1]["init"] == "fresh"
    assert _row(ui, "run-3").text(START) == "fresh"
    assert list(ui.curves.curve_data(ui.curves.loss_plot)["validation"][0]) == [1.0, 2.0]
    assert "continues" not in ui.curves.loss_plot.getPlotItem().titleLabel.text
    # Fresh means the seeded initial weights: the same run as run-1, bit for bit.
    again = _weights(window.project)
    assert all(torch.equal(again[k], v) for k, v in run1.items())

    runs = len(window.project.runs)
    cancelled = _train(qtbot, window, ui, None)
    assert cancelled.asked == ["run-3"] and len(window.project.runs) == runs
    assert ui.log.lines()[-1] == "Train cancelled"


def test_resume_asks_nothing_but_a_new_run_after_a_stop_does(window, ui, qtbot):
    hold = Hold(at=2)
    ui.controller.extra_callbacks = [hold]
    ui.chooser.ask = Asker("continue")
    qtbot.mouseClick(window.findChild(QPushButton, "trainButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(hold.reached.is_set, timeout=RUN_TIMEOUT_MS)
    ui.controller.stop()
    hold.go.set()
    qtbot.waitUntil(lambda: not ui.controller.running, timeout=RUN_TIMEOUT_MS)
    ui.controller.extra_callbacks = []
    assert window.findChild(QPushButton, "trainButton").text() == "Resume"
    resumed = _train(qtbot, window, ui, "fresh")
    assert resumed.asked == []  # Resume continues the stopped run: nothing to ask
    assert [r["status"] for r in window.project.runs] == ["completed"]
    # Stopped again, "New run" asks; "fresh" drops the resume state and starts run-2.
    hold = Hold(at=2)
    ui.controller.extra_callbacks = [hold]
    window.project.training["epochs"] = 3
    ui.chooser.ask = Asker("continue")
    ui.chooser.train(new_run=True)
    qtbot.waitUntil(hold.reached.is_set, timeout=RUN_TIMEOUT_MS)
    ui.controller.stop()
    hold.go.set()
    qtbot.waitUntil(lambda: not ui.controller.running, timeout=RUN_TIMEOUT_MS)
    assert window.project.runs[-1]["init"] == {"from_run": "run-1"}
    ui.controller.extra_callbacks = []
    asker = Asker("fresh")
    ui.chooser.ask = asker
    qtbot.mouseClick(window.findChild(QPushButton, "restartButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not ui.controller.running, timeout=RUN_TIMEOUT_MS)
    assert asker.asked == ["run-2"]
    assert [r["id"] for r in window.project.runs] == ["run-1", "run-2", "run-3"]
    assert window.project.runs[-1]["init"] == "fresh"
    assert window.project.runs[-1]["status"] == "completed"


def test_overlays_of_a_warm_chain_line_up_on_the_epoch_axis(window, ui, qtbot):
    _train(qtbot, window, ui)
    _train(qtbot, window, ui, "continue")
    ui.history.set_ticked("run-1", True)
    ui.history.set_ticked("run-2", True)
    curves = ui.curves.curve_data(ui.curves.loss_plot)
    assert list(curves["run-1 train"][0]) == [1.0, 2.0]
    assert list(curves["run-2 train"][0]) == [3.0, 4.0]


def test_run_offsets_follow_the_chain_and_survive_bad_records():
    def run(rid, init, epochs, best=None, checkpoint="best"):
        return {"id": rid, "init": init, "status": "completed", "best_epoch": best,
                "settings": {"checkpoint": checkpoint},
                "epochs": [{"epoch": e + 1} for e in range(epochs)]}

    runs = [run("run-1", "fresh", 5, best=3), run("run-2", {"from_run": "run-1"}, 4, best=4),
            run("run-3", {"from_run": "run-2"}, 2, checkpoint="last"),
            run("run-4", {"from_run": "run-9"}, 2), {"id": "run-5"},
            run("run-6", {"from_run": "run-6"}, 1)]  # a loop, as a hand edit could make
    assert weights_epoch(runs[0]) == 3 and weights_epoch(runs[2]) == 2
    # A run stopped in its epoch 5 keeps (with checkpoint "best") its best epoch's weights.
    stopped = dict(run("run-7", "fresh", 4, best=2), status="stopped")
    assert weights_epoch(stopped) == 2
    assert run_offsets(runs) == {"run-1": 0, "run-2": 3, "run-3": 7, "run-4": 0, "run-5": 0,
                                 "run-6": 0}


def test_pausing_freezes_the_progress_text_and_says_paused(window, ui, qtbot):
    hold = Hold(at=3, delay=0.06)
    ui.controller.extra_callbacks = [hold]
    qtbot.mouseClick(window.findChild(QPushButton, "trainButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(hold.reached.is_set, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: "img/s" in ui.controls.progress.full_text(), timeout=5000)
    qtbot.mouseClick(window.findChild(QPushButton, "pauseButton"), Qt.MouseButton.LeftButton)
    hold.go.set()
    progress = ui.controls.progress
    qtbot.waitUntil(lambda: progress.full_text().startswith("Paused"), timeout=5000)
    qtbot.wait(400)  # the batch in flight ends; then nothing moves
    frozen = progress.full_text()
    assert re.fullmatch(r"Paused · Epoch 1/2 · batch [1-4]/5", frozen), frozen
    for _ in range(3):
        qtbot.wait(300)
        ui.refresh(force=True)
        assert progress.full_text() == frozen  # no speed or time left drifting
    qtbot.mouseClick(window.findChild(QPushButton, "pauseButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not ui.controller.running, timeout=RUN_TIMEOUT_MS)
    assert window.project.runs[-1]["status"] == "completed"


def test_the_progress_text_is_cut_to_its_bar_never_past_it(window, ui):
    bar = ui.controls.progress
    bar.resize(200, bar.height())
    text = "Epoch 10/20 · batch 1,234/5,000 · 12,345 img/s · ETA 1:02:03"
    bar.setFormat(text)
    shown = bar.text()
    assert shown != text and shown.endswith("…") and bar.full_text() == text
    assert bar.fontMetrics().horizontalAdvance(shown) <= bar.contentsRect().width()
    assert bar.toolTip() == text


def test_the_overlay_legend_stays_inside_the_loss_plot(qtbot):
    from cnnstudio.ui.training.plots import CurvesView

    view = CurvesView()
    qtbot.addWidget(view)
    view.resize(900, 230)
    view.show()
    qtbot.waitExposed(view)
    runs = [{"id": f"run-{i}", "epochs": [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e,
                                            "val_accuracy": 0.5, "lr": 0.01} for e in (1, 2, 3)]}
            for i in range(1, 9)]
    view.set_overlays(runs, {"run-2": 3})
    QApplication.processEvents()
    item = view.loss_plot.getPlotItem()
    legend = item.legend
    assert [label.text for _, label in legend.items][3:] == [f"run-{i}" for i in range(1, 9)]
    assert legend.columnCount > 1
    inside = item.vb.sceneBoundingRect()
    box = legend.sceneBoundingRect()
    assert inside.top() <= box.top() and box.bottom() <= inside.bottom() + 1
    curves = view.curve_data(view.loss_plot)
    assert list(curves["run-2 train"][0]) == [4.0, 5.0, 6.0]
    assert np.allclose(curves["run-1 val"][1], [1.2, 0.6, 0.4])


def test_continuing_from_weights_that_no_longer_fit_is_drawn_and_said_as_fresh(
        window, ui, qtbot):
    """conv1 edited after run-1: its weights cannot be loaded, the engine starts fresh;
    the curves must not go on after run-1, and the log says why."""
    from cnnstudio.ui.commands import SetParamsCommand

    _train(qtbot, window, ui, "continue")
    params = dict(window.project.graph.node("conv1").params, out_channels=8)
    window.undo_stack.push(SetParamsCommand(window.document, "conv1", params))
    contexts = []
    ui.controller.context_ready.connect(contexts.append)
    _train(qtbot, window, ui, "continue")
    assert contexts and window.project.runs[-1]["init"] == "fresh"
    assert ui.controller.origin.x_offset == 0 and ui.controller.origin.from_run is None
    assert "continues" not in ui.curves.loss_plot.getPlotItem().titleLabel.text
    assert min(ui.curves.curve_data(ui.curves.loss_plot)["validation"][0]) == 1.0
    assert "the trained weights do not fit the network" in ui.log.toPlainText()


def test_an_imported_models_weights_are_named_in_the_question_and_the_model_card(
        window, ui, qtbot):
    from cnnstudio.nn.export.card import _init, _started

    _train(qtbot, window, ui)  # weights to continue from
    window.project.runs.clear()  # … that no recorded run left, as an import's
    window.project.extra["imported"] = {"from": "net.onnx", "kind": "onnx"}
    asker = _train(qtbot, window, ui, None)  # the question, cancelled
    assert asker.asked == ["imported net.onnx"]
    record = {"init": {"from_run": None, "imported": "net.onnx"}}
    assert _init(record) == "from the imported `net.onnx`"
    assert "imported from `net.onnx`" in _started(record)
