"""`cnnstudio train` and `cnnstudio predict`: the headless engine on the command line.

Imported only when one of these commands runs, so `summary` and friends start without
torch.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from cnnstudio.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_PROBLEMS, UsageError, load_project
from cnnstudio.train import (
    COMPLETED,
    Callback,
    PredictError,
    ProgressPrinter,
    predict,
    train_project,
)


class JsonLines(Callback):
    """One JSON object per epoch on stdout (SPEC §2.2), flushed as it happens."""

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        from cnnstudio.train.record import json_safe

        line = {"event": "epoch", **json_safe(record)}
        print(json.dumps(line, ensure_ascii=False, allow_nan=False), flush=True)


class InterruptToStop(Callback):
    """Ctrl-C asks the trainer to stop after the current batch (weights and resume state
    are then saved); a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.trainer = None
        self.interrupted = False
        self._previous = None

    def __enter__(self) -> InterruptToStop:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)

    def _on_sigint(self, signum: int, frame: object) -> None:
        if self.trainer is None or self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self.trainer.request_stop()
        print("\nstopping after this batch (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    def on_fit_start(self, trainer) -> None:
        self.trainer = trainer


class DataProgress:
    """Scanning/decoding progress of the dataset on a terminal."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def __call__(self, stage: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        self.stream.write(f"\r{stage} data: {done}/{total} ({percent}%)   ")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def cmd_train(args: argparse.Namespace) -> int:
    from cnnstudio.project import ProjectError, write_project

    if args.nproc and args.nproc > 1:
        raise UsageError("--nproc > 1 (distributed training) is not available in this version")
    project = load_project(args.project)
    out = Path(args.out) if args.out else Path(args.project)
    terminal = sys.stderr.isatty()
    callbacks: list[Callback] = [JsonLines()] if args.json else []
    if terminal:
        callbacks.append(ProgressPrinter(sys.stderr))
    with InterruptToStop() as interrupt:
        result = train_project(project, epochs=args.epochs, device=args.device,
                               callbacks=[*callbacks, interrupt],
                               progress=DataProgress(sys.stderr) if terminal else None)
    trained = bool(result.epochs) or result.state_dict is not None
    if trained:
        try:
            write_project(project, out)
        except ProjectError as err:
            print(f"cnnstudio: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.json:
        end = {"event": "end", "status": result.status, "message": result.message,
               "best_epoch": result.best_epoch, "device": result.device,
               "saved": str(out) if trained else None}
        print(json.dumps(end, ensure_ascii=False), flush=True)
    elif result.status == COMPLETED:
        best = result.best or {}
        metric = next((f"{k} {best[k]:.4f}" for k in ("val_accuracy", "val_iou")
                       if isinstance(best.get(k), float)), "")
        print(f"trained {len(result.epochs)} epoch(s) on {result.device}; best epoch "
              f"{result.best_epoch} {metric}; saved {out}")
    if result.status != COMPLETED:
        hint = "; run 'cnnstudio train' again to resume" if result.status == "stopped" else ""
        print(f"cnnstudio: training {result.status}: {result.message or 'no message'}{hint}",
              file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    project = load_project(args.project)
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    try:
        results = predict(project, args.images, top=args.top)
    except PredictError as err:
        print(f"cnnstudio: {err}", file=sys.stderr)
        return EXIT_PROBLEMS
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for item in results:
            print(item["image"])
            if item.get("error"):
                print(f"  skipped: {item['error']}")
            for entry in item["top"]:
                print(f"  {entry['probability']:7.2%}  {entry['class']}")
    unreadable = [item["image"] for item in results if item.get("error")]
    if unreadable:
        print(f"cnnstudio: {len(unreadable)} image(s) could not be read: {unreadable[0]}"
              + (" …" if len(unreadable) > 1 else ""), file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK
