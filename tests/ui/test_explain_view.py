"""The Explain view's Computation page: the dock and its action, the arithmetic shown against
torch's own forward pass, stepping and playing across the output, the other layer kinds,
the messages, and the GUI thread's time per step."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget

from cnnstudio.project import read_project
from cnnstudio.ui.explain.number_grid import Grid, Label

DIGITS = Path(__file__).resolve().parents[2] / "sample_projects" / "digits.cnnproj"
WAIT_MS = 90_000  # the first trace imports torch and loads the samples


@pytest.fixture
def digits(qtbot, errors, monkeypatch):
    """A shown 1280×800 window on the digits sample (untrained)."""
    from cnnstudio.ui import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    monkeypatch.setattr(win, "show_error", errors.append)
    win.confirm_unsaved = False
    assert win.open_project(DIGITS)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    return win


def explain(win, qtbot, node: str):
    win.show_node(node)
    win.explain.explain()
    page = win.explain.view.computation
    qtbot.waitUntil(lambda: page.explanation is not None and page.explanation.node == node,
                    timeout=WAIT_MS)
    return page


def torch_value(win, node: str, index: tuple[int, ...]) -> float:
    """The layer's output at `index` for the page's sample, by torch's own forward."""
    from cnnstudio.nn.internals import node_activation

    source = win.explain.host.source()
    ctx = win.training.controller.live.context
    i = win.explain.view.computation.sample_spin.value()
    x = source.prep.to_float(np.array(ctx["x"][i:i + 1]))
    return float(node_activation(source.module(), node, x)[0].numpy()[index])


def shown_number(text: str) -> float:
    """The last number of a shown line ("… = −0.1234")."""
    return float(re.findall(r"[−-]?[\d.]+(?:e[−-]?\d+)?", text)[-1].replace("−", "-"))


def test_the_dock_its_action_and_the_canvas_menu(digits, qtbot):
    dock = digits.findChild(QDockWidget, "explainDock")
    assert dock is not None and dock.windowTitle() == "Explain"
    assert dock.widget().objectName() == "explainView"
    action = digits.findChild(QAction, "actionExplain")
    assert action.shortcut() == QKeySequence("Ctrl+E")
    assert action in digits.training.menu.actions()
    tabs = digits.explain.view.tabs
    assert [tabs.tabText(i) for i in range(tabs.count())] == [
        "Computation", "What the filters respond to"]
    assert tabs.widget(1).objectName() == "explainResponses"
    # The node's context menu offers it; the layer is selected by the right click.
    scene = digits.view.graph_scene
    menu = digits.view.context_menu(scene.item_for("conv2").pos())
    assert action in menu.actions()
    assert digits.document.selection == ["conv2"]
    action.trigger()
    assert not dock.isHidden()
    assert digits.explain.view.node == "conv2"
    qtbot.waitUntil(lambda: dock.height() >= 0.4 * digits.height())  # tall enough to read


def test_no_layer_selected_gives_a_hint(digits, qtbot):
    digits.document.set_selection([])
    digits.explain.explain()
    page = digits.explain.view.computation
    qtbot.waitUntil(lambda: page.stack.currentWidget() is page.message)
    assert "Select a layer" in page.message.text()


def test_a_convolution_value_is_the_shown_sum_of_products_plus_bias(digits, qtbot):
    said: list[str] = []
    page = digits.explain.view.computation
    original = page._say
    page._say = lambda text: (said.append(text), original(text))  # type: ignore[method-assign]
    page = explain(digits, qtbot, "conv2")
    assert "Loading samples…" in said  # an untrained project's samples load on demand
    for _ in range(9):  # a position inside the map, away from the zero border
        page.step(1)
    e = page.explanation
    expected = torch_value(digits, "conv2", e.index)
    figure = page.arithmetic.figure
    grids = [i for i in figure.items if isinstance(i, Grid)]
    patches, kernels, products = grids[0::3], grids[1::3], grids[2::3]
    assert len(products) == 4  # four of the 16 input channels drawn, the rest listed
    for patch, kernel, product in zip(patches, kernels, products, strict=True):
        np.testing.assert_allclose(patch.values * kernel.values, product.values, atol=1e-6)
    # The drawn kernels are the layer's weights.
    weight = digits.explain.host.source().module().module_for("conv2").weight.detach().numpy()
    channels = list(e.terms["channels"])
    np.testing.assert_allclose(kernels[1].values, weight[e.index[0], channels[1]], atol=1e-7)
    # All channels' products plus the bias give torch's value; the result line says it.
    total = float(np.sum(e.terms["products"])) + float(e.terms["bias"])
    assert total == pytest.approx(expected, abs=1e-4)
    labels = [i.text for i in figure.items if isinstance(i, Label)]
    first = next(k for k, text in enumerate(labels) if text.startswith("Σ over 16 channels"))
    last = next(k for k, text in enumerate(labels) if text.startswith("then relu2"))
    result = " ".join(labels[first:last])  # the result line, wrapped where it is narrow
    assert shown_number(result) == pytest.approx(expected, rel=1e-3, abs=1e-4)
    assert any("and 12 more channels" in t for t in figure.texts())
    after = next(i.text for i in figure.items if isinstance(i, Label)
                 and i.text.startswith("then relu2"))
    assert shown_number(after) == pytest.approx(max(0.0, expected), abs=1e-3)


