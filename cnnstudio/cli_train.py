"""`cnnstudio train` and `cnnstudio predict`: the headless engine on the command line.

Imported only when one of these commands runs, so `summary` and friends start without
torch.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from cnnstudio.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_PROBLEMS, UsageError, load_project
from cnnstudio.train import (
    COMPLETED,
    FAILED,
    Callback,
    PredictError,
    ProgressPrinter,
    predict,
    train_project,
)


def _print_line(line: dict[str, Any]) -> None:
    from cnnstudio.train.record import json_safe

    print(json.dumps(json_safe(line), ensure_ascii=False, allow_nan=False), flush=True)


class JsonLines(Callback):
    """One JSON object per epoch on stdout (SPEC §2.2), flushed as it happens.
    `confusion`: each line also holds the epoch's validation `confusion_matrix` (a list
    of rows; the GUI's distributed runs ask for it, through SNAPSHOTS_VAR)."""

    def __init__(self, confusion: bool = False) -> None:
        self.confusion = confusion

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        # SPEC §2.2's keys are always there: null without a validation split.
        metric = "val_iou" if trainer.dataset.task == "segmentation" else "val_accuracy"
        line = {"event": "epoch", "val_loss": None, metric: None, **record}
        if self.confusion and trainer.confusion_matrix is not None:
            line["confusion_matrix"] = trainer.confusion_matrix.tolist()
        _print_line(line)


