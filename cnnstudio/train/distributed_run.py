"""One rank's whole job, under torchrun or `cnnstudio train --nproc`: join, load, train, save.

`run_rank()` is what every worker process runs. The ranks either end *together* (the run
completed, was stopped, or failed on a NaN loss: all of these are agreed through the
per-batch all-reduce, so every rank leaves the loop at the same batch), or one rank fails
on its own (an exception, a lost peer). Together: rank 0 saves the project (atomically,
with `write_project`) and all ranks meet at a last barrier, so none is reaped before the
file is written. Alone: the rank writes its outcome and must leave at once (exit status 1):
its peers may be blocked inside any collective, and only the launcher tearing the group
down ends them; the project file is then left as it was.

Under `cnnstudio train --nproc` the launcher passes a folder in `CNNSTUDIO_DIST_DIR`: each
rank writes `rank<R>.json` there (what happened, for the launcher's one line) and watches
for a file named `stop` (the launcher's Ctrl-C, or the GUI's Stop button).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cnnstudio.core.errors import first_line
from cnnstudio.project import (
    Project,
    ProjectError,
    fill_training,
    rebase_data_paths,
    write_project,
)
from cnnstudio.train.api import ProgressFn, load_project_data, train_project
from cnnstudio.train.callbacks import Callback
from cnnstudio.train.distributed import DistContext, DistError, close, init_from_env
from cnnstudio.train.record import FAILED, RunResult

OUTCOME_DIR_VAR = "CNNSTUDIO_DIST_DIR"
STOP_FILE = "stop"


@dataclass
class RankOutcome:
    """What one rank ended with; rank 0's, when `together`, describes the whole run.

    `together` is False when this rank failed on its own (then it must exit at once).
    `saved` is the path rank 0 wrote, `save_error` why it could not.
    """

    rank: int
    world_size: int
    status: str
    message: str = ""
    together: bool = False
    best_epoch: int | None = None
    device: str = ""
    epochs: int = 0
    best: dict[str, float] = field(default_factory=dict)
    saved: str | None = None
    save_error: str | None = None
    init: Any = None  # the run record's `init`: "fresh" or {"from_run": ID}
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summarize(self, result: RunResult) -> RankOutcome:
        """Take what the run reports from `result` (the best epoch and its metric…)."""
        self.best_epoch, self.device, self.epochs = result.best_epoch, result.device, \
            len(result.epochs)
        self.best = {k: v for k in ("val_accuracy", "val_iou")
                     if isinstance(v := (result.best or {}).get(k), float)}
        return self


class _Ending(Callback):
    """Tells an agreed ending from this rank's own failure: the Trainer reports faults
    that are not agreed (any exception) through `on_exception`; NaN losses, stops and
    completed runs reach `on_fit_end` without it."""

    def __init__(self) -> None:
        self.started = False
        self.alone = False

    def on_fit_start(self, trainer: Any) -> None:
        self.started = True

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        self.alone = True


class StopFileWatch(Callback):
    """Asks the trainer to stop when `folder/stop` appears (polled by a daemon thread,
    so the training loop pays nothing). The stop is then agreed among the ranks."""

    def __init__(self, folder: Path, interval: float = 0.2) -> None:
        self.path = folder / STOP_FILE
        self.interval = interval
        self._trainer: Any = None
        self._seen = False
        self._done = threading.Event()
        threading.Thread(target=self._poll, name="cnnstudio-stop-watch", daemon=True).start()

    def _poll(self) -> None:
        while not self._done.wait(self.interval):
            if self.path.exists():
                self._seen = True
                if self._trainer is not None:
                    self._trainer.request_stop()
                    return

    def on_fit_start(self, trainer: Any) -> None:
        self._trainer = trainer
        if self._seen:
            trainer.request_stop()

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        self._done.set()


def outcome_dir() -> Path | None:
    """The launcher's folder for outcomes and the stop file, when there is one."""
    value = os.environ.get(OUTCOME_DIR_VAR)
    return Path(value) if value and Path(value).is_dir() else None


