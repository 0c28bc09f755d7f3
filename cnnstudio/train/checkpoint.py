"""Components of a run that own their state: which weights it keeps (`Checkpoint`) and
when it stops early (`EarlyStopping`); the Trainer tells them each validated epoch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnstudio.train.steps import cpu_state


@dataclass(frozen=True)
class Kept:
    """What a run whose loss became NaN/inf keeps: the weights of validated `epoch`
    (`best`: the best so far, not the last validated one), or (`epoch` None) nothing of
    its own: the weights it started from stand."""

    epoch: int | None = None
    best: bool = False

    def words(self, had_weights: bool = True) -> str:
        """In words; `had_weights` False: the run started from a fresh init, not kept."""
        if self.epoch is not None:
            best = ", the best so far," if self.best else ""
            return f"the weights of epoch {self.epoch}{best} are kept"
        if had_weights:
            return "the weights from before this run are kept"
        return "no weights are kept (the project had none before this run)"


class Checkpoint:
    """The weights a run keeps, per the `checkpoint` setting (`mode`): the best epoch's
    (lowest monitored loss) with "best", else the last ones. `best` describes the best
    epoch (epoch, loss, metrics, confusion_matrix); `saved` is (epoch, weights) of the
    best or the last validated epoch, per the mode: what a NaN/inf loss falls back to."""

    def __init__(self, mode: str, best: dict[str, Any] | None = None,
                 best_state: dict[str, torch.Tensor] | None = None) -> None:
        self.mode, self.best = mode, dict(best or {})
        self.saved = None if best_state is None else (self.best.get("epoch"), best_state)
        self.start_state: dict[str, torch.Tensor] | None = None  # where the run started
        self.fallback: Kept | None = None  # set by `fall_back`

    @property
    def best_state(self) -> dict[str, torch.Tensor] | None:
        return self.saved[1] if self.saved is not None and self.mode == "best" else None

    def epoch_end(self, module: nn.Module, epoch: int, monitor: float,
                  metrics: dict[str, Any], confusion: torch.Tensor | None) -> bool:
        """Note validated `epoch` (from 1) and its monitored loss; True if it is the best."""
        improved = not self.best or monitor < self.best["loss"]  # NaN never improves
        if improved:
            self.best = {"epoch": epoch, "loss": monitor, "metrics": metrics,
                         "confusion_matrix": None if confusion is None else confusion.tolist()}
        if improved or self.mode == "last":
            self.saved = (epoch, cpu_state(module))
        return improved

    def fall_back(self, module: nn.Module, last_epoch: int | None) -> Kept:
        """Put sound weights into `module` after a NaN/inf loss (`last_epoch`: the last
        validated). The steps since the saved epoch led to that loss: their weights give
        NaN again at once, so the saved ones are kept, else those the run started from."""
        epoch, state = self.saved or (None, None)
        if state is None or epoch is None:
            if self.start_state is not None:
                module.load_state_dict(self.start_state)
            self.fallback = Kept()
        else:
            module.load_state_dict(state)
            self.fallback = Kept(epoch, best=last_epoch is not None and epoch != last_epoch)
        return self.fallback

    def final_state(self, module: nn.Module, trained: bool) -> dict[str, torch.Tensor] | None:
        """The weights the run keeps: after a fallback only what it chose, never the last
        steps; else the best epoch's, else the module's when it `trained` at all."""
        if self.fallback is not None:
            return None if self.fallback.epoch is None or self.saved is None else self.saved[1]
        if self.best_state is not None:
            return self.best_state
        return cpu_state(module) if trained else None


class EarlyStopping:
    """Ends a run whose monitored loss has not improved for `patience` epochs (None:
    never); `bad_epochs` counts them (kept in a resume state)."""

    def __init__(self, patience: int | None, bad_epochs: int = 0) -> None:
        self.patience, self.bad_epochs = patience, bad_epochs

    def epoch_end(self, improved: bool, epoch: int, last: bool, what: str,
                  best_epoch: int) -> str:
        """After validated `epoch` (from 1; `last`: the run's final one): why the run stops
        early there, or ''. `what` names the monitored loss (validation or training)."""
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        patience = self.patience
        if patience is None or self.bad_epochs < patience or last:
            return ""
        return (f"stopped early at epoch {epoch}: the {what} loss did not improve for"
                f" {patience} epoch{'s' if patience > 1 else ''} (best: epoch {best_epoch})")


def private(value: Any) -> Any:
    """`value` (a nested state_dict) with every tensor replaced by a CPU copy of its own."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: private(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(private(v) for v in value)
    return value
