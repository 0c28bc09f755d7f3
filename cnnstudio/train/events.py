"""The JSON-lines events of a run (`cnnstudio train --json`, docs/COMMAND_LINE.md), which
the window's distributed runs read back, and the batch coalescer that feeds its live views
from those lines or, in process, from the trainer's hooks (`ui/training/bridge.py`).
The variables are how `distributed_launch.launch()` asks for more lines. Imports no torch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from cnnstudio.train.callbacks import BatchInfo, Callback

# Min seconds between `{"event": "batch"}` lines of `train --json` (the GUI asks for them).
BATCH_EVENTS_VAR = "CNNSTUDIO_JSON_BATCHES"
# "1": `train --json` also gives each epoch's confusion matrix and writes snapshots of the
# watched layers into the job folder (`cnnstudio.train.snapshots`), for the GUI's views.
SNAPSHOTS_VAR = "CNNSTUDIO_JSON_SNAPSHOTS"


def print_line(line: dict[str, Any]) -> None:
    from cnnstudio.train.record import json_safe  # torch: not for the window's imports

    print(json.dumps(json_safe(line), ensure_ascii=False, allow_nan=False), flush=True)


def print_end(status: str, message: str, **fields: Any) -> None:
    """The run's last line: how it ended (`status`, `message`) and what it left (`fields`).
    A run the window launched always ends with one: the window reads why from it."""
    print_line({"event": "end", "status": status, "message": message, **fields})


def batch_line(info: BatchInfo) -> dict[str, Any]:
    """One batch as its line says it (less `"event"`): what the coalescer gathers."""
    return {"epoch": info.epoch, "batch": info.batch, "batches": info.batches,
            "loss": info.loss, "lr": info.lr, "samples_seen": info.samples_seen,
            "images_per_second": info.images_per_second}


class BatchCoalescer:
    """Gathers batches between two sends, at most one per `interval` seconds however fast
    they come: each one's loss and learning rate (arrays, by step), the last's progress."""

    def __init__(self, interval: float = 0.1, since: float | None = None) -> None:
        self.interval = interval
        self.sent_at = time.perf_counter() if since is None else since
        self.last: Mapping[str, Any] = {}  # the last batch added
        self._rows: list[tuple[int, float, float]] = []

    def add(self, batch: Mapping[str, Any]) -> bool:
        """Gather one batch (a `batch_line`, or a line read back); whether to send now."""
        batches, loss, lr = int(batch["batches"]), batch.get("loss"), batch.get("lr")
        self._rows.append(((int(batch["epoch"]) - 1) * batches + int(batch["batch"]),
                           np.nan if loss is None else float(loss),  # None: NaN or inf
                           np.nan if lr is None else float(lr)))
        self.last = batch
        return time.perf_counter() - self.sent_at >= self.interval

    def take(self) -> dict[str, Any] | None:
        """What was gathered since the last take (None: nothing); the clock restarts."""
        self.sent_at = time.perf_counter()
        if not self._rows:
            return None
        steps, losses, lrs = zip(*self._rows, strict=True)
        self._rows = []
        last = self.last
        return {"steps": np.asarray(steps, np.int64), "losses": np.asarray(losses, np.float64),
                "lrs": np.asarray(lrs, np.float64), "epoch": last["epoch"],
                "batch": last["batch"], "batches": last["batches"],
                "images_per_second": last.get("images_per_second") or 0.0,
                "samples_seen": last.get("samples_seen")}


class JsonLines(Callback):
    """One JSON object per epoch on stdout (docs/COMMAND_LINE.md), flushed as it happens.
    `confusion`: each line also holds the epoch's validation `confusion_matrix` (a list
    of rows; the GUI's distributed runs ask for it, through SNAPSHOTS_VAR)."""

    def __init__(self, confusion: bool = False) -> None:
        self.confusion = confusion

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        # The documented keys are always there: null without a validation split.
        metric = "val_iou" if trainer.dataset.task == "segmentation" else "val_accuracy"
        line = {"event": "epoch", "val_loss": None, metric: None, **record}
        if self.confusion and trainer.confusion_matrix is not None:
            line["confusion_matrix"] = trainer.confusion_matrix.tolist()
        print_line(line)


class JsonBatchLines(Callback):
    """`{"event": "batch", ...}` lines for live plots, at most one per `interval` seconds
    plus each epoch's last batch. Not part of the documented `--json` output: only printed
    when CNNSTUDIO_JSON_BATCHES=SECONDS asks for them (the GUI's distributed runs do)."""

    def __init__(self, interval: float) -> None:
        self.batches = BatchCoalescer(interval, since=float("-inf"))  # the first at once

    def on_batch_end(self, trainer, info: BatchInfo) -> None:
        line = batch_line(info)
        if self.batches.add(line) or info.batch == info.batches:
            self.batches.take()  # a line is one batch: the window gathers them again
            print_line({"event": "batch", **line})


def json_callbacks() -> list[Callback]:
    """The `--json` lines; more of them when the GUI's launch() asked through the
    environment (batch lines; snapshot lines and confusion matrices)."""
    from cnnstudio.train.distributed_run import outcome_dir

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

        callbacks.append(SnapshotFiles(folder, print_line))
    return callbacks
