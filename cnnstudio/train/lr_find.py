"""The learning-rate range test ("LR finder", Smith 2017; fastai's `lr_find`).

A copy of the model trains for at most `num_iter` batches (fewer when one epoch of the
data has fewer) while the learning rate rises exponentially from `start_lr` to `end_lr`;
the loss of each batch is smoothed (an exponential moving average with bias correction)
and the test stops early once the smoothed loss exceeds `diverge` × its best so far, or
the loss is NaN/infinite. The training itself is the project's: the same `Trainer` (its
optimizer type and settings, loss, augmentation, normalization), with the lr overridden
by a callback after every step and the schedule off.

The suggested rate is the one where the smoothed loss falls fastest: the steepest
descent of the smoothed loss against log10(lr) (fastai's "steep" suggestion). With fewer
than three points it is the rate of the lowest loss / 10.

The caller's module, its weights and any optimizer it holds are untouched (the test
trains a deep copy), and so is the global RNG (saved before, restored after: the Trainer
seeds torch's global generator from `training.seed`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from cnnstudio.data.dataset import Dataset
from cnnstudio.project.settings import fill_training
from cnnstudio.train.callbacks import BatchInfo, Callback
from cnnstudio.train.record import FAILED
from cnnstudio.train.resume import capture_rng, restore_rng
from cnnstudio.train.trainer import Trainer

START_LR, END_LR, NUM_ITER = 1e-7, 10.0, 100
BETA = 0.98  # smoothing of the loss: weight of the running average
DIVERGE = 4.0  # stop once the smoothed loss exceeds this many times its best

ProgressCallback = Callable[[int, int], None]  # (batches done, batches at most)
CancelCallback = Callable[[], bool]  # True: stop now


class LRFindError(ValueError):
    """The range test cannot run (no training data, a model that does not fit it...);
    the message is one line for the user."""


@dataclasses.dataclass
class LRFindResult:
    """The curve (`lrs[i]` the rate batch i trained with, `losses[i]` its smoothed loss),
    the suggested rate, whether it stopped on divergence or was cancelled, and
    `raw_losses` (the unsmoothed batch losses)."""

    lrs: list[float]
    losses: list[float]
    suggested_lr: float | None
    raw_losses: list[float]
    diverged: bool = False
    cancelled: bool = False

    def to_json(self) -> dict[str, Any]:
        """SPEC's `lr-find --json` object."""
        return {"lrs": self.lrs, "losses": self.losses, "suggested_lr": self.suggested_lr}


def suggest_lr(lrs: list[float], losses: list[float]) -> float | None:
    """The rate at the steepest descent of `losses` against log10(lrs); with fewer than
    three points, the rate of the lowest loss / 10 (None for an empty curve)."""
    if not lrs:
        return None
    if len(lrs) < 3:
        return float(lrs[int(np.argmin(losses))] / 10)
    slopes = np.gradient(np.asarray(losses, dtype=np.float64),
                         np.log10(np.asarray(lrs, dtype=np.float64)))
    return float(lrs[int(np.argmin(slopes))])


class _RangeTest(Callback):
    """Sets each batch's lr, smooths the losses, stops on divergence or cancel."""

    def __init__(self, start_lr: float, end_lr: float, num_iter: int, beta: float,
                 diverge: float, progress: ProgressCallback | None,
                 cancel: CancelCallback | None) -> None:
        self.start_lr, self.end_lr, self.num_iter = start_lr, end_lr, num_iter
        self.beta, self.diverge = beta, diverge
        self.progress, self.cancel = progress, cancel
        self.steps = num_iter  # the batches the test will run: set at the start
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.raw: list[float] = []
        self._average = 0.0
        self._best = math.inf
        self.diverged = self.cancelled = False

    def lr_at(self, step: int) -> float:
        """The exponentially rising rate of batch `step` (0-based) out of `self.steps`."""
        if self.steps <= 1:
            return self.start_lr
        return self.start_lr * (self.end_lr / self.start_lr) ** (step / (self.steps - 1))

    def _set_lr(self, trainer: Trainer, lr: float) -> None:
        assert trainer.optimizer is not None
        for group in trainer.optimizer.param_groups:
            group["lr"] = lr

    def on_fit_start(self, trainer: Trainer) -> None:
        self.steps = min(self.num_iter, trainer.batches_per_epoch)
        self._set_lr(trainer, self.lr_at(0))

    def on_batch_end(self, trainer: Trainer, info: BatchInfo) -> None:
        step = len(self.lrs)
        self.lrs.append(info.lr)
        self.raw.append(info.loss)
        self._average = self.beta * self._average + (1 - self.beta) * info.loss
        smoothed = self._average / (1 - self.beta ** (step + 1))  # bias correction
        self.losses.append(smoothed)
        self._best = min(self._best, smoothed)
        if self.progress is not None:
            self.progress(step + 1, self.steps)
        if not math.isfinite(smoothed) or (step > 0 and smoothed > self.diverge * self._best):
            self.diverged = True
            trainer.request_stop()
        elif self.cancel is not None and self.cancel():
            self.cancelled = True
            trainer.request_stop()
        elif step + 1 >= self.steps:
            trainer.request_stop()
        else:
            self._set_lr(trainer, self.lr_at(step + 1))