class JsonBatchLines(Callback):
    """`{"event": "batch", ...}` lines for live plots, at most one per `interval` seconds
    plus each epoch's last batch. Not part of the SPEC's `--json` output: only printed
    when CNNSTUDIO_JSON_BATCHES=SECONDS asks for them (the GUI's distributed runs do)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = float("-inf")

    def on_batch_end(self, trainer, info) -> None:
        now = time.monotonic()
        if now - self._last < self.interval and info.batch != info.batches:
            return
        self._last = now
        _print_line({"event": "batch", "epoch": info.epoch, "batch": info.batch,
                     "batches": info.batches, "loss": info.loss, "lr": info.lr,
                     "samples_seen": info.samples_seen,
                     "images_per_second": info.images_per_second})


def _json_callbacks(args: argparse.Namespace) -> list[Callback]:
    """The `--json` lines; more of them when the GUI's launch() asked through the
    environment (batch lines; snapshot lines and confusion matrices)."""
    from cnnstudio.train.distributed_launch import BATCH_EVENTS_VAR, SNAPSHOTS_VAR
    from cnnstudio.train.distributed_run import outcome_dir

    if not args.json:
        return []
    try:
        interval = float(os.environ.get(BATCH_EVENTS_VAR, "nan"))
    except ValueError:
        interval = float("nan")
    # Snapshots go to the launcher's folder, where the window also writes what to watch.
    folder = outcome_dir() if os.environ.get(SNAPSHOTS_VAR) == "1" else None
    callbacks: list[Callback] = [JsonLines(confusion=folder is not None)]
    if interval >= 0:
        callbacks.append(JsonBatchLines(interval))
    if folder is not None:
        from cnnstudio.train.snapshots import SnapshotFiles

        callbacks.append(SnapshotFiles(folder, _print_line))
    return callbacks


class InterruptToStop(Callback):
    """Ctrl-C asks the trainer to stop after the current batch (weights and resume state
    are then saved); a second Ctrl-C aborts at once. `announce=False` keeps quiet (the
    ranks of a distributed run other than rank 0)."""

    def __init__(self, announce: bool = True) -> None:
        self.trainer = None
        self.interrupted = False
        self.announce = announce
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
        if self.announce:
            print("\nstopping after this batch (Ctrl-C again to abort)", file=sys.stderr,
                  flush=True)

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


def _check_options(args: argparse.Namespace) -> None:
    """What the command line got wrong is a usage error (exit 2), said before any data
    loads, the same with one process or several."""
    from cnnstudio.core.errors import FormatError
    from cnnstudio.project import fill_training

    if args.epochs is not None and args.epochs < 1:
        raise UsageError("--epochs must be at least 1")
    if args.device is not None:
        try:
            fill_training({"device": args.device})
        except FormatError:
            raise UsageError(f"--device {args.device!r}: use auto, cpu, cuda, cuda:N or"
                             " mps") from None
        if not (args.nproc and args.nproc > 1):  # the launcher checks each rank's GPU
            from cnnstudio.train import DeviceError, resolve_device

            try:
                resolve_device(args.device)
            except DeviceError as err:
                raise UsageError(f"--device: {err}") from None
    out = Path(args.out) if args.out else Path(args.project)
    if out.suffix.lower() == ".json":  # SPEC §2.1: a bare project.json has no weights
        raise UsageError(f"{out.name} cannot hold the trained weights: give --out"
                         f" {out.with_suffix('.cnnproj').name} (a .cnnproj keeps them)")


def _skipped_line(skipped: list[tuple[str, str]]) -> str:
    """The files the data left out, on one line (the first few, then a count)."""
    shown = "; ".join(f"{path} ({reason})" for path, reason in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"skipped {len(skipped)} file(s) the data could not use: {shown}{more}"


def cmd_train(args: argparse.Namespace) -> int:
    from cnnstudio.project import ProjectError, rebase_data_paths, write_project
    from cnnstudio.train.distributed import torchrun_env
    from cnnstudio.train.distributed_run import StopFileWatch, outcome_dir

    if args.nproc is not None and args.nproc < 1:
        raise UsageError("--nproc must be at least 1")
    _check_options(args)
    if torchrun_env() is not None:  # started by torchrun (or by --nproc below): one rank
        return _train_rank(args)
    if args.nproc and args.nproc > 1:
        return _train_launcher(args)
    project = load_project(args.project)
    out = Path(args.out) if args.out else Path(args.project)
    terminal = sys.stderr.isatty()
    callbacks: list[Callback] = _json_callbacks(args)
    if terminal:
        callbacks.append(ProgressPrinter(sys.stderr))
    if (folder := outcome_dir()) is not None:  # launch() with one process: its Stop
        callbacks.append(StopFileWatch(folder))
    runs_before = copy.deepcopy(project.runs)
    with InterruptToStop() as interrupt:
        result = train_project(project, epochs=args.epochs, device=args.device,
                               callbacks=[*callbacks, interrupt],
                               progress=DataProgress(sys.stderr) if terminal else None)
    # Saved whenever the run was recorded, as the GUI does: also a run that failed at its
    # first batch (no weights to keep, but its record says what went wrong). Failures
    # before training began leave the project, and so the file, untouched.
    trained = project.runs != runs_before
    if trained:
        # Relative data paths are relative to the project's folder: keep them pointing
        # at the same data when --out saves elsewhere.
        project.data = rebase_data_paths(project.data, Path(args.project).parent, out.parent)
        try:
            write_project(project, out)
        except ProjectError as err:
            print(f"cnnstudio: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.json:
        end = {"event": "end", "status": result.status, "message": result.message,
               "best_epoch": result.best_epoch, "device": result.device,
               "saved": str(out) if trained else None,
               "skipped": [{"file": f, "reason": r} for f, r in result.skipped]}
        print(json.dumps(end, ensure_ascii=False), flush=True)
    elif result.skipped:
        print(_skipped_line(result.skipped))
    if not args.json and result.status == COMPLETED:
        best = result.best or {}
        metric = next((f"{k} {best[k]:.4f}" for k in ("val_accuracy", "val_iou")
                       if isinstance(best.get(k), float)), "")
        print(f"trained {len(result.epochs)} epoch(s) on {result.device}; best epoch "
              f"{result.best_epoch} {metric}; saved {out}")
        if result.message:  # early stopping, weights that did not fit: worth a line
            print(result.message)
    if result.status != COMPLETED:
        hint = "; run 'cnnstudio train' again to resume" if result.status == "stopped" else ""
        print(f"cnnstudio: training {result.status}: {result.message or 'no message'}{hint}",
              file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


# ---- distributed: `--nproc N` launches N ranks; each of them (or torchrun's) runs one ----


def _train_launcher(args: argparse.Namespace) -> int:
    """`train PROJECT --nproc N`: run N ranks here with torch's elastic launcher; print the
    run's one outcome (the ranks print only epoch lines and the progress bar)."""
    from cnnstudio.project import fill_training
    from cnnstudio.train.distributed import DistError, rank_device
    from cnnstudio.train.distributed_launch import run_local, worker_args

    project = load_project(args.project)  # unreadable: exit 2 before starting anything
    try:
        device = rank_device(args.device or fill_training(project.training)["device"],
                             args.nproc - 1)
    except DistError as err:
        raise UsageError(str(err)) from None
    except ValueError:
        device = None  # bad settings: each rank fails with the same one-line message
    cores = os.cpu_count() or 1
    if (device is None or device.type == "cpu") and args.nproc > max(2, cores):
        raise UsageError(f"--nproc {args.nproc} is more processes than this machine has CPU"
                         f" cores ({cores}): each process needs one")
    outcome = run_local(worker_args(args.project, epochs=args.epochs, device=args.device,
                                    out=args.out, json_lines=args.json), args.nproc)
    if outcome.main is not None:
        return _report(args, outcome.main)
    if args.json:
        end = {"event": "end", "status": FAILED, "message": outcome.message,
               "best_epoch": None, "device": None, "saved": None, "processes": args.nproc}
        print(json.dumps(end, ensure_ascii=False), flush=True)
    print(f"cnnstudio: training failed: {outcome.message}", file=sys.stderr, flush=True)
    return EXIT_PROBLEMS


