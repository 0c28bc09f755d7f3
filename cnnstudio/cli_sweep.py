"""`cnnstudio sweep`: train a project once per combination of settings, rank the runs.

Imported only when the command runs (it imports torch). `--json` prints one object per
trial, `{"event": "trial", "sweep": ID, "trial": i, "settings": {KEY: value},
"status": "completed" | "failed" | "stopped", "run": RUN_ID | null, "skipped": bool,
"message": str}`, then a last `{"event": "ranking", "sweep": ID, "status": "completed" |
"stopped", "metric": "val_accuracy" | "val_iou", "planned": int, "recorded": int,
"saved": PATH | null, "ranking": [row, ...]}` with the rows of
`cnnstudio.train.sweep.ranking`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cnnstudio.cli_common import EXIT_OK, EXIT_PROBLEMS, UsageError, fail, load_project
from cnnstudio.cli_lines import InterruptToStop, test_hooks


def _describe(settings: dict[str, Any]) -> str:
    return " ".join(f"{key}={json.dumps(value) if not isinstance(value, str) else value}"
                    for key, value in settings.items())


def cmd_sweep(args: argparse.Namespace) -> int:
    from cnnstudio.project import ProjectError, write_project
    from cnnstudio.train.sweep import Sweep, SweepError, parse_set, plan_sweep, ranking

    if args.nproc is not None and args.nproc != 1:
        raise UsageError("--nproc: a sweep trains its trials one after another in this"
                         " version (several processes are not supported yet)")
    out = Path(args.project)
    project = load_project(args.project)
    try:
        axes = [parse_set(text) for text in args.set or []]
        plan = plan_sweep(project, axes, trials=args.trials, epochs=args.epochs)
    except SweepError as err:
        raise UsageError(str(err)) from None
    if args.device is not None:
        from cnnstudio.core.errors import FormatError
        from cnnstudio.project import fill_training

        try:
            fill_training({"device": args.device})
        except FormatError:
            raise UsageError(f"--device {args.device!r}: use auto, cpu, cuda, cuda:N or"
                             " mps") from None
    sweep = Sweep(project, plan, epochs=args.epochs, device=args.device)
    total, saved = len(plan.trials), None
    keys = [a.key for a in axes]
    if not args.json:
        todo = total - len(plan.done)
        print(f"sweep {plan.id}: {total} trial(s), {len(plan.done)} already recorded,"
              f" {todo} to train; ranked by {plan.metric}")

    def started(index: int, settings: dict[str, Any]) -> None:
        if not args.json:
            print(f"trial {index + 1}/{total}: {_describe(settings)}", flush=True)

    def ended(outcome: Any) -> None:
        nonlocal saved
        if outcome.run is not None and not outcome.skipped:
            try:  # after each trial: a sweep aborted later keeps what it trained
                write_project(project, out)
            except ProjectError as err:
                raise UsageError(err.full()) from None
            saved = str(out)
        if args.json:
            print(json.dumps({"event": "trial", "sweep": plan.id, "trial": outcome.trial,
                              "settings": outcome.settings, "status": outcome.status,
                              "run": outcome.run, "skipped": outcome.skipped,
                              "message": outcome.message}, ensure_ascii=False), flush=True)
        elif outcome.skipped:
            print(f"trial {outcome.trial + 1}/{total}: {_describe(outcome.settings)}:"
                  f" already recorded as {outcome.run}")
        elif outcome.status != "stopped":
            print(f"  {outcome.status} as {outcome.run}"
                  + (f": {outcome.message}" if outcome.message else ""), flush=True)

    with InterruptToStop() as interrupt:
        sweep.run(callbacks=[*test_hooks(), interrupt], on_trial_start=started,
                  on_trial_end=ended)
        interrupt.finished = True
    rows = ranking(project, plan.id)
    status = "stopped" if sweep.stopped else "completed"
    if args.json:
        print(json.dumps({"event": "ranking", "sweep": plan.id, "status": status,
                          "metric": plan.metric, "planned": total, "recorded": len(rows),
                          "saved": saved, "ranking": rows}, ensure_ascii=False))
    else:
        from cnnstudio.train.sweep import ranking_table

        if rows:
            print(ranking_table(rows, keys))
        if saved:
            print(f"saved {saved}")
    if sweep.stopped:
        fail(f"sweep stopped after {len(rows)} of {total} trial(s); run the same command"
             " again to resume it")
        return EXIT_PROBLEMS
    if any(r["status"] != "completed" for r in rows):
        fail("some trials failed (see their messages)")
        return EXIT_PROBLEMS
    return EXIT_OK


__all__ = ["cmd_sweep"]
