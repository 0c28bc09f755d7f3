"""Choosing where training runs: the device, the CPU thread count, mixed precision; and
the Trainer's strategy (Lightning's word) for a run in one process, `LocalStrategy`."""

from __future__ import annotations

import os
from functools import cached_property

import torch


class DeviceError(ValueError):
    """The requested device does not exist on this machine; `str()` is one line."""


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str | torch.device | None) -> torch.device:
    """Return the torch device for a settings value: `auto` (or None) picks CUDA, then
    MPS, then CPU; `cpu`, `cuda`, `cuda:N`, `mps` are checked to exist.

    Raises DeviceError for a device this machine does not have.
    """
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} was asked for, but CUDA is not available on"
                              " this machine (use auto or cpu)")
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} does not exist: this machine has"
                              f" {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    if device.type == "mps" and not mps_available():
        raise DeviceError("device 'mps' was asked for, but MPS is not available (use auto or cpu)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unsupported device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    return device


def default_cpu_threads(cores: int | None = None) -> int:
    """Intra-op threads for CPU training: every core but one, at least 1.

    Measured on a 2-core machine, batch 64, through this Trainer (batches/s; p90 batch time):
      digits LeNet, idle machine:        1 thread 152–154 (8 ms)   2 threads 162–204 (6–8 ms)
      VGG template 3×32×32, idle:        1 thread 3.8 (291 ms)     2 threads 6.5 (165 ms)
      digits, a GIL-holding GUI thread:  1 thread 113 (13 ms)      2 threads 108 (15 ms)
      digits, one busy other process:    1 thread 134 (11 ms)      2 threads 38 (88 ms)
      digits, machine loaded (load 4):   1 thread 139–173          2 threads 8–58 (p90 up to 340 ms)
    The second thread gains 5–70 % on an idle machine but collapses by 3–18× as soon as
    anything else wants a core (OpenMP workers spin and wait on each other at barriers),
    and the GUI thread is always something else. One free core is the robust choice; on big
    machines it costs little (small convolutions stop scaling long before 16 threads).
    """
    cores = cores or os.cpu_count() or 1
    return max(1, min(torch.get_num_threads(), cores - 1))


def amp_usable(device: torch.device, wanted: bool) -> bool:
    """Mixed precision is used only on CUDA (CPU bfloat16 autocast is slower for convs)."""
    return wanted and device.type == "cuda"


class LocalStrategy:
    """A run in one process, with the methods a rank's `DistContext` has (the Trainer asks
    its strategy for the device, its samples, and to agree on losses, stops and sums): no
    batch gets a tensor op or a sync more than in a plain loop. The device is resolved in
    `fit()` (a missing one fails the run, not the constructor). It is `pausable`: it may
    wait between batches, where a rank would leave the others hanging."""

    rank, world_size, pausable = 0, 1, True
    # Nothing to split, wrap, sum, agree on or wait for; rank 0 of one keeps its seed.
    shard_size = shard = val_shard = wrap = all_sum = any = rank_seed = staticmethod(
        lambda value, *_: value)
    average_buffers = barrier = staticmethod(lambda *_: None)

    def __init__(self, device_name: str | torch.device | None) -> None:
        self.device_name = device_name

    @cached_property
    def device(self) -> torch.device:
        return resolve_device(self.device_name)

    @property
    def cpu_threads(self) -> int:
        return default_cpu_threads()

    def loss_and_stop(self, loss: torch.Tensor, stop: bool) -> tuple[float, bool]:
        """The batch loss (the one sync per batch); a stop is asked before each batch."""
        return loss.item(), False
