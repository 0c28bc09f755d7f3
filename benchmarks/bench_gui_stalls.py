"""The longest the window stops answering during each long action (SPEC §3 "Fast": no
stall over 50 ms, ever), each action from a fresh process, as a user meets it first.

Every action runs in its own child process (torch not imported yet, no warm caches): a
shown 1280×800 MainWindow (offscreen), a 16 ms precise QTimer whose lateness (interval
minus 16 ms) measures how long the event loop was held. The timer starts when the window
has been shown and idle for `--idle` seconds (what a user takes before the first click),
and stops `TAIL_S` after the action is done (work it left for later counts too).

  idle           nothing for 2 s: the floor, what the machine's load alone costs
  first-train    Train pressed on digits-lenet → its first epoch done (then stopped)
  export-onnx    File → Export → ONNX… on digits-lenet (the file dialog answered by a hook)
  export-torchscript  the same for TorchScript
  predict        File → Open Image (Predict) on a trained digits-lenet project just opened
  grad-cam       the same on a trained ResNet-style project (3×32×32): Grad-CAM of a deep net
  open-project   File → Open of a VGG-style project with tens of MB of weights
  end-of-run     that project (saved) trained on to the end of a short run: the weights
                 written back, the views redrawn, the recovery file written

    python benchmarks/bench_gui_stalls.py [--action NAME] [--runs 3] [--idle 1.0] [--log]

`--action NAME` runs one action (still in a fresh process); `--log` prints each tick later
than 50 ms with its time since the action began; end-of-run also prints the worst stall
once the worker had finished (the start of a run is first-train's). The projects and
images it needs are made once per invocation in a scratch folder (headless, outside the
measured processes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

GOAL_MS, TICK_MS, TAIL_S, TIMEOUT_S = 50.0, 16, 0.5, 300.0
FIRST_PAINT_S = 0.3  # after show(): the window's first paints, not yet measured
ACTIONS = ("idle", "first-train", "export-onnx", "export-torchscript", "predict", "grad-cam",
           "open-project", "end-of-run")


# ---- fixtures (made headless, in the parent process) -----------------------------------

def _trained_project(scratch: Path, template: str, widen: int | None = None) -> Path:
    """`template` trained for one batch (real weights and a run record), saved."""
    from cnnstudio.core.templates import get_template
    from cnnstudio.project import project_from_dict, write_project
    from cnnstudio.train import train_project

    project = project_from_dict(get_template(template).project_dict())
    if widen:  # the first Linear much wider: tens of MB of weights, as real VGGs have
        linear = next(n for n in project.graph if n.type == "Linear")
        project.graph.set_param(linear.id, "out_features", widen)
    project.training.update({"epochs": 1, "max_batches_per_epoch": 1, "seed": 0})
    result = train_project(project)
    assert result.status == "completed", result.message
    path = scratch / f"{template}{'-wide' if widen else ''}.cnnproj"
    write_project(project, path)
    return path


def _image(scratch: Path, size: tuple[int, int], mode: str) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    path = scratch / f"image-{mode}-{size[0]}.png"
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def fixtures(scratch: Path, actions: list[str]) -> dict[str, str]:
    made: dict[str, str] = {}
    if "predict" in actions:
        made["digits"] = str(_trained_project(scratch, "digits-lenet"))
        made["digit_image"] = str(_image(scratch, (8, 8), "L"))
    if "grad-cam" in actions:
        made["resnet"] = str(_trained_project(scratch, "resnet"))
        made["rgb_image"] = str(_image(scratch, (32, 32), "RGB"))
    if "open-project" in actions or "end-of-run" in actions:
        made["big"] = str(_trained_project(scratch, "vgg", widen=4096))
    return made


# ---- the measured child ----------------------------------------------------------------

class Stalls:
    """A 16 ms precise timer noting when each tick came."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def lateness(self) -> list[tuple[float, float]]:
        """(when the late tick came, how late in ms) for each tick after the first."""
        t = self.ticks
        return [(b, (b - a) * 1e3 - TICK_MS) for a, b in zip(t, t[1:], strict=False)]

    def between(self, start: float, stop: float) -> list[tuple[float, float]]:
        """(when after `start`, ms late) of the ticks that came in (start, stop]."""
        return [(when - start, late) for when, late in self.lateness() if start < when <= stop]


