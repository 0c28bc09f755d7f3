"""Test-set metrics from predictions, NumPy only, with scikit-learn's definitions.

Classification (`classification_metrics`): accuracy, top-5, per-class precision/recall/F1
/support (zero_division=0: an undefined ratio is 0), macro and weighted averages over all
classes, the confusion matrix (rows true, columns predicted), one-vs-rest ROC AUC (the
trapezoid under the ROC curve; None when the class is absent from, or is all of, the test
set) and average precision (sklearn's step-wise sum; 0.0 for an absent class, as sklearn
gives), and the most confident mistakes.

Segmentation (`segmentation_metrics`): foreground (class > 0) against background, on
pixels: IoU (Jaccard), Dice, precision, recall, F1 over the set and per image, and the
threshold sweep of the foreground probability with its best-F1 threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SWEEP_THRESHOLDS = np.round(np.linspace(0.01, 0.99, 99), 2)


def _ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """num / den, 0 where den is 0 (sklearn's zero_division=0)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def _binary_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true positives, false positives) at each distinct score, highest score first: the
    points of sklearn's `_binary_clf_curve`."""
    order = np.argsort(-score, kind="mergesort")
    score, positive = score[order], positive[order].astype(np.float64)
    ends = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.cumsum(positive)[ends]
    return tps, (ends + 1) - tps


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (trapezoids); None when one of the two sides is empty."""
    tps, fps = _binary_curve(positive, score)
    if len(tps) == 0 or tps[-1] == 0 or fps[-1] == 0:
        return None
    tpr, fpr = np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def average_precision(positive: np.ndarray, score: np.ndarray) -> float:
    """Σ (R_n − R_{n−1}) P_n over the distinct scores, highest first; 0.0 without positives."""
    tps, fps = _binary_curve(positive, score)
    if len(tps) == 0 or tps[-1] == 0:
        return 0.0
    precision, recall = tps / (tps + fps), tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def curves(positive: np.ndarray, score: np.ndarray) -> dict[str, np.ndarray]:
    """The ROC (fpr, tpr) and precision-recall (recall, precision) points, for pictures."""
    tps, fps = _binary_curve(positive, score)
    out = {"fpr": np.r_[0.0, _ratio(fps, fps[-1] if len(fps) else 0)],
           "tpr": np.r_[0.0, _ratio(tps, tps[-1] if len(tps) else 0)]}
    out["recall"] = np.r_[0.0, _ratio(tps, tps[-1] if len(tps) else 0)]
    out["precision"] = np.r_[1.0, _ratio(tps, tps + fps)]
    return out


@dataclass
class ClassificationResult:
    samples: int
    class_names: list[str]
    accuracy: float
    top5: float | None
    confusion: np.ndarray                 # (K, K) int64, rows true, columns predicted
    precision: np.ndarray                 # (K,)
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray                   # (K,) int64
    roc_auc: list[float | None]
    average_precision: list[float]
    macro: dict[str, float]
    weighted: dict[str, float]
    mistakes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """SPEC's `evaluate --json` object for classification."""
        doc: dict[str, Any] = {"samples": self.samples, "accuracy": self.accuracy}
        if self.top5 is not None:
            doc["top5"] = self.top5
        doc["classes"] = [
            {"class": name, "precision": float(self.precision[k]),
             "recall": float(self.recall[k]), "f1": float(self.f1[k]),
             "support": int(self.support[k]), "roc_auc": self.roc_auc[k],
             "average_precision": self.average_precision[k]}
            for k, name in enumerate(self.class_names)]
        doc["macro"], doc["weighted"] = dict(self.macro), dict(self.weighted)
        doc["confusion_matrix"] = self.confusion.tolist()
        return doc


def top_k_accuracy(y: np.ndarray, probabilities: np.ndarray, k: int) -> float:
    """Share of samples whose class is among the k most probable (ties: as sklearn, the
    higher class index first)."""
    top = np.argsort(probabilities, axis=1, kind="mergesort")[:, ::-1][:, :k]
    return float(np.mean(np.any(top == y[:, None], axis=1)))


def classification_metrics(y: np.ndarray, probabilities: np.ndarray,
                           class_names: list[str] | None = None,
                           mistakes: int = 16) -> ClassificationResult:
    """Every classification number for true classes `y` (N,) and predicted probabilities
    (N, K). Raises ValueError when the shapes disagree or there are no samples."""
    y = np.asarray(y, np.int64)
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or len(y) != len(p) or len(y) == 0:
        raise ValueError(f"need N labels and N×K probabilities, got {y.shape} and {p.shape}")
    k = p.shape[1]
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"labels outside 0…{k - 1}")
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    predicted = np.argmax(p, axis=1)
    confusion = np.bincount(y * k + predicted, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(np.float64)
    support, predicted_count = confusion.sum(axis=1), confusion.sum(axis=0)
    precision, recall = _ratio(tp, predicted_count), _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted_count)
    weights = support / support.sum()
    macro = {"precision": float(precision.mean()), "recall": float(recall.mean()),
             "f1": float(f1.mean())}
    weighted = {"precision": float(weights @ precision), "recall": float(weights @ recall),
                "f1": float(weights @ f1)}
    aucs = [roc_auc(y == c, p[:, c]) for c in range(k)]
    aps = [average_precision(y == c, p[:, c]) for c in range(k)]
    defined = [a for a in aucs if a is not None]
    macro["roc_auc"] = float(np.mean(defined)) if defined else None  # type: ignore[assignment]
    macro["average_precision"] = float(np.mean(aps))
    # Weighted by support: an absent class weighs nothing, so its undefined AUC does not count.
    weighted["roc_auc"] = (None if any(a is None and w > 0 for a, w in zip(aucs, weights,  # type: ignore[assignment]
                                                                           strict=True))
                           else float(sum(w * a for a, w in zip(aucs, weights, strict=True)
                                          if a is not None)))
    weighted["average_precision"] = float(weights @ np.asarray(aps))
    wrong = np.flatnonzero(predicted != y)
    confident = wrong[np.argsort(-p[wrong, predicted[wrong]], kind="mergesort")][:mistakes]
    shown = [{"index": int(i), "true": int(y[i]), "predicted": int(predicted[i]),
              "probability": float(p[i, predicted[i]])} for i in confident]
    return ClassificationResult(
        len(y), names, float(np.mean(predicted == y)),
        top_k_accuracy(y, p, 5) if k >= 5 else None, confusion, precision, recall, f1,
        support.astype(np.int64), aucs, aps, macro, weighted, shown)


