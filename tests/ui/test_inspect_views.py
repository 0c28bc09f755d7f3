"""Legible inside views: the untrained network before any run, colour bars, the hovered
tile and value, a map enlarged and back, grids that fill their panel, a dense layer as
bars, a line saying what each view shows; prediction beside the network's view of the
image with a warning for an image unlike the training data; the kernel playground's
refusal of a cell that is not a number and its use of the project's own images."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QPushButton

from cnnstudio.nn.internals import apply_kernel
from cnnstudio.train import Callback
from cnnstudio.ui.training import tiles
from cnnstudio.ui.training.background import Background
from cnnstudio.ui.training.colorbar import value_text
from cnnstudio.ui.training.dialogs import KernelPlayground
from cnnstudio.ui.training.image_checks import input_warning
from cnnstudio.ui.training.images import ActivationView

RUN_TIMEOUT_MS = 60_000


@pytest.fixture
def ui(window, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    window.project.training.update({"epochs": 2, "max_batches_per_epoch": 8, "batch_size": 32})
    return window.training


def show_view(qtbot, window, ui, view) -> None:
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


def double_click(widget, pos) -> None:
    """What a real double-click delivers (QTest.mouseDClick leaves out the first press
    and release, which pyqtgraph needs to see a double-click)."""
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    point = QPointF(pos)
    for kind, buttons in ((QEvent.Type.MouseButtonPress, left),
                          (QEvent.Type.MouseButtonRelease, none),
                          (QEvent.Type.MouseButtonDblClick, left),
                          (QEvent.Type.MouseButtonRelease, none)):
        QApplication.sendEvent(widget, QMouseEvent(kind, point, widget.mapToGlobal(point), left,
                                                   buttons, Qt.KeyboardModifier.NoModifier))


def hover(qtbot, grid, index: int, y: int, x: int) -> None:
    """Move the mouse onto tile `index`'s pixel (y, x), from a pixel beside it."""
    for _ in range(10):  # pyqtgraph drops moves closer together than 10 ms: again if so
        point = grid.picture_point(index, y, x).toPoint()
        for pos in (point - QPoint(2, 0), point):
            qtbot.wait(30)
            qtbot.mouseMove(grid.plot.viewport(), pos)
        qtbot.wait(30)
        if grid._hover is not None and grid.tile_pixel(*grid._hover) == (index, y, x):
            return


class _StartWeights(Callback):
    def on_fit_start(self, trainer: Any) -> None:
        self.conv1 = trainer.module.conv1.weight.detach().clone().numpy()


# ---- filters and activations ---------------------------------------------------------------


def test_before_training_the_views_show_the_initial_weights_training_starts_from(
        window, ui, qtbot):
    assert ui.filters.tile_count == 0  # hidden: nothing computed (torch is not needed yet)
    show_view(qtbot, window, ui, ui.filters)
    qtbot.waitUntil(lambda: ui.filters.tile_count == 16, timeout=RUN_TIMEOUT_MS)
    assert ui.filters.header.caption.text().startswith("untrained, random initialisation")
    shown = ui.filters.weights.copy()
    assert shown.shape == (16, 1, 3, 3)
    m = float(np.abs(shown).max())
    bar = ui.filters.grid.colorbar
    assert bar.isVisible() and (bar.low, bar.high) == pytest.approx((-m, m))
    assert bar.labels() == [value_text(m), "0", value_text(-m)]
    assert ui.filters.what.text().startswith(
        "Each square is one 3×3 filter of conv1: 16 filters × 1 input channel; blue negative,"
        " red positive")
    ui.tabs.setCurrentWidget(ui.activations)  # loads the project's samples for the maps
    qtbot.waitUntil(lambda: ui.activations.maps.shape == (16, 8, 8), timeout=RUN_TIMEOUT_MS)
    assert ui.activations.header.caption.text().startswith("untrained")
    assert ui.activations.grid.colorbar.high > ui.activations.grid.colorbar.low
    start = _StartWeights()
    ui.controller.extra_callbacks = [start]
    _train(qtbot, window, ui)
    np.testing.assert_array_equal(start.conv1, shown)  # exactly where the run began


