"""One rank of a distributed run: its process group, its shard of the data, its collectives.

The Trainer takes an optional `DistContext` (`Trainer(..., dist=ctx)`) as its strategy;
without one it uses `device.LocalStrategy` (same methods) and nothing here. With one:

* every rank computes the same per-epoch permutation from (seed, epoch) and takes its
  slice, as `torch.utils.data.DistributedSampler(drop_last=False)` does: the permutation is
  padded by repeating its start to a multiple of the world size, then rank r takes
  positions r, r + W, r + 2W, … So every rank has the same number of batches (DDP hangs
  otherwise), and rank r's batch k is part of the global batch k a single process with
  batch size W × B would draw: with a mean-reduced loss, DDP's averaged gradient is that
  process's gradient;
* the model is wrapped in `DistributedDataParallel` for the training forward/backward;
* once per batch, one small all-reduce carries the batch loss and the ranks' stop flags:
  every rank sees the same global loss (a NaN anywhere stops all together, before any
  step) and the same stop decision;
* before validation the BatchNorm running statistics are averaged over the ranks; then
  each rank validates a strided slice of the validation split and the sums (loss, counts,
  confusion matrix) are all-reduced, so the metrics are over the whole split.

Process groups come from the environment torchrun and the elastic launcher set (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, …): `init_from_env()`. Backend `gloo` on the CPU,
`nccl` on CUDA with one GPU per process (`cuda:LOCAL_RANK`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import torch
from torch import nn

from cnnstudio.train.batches import mix_seed
from cnnstudio.train.freezing import is_frozen

# Set by torchrun and torch's elastic agent for each worker process.
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# Collectives wait this long for a slow peer; the first one also covers local rank 0
# decoding the dataset into the cache while the others wait.
PROCESS_GROUP_TIMEOUT = timedelta(minutes=60)


class DistError(RuntimeError):
    """A distributed run cannot be set up (no such GPU, unsupported device); one line."""


@dataclass
class DistContext:
    """This process's place in a distributed run, and the collectives the Trainer needs.

    `device` is where this rank trains: the CPU (gloo) or `cuda:LOCAL_RANK` (nccl).
    `cpu_threads` is the intra-op thread count for a CPU rank: the cores shared among the
    ranks of this machine.
    """

    rank: int
    world_size: int
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    pausable = False  # a rank must not wait alone: pause is not available (stop is)

    @property
    def is_main(self) -> bool:
        """Rank 0 prints, records the run and saves the project."""
        return self.rank == 0

    @property
    def backend(self) -> str:
        return "nccl" if self.device.type == "cuda" else "gloo"

    @property
    def cpu_threads(self) -> int:
        return max(1, (os.cpu_count() or 1) // max(1, self.local_world_size))

    def describe(self, batch_size: int) -> dict[str, object]:
        """What the run record keeps about the distribution (`batch_size` per process)."""
        return {"world_size": self.world_size, "backend": self.backend,
                "batch_size_per_process": batch_size,
                "global_batch_size": batch_size * self.world_size}

    # ---- sharding (pure: no communication) -------------------------------------------

    def shard_size(self, n: int) -> int:
        """Training samples per rank per epoch (the padded share)."""
        return math.ceil(n / self.world_size) if n else 0

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's part of an epoch's order: padded to a multiple of the world size by
        repeating its start, then every world_size-th position from `rank`."""
        n = len(order)
        total = self.shard_size(n) * self.world_size
        if total > n:
            order = order.repeat(math.ceil(total / n))[:total]
        return order[self.rank:total:self.world_size]

    def val_shard(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's part of the validation split: strided, unpadded (no sample counted
        twice; the sums are all-reduced)."""
        return index[self.rank::self.world_size]

    def rank_seed(self, seed: int, *parts: int) -> int:
        """The seed for this rank's own randomness (dropout): rank 0 keeps `seed`, so a
        one-process run draws what a plain run draws."""
        return seed if self.rank == 0 and not parts else mix_seed(seed, self.rank, *parts)

    # ---- communication ---------------------------------------------------------------

    def wrap(self, module: nn.Module) -> nn.Module:
        """`module` in DistributedDataParallel (broadcasts rank 0's weights and buffers)."""
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cuda":
            return DistributedDataParallel(module, device_ids=[self.device.index],
                                           output_device=self.device.index)
        return DistributedDataParallel(module)

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum `tensor` over the ranks, in place; returns it."""
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def loss_and_stop(self, loss: torch.Tensor, stop: bool) -> tuple[float, bool]:
        """The batch loss averaged over the ranks, and whether any rank wants to stop: one
        all-reduce and one host sync (the single-process loop syncs on `loss.item()`)."""
        packed = torch.stack([loss.detach().reshape(()).to(torch.float64),
                              torch.tensor(float(stop), dtype=torch.float64,
                                           device=loss.device)])
        mean_loss, stops = self.all_sum(packed).tolist()
        return mean_loss / self.world_size, stops > 0

    def average_buffers(self, module: nn.Module) -> None:
        """Average the floating-point buffers (BatchNorm running statistics) over the ranks.
        DDP gives every forward rank 0's buffers, but each rank's last forward updated its
        own: after this, every rank validates (and rank 0 saves) the same model."""
        # A frozen BatchNorm's statistics are rank 0's everywhere: averaging could only
        # round them (three equal values summed and divided need not give the value back).
        buffers = [b for m in module.modules() if not is_frozen(m)
                   for b in m.buffers(recurse=False) if b.is_floating_point()]
        if not buffers:
            return
        flat = self.all_sum(torch.cat([b.detach().reshape(-1) for b in buffers]))
        flat /= self.world_size
        with torch.no_grad():
            for b, value in zip(buffers, flat.split([b.numel() for b in buffers]), strict=True):
                b.copy_(value.view_as(b))

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is true on any rank."""
        return self.all_sum(torch.tensor([float(flag)], device=self.device)).item() > 0

    def barrier(self) -> None:
        import torch.distributed as dist

        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()


def torchrun_env(env: Mapping[str, str] | None = None) -> dict[str, int] | None:
    """{rank, world_size, local_rank, local_world_size} when this process was started by
    torchrun or the elastic launcher (its variables are all set), else None."""
    env = os.environ if env is None else env
    if not all(env.get(name) for name in TORCHRUN_VARS):
        return None
    try:
        world = int(env["WORLD_SIZE"])
        return {"rank": int(env["RANK"]), "world_size": world,
                "local_rank": int(env["LOCAL_RANK"]),
                "local_world_size": int(env.get("LOCAL_WORLD_SIZE") or world)}
    except ValueError:
        return None


def rank_device(device_name: str | None, local_rank: int) -> torch.device:
    """The device of the process with `local_rank`, for the project's device setting:
    CUDA (`auto` with CUDA present, `cuda`, `cuda:N`) means `cuda:LOCAL_RANK`, one GPU per
    process; otherwise the CPU. Raises DistError for MPS or too few GPUs."""
    name = (device_name or "auto").lower()
    if name == "mps":
        raise DistError("distributed training runs on CPUs or CUDA GPUs, not on MPS"
                        " (set the device to cpu, or --device cpu)")
    wants_cuda = name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())
    if not wants_cuda:
        if name not in ("auto", "cpu"):
            raise DistError(f"unknown device {name!r}: use auto, cpu or cuda")
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise DistError(f"device {name!r} was asked for, but CUDA is not available on this"
                        " machine (set the device to cpu, or --device cpu)")
    if local_rank >= count:
        raise DistError(f"process {local_rank} of this machine needs GPU {local_rank}, but"
                        f" CUDA sees {count} GPU(s): start at most {count} process(es) per"
                        " machine, or set the device to cpu (--device cpu)")
    return torch.device("cuda", local_rank)


def init_from_env(device_name: str | None) -> DistContext:
    """Join the process group described by the torchrun variables; return this rank's
    context. Raises DistError when they are missing or the device is unusable."""
    import torch.distributed as dist

    place = torchrun_env()
    if place is None:
        raise DistError("not started by torchrun: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR"
                        " and MASTER_PORT must be set")
    device = rank_device(device_name, place["local_rank"])
    ctx = DistContext(device=device, **place)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", timeout=PROCESS_GROUP_TIMEOUT, device_id=device)
        else:
            dist.init_process_group("gloo", timeout=PROCESS_GROUP_TIMEOUT)
    return ctx


def close() -> None:
    """Leave the process group (if any); errors are ignored (a peer may be gone)."""
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
