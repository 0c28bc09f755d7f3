"""`cnnstudio train` and `cnnstudio predict`: the headless engine on the command line.

Imported only when one of these commands runs, so `summary` and friends start without
torch.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

from cnnstudio.cli_common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    fail,
    failure,
    load_project,
)
from cnnstudio.cli_lines import DataProgress, InterruptToStop, StartLine, test_hooks
from cnnstudio.project.atomic import destination_problem
from cnnstudio.train import (
    COMPLETED,
    FAILED,
    Callback,
    PredictError,
    ProgressPrinter,
    predict,
    train_project,
)
from cnnstudio.train.events import json_callbacks, print_end


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
    if args.out is not None and not args.out.strip():  # `--out "$UNSET"`: not the project
        raise UsageError("--out is empty: give the .cnnproj file to save the trained project to")
    out = Path(args.out) if args.out else Path(args.project)
    if out.suffix.lower() == ".json":  # a bare project.json has no weights (docs/PROJECT_FORMAT.md)
        raise UsageError(f"{out} cannot hold the trained weights: give --out"
                         f" {out.with_suffix('.cnnproj')} (a .cnnproj keeps them)")
    if args.out or out.is_file():  # a missing project: reading it says so, better
        _check_destination(out, bool(args.out))


def _check_destination(out: Path, given: bool) -> None:
    """Refuse a destination the trained project could not be saved to (`given`: it is
    --out's, else the project's own file), before hours of training are spent on it:
    a folder, a missing or unwritable folder, another suffix than .cnnproj."""
    what = f"--out {out}" if given else f"cannot save the trained project to {out}"
    if given and out.suffix.lower() != ".cnnproj":
        raise UsageError(f"{what}: give a .cnnproj file (it keeps the trained weights)")
    problem = destination_problem(out)
    if problem is not None:
        unwritable = problem.startswith("cannot write") and not given
        hint = "; give --out a .cnnproj in a folder you can write to" if unwritable else ""
        raise UsageError(f"{what}: {problem}{hint}")


def _skipped_line(skipped: list[tuple[str, str]]) -> str:
    """The files the data left out, on one line (the first few, then a count)."""
    shown = "; ".join(f"{path} ({reason})" for path, reason in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"skipped {len(skipped)} file(s) the data could not use: {shown}{more}"


def _shown(args: argparse.Namespace, project: Any,
           main: bool) -> tuple[list[Callback], ProgressPrinter | None, bool]:
    """What the process that speaks for the run (`main`) shows: the --json lines; a bar on
    a terminal (stderr), elsewhere (a pipe, a log) one line per epoch on stdout, with the
    start and end lines, so that stderr holds errors alone. Also: whether on a terminal."""
    terminal = main and sys.stderr.isatty()
    callbacks: list[Callback] = json_callbacks() if args.json else []
    printer = None
    if main and (terminal or not args.json):
        printer = ProgressPrinter(sys.stderr if terminal else sys.stdout, bar=terminal)
        callbacks.append(printer)
    if main and not args.json:
        callbacks.append(StartLine(project, sys.stdout))
    return callbacks, printer, terminal


def cmd_train(args: argparse.Namespace) -> int:
    from cnnstudio.train.distributed import torchrun_env
    from cnnstudio.train.distributed_run import outcome_dir

    try:
        return _train(args)
    except Exception as err:
        # A run the window launched ends with an end line whatever happened: the window
        # reads why from it (stderr is for people).
        if args.json and outcome_dir() is not None and torchrun_env() is None:
            print_end(FAILED, failure(err))
        raise


def _train(args: argparse.Namespace) -> int:
    from cnnstudio.project import ProjectError, rebase_data_paths, write_project
    from cnnstudio.train.distributed import torchrun_env
    from cnnstudio.train.distributed_run import RankOutcome, StopFileWatch, outcome_dir

    if args.nproc is not None and args.nproc < 1:
        raise UsageError("--nproc must be at least 1")
    _check_options(args)
    if torchrun_env() is not None:  # started by torchrun (or by --nproc below): one rank
        return _train_rank(args)
    if args.nproc and args.nproc > 1:
        return _train_launcher(args)
    project = load_project(args.project)
    out = Path(args.out) if args.out else Path(args.project)
    callbacks, printer, terminal = _shown(args, project, main=True)
    if (folder := outcome_dir()) is not None:  # launch() with one process: its Stop
        callbacks.append(StopFileWatch(folder))
    runs_before = copy.deepcopy(project.runs)
    with InterruptToStop(printer=printer) as interrupt:
        result = train_project(project, epochs=args.epochs, device=args.device,
                               callbacks=[*test_hooks(), *callbacks, interrupt],
                               progress=DataProgress(sys.stderr) if terminal else None,
                               fresh=args.fresh)
        interrupt.trainer = None  # no run left to stop: a Ctrl-C now aborts (the save too)
        # Saved whenever the run was recorded, as the GUI does: also a run that failed at
        # its first batch (no weights to keep, but its record says what went wrong).
        # Failures before training began leave the project, and so the file, untouched.
        # A second Ctrl-C during the save aborts it (the save is atomic); after it, none.
        trained = project.runs != runs_before
        if trained:
            # Relative data paths are relative to the project's folder: keep them pointing
            # at the same data when --out saves elsewhere.
            project.data = rebase_data_paths(project.data, Path(args.project).parent,
                                             out.parent)
            try:
                write_project(project, out)
            except ProjectError as err:
                raise UsageError(err.full()) from None
        interrupt.finished = True
    outcome = RankOutcome(0, 1, result.status, result.message, saved=str(out) if trained
                          else None, init=project.runs[-1].get("init") if trained else None)
    return _report(args, {**outcome.summarize(result).to_dict(), "skipped": result.skipped})


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
                                    out=args.out, json_lines=args.json, fresh=args.fresh),
                        args.nproc)
    if outcome.main is not None:
        return _report(args, outcome.main)
    if args.json:
        print_end(FAILED, outcome.message, best_epoch=None, device=None, saved=None,
                  processes=args.nproc)
    fail(f"training failed: {outcome.message}")
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
    shown, printer, terminal = _shown(args, project, main=main)
    with InterruptToStop(announce=main, printer=printer) as interrupt:
        outcome = run_rank(project, out, epochs=args.epochs, device=args.device,
                           callbacks=[interrupt], main_callbacks=shown,
                           progress=DataProgress(sys.stderr) if terminal else None,
                           fresh=args.fresh)
    launched = outcome_dir() is not None  # by --nproc: the launcher speaks for the run
    if not outcome.together:
        if not launched:
            fail(f"training failed in process {outcome.rank} of {outcome.world_size}:"
                 f" {outcome.message}")
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
    """Print how the run ended (a `RankOutcome` dict: rank 0's, or the one process's with
    the files the data skipped); return the exit status."""
    if outcome.get("save_error"):
        raise UsageError(outcome["save_error"])
    status, processes = outcome["status"], outcome["world_size"]
    single, skipped = "skipped" in outcome, outcome.get("skipped") or []
    if args.json:  # the skipped files of one process; how many processes, else
        print_end(status, outcome["message"], best_epoch=outcome["best_epoch"],
                  device=outcome["device"], saved=outcome["saved"], init=outcome.get("init"),
                  **({"skipped": [{"file": f, "reason": r} for f, r in skipped]} if single
                     else {"processes": processes}))
    elif skipped:
        print(_skipped_line(skipped))
    if not args.json and status == COMPLETED:
        where = outcome["device"] if single else f"{processes} processes ({outcome['device']} each)"
        metric = " ".join(f"{k} {v:.4f}" for k, v in outcome["best"].items())
        print(f"trained {outcome['epochs']} epoch(s) on {where}; best epoch"
              f" {outcome['best_epoch']} {metric}; saved {outcome['saved']}")
        if outcome["message"]:  # early stopping, weights that did not fit: worth a line
            print(outcome["message"])
    if status != COMPLETED:
        again = ("run 'cnnstudio train' again" if single
                 else f"train again with {processes} processes")
        hint = f"; {again} to resume" if status == "stopped" else ""
        fail(f"training {status}: {outcome['message'] or 'no message'}{hint}")
        return EXIT_PROBLEMS
    return EXIT_OK


def _expand_images(paths: list[str]) -> list[str]:
    """The image files to classify: each file as given, each folder's images (the files
    directly in it that Pillow reads by their suffix, in name order). A folder without
    any is a UsageError."""
    from PIL import Image

    suffixes = set(Image.registered_extensions())
    files: list[str] = []
    for given in paths:
        if not given.strip():  # Path("") would be the current folder
            raise UsageError("an image path is empty: give image files or folders")
        folder = Path(given)
        if not folder.is_dir():
            files.append(given)
            continue
        try:
            found = sorted(str(entry) for entry in folder.iterdir() if entry.is_file()
                           and not entry.name.startswith(".")
                           and entry.suffix.lower() in suffixes)
        except OSError as err:
            raise UsageError(f"cannot read the folder {given}: {err.strerror or err}") from None
        if not found:
            raise UsageError(f"{given} is a folder with no image files in it (.png, .jpg,"
                             " …; its subfolders are not searched)")
        files += found
    return files


def cmd_predict(args: argparse.Namespace) -> int:
    project = load_project(args.project)
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    images = _expand_images(args.images)
    try:
        results = predict(project, images, top=args.top)
    except PredictError as err:
        fail(str(err))
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
        fail(f"{len(unreadable)} image(s) could not be read: {unreadable[0]}"
             + (" …" if len(unreadable) > 1 else ""))
        return EXIT_BAD_INPUT
    return EXIT_OK
