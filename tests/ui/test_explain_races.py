"""The Explain view's jobs against each other and against time: a trace that is no longer
wanted is never drawn, a trace made while an occlusion job holds the model is torch's
own, the progress row goes when a project replaces the one a job was for, Cancel stops
the occlusion job and another layer reuses its map, and closing the window while a job
runs ends the process cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cnnstudio.project import read_project

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "sample_projects" / "digits.cnnproj"
XO = ROOT / "sample_projects" / "xo.cnnproj"
WAIT_MS = 90_000


@pytest.fixture
def digits(qtbot, errors, monkeypatch, tmp_path):
    """A shown 1280×800 window on the digits sample (untrained)."""
    from cnnstudio.ui import MainWindow

    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    win = MainWindow()
    qtbot.addWidget(win)
    monkeypatch.setattr(win, "show_error", errors.append)
    win.confirm_unsaved = False
    assert win.open_project(DIGITS)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.explain.host.background.wait()


def hold_worker(background) -> threading.Event:
    """Keep `background`'s worker busy until the returned event is set."""
    release = threading.Event()
    started = threading.Event()

    def block() -> None:
        started.set()
        release.wait(30)

    background.submit("test.blocker", block, lambda _r: None)
    assert started.wait(30)
    return release


def explained(page, node: str) -> bool:
    return page.explanation is not None and page.explanation.node == node and \
        page.stack.currentWidget() is page.splitter


def test_a_trace_no_longer_wanted_is_never_drawn(digits, qtbot) -> None:
    view = digits.explain.view
    page = view.computation
    digits.show_node("conv1")
    digits.explain.explain()
    qtbot.waitUntil(lambda: explained(page, "conv1"), timeout=WAIT_MS)
    # conv2 is asked for, then the Input chosen before its trace came back.
    release = hold_worker(page.background)
    digits.show_node("conv2")
    digits.show_node("input")
    assert page.message.text().startswith("The Input layer computes nothing")
    release.set()
    page.background.wait()
    qtbot.wait(100)  # the (dropped) result's queued delivery
    assert page.stack.currentWidget() is page.message and page.explanation is None
    assert page.message.text().startswith("The Input layer computes nothing")
    # conv2 asked for, then another project opened: its trace is not drawn over it.
    release = hold_worker(page.background)
    digits.show_node("conv2")
    assert page.node == "conv2" and page.message.text().startswith("Computing conv2")
    assert digits.open_project(XO)
    release.set()
    page.background.wait()
    qtbot.wait(100)
    assert page.node is None and page.explanation is None
    assert page.stack.currentWidget() is page.message


def test_a_trace_beside_a_running_occlusion_is_torchs_own(digits, qtbot, monkeypatch) -> None:
    """Occlusion swaps the final Softmax for its logits while it runs; a trace made then
    on a second thread read the logits as probabilities."""
    import torch

    from cnnstudio.nn.explain import occlusion
    from cnnstudio.nn.explain.responses import Cancelled
    from cnnstudio.nn.internals import _logits, node_activation

    project = read_project(DIGITS)
    project.graph.add_node("Softmax", id="probs", inputs=["classifier"])
    digits.set_project(project)
    holding = threading.Event()
    real = occlusion.occlusion_map

    def slow_occlusion(module, x, cls, **kw):
        """The real map, after holding the logits tap for up to 5 s (a large model's
        occlusion), listening for Cancel as the real one does per batch."""
        cancelled = kw.get("cancelled") or (lambda: False)
        with _logits(module):
            holding.set()
            end = time.monotonic() + 5
            while time.monotonic() < end:
                if cancelled():
                    raise Cancelled("cancelled")
                time.sleep(0.01)
        return real(module, x, cls, **kw)

    monkeypatch.setattr(occlusion, "occlusion_map", slow_occlusion)
    view = digits.explain.view
    digits.show_node("conv2")
    digits.explain.explain()
    view.tabs.setCurrentWidget(view.responses)
    assert holding.wait(60)  # the image's occlusion holds the model now
    view.tabs.setCurrentWidget(view.computation)
    digits.show_node("probs")
    page = view.computation
    qtbot.waitUntil(lambda: explained(page, "probs"), timeout=WAIT_MS)
    e = page.explanation
    source = digits.explain.host.source()
    ctx = digits.training.controller.live.context
    i = page.sample_spin.value()
    x = source.prep.to_float(np.array(ctx["x"][i:i + 1]))
    with torch.no_grad():
        expected = node_activation(source.module(), "probs", x)[0].numpy()
    assert page.trace.output.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(page.trace.output, expected, rtol=1e-5, atol=1e-6)
    assert e.value == pytest.approx(float(expected[e.index]), abs=1e-6)
    assert e.result == pytest.approx(e.value, abs=1e-5)
    # Leaving the page stopped its job; coming back starts it again.
    view.tabs.setCurrentWidget(view.responses)
    qtbot.waitUntil(lambda: view.responses.maps is not None, timeout=WAIT_MS)