def _train_rank(args: argparse.Namespace) -> int:
    """One rank, started by torchrun or by `--nproc`. Rank 0 prints and saves; a rank that
    fails on its own leaves at once with status 1 (the launcher then ends the others)."""
    from cnnstudio.train.distributed import torchrun_env
    from cnnstudio.train.distributed_run import outcome_dir, run_rank

    place = torchrun_env() or {}
    if args.nproc and args.nproc != place.get("local_world_size"):
        raise UsageError("under torchrun the number of processes is torchrun's"
                         " (--nproc-per-node); leave out --nproc")
    project = load_project(args.project)
    out = Path(args.out) if args.out else Path(args.project)
    main = place.get("rank") == 0
    terminal = main and sys.stderr.isatty()
    shown: list[Callback] = _json_callbacks(args)
    if terminal:
        shown.append(ProgressPrinter(sys.stderr))
    with InterruptToStop(announce=main) as interrupt:
        outcome = run_rank(project, out, epochs=args.epochs, device=args.device,
                           callbacks=[interrupt], main_callbacks=shown,
                           progress=DataProgress(sys.stderr) if terminal else None)
    launched = outcome_dir() is not None  # by --nproc: the launcher speaks for the run
    if not outcome.together:
        if not launched:
            print(f"cnnstudio: training failed in process {outcome.rank} of"
                  f" {outcome.world_size}: {outcome.message}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # Peers may be blocked in a collective: leave now, without tearing the group
        # down politely (that could block too); the launcher ends the others.
        os._exit(EXIT_PROBLEMS)
    if not main:
        return EXIT_OK
    if launched:
        return EXIT_BAD_INPUT if outcome.save_error else (
            EXIT_OK if outcome.status == COMPLETED else EXIT_PROBLEMS)
    return _report(args, outcome.to_dict())


def _report(args: argparse.Namespace, outcome: dict[str, Any]) -> int:
    """Print how a distributed run ended (rank 0's outcome), as the single-process path
    does; return the exit status."""
    if outcome.get("save_error"):
        print(f"cnnstudio: {outcome['save_error']}", file=sys.stderr)
        return EXIT_BAD_INPUT
    status, processes = outcome["status"], outcome["world_size"]
    if args.json:
        end = {"event": "end", "status": status, "message": outcome["message"],
               "best_epoch": outcome["best_epoch"], "device": outcome["device"],
               "saved": outcome["saved"], "processes": processes}
        print(json.dumps(end, ensure_ascii=False), flush=True)
    elif status == COMPLETED:
        metric = " ".join(f"{k} {v:.4f}" for k, v in outcome["best"].items())
        print(f"trained {outcome['epochs']} epoch(s) on {processes} processes"
              f" ({outcome['device']} each); best epoch {outcome['best_epoch']} {metric};"
              f" saved {outcome['saved']}")
        if outcome["message"]:
            print(outcome["message"])
    if status != COMPLETED:
        hint = (f"; train again with {processes} processes to resume"
                if status == "stopped" else "")
        print(f"cnnstudio: training {status}: {outcome['message'] or 'no message'}{hint}",
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
