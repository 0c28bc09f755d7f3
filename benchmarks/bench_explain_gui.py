"""The Explain view's "What the filters respond to" page at work: how long each job takes
and the longest the window stops answering meanwhile (goal: no stall over 50 ms; top-k
over 2,000 samples < 3 s, occlusion of a 32×32 image < 1 s, synthesis of 16 filters
< 15 s).

Each data set runs in its own child process (torch not imported yet): a shown 1280×800
MainWindow (offscreen), the Explain dock raised on the responses page, a 16 ms precise
QTimer whose lateness (interval minus 16 ms) measures how long the event loop was held,
from the action's click until `TAIL_S` after its result is shown. Actions, in order:

  idle (the floor)  nothing for 2 s: what the machine's load alone costs the timer
  first top-k   the layer chosen: torch imported, data loaded, model built, top-k found
                (and then the first image's occlusion and Grad-CAM, after it)
  top-k         the split changed (training → all): top-k again, everything warm
  synthesis     Synthesise pressed: images for the 16 filters shown
  image         another sample chosen: occlusion + Grad-CAM

Data sets: `digits` (the digits sample, untrained: 1,797 8×8 images, layer conv2, all
samples), `shapes` (the VGG-style template, untrained, on 2,000 built-in 3×32×32 shapes,
its last convolution).

    python benchmarks/bench_explain_gui.py [--data digits|shapes] [--runs 1] [--log]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# The stall recorder and the event-loop wait are the window benchmark's own.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_gui_stalls as gui_stalls  # noqa: E402
from bench_gui_stalls import Stalls  # noqa: E402

GOAL_MS, TICK_MS, TAIL_S, TIMEOUT_S = 50.0, 16, 0.3, 300.0
FIRST_PAINT_S = 0.5
ROOT = Path(__file__).resolve().parents[1]
DATA = ("digits", "shapes")
JOB_GOALS = {"top-k": 3.0, "synthesis": 15.0, "image": 1.0}  # seconds (the goals)


def _project(name: str, scratch: Path) -> tuple[str, str]:
    """(project file, layer) for data set `name`."""
    if name == "digits":
        return str(ROOT / "sample_projects" / "digits.cnnproj"), "conv2"
    from cnnstudio.core.templates import get_template
    from cnnstudio.project import project_from_dict, write_project

    project = project_from_dict(get_template("vgg").project_dict())
    project.data["source"] = {"kind": "builtin", "name": "shapes", "samples": 2000}
    path = scratch / "vgg-shapes-2000.cnnproj"
    write_project(project, path)
    last_conv = [n.id for n in project.graph if n.type == "Conv2d"][-1]
    return str(path), last_conv


def wait_until(done: Any, timeout_s: float = TIMEOUT_S) -> None:
    """Run the event loop (no busy polling) until `done()`."""
    gui_stalls.wait_until(None, done, timeout_s)


def child(name: str, project_path: str, layer: str) -> dict[str, Any]:
    from PySide6.QtCore import Qt, QTimer

    from cnnstudio.ui.app import application
    from cnnstudio.ui.main_window import MainWindow

    application()
    window = MainWindow()
    window.confirm_unsaved = False
    errors: list[str] = []
    window.show_error = errors.append  # type: ignore[method-assign]
    assert window.open_project(project_path), errors
    window.resize(1280, 800)
    window.show()
    plugin = window.explain
    page = plugin.view.responses
    plugin.dock.show()
    plugin.dock.raise_()
    plugin.view.tabs.setCurrentWidget(page)
    window.resizeDocks([plugin.dock], [380], Qt.Orientation.Vertical)
    page.split.setCurrentIndex(page.split.findData("train"))
    stalls = Stalls()
    shown = time.perf_counter()
    wait_until(lambda: time.perf_counter() - shown >= FIRST_PAINT_S)
    stalls.timer.start()
    wait_until(lambda: time.perf_counter() - shown >= FIRST_PAINT_S + 0.5)
    results: list[dict[str, Any]] = []

    def measure(action: str, start: Any, done: Any, job: str | None = None) -> None:
        began = time.perf_counter()
        QTimer.singleShot(0, start)  # from the event loop, as a click is
        wait_until(lambda: done() and not page.busy)
        finished = time.perf_counter()
        wait_until(lambda: time.perf_counter() - finished >= TAIL_S)
        late = stalls.between(began, time.perf_counter())
        values = sorted(ms for _, ms in late) or [0.0]
        results.append({"action": action, "seconds": finished - began, "job": job,
                        "max": values[-1], "p99": values[min(len(values) - 1,
                                                             int(0.99 * len(values)))],
                        "late": [(round(t, 3), round(ms, 1)) for t, ms in late
                                 if ms > GOAL_MS], "errors": list(errors)})

    idle_began = time.perf_counter()
    measure("idle (the floor)", lambda: None,
            lambda: time.perf_counter() - idle_began >= 2.0)
    measure("first top-k + image", lambda: plugin.view.set_layer(layer),
            lambda: page.top is not None and page.maps is not None)
    top = page.top
    measure("top-k", lambda: page.split.setCurrentIndex(page.split.findData("all")),
            lambda: page.top is not top, "top-k")
    count = page.top.count
    measure("synthesis", page.synth_button.click, lambda: page.synthesis is not None,
            "synthesis")
    synthesis = page.synthesis
    maps = page.maps
    measure("image", lambda: page.sample.setValue(7), lambda: page.maps is not maps, "image")
    stalls.timer.stop()
    summary = {"data": name, "layer": layer, "results": results,
               "samples": {"top-k": count}, "filters": len(top.filters),
               "synthesis": None if synthesis is None else {
                   "reached": synthesis.reached, "means": synthesis.means}}
    window.close()
    return summary


def run_child(name: str, scratch: Path) -> dict[str, Any]:
    project_path, layer = _project(name, scratch)
    out = subprocess.run([sys.executable, __file__, "--child", name, "--project",
                          project_path, "--layer", layer],
                         capture_output=True, text=True, timeout=TIMEOUT_S * 3)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{name} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", choices=DATA,
                        help="run only this data set (repeatable); default: all")
    parser.add_argument("--runs", type=int, default=1, help="fresh processes per data set")
    parser.add_argument("--log", action="store_true", help="print every tick over 50 ms")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--layer", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="cnnstudio-bench-explain-"))
    os.environ["CNNSTUDIO_SETTINGS_DIR"] = str(scratch / "settings")  # never the user's
    os.environ["CNNSTUDIO_DATA_DIR"] = str(scratch / "data")
    os.environ.setdefault("CNNSTUDIO_CACHE_DIR", str(scratch / "cache"))
    if args.child:
        try:
            print(json.dumps(child(args.child, args.project, args.layer)), flush=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            os._exit(0)  # no teardown of a window whose threads may still wind down
    try:
        return parent(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def parent(args: argparse.Namespace, scratch: Path) -> int:
    print(f"{os.cpu_count()} cores; each data set in a fresh process; 16 ms timer lateness,"
          f" goal max ≤ {GOAL_MS:.0f} ms; job goals: top-k (2,000 samples) < 3 s, image"
          " (occlusion + Grad-CAM) < 1 s, synthesis (16 filters) < 15 s", flush=True)
    print(f"{'data':7} {'layer':9} {'action':20} {'worst stall (ms)':>17} {'p99 (ms)':>9}"
          f" {'wall s':>7}  verdict")
    for name in args.data or list(DATA):
        for _ in range(args.runs):
            summary = run_child(name, scratch)
            for r in summary["results"]:
                goal = JOB_GOALS.get(r["job"] or "")
                ok = r["max"] <= GOAL_MS and not r["errors"] and (goal is None or
                                                                  r["seconds"] < goal)
                print(f"{name:7} {summary['layer']:9} {r['action']:20} {r['max']:17.0f}"
                      f" {r['p99']:9.0f} {r['seconds']:7.2f}  {'OK' if ok else 'MISSED'}",
                      flush=True)
                if r["errors"]:
                    print(f"    errors: {r['errors']}")
                if args.log and r["late"]:
                    print("    late ticks (s after the click, ms late):",
                          ", ".join(f"{t:.2f}s {ms:.0f}" for t, ms in r["late"]))
            synthesis = summary["synthesis"]
            print(f"    top-k over {summary['samples']['top-k']} samples,"
                  f" {summary['filters']} filters", end="")
            if synthesis:
                above = sum(r > m for r, m in zip(synthesis["reached"], synthesis["means"],
                                                  strict=True))
                print(f"; synthesis reached more than the samples' mean for {above} of"
                      f" {len(synthesis['reached'])} filters", end="")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
