"""The Sweep dialog: runs off the GUI thread, adds its runs to the History, stops."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QAction

from cnnstudio.ui.training.sweep_dialog import SweepDialog

TIMEOUT_MS = 60_000


@pytest.fixture
def dialog(window, tmp_path, monkeypatch, qtbot):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    window.project.training.update({"epochs": 1, "max_batches_per_epoch": 2, "device": "cpu"})
    action = next(a for a in window.training.menu.actions() if a.text() == "S&weep…")
    assert isinstance(action, QAction)
    action.trigger()
    made = window.training._sweep_dialog
    assert isinstance(made, SweepDialog) and made.isVisible()
    yield made
    if made.running:
        made.stop()
        qtbot.waitUntil(lambda: not made.running, timeout=TIMEOUT_MS)


def test_a_sweep_adds_its_runs_ranked_to_the_history(window, dialog, qtbot):
    window.project.runs = [{"id": "run-1", "status": "completed", "epochs": []}]
    dialog.settings.setPlainText("training.optimizer.lr=0.001,0.01")
    dialog.epochs.setValue(1)
    assert dialog.start()
    assert not dialog.run_button.isEnabled() and dialog.stop_button.isEnabled()
    qtbot.waitUntil(lambda: "finished" in dialog.status.text(), timeout=TIMEOUT_MS)
    runs = window.project.runs
    assert [r["id"] for r in runs] == ["run-1", "run-2", "run-3"]
    assert [r["sweep"]["settings"] for r in runs[1:]] == [{"training.optimizer.lr": 0.001},
                                                         {"training.optimizer.lr": 0.01}]
    assert window.training.history.topLevelItemCount() == 3
    shown = [dialog.table.item(i, 1).text() for i in range(dialog.table.rowCount())]
    ranked = sorted(runs[1:], key=lambda r: (-r["best"]["val_accuracy"],
                                             r["best"]["val_loss"]))
    assert shown == [r["id"] for r in ranked]
    assert dialog.run_button.isEnabled() and not dialog.stop_button.isEnabled()


def test_a_bad_key_is_said_in_the_dialog(window, dialog, qtbot):
    dialog.settings.setPlainText("training.bogus=1,2")
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.run_button.isEnabled(), timeout=TIMEOUT_MS)
    assert "no setting 'bogus'" in dialog.status.text()
    assert window.project.runs == []


def test_stop_ends_the_sweep_and_records_no_stopped_trial(window, dialog, qtbot):
    window.project.training["max_batches_per_epoch"] = None  # long enough to be stopped
    dialog.settings.setPlainText("training.optimizer.lr=0.001,0.01")
    dialog.epochs.setValue(50)
    assert dialog.start()
    qtbot.waitUntil(lambda: "epoch" in dialog.status.text(), timeout=TIMEOUT_MS)
    dialog.stop_button.click()
    qtbot.waitUntil(lambda: "stopped" in dialog.status.text(), timeout=TIMEOUT_MS)
    assert window.project.runs == []  # the trial in progress stopped: not recorded
    assert not dialog.running