def write_outcome(folder: Path, outcome: RankOutcome) -> None:
    """Write `rank<R>.json` atomically (the launcher may read it as soon as we exit)."""
    fd, tmp = tempfile.mkstemp(prefix=".rank-", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(outcome.to_dict(), f)
    os.replace(tmp, folder / f"rank{outcome.rank}.json")


def run_rank(project: Project, out: Path, *, epochs: int | None = None,
             device: str | None = None, callbacks: Sequence[Callback] = (),
             main_callbacks: Sequence[Callback] = (),
             progress: ProgressFn | None = None, fresh: bool = False) -> RankOutcome:
    """Run this process's rank of a distributed training of `project` (the torchrun
    variables must be set); rank 0 saves the result to `out`. `callbacks` go to every
    rank (e.g. a Ctrl-C handler), `main_callbacks` and `progress` to rank 0 only;
    `fresh` as in `train_project`.

    Never raises for training faults: the outcome says what happened. When
    `outcome.together` is False the caller must end the process at once, with status 1.
    """
    folder = outcome_dir()
    try:
        ctx = init_from_env(device or fill_training(project.training)["device"])
    except (DistError, ValueError, RuntimeError) as err:  # FormatError is a ValueError
        outcome = RankOutcome(int(os.environ.get("RANK", 0)),
                              int(os.environ.get("WORLD_SIZE", 1)), FAILED, first_line(err))
    else:
        outcome = _train(ctx, project, out, epochs=epochs, device=device, callbacks=callbacks,
                         main_callbacks=main_callbacks, progress=progress, folder=folder,
                         fresh=fresh)
    if folder is not None:
        write_outcome(folder, outcome)
    if outcome.together:
        with contextlib.suppress(Exception):  # a peer may be gone; nothing left to protect
            ctx.barrier()  # nobody is reaped before rank 0 has written the project
        close()
    return outcome


def _train(ctx: DistContext, project: Project, out: Path, *, epochs: int | None,
           device: str | None, callbacks: Sequence[Callback],
           main_callbacks: Sequence[Callback], progress: ProgressFn | None,
           folder: Path | None, fresh: bool = False) -> RankOutcome:
    main = ctx.is_main
    try:
        # Local rank 0 decodes into the disk cache first; the others then read the cache
        # instead of decoding the same files N times over (the cache writes atomically, so
        # ranks on several machines sharing one cache folder are safe too).
        if ctx.local_rank == 0:
            with contextlib.suppress(Exception):  # train_project reports it, on every rank
                load_project_data(project, progress if main else None)
        ctx.barrier()
    except Exception as err:  # noqa: BLE001 - the group broke while we waited
        return RankOutcome(ctx.rank, ctx.world_size, FAILED, first_line(err))
    ending = _Ending()
    extra: list[Callback] = [StopFileWatch(folder)] if folder is not None else []
    hooks = [*callbacks, *(main_callbacks if main else ()), ending, *extra]
    runs_before = copy.deepcopy(project.runs)
    result = train_project(project, epochs=epochs, device=device, callbacks=hooks, dist=ctx,
                           fresh=fresh)
    outcome = RankOutcome(ctx.rank, ctx.world_size, result.status, result.message,
                          together=ending.started and not ending.alone)
    outcome.summarize(result)
    if project.runs != runs_before and isinstance(project.runs[-1], dict):
        outcome.init = project.runs[-1].get("init")
    # Saved whenever the run was recorded, even one that failed before its first epoch
    # (its weights are then those from before the run: nothing is lost by saving).
    if main and outcome.together and project.runs != runs_before:
        base = Path(project.path).parent if project.path is not None else None
        project.data = rebase_data_paths(project.data, base, Path(out).parent)  # --out
        try:
            write_project(project, out)
            outcome.saved = str(out)
        except ProjectError as err:
            outcome.save_error = err.full()
    return outcome
