"""The training form follows the one rule for names: any case in, canonical spelling kept."""

from __future__ import annotations

from PySide6.QtCore import Qt


def test_a_device_typed_in_capitals_is_kept_in_canonical_spelling(window, qtbot):
    form = window.training.settings
    combo = form.fields[("training", "device")]
    combo.lineEdit().clear()
    qtbot.keyClicks(combo.lineEdit(), "CPU")
    qtbot.keyClick(combo.lineEdit(), Qt.Key.Key_Return)
    assert window.project.training["device"] == "cpu"
    assert combo.currentText() == "cpu" and form.error.text() == ""
    steps = window.undo_stack.count()
    combo.lineEdit().setText("CpU")
    combo.lineEdit().editingFinished.emit()
    # The same setting in another case is no change: no undo entry, the form shows "cpu".
    assert window.undo_stack.count() == steps and combo.currentText() == "cpu"


def test_an_optimizer_named_in_any_case_in_the_file_shows_in_the_form(window, qtbot):
    from cnnstudio.project import project_from_dict, project_to_dict

    doc = project_to_dict(window.project)
    doc["training"] = {"optimizer": {"name": "sgd"}, "schedule": {"name": "STEP"}}
    window.set_project(project_from_dict(doc))
    form = window.training.settings
    assert form.fields[("training", "optimizer", "name")].currentText() == "SGD"
    assert form.fields[("training", "schedule", "name")].currentText() == "step"
    assert window.project.training["optimizer"]["name"] == "SGD"
    assert form.edit("training", ("optimizer", "lr"), 0.05, "learning rate")
    assert window.project.training == {"optimizer": {"name": "SGD", "lr": 0.05},
                                       "schedule": {"name": "step"}}
