"""History → compare: select two runs (Ctrl+click) and `runCompare` shows the settings that
differ, the metrics and the layers that changed, which it selects on the canvas."""

from __future__ import annotations

import copy

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableWidget, QWidget

from cnnstudio.project.settings import fill_training


def _runs(project):
    """Two run records of the window's project: run-2 with another seed, its first conv
    wider and a layer the current graph does not have."""
    graph = project.graph.to_dict()
    a = {"id": "run-1", "status": "completed", "init": "fresh", "best_epoch": 2,
         "settings": fill_training(project.training), "data": copy.deepcopy(project.data),
         "graph": graph, "device": "cpu", "started": "2026-01-01T10:00:00+00:00",
         "epochs": [{"epoch": 1, "train_loss": 1.2, "val_loss": 1.0, "val_accuracy": 0.6},
                    {"epoch": 2, "train_loss": 0.7, "val_loss": 0.6, "val_accuracy": 0.8}],
         "best": {"epoch": 2, "train_loss": 0.7, "val_loss": 0.6, "val_accuracy": 0.8}}
    b = copy.deepcopy(a)
    b.update(id="run-2", started="2026-01-01T11:00:00+00:00")
    b["settings"]["seed"] = a["settings"]["seed"] + 7
    conv = next(n for n in b["graph"]["nodes"] if n["type"] == "Conv2d")
    conv["params"]["out_channels"] = int(conv["params"]["out_channels"]) + 3
    b["graph"]["nodes"].append({"id": "gone_later", "type": "ReLU", "params": {},
                                "inputs": [conv["id"]]})
    b["best"]["val_accuracy"] = 0.9
    b["epochs"][1]["val_accuracy"] = 0.9
    return a, b, conv["id"]


def _cells(table: QTableWidget) -> list[list[str]]:
    return [[table.item(r, c).text() for c in range(table.columnCount())]
            for r in range(table.rowCount())]


def _click(qtbot, history, run_id: str, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    item = history.findItems(run_id, Qt.MatchFlag.MatchExactly, 0)[0]
    rect = history.visualItemRect(item)
    qtbot.mouseClick(history.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def test_selecting_two_runs_compares_them_and_selects_the_changed_layers(window, qtbot):
    a, b, conv = _runs(window.project)
    window.project.runs = [a, b]
    ui = window.training
    ui.history.set_runs(window.project.runs)
    ui.tabs.setCurrentWidget(ui.history_tab)
    compare = window.findChild(QWidget, "runCompare")
    assert compare is ui.run_compare

    _click(qtbot, ui.history, "run-1")
    assert compare.runs == [] and not compare.body.isVisibleTo(compare)
    _click(qtbot, ui.history, "run-2", Qt.KeyboardModifier.ControlModifier)

    assert [r["id"] for r in compare.runs] == ["run-1", "run-2"]
    assert compare.body.isVisibleTo(compare)
    seed = a["settings"]["seed"]
    assert _cells(compare.settings) == [["training.seed", str(seed), str(seed + 7)]]
    assert ["val_accuracy", "0.8", "0.9"] in _cells(compare.metrics)
    layers = _cells(compare.layers)
    assert [row[:2] for row in layers] == [["gone_later", "run-2"], [conv, "run-2"]]
    out = int(b["graph"]["nodes"][[n["id"] for n in b["graph"]["nodes"]].index(conv)]["params"]["out_channels"])
    assert layers[0][2] == "added" and layers[1][2] == f"out_channels {out - 3} → {out}"
    # The changed layer the current graph has is selected on the canvas.
    assert window.document.selection == [conv]
    assert set(compare.curve_names(compare.loss_plot)) == {None, "run-1", "run-2"}

    window.document.set_selection([])
    compare.show_button.click()
    assert window.document.selection == [conv]

    _click(qtbot, ui.history, "run-1")  # back to one run: the hint only
    assert compare.runs == [] and "Select two or more runs" in compare.hint.text()


def test_identical_runs_show_no_differences(window, qtbot):
    a, _b, _conv = _runs(window.project)
    b = {**copy.deepcopy(a), "id": "run-2"}
    window.project.runs = [a, b]
    ui = window.training
    ui.history.set_runs(window.project.runs)
    ui.history.selectAll()
    compare = ui.run_compare
    assert [r["id"] for r in compare.runs] == ["run-1", "run-2"]
    assert _cells(compare.settings) == [["(the same settings)", "", ""]]
    assert compare.layers.rowCount() == 0 and compare.layers_note.text() == "The same graph"
    assert not compare.show_button.isEnabled()
