"""The loaded dataset: tensors, splits, normalisation statistics and batch conversion."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import SkippedFile

# Per-chunk element count for statistics: bounded memory even for memory-mapped data.
_STATS_CHUNK_ELEMENTS = 1 << 20


@dataclass
class Dataset:
    """A dataset ready for training.

    ``x`` is (N, C, *spatial): uint8 0..255 for images, float32 for signals and float
    arrays. When the decoded data is over the memory budget, ``x`` (and ``y``) are
    memory-mapped from the disk cache copy-on-write: in-place edits stay in this process.
    ``y`` is (N,) int64 class indices, or (N, H, W) int64 masks for segmentation.
    ``splits`` maps "train", "val" (maybe empty) and, when the source has one, "test" to
    int64 index tensors. ``mean``/``std`` are per channel over the training split, in the
    units :meth:`batch_to_float` produces before normalising (uint8 scaled by 1/255).
    """

    x: torch.Tensor
    y: torch.Tensor
    class_names: list[str]
    task: str
    splits: dict[str, torch.Tensor]
    skipped: list[SkippedFile]
    mean: list[float]
    std: list[float]
    # The images as the source held them, before fitting to the Input: (height, width,
    # Pillow mode) → samples (see `Decoded.formats`); empty when not known.
    source_formats: dict[tuple[int, int, str], int] = field(default_factory=dict)
    # Each sample's file (an absolute path, also when the project's path is relative), in
    # the order of `x`, so that sample i of any split is `files[i]`: for a class folder,
    # the folders in name order — with split folders, test/, train/, val/ (name order),
    # the classes in name order under each — and the files in name order within each;
    # for segmentation, the image files. None when the samples are not files of their own
    # (arrays, CIFAR-10/IDX files, built-in data).
    files: list[str] | None = None
    # (scale, shift) per device/dtype/rank/stats: built once, not per batch.
    _affine: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Per-sample shape, channels first: the Input node's shape."""
        return tuple(self.x.shape[1:])

    def class_counts(self, split: str | None = None) -> list[int]:
        """Samples per class (pixels per class for segmentation) in ``split`` or in all."""
        y = self.y if split is None else self.y[self.splits[split]]
        return torch.bincount(y.reshape(-1), minlength=self.num_classes).tolist()

    def batch_to_float(self, xb: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """`to_float` with this dataset's statistics (its factors built once, not per batch)."""
        return to_float(xb, self.mean, self.std, normalize, self._affine)


def to_float(xb: torch.Tensor, mean: list[float], std: list[float], normalize: bool = True,
             cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
    """Return a float32 batch on ``xb``'s device: uint8 is scaled by 1/255, then each
    channel is normalised with ``(v - mean) / std`` (skipped when ``normalize`` is False).

    Float input is only normalised. The input tensor is never modified. ``cache`` keeps
    the (scale, shift) factors per device/dtype/rank/stats.
    """
    is_uint8 = xb.dtype == torch.uint8
    if not normalize:
        out = xb.to(torch.float32)
        return out.div_(255.0) if is_uint8 else out
    cache = {} if cache is None else cache
    key = (xb.device, is_uint8, xb.dim(), tuple(mean), tuple(std))
    if key not in cache:
        m = torch.tensor(mean, dtype=torch.float64)
        s = torch.tensor(std, dtype=torch.float64)
        scale = 1.0 / (s * 255.0 if is_uint8 else s)
        view = (-1,) + (1,) * (xb.dim() - 2)
        cache[key] = (scale.to(torch.float32).view(view).to(xb.device),
                      (-m / s).to(torch.float32).view(view).to(xb.device))
    scale, shift = cache[key]
    if is_uint8:  # the conversion made a fresh tensor: finish in place
        return xb.to(torch.float32).mul_(scale).add_(shift)
    return torch.addcmul(shift, xb.to(torch.float32), scale)


def channel_stats(x: torch.Tensor, index: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation (population, ddof=0) of ``x[index]``.

    uint8 data is measured after scaling by 1/255. Works in float64 on chunks of about a
    million values (~10 MB, also on memory-mapped data); for uint8 the sums are whole
    numbers far below 2**53, hence exact. A channel with (nearly) zero spread gets std 1.0,
    so normalising never divides by zero. With no sample: mean 0 and std 1.
    """
    channels = x.shape[1]
    if len(index) == 0:
        return [0.0] * channels, [1.0] * channels
    # NumPy, single-threaded: torch's 2 intra-op threads made this 8x slower on a busy
    # 2-core machine (4 s instead of 0.5 s for CIFAR-10's 150M values).
    data = x.detach().cpu().numpy()
    rows_index = index.cpu().numpy()
    per_sample = max(1, data[0].size)
    step = max(1, _STATS_CHUNK_ELEMENTS // per_sample)
    total = np.zeros(channels, np.float64)
    squares = np.zeros(channels, np.float64)
    for start in range(0, len(rows_index), step):
        chunk = data[rows_index[start:start + step]]
        work = np.moveaxis(chunk, 1, 0).reshape(channels, -1).astype(np.float64)
        total += work.sum(axis=1)
        squares += np.einsum("ij,ij->i", work, work)
    count = len(rows_index) * (per_sample // channels)
    scale = 255.0 if x.dtype == torch.uint8 else 1.0
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0)) / scale
    mean = mean / scale
    std = np.where(std < 1e-6, 1.0, std)
    return [float(v) for v in mean], [float(v) for v in std]