def wait_until(app: Any, done: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> None:
    """Run the event loop (as the app does: no busy polling) until `done()`."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(5)
    deadline = time.perf_counter() + timeout_s
    poll.timeout.connect(lambda: loop.quit() if done() or time.perf_counter() > deadline
                         else None)
    poll.start()
    if not done():
        loop.exec()
    poll.stop()
    if not done():
        raise TimeoutError("the action did not finish in time")


def _window(app: Any, project_path: str | None = None, template: str = "digits-lenet"):
    from cnnstudio.ui.main_window import MainWindow

    window = MainWindow()
    window.confirm_unsaved = False
    errors: list[str] = []
    window.show_error = errors.append  # type: ignore[method-assign]
    if project_path:  # as File → Open does (read on a worker), before the measurement
        loaded: list[bool] = []
        window.project_loaded.connect(loaded.append)
        window.load_project(project_path)
        wait_until(app, lambda: bool(loaded))
    else:
        window.new_project(template)
    window.resize(1280, 800)
    window.show()
    return window, errors


def act_first_train(app: Any, window: Any, errors: list[str], files: dict[str, str]):
    from PySide6.QtWidgets import QPushButton

    controller = window.training.controller
    epochs: list[dict] = []
    controller.epoch_added.connect(epochs.append)
    window.findChild(QPushButton, "trainButton").click()
    return lambda: bool(epochs) or bool(errors) or controller.last_outcome is not None


def stop_training(app: Any, window: Any) -> None:
    """After the measurement: stop the run, so that the window closes at once."""
    controller = window.training.controller
    controller.stop()
    wait_until(app, lambda: not controller.running)


def act_idle(app: Any, window: Any, errors: list[str], files: dict[str, str]):
    """Nothing for 2 s: the floor (what the machine's load alone costs the timer)."""
    began = time.perf_counter()
    return lambda: time.perf_counter() - began >= 2.0


def _export(fmt: str) -> Callable[..., Callable[[], bool]]:
    def act(app: Any, window: Any, errors: list[str], files: dict[str, str]):
        target = Path(files["scratch"]) / f"net-{os.getpid()}"
        menu = window.export_menu
        menu.ask_export_path = lambda entry, start: str(target)  # the file dialog's answer
        menu.actions[fmt].trigger()
        return lambda: bool(errors) or window.statusBar().currentMessage().startswith("Exported")
    return act


def _predict(image: str) -> Callable[..., Callable[[], bool]]:
    def act(app: Any, window: Any, errors: list[str], files: dict[str, str]):
        actions = window.training.actions
        actions.ask_image_path = lambda: files[image]  # the file dialog's answer
        actions.open_image()
        return lambda: bool(errors) or actions.last_prediction is not None
    return act


def act_open_project(app: Any, window: Any, errors: list[str], files: dict[str, str]):
    path = Path(files["big"])
    # What File → Open does once its dialog answered (open_project: before it loaded in
    # the background, for before/after figures).
    getattr(window, "load_project", window.open_project)(path)
    return lambda: bool(errors) or window.project.path == path


def act_end_of_run(app: Any, window: Any, errors: list[str], files: dict[str, str]):
    """A short run (one batch, its validation) on the saved 33 MB project, to its end:
    done once the recovery file is written. `files["ended"]` notes when the worker ended."""
    from PySide6.QtCore import Qt

    controller = window.training.controller
    window.training.train()  # a new run from the project's weights, without asking
    controller._worker.run_finished.connect(  # called on the worker, as it ends
        lambda _outcome: files.setdefault("ended", time.perf_counter()),
        Qt.ConnectionType.DirectConnection)
    target = window.autosaver.target
    return lambda: bool(errors) or (controller.last_outcome is not None and target.exists())


CHILD: dict[str, tuple[str | None, str, Callable[..., Callable[[], bool]]]] = {
    # action: (project file key to open first, or None for a template), template, act
    "idle": (None, "digits-lenet", act_idle),
    "first-train": (None, "digits-lenet", act_first_train),
    "export-onnx": (None, "digits-lenet", _export("onnx")),
    "export-torchscript": (None, "digits-lenet", _export("torchscript")),
    "predict": ("digits", "", _predict("digit_image")),
    "grad-cam": ("resnet", "", _predict("rgb_image")),
    "open-project": (None, "digits-lenet", act_open_project),
    "end-of-run": ("big", "", act_end_of_run),
}


def child(action: str, files: dict[str, str], idle_s: float) -> dict[str, Any]:
    from PySide6.QtCore import QTimer

    from cnnstudio.ui.app import application

    app = application()
    start_at = time.perf_counter()
    opened, template, act = CHILD[action]
    window, errors = _window(app, files.get(opened) if opened else None, template or "digits-lenet")
    stalls = Stalls()
    shown = time.perf_counter()
    wait_until(app, lambda: time.perf_counter() - shown >= FIRST_PAINT_S)
    # Ticking before the action: the idle window's lateness is the floor (the machine's
    # load), and a stall at the action's very start counts.
    stalls.timer.start()
    wait_until(app, lambda: time.perf_counter() - shown >= max(idle_s, FIRST_PAINT_S + 0.2))
    began = time.perf_counter()
    done_box: list[Callable[[], bool]] = []

    def start() -> None:
        try:
            done_box.append(act(app, window, errors, files))
        except Exception as err:  # said at once, not after the timeout
            errors.append(f"{type(err).__name__}: {err}")
            done_box.append(lambda: True)

    # From the event loop, as a click is; the timer's next tick shows how long it held it.
    QTimer.singleShot(0, start)
    wait_until(app, lambda: bool(done_box) and done_box[0]())
    finished = time.perf_counter()
    wait_until(app, lambda: time.perf_counter() - finished >= TAIL_S)
    stalls.timer.stop()
    late = [(when - began, ms) for when, ms in stalls.lateness()]
    floor = [ms for when, ms in late if when <= 0] or [0.0]
    late = [(when, ms) for when, ms in late if when > 0]
    values = sorted(ms for _, ms in late) or [0.0]
    result = {"action": action, "seconds": finished - began, "ticks": len(late),
              "max": values[-1], "floor": max(floor), "p99": values[min(len(values) - 1, int(0.99 * len(values)))],
              "late": [(round(t, 3), round(ms, 1)) for t, ms in late if ms > GOAL_MS],
              "errors": errors, "startup": shown - start_at}
    if "ended" in files:  # end-of-run: the worst stall once the worker had finished
        result["after_end"] = max((ms for when, ms in late if when + began >= files["ended"]),
                                  default=0.0)
    stop_training(app, window)
    window.close()
    return result


# ---- the parent: one fresh process per action and run ----------------------------------

def run_child(action: str, files: dict[str, str], idle_s: float) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", action, "--files",
                          json.dumps(files), "--idle", str(idle_s)],
                         capture_output=True, text=True, timeout=TIMEOUT_S + 60)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{action} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--action", action="append", choices=ACTIONS,
                        help="run only this action (repeatable); default: all")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per action")
    parser.add_argument("--idle", type=float, default=1.0,
                        help="seconds the shown window idles before the action")
    parser.add_argument("--log", action="store_true", help="print every tick over 50 ms")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="cnnstudio-bench-stalls-"))
    os.environ["CNNSTUDIO_SETTINGS_DIR"] = str(scratch / "settings")  # never the user's
    os.environ["CNNSTUDIO_DATA_DIR"] = str(scratch / "data")
    if args.child:
        files = json.loads(args.files or "{}")
        try:
            print(json.dumps(child(args.child, files, args.idle)), flush=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            os._exit(0)  # no teardown of a window whose threads may still wind down
    try:
        return parent(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # its projects weigh tens of MB


def parent(args: argparse.Namespace, scratch: Path) -> int:
    actions = args.action or list(ACTIONS)
    files = fixtures(scratch, actions)
    files["scratch"] = str(scratch)
    print(f"{os.cpu_count()} cores; each action in a fresh process after {args.idle:.1f} s"
          f" idle; 16 ms timer lateness, goal max ≤ {GOAL_MS:.0f} ms", flush=True)
    width = 7 * args.runs + 2
    print(f"{'action':19} {'worst stall (ms), per run':{width}} {'p99 (ms)':{width}}"
          f" {'idle floor (ms)':{width}} {'action s':9} verdict")
    for action in actions:
        results = [run_child(action, files, args.idle) for _ in range(args.runs)]
        worst = "".join(f"{r['max']:7.0f}" for r in results)
        p99 = "".join(f"{r['p99']:7.0f}" for r in results)
        floor = "".join(f"{r['floor']:7.0f}" for r in results)
        secs = statistics.median(r["seconds"] for r in results)
        ok = all(r["max"] <= GOAL_MS and not r["errors"] for r in results)
        print(f"{action:19} {worst:{width}} {p99:{width}} {floor:{width}} {secs:8.2f}"
              f"  {'OK' if ok else 'MISSED'}", flush=True)
        if "after_end" in results[0]:
            after = "".join(f"{r['after_end']:7.0f}" for r in results)
            print(f"    worst stall after the run's end (ms): {after}")
        for r in results:
            if r["errors"]:
                print(f"    errors: {r['errors']}")
            if args.log and r["late"]:
                print("    late ticks (s after the action began, ms late):",
                      ", ".join(f"{t:.2f}s {ms:.0f}" for t, ms in r["late"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
