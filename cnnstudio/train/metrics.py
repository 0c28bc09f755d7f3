"""Evaluation metrics, in pure torch, from a confusion matrix accumulated on the device.

Every metric here is derived from a (C, C) confusion matrix whose rows are the true
classes and columns the predicted ones, so one pass over the validation data (one
`bincount` per batch, no host sync) gives accuracy, per-class precision/recall/F1 and,
for segmentation, IoU and Dice. Classes that occur neither in the targets nor in the
predictions have no defined score: per-class values are NaN for them and means skip them.
"""

from __future__ import annotations

import math

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return the (C, C) int64 confusion matrix: entry [t, p] counts samples (or pixels) of
    true class t predicted as p. `pred` and `target` hold class indices of any equal shape.

    Raises ValueError when the shapes differ.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} differs from target {tuple(target.shape)}")
    flat = target.reshape(-1).to(torch.int64) * num_classes + pred.reshape(-1).to(torch.int64)
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(cm: torch.Tensor) -> float:
    """Share of correct predictions (trace / total); NaN for an empty matrix."""
    total = int(cm.sum())
    return float(cm.diagonal().sum()) / total if total else math.nan


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    num, den = num.to(torch.float64), den.to(torch.float64)
    return torch.where(den > 0, num / den.clamp_min(1), torch.full_like(num, math.nan))


def precision_recall_f1(cm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class precision, recall and F1 (float64 tensors of length C).

    precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2TP / (2TP + FP + FN).
    A class with a zero denominator gets NaN for that score.
    """
    cm = cm.to(torch.float64)
    tp = cm.diagonal()
    predicted = cm.sum(0)  # TP + FP
    actual = cm.sum(1)  # TP + FN
    return _ratio(tp, predicted), _ratio(tp, actual), _ratio(2 * tp, predicted + actual)


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """Per-class intersection over union TP / (TP + FP + FN); NaN for absent classes."""
    cm = cm.to(torch.float64)
    tp = cm.diagonal()
    return _ratio(tp, cm.sum(0) + cm.sum(1) - tp)


def dice_per_class(cm: torch.Tensor) -> torch.Tensor:
    """Per-class Dice (= F1) 2TP / (2TP + FP + FN); NaN for absent classes."""
    return precision_recall_f1(cm)[2]


def nanmean(values: torch.Tensor) -> float:
    """Mean of the non-NaN entries as a float; NaN when there is none."""
    kept = values[~torch.isnan(values)]
    return float(kept.mean()) if kept.numel() else math.nan


def mean_iou(cm: torch.Tensor) -> float:
    """Mean IoU over the classes present in the targets or the predictions."""
    return nanmean(iou_per_class(cm))


def mean_dice(cm: torch.Tensor) -> float:
    """Mean Dice over the classes present in the targets or the predictions."""
    return nanmean(dice_per_class(cm))


def topk_correct(logits: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """Number of samples whose true class is among the `k` highest scores (a 0-d tensor on
    the logits' device, so callers can sum without a host sync). `logits` is (N, C)."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return (top == target.unsqueeze(1)).any(dim=1).sum()


def classification_summary(cm: torch.Tensor, top5: float | None = None) -> dict[str, object]:
    """The per-epoch classification metrics as plain Python values (NaN kept as float nan):
    `val_accuracy`, optionally `val_top5`, and per-class `precision`, `recall`, `f1` lists."""
    precision, recall, f1 = precision_recall_f1(cm)
    return {"val_accuracy": accuracy(cm), **({} if top5 is None else {"val_top5": top5}),
            "precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist()}


def segmentation_summary(cm: torch.Tensor) -> dict[str, object]:
    """The per-epoch segmentation metrics: `val_iou`, `val_dice` (means over present
    classes), `val_pixel_accuracy`, and per-class `iou` and `dice` lists."""
    iou, dice = iou_per_class(cm), dice_per_class(cm)
    return {"val_iou": nanmean(iou), "val_dice": nanmean(dice),
            "val_pixel_accuracy": accuracy(cm), "iou": iou.tolist(), "dice": dice.tolist()}