def test_padding_taps_are_drawn_as_padding(digits, qtbot):
    page = explain(digits, qtbot, "conv1")
    page.step(-page.position)  # the top-left value: its window reaches into the padding
    patch = next(i for i in page.arithmetic.figure.items if isinstance(i, Grid))
    assert patch.padded is not None and patch.padded[0].all() and patch.padded[:, 0].all()
    assert not patch.padded[1:, 1:].any()
    assert page.input_map.pad == (1, 1)  # the zero border around the input
    assert (-1, -1) in page.input_map.window


def test_right_steps_by_one_and_fills_the_map_play_advances(digits, qtbot):
    page = explain(digits, qtbot, "conv1")
    start = page.position
    blanks = int(page.output_map.blank.sum())
    page.setFocus()
    qtbot.keyClick(page, Qt.Key.Key_Right)
    assert page.position == start + 1
    assert page.explanation.index[1:] == divmod(start + 1, 8)
    assert int(page.output_map.blank.sum()) == blanks - 1  # one more value filled in
    assert page.explanation.result == pytest.approx(
        torch_value(digits, "conv1", page.explanation.index), abs=1e-4)
    qtbot.mouseClick(page.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.position >= start + 3, timeout=5000)
    qtbot.mouseClick(page.play_button, Qt.MouseButton.LeftButton)
    assert not page.timer.isActive()
    assert int(page.output_map.blank.sum()) <= blanks - 3


def test_pool_linear_and_softmax_pages(digits, qtbot):
    page = explain(digits, qtbot, "pool1")
    e = page.explanation
    assert e.kind == "pool" and e.result == pytest.approx(float(np.max(e.terms["patch"])))
    assert e.value == pytest.approx(torch_value(digits, "pool1", e.index), abs=1e-5)
    assert any(t.startswith("max = ") for t in page.arithmetic.figure.texts())

    page = explain(digits, qtbot, "classifier")
    e = page.explanation
    assert e.kind == "linear"
    assert e.result == pytest.approx(torch_value(digits, "classifier", e.index), abs=1e-4)
    texts = page.arithmetic.figure.texts()
    assert "= product" in texts and any(t.startswith("Σ = ") for t in texts)

    project = read_project(DIGITS)
    project.graph.add_node("Softmax", id="probs", inputs=["classifier"])
    digits.set_project(project)
    page = explain(digits, qtbot, "probs")
    e = page.explanation
    assert e.kind == "softmax"
    logits = np.asarray(e.terms["logits"], np.float64)
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert e.result == pytest.approx(probs[e.index[0]], abs=1e-5)
    assert e.value == pytest.approx(torch_value(digits, "probs", e.index), abs=1e-5)
    assert "probability" in page.arithmetic.figure.texts()


def test_a_network_with_problems_says_to_fix_them(digits, qtbot):
    project = read_project(DIGITS)
    project.graph.disconnect("pool1", "flatten")
    digits.set_project(project)
    digits.show_node("conv1")
    digits.explain.explain()
    page = digits.explain.view.computation
    qtbot.waitUntil(lambda: "Fix the network's problems" in page.message.text())
    assert page.stack.currentWidget() is page.message


def test_a_step_holds_the_gui_thread_under_50_ms(digits, qtbot):
    page = explain(digits, qtbot, "conv2")  # 16 input channels: the largest figure here
    times = []
    for _ in range(8):
        start = time.perf_counter()
        page.step(1)
        page.repaint()  # the explanation, the figure, the three maps, painted now
        times.append(time.perf_counter() - start)
    assert max(times) < 0.05, times


def test_a_signal_convolution_is_explained_too(digits, qtbot):
    assert digits.open_project(DIGITS.with_name("signals.cnnproj"))
    page = explain(digits, qtbot, "conv1")  # Conv1d: windows along one axis
    page.step(5)
    e = page.explanation
    assert len(e.index) == 2 and page.picture.signal is not None
    expected = torch_value(digits, "conv1", e.index)
    assert float(np.sum(e.terms["products"])) + float(e.terms["bias"]) == \
        pytest.approx(expected, abs=1e-4)
    assert page.input_map.window == [(0, c) for c in range(e.index[1] - 2, e.index[1] + 3)]


