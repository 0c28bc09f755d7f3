"""The Explain view's "What the filters respond to" page on the digits sample (untrained:
no training needed): each filter's top-k samples equal a direct computation over the
split, crops match the receptive-field boxes, Cancel stops a job, the occlusion and
Grad-CAM maps appear with colour bars, synthesis shows the activation reached beside the
samples' mean, an unreadable image file gives one line, and nothing is computed while
the page is hidden."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtWidgets import QVBoxLayout, QWidget

from cnnstudio.train.model_io import DataRequest
from cnnstudio.ui.explain.gallery import crop, to_rgb
from cnnstudio.ui.explain.host import ExplainHost
from cnnstudio.ui.explain.responses import PAGE, FilterResponsesPanel
from cnnstudio.ui.training.colorbar import value_text

DIGITS = Path(__file__).resolve().parents[2] / "sample_projects" / "digits.cnnproj"
WAIT_MS = 120_000


@pytest.fixture
def page(qtbot, window, tmp_path, monkeypatch):
    """The page in a shown container with the real host, on the digits sample."""
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    assert window.open_project(DIGITS)
    host = ExplainHost(window)
    box = QWidget()
    qtbot.addWidget(box)
    layout = QVBoxLayout(box)
    layout.addWidget(host.strip)
    panel = FilterResponsesPanel(host)
    layout.addWidget(panel)
    box.resize(1280, 420)
    box.show()
    qtbot.waitExposed(box)
    yield panel
    host.background.wait()


def wait_idle(qtbot, panel: FilterResponsesPanel) -> None:
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)


def reference(panel: FilterResponsesPanel, node: str, split: str, k: int):
    """(dataset, per-filter (values, sample ids) best first) computed directly: every
    node's output for the split's samples (forward_all), each filter's map maximum."""
    window = panel.host.window
    dataset = DataRequest.of(window.project).load()
    rows = dataset.splits[split].numpy() if split != "all" else np.arange(len(dataset.x))
    source = panel.host.source()
    assert source.untrained  # the digits sample has no weights: the dataset's statistics
    module = source.module()
    with torch.no_grad():
        out = module.forward_all(dataset.batch_to_float(dataset.x[rows]))[node]
    maxima = out.flatten(2).amax(2).numpy()  # (N, filters)
    best = []
    for f in range(maxima.shape[1]):
        order = np.argsort(-maxima[:, f], kind="stable")[:k]
        best.append((maxima[order, f], rows[order]))
    return dataset, best


def test_top_k_equals_a_direct_computation(qtbot, page, errors) -> None:
    page.set_layer("conv2")
    qtbot.waitUntil(lambda: page.top is not None, timeout=WAIT_MS)
    wait_idle(qtbot, page)
    dataset, best = reference(page, "conv2", "val", 9)
    assert len(page.top.filters) == 32 == len(best)
    assert [row.filter for row in page.rows] == list(range(PAGE))  # the first page
    for row in page.rows:
        values, ids = best[row.filter]
        shown = np.array([h.activation for h in row.hits])
        np.testing.assert_allclose(shown, values, rtol=1e-5, atol=1e-6)
        # The same samples, in the same order, wherever no near-tie could swap them.
        gaps = np.abs(np.diff(values)) > 1e-5
        clear = np.r_[True, gaps] & np.r_[gaps, True]
        assert np.array_equal(np.array([h.sample for h in row.hits])[clear], ids[clear])
        assert len(row.strip.crops) == 9
        for hit, picture in zip(row.hits, row.strip.crops, strict=True):
            y0, x0, y1, x1 = hit.box
            assert picture.shape[:2] == (y1 - y0, x1 - x0)  # cropped to its field
            whole = to_rgb(dataset.x[hit.sample].numpy())
            assert np.array_equal(picture, crop(whole, hit.box))
            assert hit.label == dataset.class_names[int(dataset.y[hit.sample])]
        assert row.strip.texts == [value_text(float(v)) for v in values]
    assert "untrained" in page.state.text() and "359 validation samples" in page.state.text()
    page.page.setCurrentIndex(1)  # the second page of filters
    assert [row.filter for row in page.rows] == list(range(PAGE, 32))
    assert not errors


