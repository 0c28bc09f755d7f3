"""What a run keeps: the best weights, sound weights after a NaN, the RunResult, and the
state to resume from. A mixin of `Trainer`, kept apart so the loop stays readable."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from cnnstudio.train.record import STOPPED, RunResult, now_iso
from cnnstudio.train.resume import ResumeState, capture_rng, restore_rng
from cnnstudio.train.steps import EpochStats, NonFiniteLoss, cpu_state

if TYPE_CHECKING:
    from cnnstudio.train.trainer import Trainer


KEPT_START = "the weights from before this run are kept"  # `train_project` may reword it


def _private(value: Any) -> Any:
    """`value` (a nested state_dict) with every tensor replaced by a CPU copy of its own."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _private(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_private(v) for v in value)
    return value


class Checkpointing:
    """Trainer methods about outcomes; they read and set the Trainer's run state."""

    def _handle_non_finite(self: Trainer, bad: NonFiniteLoss) -> str:
        """Put sound weights back after a NaN/inf loss; return the run's one-line message."""
        what = "NaN" if math.isnan(bad.value) else "infinite"
        message = (f"the loss became {what} at epoch {bad.epoch + 1}, batch {bad.batch + 1}"
                   f" (learning rate {bad.lr:g} is probably too high); ")
        # The steps since the last validated epoch led to this loss: their weights, finite
        # or not, give NaN again at once, so they are never kept. The run keeps its
        # checkpoint of a validated epoch (the best, or the last, per the setting), else
        # nothing (`_kept` None): the weights it started from stand, so a project keeps
        # what it had before the run, or no weights at all when it had none (a random
        # init is not worth storing). No resume state is made: the optimizer's state
        # (momentum, Adam's moments) has taken in the steps that diverged.
        self._non_finite = True
        if self.settings["checkpoint"] == "best":
            self._kept, epoch = self._best_state, self._best.get("epoch")
        else:
            self._kept, epoch = self._last_state, self._last_state_epoch
        if self._kept is None or epoch is None:
            self._kept = None
            if self._start_state is not None:
                self.module.load_state_dict(self._start_state)
            return message + KEPT_START
        self.module.load_state_dict(self._kept)
        last = self.records[-1]["epoch"] if self.records else epoch
        best = ", the best so far," if epoch != last else ""
        return message + f"the weights of epoch {epoch}{best} are kept"

    def _result(self: Trainer) -> RunResult:
        checkpoint_best = self.settings["checkpoint"] == "best" and self._best_state is not None
        best = self._best if checkpoint_best else self._last_epoch()
        state = self._best_state if checkpoint_best else None
        if self._non_finite:  # only what `_handle_non_finite` chose, never the last steps
            state = self._kept
        elif state is None and (self._stepped or self._resume is not None):
            state = cpu_state(self.module)
        resume = self._resume_state() if self._status == STOPPED else None
        return RunResult(
            status=self._status, message=self._message, device=str(self.device),
            settings=self.settings, epochs=list(self.records),
            best_epoch=best.get("epoch"), best=best.get("metrics", {}),
            confusion_matrix=best.get("confusion_matrix"),
            class_names=list(self.dataset.class_names), state_dict=state, resume_state=resume,
            started=self._started, finished=now_iso(),
            normalization={"normalize": self.normalize, "mean": list(self.dataset.mean),
                           "std": list(self.dataset.std)})

    def _last_epoch(self: Trainer) -> dict[str, Any]:
        if not self.records:
            return {}
        last = self.records[-1]
        return {"epoch": last["epoch"], "metrics": {**last, **self.last_metrics},
                "confusion_matrix": self._cm_list()}

    def _resume_state(self: Trainer) -> ResumeState:
        assert self.optimizer is not None
        epoch, batch = self._position
        stats = self._stats
        # Private copies, never views: `state_dict()` shares the live tensors, and the
        # caller then loads the checkpoint to keep (with checkpoint "best", the best
        # epoch's weights) into the same module, which silently rewrote a resume state
        # made of views into the best weights: the resumed run continued from those.
        return ResumeState(
            epoch=epoch, batch=batch, model=cpu_state(self.module),
            optimizer=_private(self.optimizer.state_dict()),
            scheduler=(_private(self.scheduler.state_dict()) if self.scheduler is not None
                       else None),
            scaler=_private(self.scaler.state_dict()) if self.scaler is not None else None,
            rng=capture_rng(), best_state=self._best_state,
            epoch_loss_sum=stats.loss_sum, epoch_samples=stats.samples,
            epoch_seconds=stats.seconds, records=list(self.records),
            best=dict(self._best), bad_epochs=self._bad_epochs, settings=self.settings,
            train_samples=len(self.train_index),
            # Positions count a rank's batches: a resume needs as many processes.
            extra={"world_size": self.world_size} if self.world_size > 1 else {})

    def _apply_resume(self: Trainer, state: ResumeState) -> None:
        assert self.optimizer is not None
        self.module.load_state_dict(state.model)
        # After the scheduler's constructor, which sets the lr: the saved lr wins.
        self.optimizer.load_state_dict(state.optimizer)
        if self.scheduler is not None and state.scheduler is not None:
            self.scheduler.load_state_dict(state.scheduler)
        if self.scaler is not None and state.scaler:
            self.scaler.load_state_dict(state.scaler)
        self._best_state = state.best_state
        self._best = dict(state.best)
        self._bad_epochs = state.bad_epochs
        self.records = list(state.records)
        self._stats = EpochStats(state.epoch_loss_sum, state.epoch_samples, state.epoch_seconds)
        self._position = (state.epoch, state.batch)
        self._start_state = cpu_state(self.module)
        self._stepped = True
        restore_rng(state.rng)  # last: nothing may draw between here and the first batch
