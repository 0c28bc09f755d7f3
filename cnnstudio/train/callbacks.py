"""Hooks into training: the only way anything (the GUI, the CLI, tests) follows a run.

Subclass `Callback` and override what you need; every hook is a no-op by default. The
trainer calls a hook only on the callbacks that override it, so an unused hook costs
nothing per batch. Hooks run on the training thread: a GUI callback must copy what it
needs into plain values and hand them over (e.g. as a Qt signal), never touch widgets.
A callback may call `trainer.request_stop()` or `trainer.pause()` from any hook.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from cnnstudio.train.trainer import RunResult, Trainer


@dataclass(slots=True)
class BatchInfo:
    """What `on_batch_end` receives. `epoch` and `batch` count from 1 (as shown to users);
    `batches` is the number of batches this epoch. `loss` is this batch's mean loss (the
    trainer reads it anyway, to refuse a non-finite step before applying it); `lr` is the
    learning rate the step used; `samples_seen` counts training samples since `fit()`
    began; `images_per_second` is this epoch's training throughput so far (pauses and
    validation excluded). `correct` counts the right answers among this process's `scored`
    labels (samples, or pixels for segmentation), only when a callback sets
    `counts_correct`: a 0-dim tensor on the device, since reading it would sync."""

    epoch: int
    batch: int
    batches: int
    loss: float
    lr: float
    samples_seen: int
    images_per_second: float
    correct: Any = None
    scored: int = 0


class Callback:
    """Base class with no-op hooks, in the style of Lightning's `Callback`."""

    counts_correct = False  # True: `BatchInfo.correct` is wanted (costs a few tensor ops)

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first batch (after a resume, before the first resumed batch)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before an epoch's first batch; `epoch` counts from 1."""

    def on_batch_end(self, trainer: Trainer, info: BatchInfo) -> None:
        """After each optimizer step."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """After validation. `record` holds epoch, train_loss, val_loss, val_accuracy
        (and val_top5 with ≥ 5 classes) or val_iou/val_dice, lr, seconds; per-class values
        and the confusion matrix are in `trainer.last_metrics` / `trainer.confusion_matrix`."""

    def on_fit_end(self, trainer: Trainer, result: RunResult) -> None:
        """Once, at the very end, whatever the status (completed, stopped, failed)."""

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        """When training fails with an exception, before `on_fit_end`."""


def overriding(callbacks: tuple[Callback, ...], hook: str) -> list[Any]:
    """The bound `hook` methods of the callbacks that override the no-op default."""
    base = getattr(Callback, hook)
    return [getattr(cb, hook) for cb in callbacks if getattr(type(cb), hook, base) is not base]


class ProgressPrinter(Callback):
    """A one-line text progress bar for the command line, redrawn at most every
    `interval` seconds: epoch, batch, loss, images/s and ETA of the epoch; and a line per
    epoch. `bar=False` (a log file or pipe, where a redrawn line is noise) prints only
    the epoch lines. Whoever else writes to the stream calls `end_line()` first, so that
    nothing is glued to a bar still on screen."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.2, width: int = 24,
                 bar: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.width = width
        self.bar = bar
        self.open = False  # a bar is drawn and its line not yet ended
        self._last = 0.0

    def end_line(self) -> None:
        """End the bar's line, if one is drawn (the next output starts on a line of its own)."""
        if self.open:
            self.open = False
            self.stream.write("\n")
            self.stream.flush()

    def on_fit_end(self, trainer: Trainer, result: RunResult) -> None:
        self.end_line()

    def on_batch_end(self, trainer: Trainer, info: BatchInfo) -> None:
        if not self.bar or trainer.stop_requested:  # stopping: the bar stays as it was
            return
        now = time.monotonic()
        if now - self._last < self.interval and info.batch != info.batches:
            return
        self._last = now
        done = info.batch / info.batches
        filled = int(done * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        # images_per_second counts every process of a distributed run; so must `left`.
        left = (info.batches - info.batch) * trainer.batch_size * getattr(trainer, "world_size", 1)
        eta = left / info.images_per_second if info.images_per_second > 0 else 0.0
        self.stream.write(f"\repoch {info.epoch}/{trainer.epochs} [{bar}] {info.batch}/"
                          f"{info.batches} loss {info.loss:.4f} {info.images_per_second:.0f} img/s"
                          f" ETA {eta:.0f}s ")
        self.open = True
        self.stream.flush()

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        parts = [f"epoch {record['epoch']}/{trainer.epochs}", f"train_loss {record['train_loss']:.4f}"]
        for key in ("val_loss", "val_accuracy", "val_iou"):
            if record.get(key) is not None:
                parts.append(f"{key} {record[key]:.4f}")
        parts.append(f"{record['seconds']:.1f}s")
        if self.bar:  # over the bar's line, wiping what is left of it
            self.stream.write("\r" + "  ".join(parts) + " " * 12 + "\n")
        else:
            self.stream.write("  ".join(parts) + "\n")
        self.open = False
        self.stream.flush()
