"""Occlusion sensitivity: where covering the input costs the class its score.

A square patch (a segment for 1-D inputs) slides over the input; each placement is
filled with 0 — the dataset mean once the input is normalised — and the drop of the class
score is recorded. A pixel's value is the mean drop over the placements that cover it.
Pure torch and NumPy, no Qt; the module is left as found and no random number is drawn.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from cnnstudio.nn.explain.responses import Cancelled
from cnnstudio.nn.internals import _device, _eval_mode, _logits


def _starts(size: int, patch: int, stride: int) -> list[int]:
    """Patch starts along one dimension: every `stride`, plus one flush with the end so
    the last pixels are covered too."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def occlusion_map(module: Any, x: torch.Tensor, class_index: int, *,
                  patch: int | None = None, stride: int | None = None,
                  batch_size: int = 64,
                  cancelled: Callable[[], bool] | None = None) -> np.ndarray:
    """The occlusion-sensitivity map of class `class_index` for one sample `x` (1, C, H, W)
    or (1, C, L), the model's (normalised) float input.

    The patch is `patch` pixels wide in every spatial dimension (default a quarter of the
    shortest side, at least 1) and moves `stride` pixels at a time (default half the
    patch, at least 1; a last placement flush with the end covers the border). The class
    score is the logit (the input of a final Softmax/Sigmoid node). Returns a float32 map
    of the input's spatial shape: per pixel, the mean of (score of `x`) − (score with the
    patch occluded) over the placements that cover it — positive where the evidence for
    the class lies, negative where covering helps it. Display scaling: `scale_cam`.

    `cancelled()` is asked before each batch of `batch_size` placements; when it turns
    True, `responses.Cancelled` is raised.

    Raises ValueError for a batch that is not one sample with 1 or 2 spatial dimensions,
    a patch or stride below 1, or a class index outside the output.
    """
    if x.dim() not in (3, 4) or x.shape[0] != 1:
        raise ValueError("occlusion needs one sample of shape (1, C, H, W) or (1, C, L)")
    spatial = tuple(int(n) for n in x.shape[2:])
    patch = max(1, min(spatial) // 4) if patch is None else int(patch)
    stride = max(1, patch // 2) if stride is None else int(stride)
    if patch < 1 or stride < 1:
        raise ValueError("the occlusion patch and its stride must be at least 1 pixel")
    patch = min(patch, min(spatial))
    placements = list(itertools.product(*(_starts(n, patch, stride) for n in spatial)))
    device = _device(module)
    base = x.detach().to(device, torch.float32)
    drops = torch.zeros(spatial, dtype=torch.float64)
    counts = torch.zeros(spatial, dtype=torch.float64)
    with torch.no_grad(), _eval_mode(module), _logits(module):
        scores = module(base).reshape(1, -1)
        if not 0 <= class_index < scores.shape[1]:
            raise ValueError(f"class {class_index} is not one of the model's"
                             f" {scores.shape[1]} outputs")
        reference = float(scores[0, class_index])
        for first in range(0, len(placements), batch_size):
            if cancelled is not None and cancelled():
                raise Cancelled("cancelled")
            chunk = placements[first:first + batch_size]
            batch = base.repeat(len(chunk), *([1] * (base.dim() - 1)))
            for i, starts in enumerate(chunk):
                batch[(i, slice(None), *(slice(s, s + patch) for s in starts))] = 0.0
            occluded = module(batch).reshape(len(chunk), -1)[:, class_index].double().cpu()
            for drop, starts in zip((reference - occluded).tolist(), chunk, strict=True):
                window = tuple(slice(s, s + patch) for s in starts)
                drops[window] += drop
                counts[window] += 1.0
    return (drops / counts).to(torch.float32).numpy()