def test_split_and_k_recompute(qtbot, page) -> None:
    page.set_layer("conv1")
    qtbot.waitUntil(lambda: page.top is not None, timeout=WAIT_MS)
    wait_idle(qtbot, page)
    page.k.setValue(4)
    page.split.setCurrentIndex(page.split.findData("train"))
    qtbot.waitUntil(lambda: page.top.split == "train" and page.top.k == 4, timeout=WAIT_MS)
    wait_idle(qtbot, page)
    _, best = reference(page, "conv1", "train", 4)
    for f, values_ids in enumerate(best):
        np.testing.assert_allclose([h.activation for h in page.top.filters[f].hits],
                                   values_ids[0], rtol=1e-5, atol=1e-6)
    assert all(len(row.strip.crops) == 4 for row in page.rows)


def test_cancel_stops_the_job(qtbot, page) -> None:
    release = threading.Event()
    page.host.background.submit("blocker", lambda: release.wait(30), lambda _r: None)
    page.set_layer("conv2")  # queued behind the blocker
    assert page.busy and page.host.strip.isVisible()
    page.host.strip.cancel_button.click()  # the view's Cancel
    release.set()
    wait_idle(qtbot, page)
    assert page.top is None and not page.rows
    assert page.state.text().startswith("Cancelled")
    assert page.host.strip.isHidden()


def test_occlusion_and_grad_cam_with_colour_bars(qtbot, page, errors) -> None:
    page.set_layer("conv2")
    qtbot.waitUntil(lambda: page.maps is not None, timeout=WAIT_MS)
    wait_idle(qtbot, page)
    page.sample.setValue(5)
    qtbot.waitUntil(lambda: page.maps is not None and page.maps.what.startswith("sample 5"),
                    timeout=WAIT_MS)
    wait_idle(qtbot, page)
    dataset = DataRequest.of(page.host.window.project).load()
    module = page.host.source().module()
    with torch.no_grad():
        logits = module(dataset.batch_to_float(dataset.x[5:6]))[0]
    probs = torch.softmax(logits, 0).numpy()
    cls = int(np.argmax(probs))
    maps = page.maps
    assert maps.class_index == cls and maps.probability == pytest.approx(probs[cls], abs=1e-5)
    assert f"predicted {dataset.class_names[cls]} (p = {probs[cls]:.2f})" in \
        page.prediction.text()
    for panel, values in ((page.occlusion, maps.occlusion), (page.grad_cam, maps.grad_cam)):
        assert values.shape == (8, 8)
        assert panel.picture.rgb.shape == (8, 8, 3)
        assert panel.colorbar.isVisible()
        assert panel.colorbar.low == pytest.approx(float(values.min()))
        assert panel.colorbar.high == pytest.approx(float(values.max()))
    from cnnstudio.nn.explain.occlusion import occlusion_map

    x = dataset.batch_to_float(dataset.x[5:6])  # the sample as the model takes it
    np.testing.assert_allclose(maps.occlusion, occlusion_map(module, x, cls), atol=1e-6)
    from cnnstudio.core.shapes import feature_map_node
    from cnnstudio.nn.internals import grad_cam

    layer = feature_map_node(page.host.source().graph, "conv2")  # the ReLU after it
    assert maps.grad_cam_layer == layer
    np.testing.assert_allclose(maps.grad_cam, grad_cam(module, layer, x, cls), atol=1e-6)
    assert 0.0 <= maps.grad_cam.min() and maps.grad_cam.max() <= 1.0
    assert not errors


def test_synthesis_beside_the_top_k(qtbot, page) -> None:
    page.set_layer("conv1")
    qtbot.waitUntil(lambda: page.top is not None, timeout=WAIT_MS)
    wait_idle(qtbot, page)
    page.synth_button.click()
    qtbot.waitUntil(lambda: page.synthesis is not None, timeout=WAIT_MS)
    wait_idle(qtbot, page)
    made = page.synthesis
    assert made.filters == list(range(16))
    dataset, _ = reference(page, "conv1", "val", 1)
    module = page.host.source().module()
    rows = dataset.splits["val"]
    with torch.no_grad():
        out = module.forward_all(dataset.batch_to_float(dataset.x[rows]))["conv1"]
    means = out.flatten(2).amax(2).mean(0).numpy()
    np.testing.assert_allclose(made.means, means[:16], rtol=1e-4, atol=1e-5)
    for row in page.rows:
        assert row.synthesised.isVisible()
        assert row.synthesised.rgb.shape == (8, 8, 3)
        assert row.synthesis_text.text() == (f"{value_text(made.reached[row.filter])}\n"
                                             f"mean {value_text(float(means[row.filter]))}")


