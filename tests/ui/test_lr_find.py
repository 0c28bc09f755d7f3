"""The learning-rate finder beside the learning rate in the training settings."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

RUN_TIMEOUT_MS = 60_000


@pytest.fixture
def form(window, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    window.project.training.update({"batch_size": 32, "device": "cpu"})
    window.training.settings.reload()
    return window.training.settings


def _finder(form, qtbot):
    button = form.findChild(QPushButton, "lrFindButton")
    assert button is not None and button.text() == "Find…"
    lr_edit = form.fields[("training", "optimizer", "lr")]
    # Beside the learning rate: both in the widget that is the field of one form row.
    assert lr_edit.parentWidget() is button.parentWidget()
    assert form.form.getWidgetPosition(button.parentWidget())[0] >= 0
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    return form.lr_finder


def test_find_runs_off_the_gui_thread_and_use_it_is_one_undo_entry(window, form, qtbot,
                                                                    monkeypatch):
    threads: list[threading.Thread] = []
    from cnnstudio.train import lr_find

    original = lr_find.range_test

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(lr_find, "range_test", spy)
    weights = window.project.weights
    dialog = _finder(form, qtbot)
    assert dialog.isVisible() and dialog.running
    assert not dialog.use_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.running, timeout=RUN_TIMEOUT_MS)
    assert threads and threads[0] is not threading.main_thread()
    result = dialog.result
    assert result is not None and len(result.lrs) >= 3
    assert min(result.lrs) <= result.suggested_lr <= max(result.lrs)
    assert dialog.marker.isVisible()
    xs, _ys = dialog.curve.getData()
    assert len(xs) == len(result.lrs)
    assert window.project.weights == weights  # the project's weights are untouched
    old_lr = window.project.training.get("optimizer", {}).get("lr")
    steps = window.undo_stack.count()
    assert dialog.use_button.isEnabled()
    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    expected = float(f"{result.suggested_lr:.3g}")
    assert window.project.training["optimizer"]["lr"] == expected
    assert form.fields[("training", "optimizer", "lr")].text() == f"{expected:g}"
    assert window.undo_stack.count() == steps + 1
    window.undo_stack.undo()
    assert window.project.training.get("optimizer", {}).get("lr") == old_lr
    dialog.close()


def test_cancel_stops_the_test_with_the_curve_so_far(form, qtbot, monkeypatch):
    from cnnstudio.train import lr_find

    original = lr_find.range_test
    release = threading.Event()

    def slow_progress(*args, progress=None, **kwargs):
        def hold(done, most):
            progress(done, most)
            if done >= 2:
                release.wait(10)  # hold the worker until Cancel was pressed
        return original(*args, progress=hold, **kwargs)

    monkeypatch.setattr(lr_find, "range_test", slow_progress)
    dialog = _finder(form, qtbot)
    try:
        qtbot.waitUntil(lambda: dialog._done_batches[0] >= 2, timeout=RUN_TIMEOUT_MS)
        assert dialog.cancel_button.isEnabled()
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    finally:
        release.set()
    qtbot.waitUntil(lambda: not dialog.running, timeout=RUN_TIMEOUT_MS)
    assert dialog.result.cancelled and len(dialog.result.lrs) == 2
    assert "cancelled" in dialog.status.text()
    dialog.close()
