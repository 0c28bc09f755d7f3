"""`cnnstudio runs` and `cnnstudio compare`: a project's runs, and what differs between two
of them (settings, graph, metrics). `runs --tensorboard DIR` writes each run's curves as
TensorBoard event files when the `tensorboard` package is installed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cnnstudio.cli_common import EXIT_OK, UsageError, load_project
from cnnstudio.project.run_compare import UnknownRun, compare_runs, find_run, list_runs

_CURVE_KEYS = ("train_loss", "val_loss", "val_accuracy", "val_top5", "val_iou", "val_dice",
               "val_pixel_accuracy", "lr")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def cmd_runs(args: argparse.Namespace) -> int:
    """Lists the runs (or writes them for TensorBoard with --tensorboard DIR)."""
    project = load_project(args.project)
    runs = [r for r in project.runs if isinstance(r, dict)]
    if args.tensorboard is not None:
        written = export_tensorboard(runs, Path(args.tensorboard))
        print(f"wrote {written} run(s) to {args.tensorboard} (tensorboard --logdir"
              f" {args.tensorboard})")
        return EXIT_OK
    rows = list_runs(runs)
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    if not rows:
        print("no runs yet (train with 'cnnstudio train PROJECT')")
    for row in rows:
        best = ", ".join(f"{k} {_fmt(v)}" for k, v in row["best"].items()) or "—"
        init = row["init"] if isinstance(row["init"], str) else (
            f"from {row['init'].get('from_run')}" if isinstance(row["init"], dict) else "—")
        print(f"{row['id']}  {row['status']}  starts {init}  best epoch"
              f" {row['best_epoch']}: {best}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    """Prints what differs between two runs; an unknown run id exits 2 with one line."""
    project = load_project(args.project)
    runs = [r for r in project.runs if isinstance(r, dict)]
    try:
        a, b = find_run(runs, args.run_a), find_run(runs, args.run_b)
    except UnknownRun as err:
        raise UsageError(str(err)) from None
    diff = compare_runs(a, b)
    if args.json:
        print(json.dumps(diff))
        return EXIT_OK
    print(f"{args.run_a} → {args.run_b}")
    print("settings:" if diff["settings"] else "settings: the same")
    for row in diff["settings"]:
        print(f"  {row['key']}: {_fmt(row['a'])} → {_fmt(row['b'])}")
    graph = diff["graph"]
    if not (graph["added"] or graph["removed"] or graph["changed"]):
        print("graph: the same" if "graph" in a and "graph" in b
              else "graph: not recorded by one of the runs (trained by an older version)")
    for node_id in graph["added"]:
        print(f"  + {node_id}")
    for node_id in graph["removed"]:
        print(f"  - {node_id}")
    for change in graph["changed"]:
        fields = ", ".join(f"{k} {_fmt(change['a'][k])} → {_fmt(change['b'][k])}"
                           for k in change["a"])
        print(f"  ~ {change['id']}: {fields}")
    metrics = diff["metrics"]
    print("metrics:" if metrics["a"] or metrics["b"] else "metrics: the same")
    for key in sorted(set(metrics["a"]) | set(metrics["b"])):
        print(f"  {key}: {_fmt(metrics['a'].get(key))} → {_fmt(metrics['b'].get(key))}")
    return EXIT_OK


def export_tensorboard(runs: list[dict[str, Any]], folder: Path) -> int:
    """Writes each run's per-epoch curves under `folder/RUN_ID/` as TensorBoard event files;
    returns how many runs. A UsageError (one line) when `tensorboard` is not installed."""
    try:
        import tensorboard  # noqa: F401  (SummaryWriter needs it)
    except ImportError:
        raise UsageError("--tensorboard needs the tensorboard package: pip install"
                         " tensorboard") from None
    from torch.utils.tensorboard import SummaryWriter

    for run in runs:
        writer = SummaryWriter(log_dir=str(folder / str(run.get("id"))))
        try:
            for entry in run.get("epochs", []):
                if not isinstance(entry, dict) or not isinstance(entry.get("epoch"), int):
                    continue
                for key in _CURVE_KEYS:
                    if isinstance(entry.get(key), (int, float)):
                        writer.add_scalar(key, float(entry[key]), entry["epoch"])
        finally:
            writer.close()
    return len(runs)


def add_commands(command: Any) -> None:
    """Registers `runs` and `compare` with cli's `command(name, func, help)` helper."""
    p = command("runs", cmd_runs, "list the runs: status, start, best metrics")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="write the runs' curves as TensorBoard event files into DIR")
    p = command("compare", cmd_compare, "what differs between two runs: settings, graph,"
                " metrics")
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--json", action="store_true", help="print one JSON object")