def test_an_edit_of_the_untrained_network_shows_its_new_initial_filters(window, ui, qtbot):
    from cnnstudio.ui.commands import SetParamsCommand

    show_view(qtbot, window, ui, ui.filters)
    qtbot.waitUntil(lambda: ui.filters.tile_count == 16, timeout=RUN_TIMEOUT_MS)
    params = dict(window.project.graph.node("conv1").params, out_channels=8, kernel_size=5,
                  padding=2)
    window.undo_stack.push(SetParamsCommand(window.document, "conv1", params))
    qtbot.waitUntil(lambda: ui.filters.tile_count == 8)
    assert ui.filters.weights.shape == (8, 1, 5, 5)
    assert "one 5×5 filter of conv1: 8 filters" in ui.filters.what.text()


def test_hovering_a_filter_names_it_and_its_weight(window, ui, qtbot):
    show_view(qtbot, window, ui, ui.filters)
    qtbot.waitUntil(lambda: ui.filters.tile_count == 16, timeout=RUN_TIMEOUT_MS)
    grid = ui.filters.grid
    assert grid.status.text().startswith("Hover for values; double-click a filter")
    hover(qtbot, grid, 5, 1, 2)
    value = value_text(float(ui.filters.weights[5, 0, 1, 2]))
    qtbot.waitUntil(lambda: ui.filters.hover.text() == f"filter 5, weight (1, 2) = {value}")


def test_double_clicking_a_map_enlarges_it_and_back_returns_to_the_grid(window, ui, qtbot):
    show_view(qtbot, window, ui, ui.activations)
    qtbot.waitUntil(lambda: ui.activations.maps.shape == (16, 8, 8), timeout=RUN_TIMEOUT_MS)
    grid = ui.activations.grid
    whole = grid.image.copy()
    double_click(grid.plot.viewport(), grid.picture_point(7, 3, 3))
    qtbot.waitUntil(lambda: grid.enlarged == 7)
    np.testing.assert_array_equal(grid.image, ui.activations.maps[7])
    assert grid.back.isVisible() and grid.status.text().startswith("conv1 map 7, enlarged")
    # A click in the enlarged map still reads that map's pixel.
    got: list[tuple[int, int, int]] = []
    ui.activations.pixel_clicked.connect(lambda *a: got.append(a))
    qtbot.mouseClick(grid.plot.viewport(), Qt.MouseButton.LeftButton,
                     pos=grid.picture_point(7, 6, 1).toPoint())
    qtbot.waitUntil(lambda: got == [(7, 6, 1)])
    hover(qtbot, grid, 7, 2, 4)
    value = value_text(float(ui.activations.maps[7, 2, 4]))
    qtbot.waitUntil(lambda: ui.activations.hover.text() == f"map 7, pixel (2, 4) = {value}")
    qtbot.mouseClick(grid.back, Qt.MouseButton.LeftButton)
    assert grid.enlarged == -1 and not grid.back.isVisible()
    np.testing.assert_array_equal(grid.image, whole)
    grid.enlarge(3)
    qtbot.keyClick(grid, Qt.Key.Key_Escape)
    assert grid.enlarged == -1