def test_unreadable_image_gives_one_line(qtbot, page, tmp_path, errors) -> None:
    page.set_layer("conv2")
    qtbot.waitUntil(lambda: page.maps is not None, timeout=WAIT_MS)
    wait_idle(qtbot, page)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a picture")
    page.ask_image_path = lambda: str(bad)
    page.side.open_button.click()
    qtbot.waitUntil(lambda: page.maps is None, timeout=WAIT_MS)
    wait_idle(qtbot, page)
    text = page.prediction.text()
    assert text.startswith("Cannot explain broken.png: ") and "\n" not in text
    assert not page.occlusion.colorbar.isVisible()
    assert not errors


def test_nothing_is_computed_while_hidden(qtbot, page) -> None:
    page.hide()
    page.set_layer("conv2")
    assert not page.busy and not page.host.background.pending()
    page.show()
    qtbot.waitUntil(lambda: page.top is not None, timeout=WAIT_MS)
    wait_idle(qtbot, page)
    page.hide()
    page.host.model_changed.emit()  # the weights changed: recomputed when seen again
    assert not page.busy
    page.show()
    assert page.busy
    wait_idle(qtbot, page)


def test_the_input_and_a_dense_layer_say_so(qtbot, page) -> None:
    page.set_layer("input")
    assert "after the Input" in page.state.text() and not page.busy
    page.set_layer("fc1")
    qtbot.waitUntil(lambda: page.top is not None and page.top.node == "fc1", timeout=WAIT_MS)
    wait_idle(qtbot, page)
    assert page.state.text().startswith("fc1 has no channel maps")
    assert all(h.box is None for f in page.top.filters for h in f.hits)
    assert page.rows[0].strip.crops[0].shape == (8, 8, 3)  # the whole sample
    assert page.rows[0].name.text() == "unit 0"