def range_test(module: nn.Module, dataset: Dataset, training: dict[str, Any], *,
               augmentation: dict[str, Any] | None = None, task: str | None = None,
               normalize: bool = True, device: str | None = None,
               start_lr: float = START_LR, end_lr: float = END_LR, num_iter: int = NUM_ITER,
               beta: float = BETA, diverge: float = DIVERGE,
               progress: ProgressCallback | None = None,
               cancel: CancelCallback | None = None) -> LRFindResult:
    """Run the range test on a copy of `module` with the `training` settings (optimizer
    type and settings as given, lr overridden; no schedule; one epoch of at most
    `num_iter` batches, no validation). `progress(done, most)` is called after each
    batch; `cancel()` returning True stops the test after the batch (the curve so far is
    returned with `cancelled`). `module`, its weights and the global RNG are as before.
    Raises LRFindError for a bad range or a run that cannot start (its one-line
    message), FormatError for invalid settings."""
    if not (0 < start_lr < end_lr) or not math.isfinite(end_lr):
        raise LRFindError(f"the learning-rate range must rise from a positive rate:"
                          f" {start_lr:g} to {end_lr:g}")
    if num_iter < 1:
        raise LRFindError(f"the range test needs at least one batch, not {num_iter}")
    settings = fill_training(training)
    settings = {**settings, "epochs": 1, "schedule": {"name": "none"},
                "optimizer": {**settings["optimizer"], "lr": start_lr},
                "early_stopping": {"patience": None},
                # The data's batches, not the project's quick-try cap, limit the test.
                "max_batches_per_epoch": num_iter}
    # The Trainer validates after a completed epoch: the test has no use for it.
    train_only = dataclasses.replace(dataset, splits={"train": dataset.splits["train"]})
    test = _RangeTest(start_lr, end_lr, num_iter, beta, diverge, progress, cancel)
    rng = capture_rng()
    try:
        trainer = Trainer(copy.deepcopy(module), train_only, settings,
                          augmentation=augmentation, task=task, device=device,
                          callbacks=(test,), normalize=normalize)
        result = trainer.fit()
    finally:
        restore_rng(rng)
    # A NaN/infinite loss ends the Trainer's run before the step: that is divergence.
    if result.status == FAILED:
        if "loss became" in result.message:
            test.diverged = True
        else:
            raise LRFindError(result.message.split(";")[0] or "the range test failed")
    return LRFindResult(test.lrs, test.losses, suggest_lr(test.lrs, test.losses), test.raw,
                        diverged=test.diverged, cancelled=test.cancelled)


def lr_find_project(project: Any, *, device: str | None = None,
                    progress: ProgressCallback | None = None,
                    cancel: CancelCallback | None = None,
                    data_progress: Callable[[str, int, int], None] | None = None,
                    **options: Any) -> LRFindResult:
    """The range test on `project`'s model (its saved weights when they fit the graph,
    else new ones as training would start) and data, with its training settings. The
    project is not changed. `options` go to `range_test` (start_lr, end_lr, num_iter...).
    Raises LRFindError, or the one-line DataError/BuildError/FormatError/GraphError of
    data, graph or settings that cannot be used."""
    from cnnstudio.nn import WeightsError
    from cnnstudio.project import fill_data
    from cnnstudio.project.origin import starting_point
    from cnnstudio.train.api import _load
    from cnnstudio.train.warm_start import load_fitting

    settings = fill_training(project.training)
    rng = capture_rng()
    try:  # _load seeds the global RNG for the initial weights
        dataset, module = _load(project, settings["seed"], data_progress)
    finally:
        restore_rng(rng)
    init = starting_point(project, False)
    if init != "fresh":
        try:
            load_fitting(module, project.weights, partial="imported" in init)
        except WeightsError:
            pass  # as training does: new weights
    data = fill_data(project.data)
    return range_test(module, dataset, settings, augmentation=data["augmentation"],
                      task=project.task, normalize=data["normalize"], device=device,
                      progress=progress, cancel=cancel, **options)
