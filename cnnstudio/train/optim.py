"""Optimizers and learning-rate schedules from the filled `training` settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import lr_scheduler

# When the schedule steps: after every batch, or after every epoch (plateau: on a metric).
PER_BATCH, PER_EPOCH, ON_METRIC = "batch", "epoch", "metric"


def make_optimizer(params: Iterable[torch.nn.Parameter], settings: dict[str, Any]
                   ) -> torch.optim.Optimizer:
    """Return the optimizer named in the filled `training.optimizer` settings (SGD with
    momentum/Nesterov, Adam, AdamW, RMSprop). Raises ValueError for an unknown name."""
    name = settings["name"]
    lr = float(settings["lr"])
    decay = float(settings.get("weight_decay", 0.0))
    if name == "SGD":
        return torch.optim.SGD(params, lr=lr, momentum=float(settings.get("momentum", 0.0)),
                               nesterov=bool(settings.get("nesterov", False)),
                               weight_decay=decay)
    if name in ("Adam", "AdamW"):
        betas = tuple(float(b) for b in settings.get("betas", (0.9, 0.999)))
        cls = torch.optim.Adam if name == "Adam" else torch.optim.AdamW
        return cls(params, lr=lr, betas=betas, weight_decay=decay)  # type: ignore[arg-type]
    if name == "RMSprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=float(settings.get("alpha", 0.99)),
                                   momentum=float(settings.get("momentum", 0.0)),
                                   weight_decay=decay)
    raise ValueError(f"unknown optimizer {name!r}")


def make_scheduler(optimizer: torch.optim.Optimizer, settings: dict[str, Any], *, epochs: int,
                   batches_per_epoch: int) -> tuple[Any, str | None]:
    """Return (scheduler or None, when it steps: PER_BATCH, PER_EPOCH or ON_METRIC).

    step: ×gamma every `step_size` epochs; cosine: from lr down to 0 over all epochs;
    onecycle: up to `max_lr` and down again over every batch of the run; plateau: ×factor
    after `patience` epochs without a lower validation loss. Raises ValueError for an
    unknown name.
    """
    name = settings.get("name", "none")
    if name == "none":
        return None, None
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=int(settings["step_size"]),
                                   gamma=float(settings["gamma"])), PER_EPOCH
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs)), PER_EPOCH
    if name == "onecycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=float(settings["max_lr"]),
                                       total_steps=max(1, epochs * batches_per_epoch)), PER_BATCH
    if name == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min",
                                              patience=int(settings["patience"]),
                                              factor=float(settings["factor"])), ON_METRIC
    raise ValueError(f"unknown schedule {name!r}")


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The first parameter group's learning rate (all groups share it here)."""
    return float(optimizer.param_groups[0]["lr"])


def warm_up() -> None:
    """Do the imports torch defers to the first optimizer step (≈800 modules: a stall of
    0.2–3 s under the GIL). Call it early, off the GUI thread, so Start answers at once."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param])
    scheduler = lr_scheduler.StepLR(optimizer, 1)
    param.grad = torch.zeros(1)
    optimizer.step()
    scheduler.step()
