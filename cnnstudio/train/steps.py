"""Small pieces of the training loop: epoch accumulators, fault messages, weight copies."""

from __future__ import annotations

import math
import os
import sys
import traceback
from dataclasses import dataclass

import torch
from torch import nn

from cnnstudio.core.errors import first_line


@dataclass
class EpochStats:
    """Running totals of the epoch being trained (kept in a resume state mid-epoch)."""

    loss_sum: float = 0.0  # Σ batch mean loss × batch size, in training order
    samples: int = 0
    seconds: float = 0.0  # training and validation time, pauses excluded


class NonFiniteLoss(Exception):
    """A batch's loss was NaN or infinite; raised before the step is applied."""

    def __init__(self, value: float, epoch: int, batch: int, lr: float) -> None:
        super().__init__(f"non-finite loss {value} at epoch {epoch + 1}, batch {batch + 1}")
        self.value, self.epoch, self.batch, self.lr = value, epoch, batch, lr

    def words(self) -> str:
        what = "NaN" if math.isnan(self.value) else "infinite"
        return (f"the loss became {what} at epoch {self.epoch + 1}, batch {self.batch + 1}"
                f" (learning rate {self.lr:g} is probably too high)")


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A private contiguous CPU copy of the module's state_dict (a checkpoint survives
    later steps; a channels-last run keeps default-layout weights)."""
    return {k: v.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
            for k, v in module.state_dict().items()}


def is_out_of_memory(err: BaseException) -> bool:
    """True for CUDA's OutOfMemoryError and the RuntimeErrors other backends raise."""
    if isinstance(err, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(err).lower()
    # CUDA/MPS say "out of memory"; torch's CPU allocator says "can't allocate memory".
    return isinstance(err, RuntimeError) and ("out of memory" in text
                                              or "can't allocate memory" in text)


def failure_message(err: BaseException, where: str | None, batch_size: int,
                    device: torch.device) -> str:
    """One line telling the user what went wrong and, for out of memory, what to try.
    `where` names the place in the run ("epoch 2, batch 5"); None before training began."""
    place = where or "the start"
    if is_out_of_memory(err):
        memory = "GPU" if device.type in ("cuda", "mps") else "computer"
        if batch_size > 1:
            return (f"the {memory} ran out of memory at {place} with batch size {batch_size};"
                    f" try a smaller batch size, e.g. {batch_size // 2}")
        return (f"the {memory} ran out of memory at {place} even with batch size 1; the"
                " model is too large for this device")
    reason = first_line(err)
    if where is None:  # set-up errors (device, data, model) are already worded for users
        return reason
    return f"training failed at {where}: {type(err).__name__}: {reason}"


DEBUG_VAR = "CNNSTUDIO_DEBUG"


def debug_traceback(err: BaseException) -> None:
    """With CNNSTUDIO_DEBUG set, print `err`'s traceback on stderr: a fault that becomes
    one line for the user (a failed run, data that cannot load) shows where it came from
    when someone reports it."""
    if os.environ.get(DEBUG_VAR):
        traceback.print_exception(err, file=sys.stderr)
