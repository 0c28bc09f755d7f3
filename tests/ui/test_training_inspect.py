"""The training settings form, and inspecting a trained model from the window: selection
sync, confusion-matrix samples, image prediction with Grad-CAM, receptive fields, the
kernel playground and the run history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtWidgets import QPushButton

from cnnstudio.core.templates import TEMPLATES
from cnnstudio.nn.internals import receptive_field_box
from cnnstudio.project import project_from_dict, write_project
from cnnstudio.ui.training.dialogs import KernelPlayground, edge_image

RUN_TIMEOUT_MS = 60_000


@pytest.fixture
def ui(window, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    window.project.training.update({"epochs": 2, "max_batches_per_epoch": 8, "batch_size": 32})
    window.training.chooser.ask = lambda run_id: "continue"  # Train on trained weights asks
    return window.training


def show_view(qtbot, window, ui, view) -> None:
    """Show the window with `view`'s tab raised: the idle views compute only when seen."""
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    ui.dock.show()
    ui.dock.raise_()
    ui.tabs.setCurrentWidget(view)
    window.resizeDocks([ui.dock], [420], Qt.Orientation.Vertical)
    qtbot.waitUntil(view.isVisible)


def _train(qtbot, window, ui) -> None:
    qtbot.mouseClick(window.findChild(QPushButton, "trainButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not ui.controller.running, timeout=RUN_TIMEOUT_MS)
    assert window.project.runs[-1]["status"] == "completed"


def test_settings_edits_are_validated_and_undoable(window, ui, qtbot):
    form = ui.settings
    lr = form.fields[("training", "optimizer", "lr")]
    lr.setText("0.01")
    lr.editingFinished.emit()
    assert window.project.training["optimizer"]["lr"] == 0.01
    assert window.undo_stack.undoText() == "Set Learning rate to 0.01"
    lr.setText("-1")
    lr.editingFinished.emit()
    assert window.project.training["optimizer"]["lr"] == 0.01  # refused
    assert "training.optimizer.lr" in form.error.text() and lr.text() == "0.01"
    window.undo_stack.undo()
    assert window.project.training["optimizer"]["lr"] == 0.0005  # the template's
    assert lr.text() == "0.0005"
    momentum = form.fields[("training", "optimizer", "momentum")]
    assert not form.form.isRowVisible(momentum)
    form.fields[("training", "optimizer", "name")].setCurrentText("SGD")
    assert window.project.training["optimizer"]["name"] == "SGD"
    assert form.form.isRowVisible(momentum) and momentum.text() == "0.9"
    form.fields[("data", "augmentation", "flip")].setChecked(True)
    assert window.project.data["augmentation"]["flip"] is True
    batches = form.fields[("training", "max_batches_per_epoch")]
    batches.setValue(0)
    assert window.project.training["max_batches_per_epoch"] is None  # "all"
    assert "epochs" in window.project.training and "amp" not in window.project.training


def test_selecting_a_node_shows_it_in_the_filter_and_activation_views(window, ui, qtbot):
    _train(qtbot, window, ui)
    show_view(qtbot, window, ui, ui.filters)
    window.document.set_selection(["conv2"])
    qtbot.waitUntil(lambda: ui.filters.node == "conv2" and ui.filters.kind == "pairs")
    assert ui.filters.tile_count == 32 * 16
    assert ui.filters.header.caption.text() == "the saved weights"
    qtbot.waitUntil(lambda: ui.activations.maps.shape == (32, 8, 8))
    window.document.set_selection(["pool1"])
    qtbot.waitUntil(lambda: ui.activations.maps.shape == (32, 4, 4))
    assert ui.filters.node == "conv2"  # not a convolution: the filter view keeps conv2
    ui.activations.sample.setValue(5)
    assert ui.controller.focus["sample_index"] == 5
    assert ui.activations.sample_image.shape == (8, 8)


def test_clicking_a_map_pixel_outlines_its_receptive_field(window, ui, qtbot):
    _train(qtbot, window, ui)
    show_view(qtbot, window, ui, ui.activations)
    window.document.set_selection(["pool1"])
    qtbot.waitUntil(lambda: ui.activations.maps.shape == (32, 4, 4))
    got: list[tuple[int, int, int]] = []
    ui.activations.pixel_clicked.connect(lambda *a: got.append(a))
    grid = ui.activations.grid
    qtbot.mouseClick(grid.plot.viewport(), Qt.MouseButton.LeftButton,
                     pos=grid.picture_point(5, 2, 3).toPoint())  # map 5, pixel (2, 3)
    qtbot.waitUntil(lambda: got == [(5, 2, 3)])
    box = receptive_field_box(window.project.graph, "pool1", (2, 3))
    assert box.size == (6, 6) and box.start == (2 * 2 - 2, 3 * 2 - 2)  # two 3×3 p1 convs, 2×2 pool
    rect = ui.activations.field.rect()
    (r0, r1), (c0, c1) = box.clipped((8, 8))
    assert (rect.top(), rect.bottom(), rect.left(), rect.right()) == (r0, r1, c0, c1)
    assert ui.activations.field.isVisible()
    assert "rows 2–7, columns 4–7" in ui.activations.info.text()


def test_a_confusion_cell_lists_its_samples_most_confident_first(window, ui, qtbot):
    _train(qtbot, window, ui)
    matrix = ui.confusion.matrix
    r = int(np.argmax(np.diag(matrix)))
    assert ui.actions.show_cell(r, r) is None  # the samples are classified on the worker
    qtbot.waitUntil(lambda: ui.actions.last_cell is not None)
    dialog = ui.actions.last_cell
    assert dialog.list.count() == matrix[r, r]
    assert np.all(np.diff(dialog.confidences) <= 0)
    off = np.argwhere(matrix - np.diag(np.diag(matrix)) > 0)
    if len(off):
        t, p = off[0]  # classified already: at once
        assert ui.actions.show_cell(int(t), int(p)).list.count() == matrix[t, p]
    ui.confusion.cellClicked.emit(r, r)  # the table's own click does the same
    assert ui.actions.dialogs[-1].list.count() == matrix[r, r]


def _digit_png(ui, tmp_path: Path) -> Path:
    ctx = ui.controller.live.context
    path = tmp_path / "digit.png"
    Image.fromarray(np.asarray(ctx["x"][0, 0], np.uint8)).save(path)
    return path


def test_predict_an_image_gives_top_classes_and_a_grad_cam(window, ui, qtbot, tmp_path, errors):
    assert ui.actions.predict_file(tmp_path / "none.png") is False
    assert errors and "Train the network first" in errors[-1]
    _train(qtbot, window, ui)
    assert ui.actions.predict_file(tmp_path / "none.png") is True  # read on the worker
    qtbot.waitUntil(lambda: "Cannot predict none.png" in errors[-1])
    path = _digit_png(ui, tmp_path)
    ui.actions.ask_image_path = lambda: str(path)
    assert ui.actions.open_image()
    qtbot.waitUntil(lambda: ui.actions.last_prediction is not None)
    dialog = ui.actions.last_prediction
    top = dialog.prediction.top
    assert len(top) == 5 and top[0][1] >= top[1][1] and sum(p for _, p in top) <= 1.0001
    assert dialog.prediction.cam.shape == (8, 8) and dialog.prediction.cam.min() >= 0
    assert dialog.prediction.layer == "relu2"  # conv2's rectified maps
    assert dialog.table.rowCount() == 5


def test_dropping_an_image_predicts_it_and_project_files_still_open(window, ui, qtbot,
                                                                     tmp_path, drop_on):
    _train(qtbot, window, ui)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(_digit_png(ui, tmp_path)))])
    assert drop_on(window.view, mime)
    qtbot.waitUntil(lambda: any(d.objectName() == "predictionDialog"
                                for d in ui.actions.dialogs), timeout=5000)
    project = tmp_path / "xo.cnnproj"
    write_project(project_from_dict(TEMPLATES["xo"].project_dict()), project)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(project))])
    assert drop_on(window.view, mime)
    qtbot.waitUntil(lambda: window.project.path == project, timeout=5000)


