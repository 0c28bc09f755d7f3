"""Screenshots of the window mid-training, for a human to look at (not collected as a test).

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python tests/ui/screenshot_training.py \
        /tmp/training.png [--template digits-lenet] [--tab Curves] [--epochs 3] \
        [--select conv1] [--dialog predict|kernel|samples|settings] [--processes 2]

Opens the window at 1280×800, starts training, waits until `--epochs` epochs are done,
selects a node, shows a tab of the Training dock (or a dialog) and saves `grab()`s while
the run goes on; then stops the run. Settings, recovery and cache go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

TABS = ("Curves", "Filters", "Activations", "Confusion", "History", "Log")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--template", default="digits-lenet")
    parser.add_argument("--tab", default="Curves", choices=TABS)
    parser.add_argument("--epochs", type=int, default=3, help="epochs done before the shot")
    parser.add_argument("--select", default="conv1")
    parser.add_argument("--dialog", choices=("predict", "kernel", "samples", "settings"))
    parser.add_argument("--processes", type=int, default=1, help="more: a distributed run")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="cnnstudio-shot-")
    os.environ["CNNSTUDIO_SETTINGS_DIR"] = os.path.join(scratch, "settings")
    os.environ["CNNSTUDIO_DATA_DIR"] = os.path.join(scratch, "data")
    os.environ.setdefault("CNNSTUDIO_CACHE_DIR", os.path.join(scratch, "cache"))

    from cnnstudio.ui.app import application
    from cnnstudio.ui.main_window import MainWindow

    app = application()
    window = MainWindow()
    window.confirm_unsaved = False
    window.show_error = lambda text: print("error:", text)  # type: ignore[method-assign]
    window.new_project(args.template)
    window.project.training["epochs"] = max(20, args.epochs + 5)
    window.resize(1280, 800)
    window.show()
    ui = window.training
    if args.processes > 1:
        from cnnstudio.ui.training.distributed_worker import run_options

        run_options(window.document).set_processes(args.processes)

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)

    pump(0.3)
    if args.select:
        window.show_node(args.select)
    ui.train()
    deadline = time.monotonic() + 120
    while len(ui.controller.live.epochs) < args.epochs and time.monotonic() < deadline:
        pump(0.05)
        if not ui.controller.running:
            break
    ui.tabs.setCurrentIndex(TABS.index(args.tab))
    if args.dialog == "settings":
        ui.settings_dock.raise_()
    pump(1.5)  # a snapshot or two arrive and the timer redraws
    if args.tab == "Activations" and ui.activations.maps.ndim == 3:
        h, w = ui.activations.maps.shape[1:]
        ui.activations._clicked(0, h // 2, w // 2)  # outline the field of a central pixel
        pump(0.2)
    target = window
    if args.dialog == "kernel":
        target = ui.actions.kernel_playground()
    elif args.dialog == "samples":
        m = ui.confusion.matrix
        off = m - m.diagonal() * (m == m.diagonal()[:, None])
        r, c = divmod(int(off.argmax()), m.shape[0]) if off.max() > 0 else (0, 0)
        ui.actions.show_cell(r, c)  # the samples are classified on the inspection worker
        while ui.actions.background.pending():
            pump(0.05)
        target = ui.actions.last_cell or window
    elif args.dialog == "predict":
        from PIL import Image

        sample = ui.controller.live.context["x"][3]
        path = os.path.join(scratch, "sample.png")
        Image.fromarray(sample[0] if sample.shape[0] == 1 else sample.transpose(1, 2, 0)).save(path)
        ui.controller.stop()  # predictions use the saved weights once the run ended
        while ui.controller.running:
            pump(0.05)
        ui.actions.predict_file(path)  # predicted on the inspection worker
        while ui.actions.background.pending():
            pump(0.05)
        target = ui.actions.last_prediction or window
    pump(0.5)
    ok = target.grab().save(args.out)
    print(f"saved {args.out}" if ok else f"could not save {args.out}",
          f"(epochs done: {len(ui.controller.live.epochs)})")
    ui.controller.shutdown()
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
