"""Batched, seeded data augmentation on whatever device the batch lives on.

Settings (all optional, all off by default), as stored in a project's training settings:
``{"flip": true, "crop_padding": 4, "rotation": 10}``

* ``flip``: horizontal flip with probability 0.5 (or the given probability, 0..1).
* ``crop_padding``: pad P zeros on every side, then crop back to the original size at a
  random offset, i.e. a random shift of up to P pixels with zero fill.
* ``rotation``: rotate by a uniform random angle in [-deg, +deg] about the centre
  (bilinear, zero fill; images only).

Applied in that order. For segmentation the masks get the very same geometric transform
(nearest neighbour; pixels shifted or rotated in from outside become class 0, background).
Random numbers come from the given ``torch.Generator`` (on its own device; only a few
numbers per sample are moved to the batch's device), so a seeded generator repeats runs.
Meant for float batches (after ``batch_to_float``), where zero is the mean colour; flip and
crop work on any dtype, rotation of integer data is computed in float and rounded back.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .errors import DataError


def _settings(settings: dict[str, Any] | None) -> tuple[float, int, float]:
    """Validate settings; return (flip probability, crop padding, rotation degrees)."""
    settings = settings or {}
    flip = settings.get("flip", False)
    pad = settings.get("crop_padding", 0)
    degrees = settings.get("rotation", 0)
    if isinstance(flip, bool) or flip is None:
        p = 0.5 if flip else 0.0
    elif isinstance(flip, int | float) and 0 <= flip <= 1:
        p = float(flip)
    else:
        raise DataError(f"augmentation 'flip' must be true/false or a probability, not {flip!r}")
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise DataError(f"augmentation 'crop_padding' must be a whole number >= 0, not {pad!r}")
    if isinstance(degrees, bool) or not isinstance(degrees, int | float) or not (
            0 <= degrees <= 180):
        raise DataError(f"augmentation 'rotation' must be degrees in 0..180, not {degrees!r}")
    return p, pad, float(degrees)


def _rand(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def flip_batch(x: torch.Tensor, y: torch.Tensor | None, which: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mirror the samples where ``which`` (N,) is true along the last (width) axis."""
    x = torch.where(which.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)
    if y is not None and y.dim() == x.dim() - 1:
        y = torch.where(which.view(-1, *([1] * (y.dim() - 1))), y.flip(-1), y)
    return x, y


def shift_batch(t: torch.Tensor, pad: int, offsets: torch.Tensor) -> torch.Tensor:
    """Zero-pad the trailing spatial axes of ``t`` by ``pad`` and crop the original size at
    per-sample ``offsets`` (N, spatial dims) in 0..2*pad: a shift with zero fill."""
    spatial = t.shape[-offsets.shape[1]:]
    padded = F.pad(t, [pad, pad] * len(spatial))
    n = t.shape[0]
    batch = torch.arange(n, device=t.device)
    if len(spatial) == 1:  # (N, C, L)
        cols = offsets[:, 0:1] + torch.arange(spatial[0], device=t.device)
        return padded[batch[:, None], :, cols].permute(0, 2, 1)
    rows = offsets[:, 0:1] + torch.arange(spatial[0], device=t.device)  # (N, H)
    cols = offsets[:, 1:2] + torch.arange(spatial[1], device=t.device)  # (N, W)
    if t.dim() == 3:  # masks (N, H, W)
        return padded[batch[:, None, None], rows[:, :, None], cols[:, None, :]]
    out = padded[batch[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2)


def rotate_batch(t: torch.Tensor, degrees: torch.Tensor, nearest: bool = False) -> torch.Tensor:
    """Rotate (N, C, H, W) images or (N, H, W) masks by per-sample ``degrees`` about the
    centre, counter-clockwise as displayed, zero fill. Uses ``affine_grid``/``grid_sample``
    (bilinear, or nearest for masks); integer input is rounded back to its dtype."""
    mask = t.dim() == 3
    data = t[:, None] if mask else t
    h, w = data.shape[-2:]
    rad = torch.deg2rad(degrees.to(device=t.device, dtype=torch.float32))
    cos, sin = torch.cos(rad), torch.sin(rad)
    # Normalised coordinates stretch with the aspect ratio: correct for it so angles stay true.
    theta = torch.zeros(len(t), 2, 3, device=t.device)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * h / w
    theta[:, 1, 0] = sin * w / h
    theta[:, 1, 1] = cos
    work = data if data.is_floating_point() else data.to(torch.float32)
    grid = F.affine_grid(theta.to(work.dtype), list(work.shape), align_corners=False)
    out = F.grid_sample(work, grid, mode="nearest" if nearest else "bilinear",
                        padding_mode="zeros", align_corners=False)
    if not data.is_floating_point():
        out = out.round_().to(data.dtype)
    return out[:, 0] if mask else out


def augment_batch(x: torch.Tensor, y: torch.Tensor | None, settings: dict[str, Any] | None,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return an augmented copy of batch ``x`` (N, C, H, W) or (N, C, L) and of ``y``.

    ``y`` is passed through unchanged for classification labels (N,), and transformed
    along with ``x`` for segmentation masks (N, H, W). Neither input is modified.
    Raises DataError for invalid settings, or rotation asked of 1-D data.
    """
    p, pad, degrees = _settings(settings)
    n, spatial = x.shape[0], x.dim() - 2
    if spatial not in (1, 2):
        raise DataError("augmentation works on (N, C, L) or (N, C, H, W) batches, "
                        f"got {tuple(x.shape)}")
    masks = y is not None and y.dim() == x.dim() - 1
    if p > 0:
        x, y = flip_batch(x, y, _rand(n, generator, x.device) < p)
    if pad > 0:
        offsets = torch.randint(0, 2 * pad + 1, (n, spatial), generator=generator,
                                device=generator.device).to(x.device)
        x = shift_batch(x, pad, offsets)
        if masks:
            assert y is not None
            y = shift_batch(y, pad, offsets)
    if degrees > 0:
        if spatial != 2:
            raise DataError("rotation augmentation needs images; the data is 1-D")
        angles = (_rand(n, generator, x.device) * 2 - 1) * degrees
        x = rotate_batch(x, angles)
        if masks:
            assert y is not None
            y = rotate_batch(y, angles, nearest=True)
    return x, y


__all__ = ["augment_batch", "flip_batch", "rotate_batch", "shift_batch"]