def test_kernel_playground_sobel_x_finds_the_vertical_edges(qtbot):
    dialog = KernelPlayground(None)
    qtbot.addWidget(dialog)
    dialog.preset.setCurrentText("Sobel x")
    out = dialog.output
    image = edge_image()[0] / 255.0
    assert out.shape == image.shape
    rows = slice(10, 18)
    edge_cols = [6, 7, 20, 21]  # either side of the square's left and right edges
    assert np.all(np.abs(out[rows][:, edge_cols]) >= 3.0)
    assert np.all(np.abs(out[rows][:, 10:18]) < 1e-6)  # inside the square: flat
    dialog.preset.setCurrentText("Sobel y")
    assert np.all(np.abs(dialog.output[rows][:, 10:18]) < 1e-6)
    dialog.kernel.item(1, 1).setText("2")
    assert dialog.preset.currentText() == "Custom" and dialog.kernel_values()[0][1, 1] == 2


def test_history_lists_runs_and_overlays_two_of_them(window, ui, qtbot):
    _train(qtbot, window, ui)
    _train(qtbot, window, ui)
    history = ui.history
    assert history.topLevelItemCount() == 2
    assert history.topLevelItem(0).text(0) == "run-2"
    assert history.topLevelItem(0).text(1) == "completed"
    assert history.topLevelItem(0).text(2) == "2"
    assert "accuracy" in history.topLevelItem(0).text(3)
    history.set_ticked("run-1", True)
    history.set_ticked("run-2", True)
    curves = ui.curves.curve_data(ui.curves.loss_plot)
    assert len(curves["run-1 train"][1]) == 2 and len(curves["run-2 val"][1]) == 2
    history.set_ticked("run-1", False)
    history.set_ticked("run-2", False)
    assert "run-1 train" not in ui.curves.curve_data(ui.curves.loss_plot)
    history.select_run("run-1")
    assert [r["id"] for r in history.shown_runs()] == ["run-1"]
    assert ui.confusion.matrix.sum() > 0


def test_a_trained_project_opened_later_can_be_inspected(window, ui, qtbot, tmp_path):
    _train(qtbot, window, ui)
    path = tmp_path / "trained.cnnproj"
    assert window.save_project(path)
    window.new_project("xo")
    assert ui.controller.live.context is None and ui.confusion.matrix.size == 0
    assert window.open_project(path)
    assert ui.confusion.matrix.sum() > 0  # the last run's, from the file
    show_view(qtbot, window, ui, ui.filters)
    qtbot.waitUntil(lambda: ui.filters.tile_count == 16)  # the saved weights, no run needed
    assert ui.filters.header.caption.text() == "the saved weights"
    qtbot.waitUntil(lambda: ui.controller.live.context is not None, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: ui.activations.maps.shape == (16, 8, 8))
    r = int(np.argmax(np.diag(ui.confusion.matrix)))
    ui.actions.show_cell(r, r)
    qtbot.waitUntil(lambda: ui.actions.last_cell is not None)
    assert ui.actions.last_cell.list.count() == ui.confusion.matrix[r, r]
    assert len(ui.curves.curve_data(ui.curves.loss_plot)["run-1 train"][1]) == 2
