"""The validation pass: loss and metrics over a split, one host sync at the end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cnnstudio.train import metrics as M
from cnnstudio.train.batches import DeviceData
from cnnstudio.train.losses import TaskLoss


@torch.no_grad()
def evaluate(module: nn.Module, data: DeviceData, index: torch.Tensor, *, batch_size: int,
             to_float: Callable[[torch.Tensor], torch.Tensor], loss: TaskLoss,
             num_classes: int, task: str, autocast: Callable[[], Any],
             halt: Callable[[], bool], reduce: Callable[[torch.Tensor], torch.Tensor],
             ) -> tuple[dict[str, Any], torch.Tensor] | None:
    """Run `module` (in eval mode) over the samples `index`; return (metrics, confusion
    matrix on the CPU), or None when `halt()` (checked before each batch) says to stop.

    Metrics: `val_loss` (sample-weighted mean) and, for classification, `val_accuracy`,
    `val_top5` (with ≥ 5 classes) and per-class `precision`/`recall`/`f1`; for
    segmentation `val_iou`, `val_dice`, `val_pixel_accuracy`, per-class `iou`/`dice`.
    Accumulators stay on the device: the only sync is at the end. `reduce` (the strategy's
    `all_sum`: in a distributed run a sum over the ranks, each of which evaluated its part of
    the split) is applied to the packed sums first, so the metrics cover the whole split.
    """
    n = len(index)
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    module.eval()
    k = num_classes
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    cm = torch.zeros(k * k, dtype=torch.int64, device=device)
    top5 = torch.zeros((), dtype=torch.int64, device=device)
    want_top5 = task == "classification" and k >= 5
    for idx in data.index(index).split(batch_size):
        if halt():
            return None
        xb, yb = data.batch(idx)
        with autocast():
            out = module(to_float(xb))
        out = out.float()
        loss_sum += loss(out, yb).double() * len(yb)
        cm += torch.bincount((yb * k + loss.predict(out)).reshape(-1), minlength=k * k)
        if want_top5:
            top5 += M.topk_correct(out, yb, 5)
    # One collective; float64 holds these counts exactly (below 2**53).
    packed = reduce(torch.cat([torch.stack([loss_sum, top5.double(),
                                            loss_sum.new_tensor(float(n))]), cm.double()]))
    loss_sum, top5, n, cm = packed[0], packed[1].round().long(), int(packed[2]), \
        packed[3:].round().long()
    matrix = cm.reshape(k, k).cpu()
    values: dict[str, Any] = {"val_loss": float(loss_sum) / n}
    if task == "classification":
        values.update(M.classification_summary(matrix, int(top5) / n if want_top5 else None))
    else:
        values.update(M.segmentation_summary(matrix))
    return values, matrix