def test_a_1x1_kernels_titles_do_not_overlap(qtbot):
    """A 1×1 kernel's grids are one cell wide, narrower than "kernel (weights)": each
    grid's title must end before the next part begins."""
    import torch
    from PySide6.QtGui import QFont

    from cnnstudio.nn.explain import trace_layer
    from cnnstudio.train.model_io import TrainedModel
    from cnnstudio.ui.explain.figures import build_figure
    from cnnstudio.ui.explain.number_grid import Metrics

    project = read_project(DIGITS)
    graph = project.graph
    graph.add_node("Conv2d", {"out_channels": 16, "kernel_size": 1}, id="pointwise",
                   inputs=["relu1"])
    graph.disconnect("relu1", "conv2")
    graph.connect("pointwise", "conv2")
    module = TrainedModel.initial(project, None).module()
    with torch.no_grad():  # short numbers ("0", "0.5"): the narrowest cells
        module.get_parameter("conv1.bias").fill_(-1.0)  # relu1 gives zeros
        module.get_parameter("pointwise.weight").fill_(0.5)
    x = torch.zeros((1, 1, 8, 8))
    e = trace_layer(module, "pointwise", x).explain((1, 3, 4))
    assert e.kind == "conv" and np.asarray(e.terms["kernel"]).shape[1:] == (1, 1)
    metrics = Metrics(QFont())
    figure = build_figure(e, metrics)
    titles = ("input patch", "kernel (weights)", "products")
    labels = [i for i in figure.items if isinstance(i, Label) and i.text in titles]
    grids = [i for i in figure.items if isinstance(i, Grid)]
    assert [label.text for label in labels] == list(titles)  # one row of titles
    for left, right in zip(labels, labels[1:], strict=False):
        assert left.y == right.y
        assert left.x + metrics.width(left.text) < right.x  # no overlap
    for grid in grids[:3]:  # each grid stays clear of the next title too
        after = [label for label in labels if label.x > grid.x]
        if after:
            assert grid.x + grid.width < after[0].x


def test_the_menu_of_one_node_in_a_selection_explains_that_node(digits, qtbot):
    digits.document.set_selection(["conv1", "conv2", "pool1"])
    scene = digits.view.graph_scene
    menu = digits.view.context_menu(scene.item_for("conv2").pos())
    assert digits.document.selection == ["conv1", "conv2", "pool1"]  # kept: a group
    action = digits.findChild(QAction, "actionExplain")
    assert action in menu.actions()
    action.trigger()
    assert digits.explain.view.node == "conv2"
    assert digits.document.selection == ["conv1", "conv2", "pool1"]
    digits.explain.view.set_layer(None)
    action.trigger()  # Ctrl+E later: the menu's node is not remembered
    assert digits.explain.view.node is None


def test_a_map_starts_at_its_strongest_value_and_play_stops_when_hidden(digits, qtbot):
    page = explain(digits, qtbot, "conv2")
    out = page.trace.output
    assert page.index == tuple(int(i) for i in np.unravel_index(np.argmax(out), out.shape))
    page.play_button.setChecked(True)
    assert page.timer.isActive()
    view = digits.explain.view
    view.tabs.setCurrentWidget(view.responses)  # the page is hidden: nobody watches
    assert not page.timer.isActive() and not page.play_button.isChecked()


def test_nothing_is_computed_while_the_dock_is_tabbed_behind_another(digits, qtbot):
    # Qt keeps a dock tabbed behind another "visible"; the pages must still wait until it
    # comes in front (a trace per selection or per epoch would cost the trainer its CPU).
    plugin = digits.explain
    page, background = plugin.view.computation, plugin.host.background
    submitted: list[str] = []
    real_submit = background.submit

    def counting_submit(kind, *args, **kwargs):
        submitted.append(kind)
        return real_submit(kind, *args, **kwargs)

    background.submit = counting_submit
    digits.summary_dock.raise_()
    qtbot.wait(50)
    digits.show_node("conv2")
    qtbot.wait(400)  # past the host's settling delay
    assert submitted == [] and page.explanation is None
    plugin.dock.raise_()  # brought in front: the page catches up
    qtbot.waitUntil(lambda: page.explanation is not None and page.explanation.node == "conv2",
                    timeout=WAIT_MS)
    assert submitted


def test_a_classifiers_last_layer_goes_on_to_the_class_probabilities(digits, qtbot):
    # The digits network ends in a Linear (the loss applies the softmax): its page shows
    # logits → exponentials → probabilities, and they are torch's softmax of the output.
    import torch

    from cnnstudio.nn.internals import node_activation

    page = explain(digits, qtbot, "classifier")
    texts = page.arithmetic.figure.texts()
    assert "then the classifier's softmax" in " ".join(texts)  # (long lines may wrap)
    assert "probability" in texts
    source = digits.explain.host.source()
    ctx = digits.training.controller.live.context
    i = page.sample_spin.value()
    x = source.prep.to_float(np.array(ctx["x"][i:i + 1]))
    logits = node_activation(source.module(), "classifier", x)[0].double()
    probs = torch.softmax(logits, 0).numpy()
    k = page.explanation.index[0]
    shown = [t for t in texts if " / Σ " in t]
    assert len(shown) == 1
    assert shown_number(shown[0].rsplit("=", 1)[1]) == pytest.approx(probs[k], rel=1e-3)

    page = explain(digits, qtbot, "fc1")  # not the last layer: no probabilities
    assert "probability" not in page.arithmetic.figure.texts()