def test_the_maps_grid_fills_a_wide_panel(qtbot):
    view = ActivationView()
    qtbot.addWidget(view)
    view.resize(1100, 330)
    view.show()
    qtbot.waitExposed(view)
    maps = np.random.default_rng(0).random((64, 24, 24)).astype(np.float32)
    view.show_maps("relu1", maps)
    grid = view.grid

    def map_side() -> float:  # on-screen pixels of one 24-pixel map
        a, b = grid.picture_point(0, 0, 0), grid.picture_point(0, 0, 23)
        return (b.x() - a.x()) * 24 / 23

    qtbot.waitUntil(lambda: grid.columns > 8)  # not the square 8 × 8
    plot = grid.plot.viewport()
    rows = -(-64 // grid.columns)
    square = min(plot.width() / 8, plot.height() / 8)  # what an 8 × 8 grid would get
    assert map_side() > 1.3 * square
    used = max(grid.columns * map_side() / plot.width(), rows * map_side() / plot.height())
    assert used > 0.9  # the grid fills the panel in one direction
    assert rows * map_side() <= plot.height() + 1 and grid.columns * map_side() <= plot.width() + 1


def test_a_dense_layer_is_shown_as_bars_labelled_by_class(window, ui, qtbot):
    _train(qtbot, window, ui)
    show_view(qtbot, window, ui, ui.activations)
    window.document.set_selection(["classifier"])
    qtbot.waitUntil(lambda: ui.activations.maps.shape == (10,), timeout=RUN_TIMEOUT_MS)
    view = ui.activations
    assert view.showing_bars and view.image.size == 0
    np.testing.assert_array_equal(view.bars.values, view.maps)
    assert view.bars.labels == [str(i) for i in range(10)]
    assert view.what.text().startswith("Each bar is one of classifier's 10 outputs (one per"
                                       " class)")
    assert "click a pixel" not in view.info.text().lower()
    assert view.bars.text_at(3) == f"output 3 (3) = {value_text(float(view.maps[3]))}"
    window.document.set_selection(["fc1"])
    qtbot.waitUntil(lambda: ui.activations.maps.shape == (64,))
    assert view.bars.labels == [] and "(one per unit)" in view.what.text()
    window.document.set_selection(["relu1"])
    qtbot.waitUntil(lambda: not view.showing_bars)


def test_many_bars_are_drawn_as_two_single_coloured_items(qtbot):
    """A 64×32×32 Flatten has 65,536 outputs: a brush per bar took half a second of the
    GUI thread at each redraw; red (negative) and blue bars are two items instead."""
    from cnnstudio.ui.training.images import NEGATIVE_BAR, POSITIVE_BAR, BarChart

    chart = BarChart()
    qtbot.addWidget(chart)
    values = np.random.default_rng(0).normal(size=65_536).astype(np.float32)
    chart.set_values(values)
    for item, colour, chosen in ((chart.bars, POSITIVE_BAR, values >= 0),
                                 (chart.negative, NEGATIVE_BAR, values < 0)):
        assert item.opts["brushes"] is None and item.opts["brush"] == colour
        np.testing.assert_array_equal(item.opts["x"], np.flatnonzero(chosen))
        np.testing.assert_array_equal(item.opts["height"], values[chosen])
    assert chart.text_at(5) == f"output 5 = {value_text(float(values[5]))}"


# ---- predict -----------------------------------------------------------------------------


def _png(array: np.ndarray, path, side: int) -> Any:
    Image.fromarray(np.asarray(array, np.uint8)).resize((side, side), Image.NEAREST).save(path)
    return path


def test_predict_shows_the_networks_view_and_warns_for_an_inverted_digit(
        window, ui, qtbot, tmp_path):
    _train(qtbot, window, ui)
    ctx = ui.controller.live.context
    digit = ctx["x"][0, 0]
    for path, inverted in ((_png(digit, tmp_path / "digit.png", 8), False),
                           (_png(255 - digit, tmp_path / "inverted.png", 64), True)):
        ui.actions.last_prediction = None
        assert ui.actions.predict_file(path)
        qtbot.waitUntil(lambda: ui.actions.last_prediction is not None, timeout=RUN_TIMEOUT_MS)
        dialog = ui.actions.last_prediction
        qtbot.addWidget(dialog)
        p = dialog.prediction
        assert p.seen.shape == (1, 8, 8)
        if not inverted:  # an Input-sized image: the network sees it normalised
            assert p.original.shape == (8, 8, 3)
            expected = (digit / 255 - ctx["mean"][0]) / ctx["std"][0]
            np.testing.assert_allclose(p.seen[0], expected, atol=1e-5)
        else:
            assert p.original.shape == (64, 64, 3)  # shown as the user drew it
        assert (dialog.cam_bar.low, dialog.cam_bar.high) == (0.0, 1.0)
        assert dialog.seen_bar.low == pytest.approx(float(p.seen.min()))
        if inverted:
            assert dialog.warning.isVisibleTo(dialog)
            assert "a light background, the training images a dark one" in p.warning
        else:
            assert p.warning is None and not dialog.warning.isVisibleTo(dialog)


def test_predict_and_grad_cam_run_off_the_gui_thread(window, ui, qtbot, monkeypatch,
                                                     tmp_path):
    import cnnstudio.ui.training.user_requests as user_requests
    from cnnstudio.train.model_io import Preprocessing, TrainedModel

    names = [str(i) for i in range(10)]
    source = TrainedModel(window.project.graph.copy(), None,
                          Preprocessing([0.5], [0.25], True, names))
    monkeypatch.setattr(ui.controller, "inspection_source", lambda: source)
    threads, real = [], user_requests.predict_image

    def predict(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(user_requests, "predict_image", predict)
    assert ui.actions.predict_file(_png(np.eye(8) * 255, tmp_path / "x.png", 8))
    qtbot.waitUntil(lambda: ui.actions.last_prediction is not None, timeout=RUN_TIMEOUT_MS)
    assert threads == [threads[0]] and threads[0] is not threading.main_thread()
    prediction = ui.actions.last_prediction.prediction
    assert prediction.cam.shape == (8, 8) and [n for n, _ in prediction.top][0] in names


def test_predict_on_a_signal_network_says_in_words_what_it_needs(window, ui, errors,
                                                                monkeypatch, tmp_path):
    from cnnstudio.core.templates import get_template
    from cnnstudio.train.model_io import Preprocessing, TrainedModel

    graph = get_template("cnn1d").graph()  # Input 1×128: a signal, not an image
    source = TrainedModel(graph, {}, Preprocessing([0.0], [1.0], True, ["a", "b", "c", "d"]))
    monkeypatch.setattr(ui.controller, "inspection_source", lambda: source)
    path = _png(np.zeros((8, 8)), tmp_path / "x.png", 8)
    assert not ui.actions.predict_file(path)  # refused at once: no file is read
    assert errors == ["Predicting an image needs a network whose Input is an image (channels"
                      " × height × width); this one's Input is 1×128"]


def test_input_warning_for_inverted_and_unusually_bright_images():
    rng = np.random.default_rng(1)
    samples = np.zeros((50, 1, 8, 8), np.uint8)
    samples[:, :, 2:6, 3:5] = rng.integers(150, 256, (50, 1, 4, 2))  # white strokes on black
    digit = samples[0]
    assert input_warning(digit, [0.1], [0.3], samples) is None
    assert "light background" in input_warning(255 - digit, [0.1], [0.3], samples)
    assert "light background" in input_warning(255 - digit, [0.1], [0.3])  # stored stats only
    assert input_warning(digit, [0.1], [0.3]) is None
    grey = np.full((1, 8, 8), 30, np.uint8)  # dark background, but far brighter overall
    grey[:, 1:7, 1:7] = 220
    assert "much brighter" in input_warning(grey, [0.1], [0.3], samples)
    light = 255 - samples  # a dark-on-light training set: the reverse
    assert "a dark background, the training images a light one" in input_warning(
        digit, [0.9], [0.3], light)
    # Float data is used unscaled (0…1): the same images as floats give the same answers.
    floats = samples.astype(np.float32) / 255
    assert input_warning(digit, [0.1], [0.3], floats) is None
    assert "light background" in input_warning(255 - digit, [0.1], [0.3], floats)


# ---- kernel playground ---------------------------------------------------------------------


def test_a_cell_that_is_not_a_number_is_refused_in_red_and_not_applied(qtbot):
    dialog = KernelPlayground(None)
    qtbot.addWidget(dialog)
    dialog.preset.setCurrentText("Sobel x")
    before = dialog.output.copy()
    dialog.kernel.item(0, 2).setText("abc")
    assert dialog.bad_cells == [(0, 2, "abc")]
    assert "Row 1, column 3: “abc” is not a number" in dialog.caption.text()
    assert "c0392b" in dialog.caption.styleSheet()  # red
    assert dialog.kernel.item(0, 2).background().color().red() == 255
    np.testing.assert_array_equal(dialog.output, before)  # not applied (was: taken as 0)
    dialog.kernel.item(0, 2).setText("")
    assert "an empty cell is not a number" in dialog.caption.text()
    for huge in ("1e39", "-2e6", "inf"):  # float32 overflows: refused, never drawn as NaN
        dialog.kernel.item(0, 2).setText(huge)
        assert dialog.bad_cells == [(0, 2, huge)]
        assert f"“{huge}” is too large (at most ±1e+06)" in dialog.caption.text()
        np.testing.assert_array_equal(dialog.output, before)
    dialog.kernel.item(0, 2).setText("nan")
    assert "“nan” is not a number" in dialog.caption.text()
    dialog.kernel.item(0, 2).setText("-1")
    assert not dialog.bad_cells and dialog.caption.styleSheet() == ""
    assert dialog.kernel.item(0, 2).background().style() == Qt.BrushStyle.NoBrush
    expected = tiles.correlate2d(dialog.current_image(), dialog.kernel_values()[0])
    np.testing.assert_array_equal(dialog.output, expected)
    assert not np.array_equal(dialog.output, before)
    m = float(np.abs(dialog.output).max())
    assert (dialog.output_bar.low, dialog.output_bar.high) == pytest.approx((-m, m))


def test_the_playground_uses_the_projects_images_once_loaded(window, ui, qtbot):
    dialog = ui.actions.kernel_playground()
    qtbot.addWidget(dialog)
    assert not dialog.uses_project_data and "built-in picture" in dialog.source.text()
    qtbot.waitUntil(lambda: dialog.uses_project_data, timeout=RUN_TIMEOUT_MS)
    ctx = ui.controller.live.context
    assert dialog.samples is ctx["x"] and dialog.sample.maximum() == len(ctx["x"]) - 1
    assert "the project's validation images" in dialog.source.text()
    dialog.sample.setValue(4)
    label = ctx["class_names"][int(ctx["y"][4])]
    assert f"sample 4 (label {label})" in dialog.caption.text()
    again = ui.actions.kernel_playground()  # loaded now: the project's images at once
    qtbot.addWidget(again)
    assert again.uses_project_data


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("shape", [(3, 3), (5, 5), (2, 4), (1, 1)])
def test_the_playgrounds_numpy_convolution_equals_torchs(shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.random((11, 9)).astype(np.float32)
    kernel = rng.normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(tiles.correlate2d(image, kernel), apply_kernel(image, kernel),
                               atol=1e-5)


# ---- the worker --------------------------------------------------------------------------


def test_background_delivers_only_the_newest_result_of_a_kind(qtbot, monkeypatch):
    from cnnstudio.ui.training import background

    monkeypatch.setattr(background, "IDLE_EXIT_S", 0.05)
    work = Background()
    got: list[Any] = []
    gate = threading.Event()

    def slow() -> str:
        assert gate.wait(10)
        return "old"

    work.submit("snapshot", slow, got.append)
    work.submit("snapshot", lambda: "new", got.append)  # supersedes the slow one
    work.submit("predict", lambda: 1 / 0, got.append, lambda err: got.append(type(err)))
    gate.set()
    qtbot.waitUntil(lambda: not work.pending())
    assert got == ["new", ZeroDivisionError]
    assert work.wait(1000)
    qtbot.waitUntil(lambda: work._thread is None)  # an idle worker thread ends
    work.submit("snapshot", lambda: "again", got.append)  # and comes back when needed
    qtbot.waitUntil(lambda: got[-1] == "again")


def test_activations_say_why_when_the_projects_data_fails_to_load(window, ui, qtbot,
                                                                  tmp_path):
    """A data source that cannot be read must not leave the view saying "Loading…"."""
    missing = tmp_path / "no-such-folder"
    window.project.data["source"] = {"kind": "folder", "path": str(missing)}
    show_view(qtbot, window, ui, ui.activations)
    early = ui.actions.kernel_playground()  # opened while the load runs (or just failed)
    qtbot.addWidget(early)
    qtbot.waitUntil(lambda: "Cannot load the project's samples" in
                    ui.activations.header.caption.text(), timeout=RUN_TIMEOUT_MS)
    caption = ui.activations.header.caption.text()
    assert "no-such-folder" in caption and "\n" not in caption
    # However long the path, the caption wraps in the panel instead of widening it.
    assert ui.activations.minimumSizeHint().width() < 500
    assert ui.activations.header.caption.toolTip() == caption
    assert ui.controller.samples_error is not None and not ui.controller.loading_samples
    assert "cannot be loaded" in early.source.text() and not early.uses_project_data
    # Showing the tab again does not reload the same broken source, and says why again.
    ui.tabs.setCurrentWidget(ui.filters)
    ui.tabs.setCurrentWidget(ui.activations)
    qtbot.wait(100)
    assert not ui.controller.loading_samples
    assert "Cannot load the project's samples" in ui.activations.header.caption.text()
    # The playground keeps its built-in picture and says why.
    dialog = ui.actions.kernel_playground()
    qtbot.addWidget(dialog)
    assert not dialog.uses_project_data and "cannot be loaded" in dialog.source.text()
    assert "no-such-folder" in dialog.source.toolTip()
    # A readable source is loaded again.
    window.project.data["source"] = {"kind": "builtin", "name": "digits"}
    ui.actions.idle_snapshot()
    qtbot.waitUntil(lambda: ui.activations.maps.shape == (16, 8, 8), timeout=RUN_TIMEOUT_MS)
    assert ui.controller.samples_error is None


def test_the_untrained_source_is_found_without_importing_torch():
    """The GUI thread asks for it when the views are first shown: importing torch there
    would freeze the window for seconds (the module itself is built on the worker)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from cnnstudio.core.templates import TEMPLATES\n"
            "from cnnstudio.project import project_from_dict\n"
            "from cnnstudio.train.model_io import TrainedModel, training_seed\n"
            "p = project_from_dict(TEMPLATES['digits-lenet'].project_dict())\n"
            "p.training['seed'] = 5\n"
            "s = TrainedModel.initial(p, None)\n"
            "assert s.untrained and s.seed == 5, s\n"
            "assert training_seed({'seed': -1}) == 0\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_views_load_the_samples_again_once_the_data_view_could(window, ui, qtbot,
                                                                    tmp_path):
    """The folder appears after the failure (same settings): the Data view's successful
    load lets the views try again."""
    folder = tmp_path / "later"
    window.project.data["source"] = {"kind": "folder", "path": str(folder)}
    show_view(qtbot, window, ui, ui.activations)
    qtbot.waitUntil(lambda: ui.controller.samples_error is not None, timeout=RUN_TIMEOUT_MS)
    rng = np.random.default_rng(0)
    for name in "0123456789":  # the digits network's ten classes
        (folder / name).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (8, 8), np.uint8)).save(folder / name / f"{i}.png")
    with qtbot.waitSignal(window.data_view.dataset_loaded, timeout=RUN_TIMEOUT_MS):
        window.data_view.reload()
    qtbot.waitUntil(lambda: ui.activations.maps.shape == (16, 8, 8), timeout=RUN_TIMEOUT_MS)
    assert ui.controller.samples_error is None


def test_large_feature_maps_are_coloured_quickly_and_alike():
    """64 maps of 224×224 (3·10^6 values) are drawn on the GUI thread: the level comes
    from a sample of the values, the colours from one table look-up per pixel."""
    import time

    from cnnstudio.ui.training.tilegrid import SEQUENTIAL

    maps = np.random.default_rng(0).normal(size=(64, 224, 224)).astype(np.float32)
    maps[0, 0, :3] = (np.nan, np.inf, -np.inf)
    exact = float(np.percentile(np.abs(maps[np.isfinite(maps)]), 99.5))
    assert tiles.symmetric_level(maps, 99.5) == pytest.approx(exact, rel=0.01)
    grid = tiles.tile(maps, 8)
    start = time.perf_counter()
    rgba = tiles.to_rgba(grid, (-exact, exact), SEQUENTIAL)
    took = time.perf_counter() - start
    scaled = np.clip((grid + exact) / (2 * exact), 0, 1)
    index = np.round(np.nan_to_num(scaled) * 255).astype(int)
    finite = np.isfinite(grid)
    np.testing.assert_array_equal(rgba[finite][:, :3], SEQUENTIAL[index[finite]][:, :3])
    assert (rgba[~finite] == tiles.GAP_RGBA).all() and took < 1.0  # was 0.1–0.2 s
