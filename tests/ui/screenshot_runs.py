"""Screenshots of runs that start from other runs, for a human to look at (not a test).

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python tests/ui/screenshot_runs.py /tmp/shots

Trains digits-lenet three times (fresh, warm from run-1, fresh again) in short runs and
saves into the folder: choice.png (the question Train asks on trained weights),
warm_curves.png (the live curves of the warm run-2), history.png (History with its
"starts from" column), overlay.png (runs 1-3 overlaid: run-2 goes on after run-1),
paused.png (the controls row while paused), data.png (the Data view on a deep folder of
32×32 RGB pictures fitted to the 1×8×8 Input).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/shots")
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="cnnstudio-shot-"))
    os.environ["CNNSTUDIO_SETTINGS_DIR"] = str(scratch / "settings")
    os.environ["CNNSTUDIO_DATA_DIR"] = str(scratch / "data")
    os.environ["CNNSTUDIO_CACHE_DIR"] = str(scratch / "cache")

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from cnnstudio.train import Callback
    from cnnstudio.ui.app import application
    from cnnstudio.ui.main_window import MainWindow

    app = application()
    window = MainWindow()
    window.confirm_unsaved = False
    window.show_error = lambda text: print("error:", text)  # type: ignore[method-assign]
    window.new_project("digits-lenet")
    window.project.training.update({"epochs": 4, "max_batches_per_epoch": 12,
                                    "checkpoint": "last"})
    window.resize(1280, 800)
    window.show()
    ui = window.training

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)

    def run(answer: str | None) -> None:
        ui.chooser.ask = lambda run_id: answer
        ui.chooser.train()
        pump(0.2)
        while ui.controller.running:
            pump(0.05)
        pump(0.5)

    pump(0.3)
    run(None)  # run-1: untrained, nothing asked
    chooser = type(ui.chooser)

    def grab_question() -> None:
        box = QApplication.activeModalWidget()
        if box is None:
            QTimer.singleShot(100, grab_question)
            return
        box.grab().save(str(out / "choice.png"))
        box.reject()

    QTimer.singleShot(300, grab_question)
    print("asked:", chooser.ask(ui.chooser, "run-1"))
    ui.tabs.setCurrentWidget(ui.curves)
    run("continue")  # run-2, warm from run-1
    ui.curves.refresh(ui.controller.live, force=True)
    pump(0.3)
    ui.panel.grab().save(str(out / "warm_curves.png"))
    run("fresh")  # run-3
    ui.tabs.setCurrentWidget(ui.history)
    pump(0.3)
    ui.panel.grab().save(str(out / "history.png"))
    for rid in ("run-1", "run-2", "run-3"):
        ui.history.set_ticked(rid, True)
    ui.tabs.setCurrentWidget(ui.curves)
    pump(0.5)
    ui.panel.grab().save(str(out / "overlay.png"))

    class Slow(Callback):
        def on_batch_end(self, trainer, info) -> None:
            time.sleep(0.1)

    ui.controller.extra_callbacks = [Slow()]
    ui.chooser.ask = lambda run_id: "continue"
    ui.chooser.train()
    while not ui.controller.live.progress:
        pump(0.05)
    pump(1.0)
    ui.toggle_pause()
    pump(1.5)
    ui.controls.grab().save(str(out / "paused.png"))
    print("paused text:", ui.controls.progress.full_text())
    ui.controller.shutdown()
    pump(0.3)

    import numpy as np
    from PIL import Image

    deep = scratch.joinpath(*[f"a_rather_long_folder_name_{i}" for i in range(5)], "photos")
    rng = np.random.default_rng(0)
    for name in ("cars", "ships", "planes"):
        (deep / name).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(
                deep / name / f"{i}.png")
    view = window.data_view
    window.data_dock.show()
    window.data_dock.raise_()
    form = view.form
    form.ask_directory = lambda title, start: str(deep)
    form.kind.setCurrentIndex(form.kind.findData("folder"))
    form.kind.activated.emit(form.kind.currentIndex())
    form.paths[0].browse.click()
    view.reload()
    while view.is_loading():
        pump(0.05)
    pump(0.5)
    window.grab().save(str(out / "data.png"))
    window.data_dock.grab().save(str(out / "data_dock.png"))
    print("formats:", view.formats.text(), "|", view.fit_input.text())
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
