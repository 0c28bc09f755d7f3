"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from cnnstudio.train import metrics as M

# true:  0 0 1 1 2 2 2
# pred:  0 1 1 1 2 0 2
TARGET = torch.tensor([0, 0, 1, 1, 2, 2, 2])
PRED = torch.tensor([0, 1, 1, 1, 2, 0, 2])


def test_confusion_matrix_rows_are_true_classes() -> None:
    cm = M.confusion_matrix(PRED, TARGET, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert cm.dtype == torch.int64


def test_confusion_matrix_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        M.confusion_matrix(PRED[:3], TARGET, 3)


def test_accuracy_precision_recall_f1() -> None:
    cm = M.confusion_matrix(PRED, TARGET, 3)
    assert M.accuracy(cm) == pytest.approx(5 / 7)
    precision, recall, f1 = M.precision_recall_f1(cm)
    assert precision.tolist() == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert recall.tolist() == pytest.approx([1 / 2, 1.0, 2 / 3])
    assert f1.tolist() == pytest.approx([1 / 2, 4 / 5, 4 / 5])


def test_absent_class_scores_nan_and_means_skip_it() -> None:
    cm = M.confusion_matrix(PRED, TARGET, 4)
    precision, recall, f1 = M.precision_recall_f1(cm)
    assert math.isnan(precision[3]) and math.isnan(recall[3]) and math.isnan(f1[3])
    assert M.mean_iou(cm) == pytest.approx((1 / 3 + 2 / 3 + 2 / 3) / 3)


def test_iou_and_dice() -> None:
    cm = M.confusion_matrix(PRED, TARGET, 3)
    assert M.iou_per_class(cm).tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert M.dice_per_class(cm).tolist() == pytest.approx([1 / 2, 4 / 5, 4 / 5])
    assert M.mean_iou(cm) == pytest.approx(5 / 9)
    assert M.mean_dice(cm) == pytest.approx((1 / 2 + 4 / 5 + 4 / 5) / 3)


def test_segmentation_masks_by_hand() -> None:
    # 2×3 mask; foreground 1 predicted on 3 pixels, 2 of them right, 1 missed.
    target = torch.tensor([[[0, 1, 1], [0, 0, 1]]])
    pred = torch.tensor([[[0, 1, 1], [1, 0, 0]]])
    cm = M.confusion_matrix(pred, target, 2)
    assert cm.tolist() == [[2, 1], [1, 2]]
    # background: tp 2, fp 1, fn 1 → IoU 2/4, Dice 4/6; foreground the same.
    summary = M.segmentation_summary(cm)
    assert summary["val_iou"] == pytest.approx(0.5)
    assert summary["val_dice"] == pytest.approx(2 / 3)
    assert summary["val_pixel_accuracy"] == pytest.approx(4 / 6)


def test_topk_correct() -> None:
    logits = torch.tensor([
        [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],   # true 4: rank 5 → in top 5
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],   # true 0: rank 6 → not in top 5
        [0.0, 9.0, 0.5, 0.2, 0.1, 0.3],   # true 1: rank 1
    ])
    target = torch.tensor([4, 0, 1])
    assert int(M.topk_correct(logits, target, 5)) == 2
    assert int(M.topk_correct(logits, target, 1)) == 1


def test_empty_matrix_is_nan() -> None:
    cm = torch.zeros(3, 3, dtype=torch.int64)
    assert math.isnan(M.accuracy(cm))
    assert math.isnan(M.mean_iou(cm))


def test_classification_summary_keys() -> None:
    cm = M.confusion_matrix(PRED, TARGET, 3)
    summary = M.classification_summary(cm, top5=1.0)
    assert summary["val_accuracy"] == pytest.approx(5 / 7)
    assert summary["val_top5"] == 1.0
    assert summary["f1"] == pytest.approx([1 / 2, 4 / 5, 4 / 5])
