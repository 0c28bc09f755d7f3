"""Feeding batches from in-memory tensors: seeded shuffles, indexing, device placement.

No DataLoader: the dataset is already decoded into tensors, so a batch is one fancy
index (`x[idx]`) and one copy to the device; worker processes and collation would only
add overhead. Randomness is derived from (seed, epoch[, batch]) rather than drawn from
one long stream, so a run stopped anywhere can be resumed with the same shuffles and
augmentations without saving generator states.
"""

from __future__ import annotations

import hashlib
import math

import torch

# Put the whole dataset on the GPU when it takes at most this share of the free memory.
_RESIDENT_SHARE = 0.25
_RESIDENT_MAX_BYTES = 4 << 30


def mix_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers, e.g. (seed, epoch): nearby inputs give
    unrelated streams (seed 1 epoch 2 and seed 2 epoch 1 differ)."""
    text = "/".join(str(int(p)) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The shuffled order (a permutation of range(n), int64 on the CPU) of an epoch."""
    generator = torch.Generator().manual_seed(mix_seed(seed, epoch))
    return torch.randperm(n, generator=generator)


def augmentation_generator(seed: int, epoch: int, batch: int, rank: int = 0) -> torch.Generator:
    """The CPU generator the augmentation of one batch draws from; each rank of a
    distributed run draws its own (rank 0 what a single process draws)."""
    parts = (seed, epoch, batch, 1) if rank == 0 else (seed, epoch, batch, 1, rank)
    return torch.Generator().manual_seed(mix_seed(*parts))


def batch_count(n: int, batch_size: int, limit: int | None, drop_single: bool) -> int:
    """Batches per epoch for `n` samples. With `drop_single` (the model has BatchNorm,
    which cannot normalize one sample in training mode) a last batch of one sample is
    left out; shuffling makes it a different sample each epoch."""
    count = math.ceil(n / batch_size) if n else 0
    if drop_single and n > 1 and n % batch_size == 1:
        count -= 1
    return count if limit is None else min(count, limit)


class DeviceData:
    """The dataset's `x` and `y` as the trainer reads them: moved to the GPU once when
    they fit comfortably (then every batch is gathered there), else gathered on the CPU
    and copied per batch (from pinned memory, without blocking, on CUDA)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> None:
        self.device = device
        self.resident = device.type == "cpu" or _fits_on_device(x, y, device)
        if self.resident and device.type != "cpu":
            x, y = x.to(device), y.to(device)
        self.x, self.y = x, y
        self._pin = device.type == "cuda" and not self.resident

    def index(self, idx: torch.Tensor) -> torch.Tensor:
        """`idx` as an index tensor on the device the data lives on."""
        return idx.to(self.x.device) if idx.device != self.x.device else idx

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples `idx` (from `index()`) on the training device, in storage dtype."""
        xb, yb = self.x[idx], self.y[idx]
        if xb.device != self.device:
            if self._pin:
                xb, yb = xb.pin_memory(), yb.pin_memory()
            xb = xb.to(self.device, non_blocking=self._pin)
            yb = yb.to(self.device, non_blocking=self._pin)
        return xb, yb


def _fits_on_device(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> bool:
    size = x.numel() * x.element_size() + y.numel() * y.element_size()
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
        except RuntimeError:
            return False
        return size <= min(_RESIDENT_MAX_BYTES, free * _RESIDENT_SHARE)
    return size <= _RESIDENT_MAX_BYTES // 4  # MPS: unified memory, stay modest