def test_the_progress_row_goes_with_the_project(digits, qtbot) -> None:
    view = digits.explain.view
    panel, host = view.responses, digits.explain.host
    digits.show_node("conv1")
    digits.explain.explain()
    view.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.top is not None and not panel.busy, timeout=WAIT_MS)
    release = hold_worker(host.background)
    panel.synth_button.click()  # queued behind the blocker
    assert panel.busy and host.strip.isVisible()
    assert digits.open_project(XO)
    assert "synthesis" not in panel.jobs.running  # its result will never come
    release.set()
    host.background.wait()
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    assert host.strip.isHidden()


def test_cancel_stops_the_occlusion_and_a_layer_reuses_its_map(digits, qtbot,
                                                               monkeypatch) -> None:
    from cnnstudio.nn.explain import occlusion
    from cnnstudio.nn.explain.responses import Cancelled

    with pytest.raises(Cancelled):
        x = np.zeros((1, 1, 8, 8), np.float32)
        import torch

        occlusion.occlusion_map(torch.nn.Flatten(), torch.from_numpy(x), 0,
                                cancelled=lambda: True)
    calls = []
    real = occlusion.occlusion_map

    def counted(*args, **kw):
        calls.append(kw.get("cancelled"))
        return real(*args, **kw)

    monkeypatch.setattr(occlusion, "occlusion_map", counted)
    view = digits.explain.view
    panel, host = view.responses, digits.explain.host
    digits.show_node("conv2")
    digits.explain.explain()
    # The samples loaded (the untrained model takes their statistics): the model stays.
    qtbot.waitUntil(lambda: explained(view.computation, "conv2"), timeout=WAIT_MS)
    view.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.maps is not None and not panel.busy, timeout=WAIT_MS)
    assert len(calls) == 1 and calls[0] is not None  # Cancel reaches the batches
    first = panel.maps.occlusion
    digits.show_node("conv1")  # another layer: Grad-CAM again, the occlusion reused
    qtbot.waitUntil(lambda: panel.maps.grad_cam_layer == "relu1" and not panel.busy,
                    timeout=WAIT_MS)
    assert len(calls) == 1
    np.testing.assert_array_equal(panel.maps.occlusion, first)
    release = hold_worker(host.background)
    panel.sample.setValue(7)  # queued behind the blocker, then cancelled
    host.strip.cancel_button.click()
    release.set()
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    assert panel.maps is None and panel.prediction.text() == "Cancelled"
    assert len(calls) == 1


EXIT_SCRIPT = textwrap.dedent("""
    import sys, time
    from PySide6.QtWidgets import QApplication
    app = QApplication(sys.argv)
    from cnnstudio.ui import MainWindow
    win = MainWindow()
    win.confirm_unsaved = False
    win.show_error = print
    win.resize(1280, 800)
    win.show()
    assert win.open_project(sys.argv[1])
    view = win.explain.view
    win.show_node("conv1")
    win.explain.explain()
    view.tabs.setCurrentWidget(view.responses)
    strip = win.explain.host.strip
    end = time.monotonic() + 240
    while not strip.label.text().endswith(" occlusion") and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)
    print("closing during", repr(strip.label.text()), flush=True)
    win.close()
    app.quit()
""")


def test_closing_while_a_job_runs_exits_cleanly(tmp_path) -> None:
    """ResNet-50's occlusion runs torch's thread pool: a job still in it while the
    interpreter ended aborted the process ("terminate called…", exit 134)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        folder = tmp_path / "imagenet" / name
        folder.mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    project = tmp_path / "resnet50.cnnproj"
    project.write_bytes((ROOT / "sample_projects" / "real-size" / "resnet50.cnnproj")
                        .read_bytes())
    script = tmp_path / "close_while_running.py"
    script.write_text(EXIT_SCRIPT)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               CNNSTUDIO_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(script), str(project)], env=env,
                          capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert "closing during 'occlusion and Grad-CAM of sample 0 occlusion'" in done.stdout, \
        done.stdout + done.stderr[-2000:]
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr
