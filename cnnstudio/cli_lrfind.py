"""`cnnstudio lr-find`: the learning-rate range test on a project, headless.

Imported only when the command runs: it imports torch. The project file is only read.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable

from cnnstudio.cli_common import EXIT_OK, EXIT_PROBLEMS, UsageError, fail, load_project
from cnnstudio.cli_lines import DataProgress

_TABLE_ROWS = 25  # rows of the text table: the curve thinned to about this many


def _check_options(args: argparse.Namespace) -> None:
    """Bad numbers are UsageErrors (exit 2) before any data is read."""
    for name in ("start_lr", "end_lr"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number, not {value:g}")
    if args.start_lr >= args.end_lr:
        raise UsageError(f"--start-lr ({args.start_lr:g}) must be below --end-lr"
                         f" ({args.end_lr:g})")
    if args.batches < 1:
        raise UsageError("--batches must be at least 1")


def _table(lrs: list[float], losses: list[float], suggested: float | None) -> str:
    step = max(1, math.ceil(len(lrs) / _TABLE_ROWS))
    shown = sorted({*range(0, len(lrs), step), len(lrs) - 1,
                    *([lrs.index(suggested)] if suggested in lrs else [])})
    lines = [f"{'learning rate':>14}  {'loss (smoothed)':>15}"]
    for i in shown:
        mark = "  <- suggested" if lrs[i] == suggested else ""
        lines.append(f"{lrs[i]:>14.3g}  {losses[i]:>15.4f}{mark}")
    return "\n".join(lines)


def cmd_lr_find(args: argparse.Namespace) -> int:
    """`cnnstudio lr-find PROJECT [--json] [--device D] [--start-lr A] [--end-lr B]
    [--batches N]`: the range test; prints the JSON object of SPEC §2.2 or a table and the
    suggested rate. Returns EXIT_OK, or EXIT_PROBLEMS when the network cannot be built or
    trained; raises UsageError (status 2, one line) for bad options or unreadable data."""
    from cnnstudio.core.errors import FormatError, GraphError
    from cnnstudio.data import DataError
    from cnnstudio.nn import BuildError
    from cnnstudio.project import fill_training
    from cnnstudio.train.lr_find import LRFindError, lr_find_project

    _check_options(args)
    project = load_project(args.project)
    try:
        fill_training(project.training)
        if args.device is not None:
            fill_training({"device": args.device})
    except FormatError as err:
        raise UsageError(str(err)) from None
    terminal = not args.json and sys.stderr.isatty()
    data_progress = DataProgress(sys.stderr) if terminal else None
    batches = DataProgress(sys.stderr, "") if terminal else None
    try:
        result = lr_find_project(
            project, device=args.device, data_progress=data_progress,
            progress=(lambda done, most: batches("range test batch", done, most))
            if batches else None,
            start_lr=args.start_lr, end_lr=args.end_lr, num_iter=args.batches)
    except (DataError, GraphError, FormatError) as err:
        raise UsageError(f"cannot load the data: {err}") from None
    except (BuildError, LRFindError) as err:
        if batches:
            batches.end_line()
        fail(str(err))
        return EXIT_PROBLEMS
    if batches:
        batches.end_line()
    if args.json:
        print(json.dumps(result.to_json()))
        return EXIT_OK
    print(_table(result.lrs, result.losses, result.suggested_lr))
    ending = ("stopped when the loss diverged" if result.diverged
              else f"ran {len(result.lrs)} batches")
    if result.suggested_lr is None:
        print(f"no suggestion: the test {ending} before any batch")
    else:
        print(f"suggested learning rate: {result.suggested_lr:.3g} (steepest descent of the"
              f" smoothed loss; {ending})")
    return EXIT_OK


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Register `lr-find` with the parser's `command(name, func, help)` helper."""
    p = command("lr-find", cmd_lr_find, "learning-rate range test: the loss against an"
                " exponentially rising learning rate, and a suggested rate (the project"
                " is not changed)")
    p.add_argument("--json", action="store_true",
                   help='print {"lrs": [...], "losses": [...], "suggested_lr": x}')
    p.add_argument("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--start-lr", type=float, default=1e-7, metavar="LR",
                   help="the first learning rate (default 1e-7)")
    p.add_argument("--end-lr", type=float, default=10.0, metavar="LR",
                   help="the last learning rate (default 10)")
    p.add_argument("--batches", type=int, default=100, metavar="N",
                   help="at most this many batches (default 100; fewer when one epoch of"
                        " the data has fewer)")
