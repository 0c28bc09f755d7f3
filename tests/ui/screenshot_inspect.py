"""Screenshots of the inside views, for a human to look at (not collected as a test).

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python tests/ui/screenshot_inspect.py \
        /tmp/inspect [--only filters-untrained,activations,...]

Saves into the folder: filters-untrained.png (mxnet-mnist before training),
filters-rgb.png (alexnet-small before training), filters-pairs.png (digits-lenet's
conv2: a kernel per filter and input channel), activations.png (64 maps of 24×24
filling the panel), activations-enlarged.png (one map large), bars.png (a trained
digits-lenet's classifier outputs), predict-inverted.png (a black-on-white hand-drawn 3),
kernel-bad-cell.png (the kernel playground refusing "abc"). Settings, recovery and cache go
to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

SCENES = ("filters-untrained", "filters-rgb", "filters-pairs", "activations", "activations-enlarged", "bars",
          "predict-inverted", "kernel-bad-cell")


def drawn_three(path: Path) -> Path:
    """A black "3" drawn with a thick pen on white, as a user would draw it."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (96, 96), 255)
    pen = ImageDraw.Draw(img)
    pen.arc((22, 8, 74, 50), start=200, end=90, fill=0, width=9)
    pen.arc((22, 44, 74, 88), start=270, end=160, fill=0, width=9)
    img.save(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--only", default=",".join(SCENES))
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="cnnstudio-shot-")
    os.environ["CNNSTUDIO_SETTINGS_DIR"] = os.path.join(scratch, "settings")
    os.environ["CNNSTUDIO_DATA_DIR"] = os.path.join(scratch, "data")
    os.environ.setdefault("CNNSTUDIO_CACHE_DIR", os.path.join(scratch, "cache"))

    from PySide6.QtCore import Qt

    from cnnstudio.ui.app import application
    from cnnstudio.ui.main_window import MainWindow

    app = application()
    window = MainWindow()
    window.confirm_unsaved = False
    window.show_error = lambda text: print("error:", text)  # type: ignore[method-assign]
    window.resize(1280, 800)
    window.show()
    ui = window.training

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)

    def until(test, seconds: float = 120.0) -> bool:  # noqa: ANN001
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            if test():
                return True
            time.sleep(0.01)
        print("timed out waiting", file=sys.stderr)
        return False

    def open_tab(template: str, view) -> None:  # noqa: ANN001
        window.new_project(template)
        ui.dock.show()
        ui.dock.raise_()
        ui.tabs.setCurrentWidget(view)
        window.resizeDocks([ui.dock], [430], Qt.Orientation.Vertical)
        pump(0.3)

    def shoot(name: str, widget=None) -> None:  # noqa: ANN001
        pump(0.5)
        (widget or window).grab().save(str(out / f"{name}.png"))
        print("saved", out / f"{name}.png")

    if "filters-untrained" in wanted:
        open_tab("mxnet-mnist", ui.filters)
        until(lambda: ui.filters.tile_count == 64)
        shoot("filters-untrained")
    if "filters-rgb" in wanted:
        open_tab("alexnet-small", ui.filters)
        until(lambda: ui.filters.tile_count == 64)
        shoot("filters-rgb")
    if "filters-pairs" in wanted:
        open_tab("digits-lenet", ui.filters)
        window.document.set_selection(["conv2"])
        until(lambda: ui.filters.tile_count == 32 * 16)
        grid = ui.filters.grid
        from PySide6.QtTest import QTest

        for _ in range(2):
            pump(0.05)
            QTest.mouseMove(grid.plot.viewport(), grid.picture_point(40, 1, 1).toPoint())
        shoot("filters-pairs")
    if wanted & {"activations", "activations-enlarged"}:
        open_tab("mxnet-mnist", ui.activations)
        until(lambda: ui.activations.maps.shape == (64, 24, 24))
        grid = ui.activations.grid
        point = grid.picture_point(5, 12, 12)
        from PySide6.QtTest import QTest

        QTest.mouseMove(grid.plot.viewport(), point.toPoint())
        pump(0.1)
        QTest.mouseMove(grid.plot.viewport(), point.toPoint())
        shoot("activations")
        grid.enlarge(5)
        shoot("activations-enlarged")
    if wanted & {"bars", "predict-inverted"}:
        window.new_project("digits-lenet")
        window.project.training.update({"epochs": 4})
        ui.train()
        until(lambda: not ui.controller.running, 300)
        if "bars" in wanted:
            ui.tabs.setCurrentWidget(ui.activations)
            window.document.set_selection(["classifier"])
            until(lambda: ui.activations.maps.shape == (10,))
            shoot("bars")
        if "predict-inverted" in wanted:
            ui.actions.predict_file(drawn_three(Path(scratch) / "three.png"))
            until(lambda: ui.actions.last_prediction is not None)
            dialog = ui.actions.last_prediction
            pump(0.3)
            shoot("predict-inverted", dialog)
            print("top:", dialog.prediction.top[:2], "warning:", dialog.prediction.warning)
    if "kernel-bad-cell" in wanted:
        dialog = ui.actions.kernel_playground()
        until(lambda: dialog.uses_project_data)
        dialog.sample.setValue(3)
        dialog.preset.setCurrentText("Sobel x")
        dialog.kernel.item(1, 2).setText("abc")
        shoot("kernel-bad-cell", dialog)
    ui.controller.shutdown()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