def _pixel_scores(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray
                  ) -> dict[str, np.ndarray]:
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {"iou": _ratio(tp, tp + fp + fn), "dice": _ratio(2 * tp, 2 * tp + fp + fn),
            "precision": precision, "recall": recall,
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "accuracy": _ratio(tp + tn, tp + fp + fn + tn)}


@dataclass
class SegmentationResult:
    samples: int
    overall: dict[str, float]             # iou, dice, precision, recall, f1, accuracy
    images: list[dict[str, float]]        # per image: iou, dice, precision, recall, f1
    sweep: dict[str, list[float]]         # threshold, precision, recall, f1, accuracy
    best_threshold: float
    files: list[str | None] = field(default_factory=list)

    def worst(self, n: int = 8) -> list[int]:
        """The indices of the n images with the lowest IoU (then F1), worst first."""
        keys = [(img["iou"], img["f1"], i) for i, img in enumerate(self.images)]
        return [i for _, _, i in sorted(keys)[:n]]

    def to_json(self) -> dict[str, Any]:
        """SPEC's `evaluate --json` object for segmentation."""
        doc: dict[str, Any] = {"samples": self.samples}
        doc.update({key: self.overall[key] for key in ("iou", "dice", "precision", "recall",
                                                       "f1")})
        doc["best_threshold"] = self.best_threshold
        files = self.files or [None] * self.samples
        doc["images"] = [{"file": files[i], **{key: img[key] for key in
                          ("iou", "dice", "precision", "recall", "f1")}}
                         for i, img in enumerate(self.images)]
        return doc


def segmentation_metrics(masks: np.ndarray, foreground: np.ndarray,
                         predicted: np.ndarray | None = None,
                         files: list[str | None] | None = None,
                         thresholds: np.ndarray = SWEEP_THRESHOLDS) -> SegmentationResult:
    """Pixel metrics for true masks (N, H, W) (class > 0 is foreground), the foreground
    probability (N, H, W) and the predicted foreground (N, H, W) bool (default:
    probability ≥ 0.5). Raises ValueError when the shapes disagree or there are no images."""
    truth = np.asarray(masks) > 0
    fg = np.asarray(foreground, np.float64)
    if truth.shape != fg.shape or truth.ndim < 2 or len(truth) == 0:
        raise ValueError(f"masks {truth.shape} and probabilities {fg.shape} differ")
    pred = fg >= 0.5 if predicted is None else np.asarray(predicted, bool)
    n = len(truth)
    t, pr = truth.reshape(n, -1), pred.reshape(n, -1)
    tp = (t & pr).sum(1)
    fp = (~t & pr).sum(1)
    fn = (t & ~pr).sum(1)
    tn = (~t & ~pr).sum(1)
    per = _pixel_scores(tp, fp, fn, tn)
    total = _pixel_scores(tp.sum(), fp.sum(), fn.sum(), tn.sum())
    images = [{key: float(per[key][i]) for key in per} for i in range(n)]
    overall = {key: float(v) for key, v in total.items()}
    # The sweep, from one histogram per side: exact for thresholds on the 0.01 grid
    # since each pixel counts as foreground when its probability is ≥ the threshold.
    flat_t, flat_p = truth.reshape(-1), fg.reshape(-1)
    rows = {"threshold": [], "precision": [], "recall": [], "f1": [], "accuracy": []}
    pos_scores, neg_scores = np.sort(flat_p[flat_t]), np.sort(flat_p[~flat_t])
    for th in thresholds:
        stp = len(pos_scores) - np.searchsorted(pos_scores, th, side="left")
        sfp = len(neg_scores) - np.searchsorted(neg_scores, th, side="left")
        scores = _pixel_scores(np.float64(stp), np.float64(sfp),
                               np.float64(len(pos_scores) - stp),
                               np.float64(len(neg_scores) - sfp))
        rows["threshold"].append(float(th))
        for key in ("precision", "recall", "f1", "accuracy"):
            rows[key].append(float(scores[key]))
    best = float(rows["threshold"][int(np.argmax(rows["f1"]))])
    return SegmentationResult(n, overall, images, rows, best, list(files or []))