def test_hover_shows_the_whole_sample_and_click_explains_it(qtbot, page) -> None:
    from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    page.set_layer("conv2")
    qtbot.waitUntil(lambda: page.top is not None and page.maps is not None, timeout=WAIT_MS)
    wait_idle(qtbot, page)
    row = page.rows[3]
    page.scroll.ensureWidgetVisible(row)
    strip = row.strip
    third = QPoint(2 * strip.pitch + strip.cell // 2, strip.size // 2)
    # Sent to the strip itself: offscreen, QTest's moves reach a widget only sometimes
    # once other test windows have come and gone.

    def send(kind: QEvent.Type, button: Qt.MouseButton) -> None:
        event = QMouseEvent(kind, QPointF(third), QPointF(strip.mapToGlobal(third)), button,
                            button, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(strip, event)

    send(QEvent.Type.MouseMove, Qt.MouseButton.NoButton)
    hit = row.hits[2]
    qtbot.waitUntil(lambda: f"sample {hit.sample}" in page.preview_text.text())
    assert page.preview.box == hit.box  # the field outlined on the whole sample
    assert page.preview.rgb.shape == (8, 8, 3)
    send(QEvent.Type.MouseButtonPress, Qt.MouseButton.LeftButton)
    assert page.sample.value() == hit.sample
    qtbot.waitUntil(lambda: page.maps.what.startswith(f"sample {hit.sample}"),
                    timeout=WAIT_MS)
    wait_idle(qtbot, page)


def test_the_k_arrows_recompute(qtbot, page) -> None:
    page.set_layer("conv1")
    qtbot.waitUntil(lambda: page.top is not None, timeout=WAIT_MS)
    wait_idle(qtbot, page)
    page.k.setFocus()  # an arrow click focuses the box: its steps still count
    qtbot.waitUntil(page.k.hasFocus)
    page.k.stepUp()
    qtbot.waitUntil(lambda: page.top.k == 10, timeout=WAIT_MS)
    wait_idle(qtbot, page)
    assert all(len(row.strip.crops) == 10 for row in page.rows)


def test_values_fit_under_their_pictures(qtbot) -> None:
    """Small activations ("0.00248", "−0.0123") are wider than a picture; the synthesised
    image's two lines (reached, the samples' mean) both show."""
    from cnnstudio.ui.explain.gallery import FilterRow, HitView

    box = QWidget()
    qtbot.addWidget(box)
    layout = QVBoxLayout(box)
    rows = [FilterRow(40, parent=box) for _ in range(3)]
    for row in rows:
        layout.addWidget(row)
    layout.addStretch(1)
    values = (0.00248, -0.0123, 12.5, -0.000513)
    hits = [HitView(i, v, None, "") for i, v in enumerate(values)]
    pictures = [np.zeros((8, 8, 3), np.uint8)] * len(values)
    for row in rows:
        row.set_filter(0, hits, pictures)
        row.show_synthesis(np.zeros((8, 8, 3), np.uint8), 0.00248, -0.0123)
    box.resize(700, 3 * 60)  # room as a page gives: each row gets its minimum
    box.show()
    qtbot.waitExposed(box)
    for row in rows:
        label = row.synthesis_text
        metrics = label.fontMetrics()
        assert label.height() >= 2 * metrics.height()  # "mean …" is not cut off
        assert label.width() >= max(metrics.horizontalAdvance(t)
                                    for t in label.text().split("\n"))
        strip = row.strip
        for i, text in enumerate(strip.texts):
            width = strip.fontMetrics().horizontalAdvance(text)
            assert width <= strip.cell  # no value spills into its neighbour
            assert strip.index_at(i * strip.pitch + strip.cell / 2) == i
        assert strip.width() >= len(values) * strip.pitch - strip.GAP


SIGNALS = DIGITS.parent / "signals.cnnproj"


def test_signals_are_drawn_as_curves(qtbot, window, tmp_path, monkeypatch) -> None:
    """A 1-D network's hits: the field with context as curves (channels coloured), the
    field shaded; the synthesised signal too; the image side says why it has no maps."""
    from cnnstudio.ui.explain.response_jobs import NOT_A_CLASSIFIER

    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    assert window.open_project(SIGNALS)
    host = ExplainHost(window)
    box = QWidget()
    qtbot.addWidget(box)
    layout = QVBoxLayout(box)
    layout.addWidget(host.strip)
    panel = FilterResponsesPanel(host)
    layout.addWidget(panel)
    box.resize(1280, 420)
    box.show()
    qtbot.waitExposed(box)
    panel.set_layer("conv1")
    qtbot.waitUntil(lambda: panel.top is not None, timeout=WAIT_MS)
    wait_idle(qtbot, panel)
    assert panel.side.note.text() == NOT_A_CLASSIFIER and panel.maps is None
    assert panel.side.note.isVisible() and not panel.prediction.text()
    assert not panel.sample.isEnabled() and not panel.side.open_button.isEnabled()
    row = panel.rows[0]
    strip = row.strip
    assert strip.signals is not None and len(strip.signals) == 9
    for hit, (part, span) in zip(row.hits, strip.signals, strict=True):
        sample = panel.top.samples[hit.sample].astype(np.float64)
        _, x0, _, x1 = hit.box
        s0, s1 = span
        assert s1 - s0 == x1 - x0 and part.shape[1] >= min(16, sample.shape[1])
        start = x0 - s0
        np.testing.assert_array_equal(part, sample[:, start:start + part.shape[1]])
    picture = strip.grab().toImage()
    coloured = sum(1 for x in range(0, picture.width(), 2) for y in range(strip.size)
                   if picture.pixelColor(x, y).hsvSaturation() > 80)
    assert coloured > 20  # curves, not grey slivers
    assert panel.preview.signal is not None  # the whole signal, its field shaded
    assert panel.preview.span == (row.hits[0].box[1], row.hits[0].box[3])
    panel.synth_button.click()
    qtbot.waitUntil(lambda: panel.synthesis is not None, timeout=WAIT_MS)
    wait_idle(qtbot, panel)
    made = panel.synthesis.images[0]
    assert row.synthesised.signal is not None
    np.testing.assert_allclose(row.synthesised.signal, made.reshape(len(made), -1))
    host.background.wait()
