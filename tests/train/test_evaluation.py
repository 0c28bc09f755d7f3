"""Every evaluation number against scikit-learn's, on predictions computed here."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sk = pytest.importorskip("sklearn.metrics")

from cnnstudio.train.evaluation import (  # noqa: E402
    classification_metrics,
    segmentation_metrics,
)


def _probabilities(rng: np.random.Generator, n: int, k: int, ties: bool) -> np.ndarray:
    p = rng.random((n, k))
    if ties:  # few distinct values: many tied scores within and across samples
        p = np.round(p * 4) / 4 + 1e-3
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, False), (3, True)])
def test_classification_equals_sklearn(seed: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    k, n = 6, 200
    p = _probabilities(rng, n, k, ties)
    y = rng.integers(0, k - 1, n)  # the last class is absent from the test set
    y[:30] = np.argmax(p[:30], axis=1) % (k - 1)  # some right answers
    res = classification_metrics(y, p)
    labels = list(range(k))
    pred = np.argmax(p, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prec, rec, f1, sup = sk.precision_recall_fscore_support(
            y, pred, labels=labels, zero_division=0)
        assert res.accuracy == pytest.approx(sk.accuracy_score(y, pred))
        assert res.top5 == pytest.approx(sk.top_k_accuracy_score(y, p, k=5, labels=labels))
        np.testing.assert_allclose(res.precision, prec)
        np.testing.assert_allclose(res.recall, rec)
        np.testing.assert_allclose(res.f1, f1)
        np.testing.assert_array_equal(res.support, sup)
        np.testing.assert_array_equal(res.confusion, sk.confusion_matrix(y, pred, labels=labels))
        for avg, got in (("macro", res.macro), ("weighted", res.weighted)):
            ref = sk.precision_recall_fscore_support(y, pred, labels=labels, average=avg,
                                                     zero_division=0)
            assert [got["precision"], got["recall"], got["f1"]] == pytest.approx(ref[:3])
        onehot = np.eye(k)[y]
        for avg, got in (("macro", res.macro), ("weighted", res.weighted)):
            assert got["average_precision"] == pytest.approx(
                sk.average_precision_score(onehot, p, average=avg))
        present = labels[:-1]  # sklearn's multi-class AUC needs every class present
        q = p[:, present] / p[:, present].sum(axis=1, keepdims=True)
        sub = classification_metrics(y, q)
        for avg, got in (("macro", sub.macro), ("weighted", sub.weighted)):
            assert got["roc_auc"] == pytest.approx(
                sk.roc_auc_score(y, q, multi_class="ovr", average=avg))
        assert res.macro["roc_auc"] == pytest.approx(np.mean(res.roc_auc[:-1]))
        assert res.weighted["roc_auc"] == pytest.approx(
            np.average(res.roc_auc[:-1], weights=sup[:-1]))
        for c in range(k):
            ap = sk.average_precision_score(y == c, p[:, c])
            assert res.average_precision[c] == pytest.approx(ap, abs=1e-12)
            if c == k - 1:
                assert res.roc_auc[c] is None  # absent: undefined
            else:
                assert res.roc_auc[c] == pytest.approx(sk.roc_auc_score(y == c, p[:, c]))
    doc = res.to_json()
    assert set(doc) == {"samples", "accuracy", "top5", "classes", "macro", "weighted",
                        "confusion_matrix"}
    assert set(doc["classes"][0]) == {"class", "precision", "recall", "f1", "support",
                                      "roc_auc", "average_precision"}
    # The most confident mistakes: wrong, and by falling probability.
    probs = [m["probability"] for m in res.mistakes]
    assert probs == sorted(probs, reverse=True)
    for m in res.mistakes:
        assert m["true"] != m["predicted"] == pred[m["index"]] and y[m["index"]] == m["true"]
    assert probs[0] == pytest.approx(max(p[i, pred[i]] for i in np.flatnonzero(pred != y)))


def test_few_classes_have_no_top5_and_bad_input_is_refused() -> None:
    rng = np.random.default_rng(5)
    p = _probabilities(rng, 20, 3, False)
    res = classification_metrics(rng.integers(0, 3, 20), p)
    assert res.top5 is None and "top5" not in res.to_json()
    with pytest.raises(ValueError):
        classification_metrics(np.zeros(3, int), p)


@pytest.mark.parametrize("seed", [0, 1])
def test_segmentation_equals_sklearn_on_pixels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    masks = rng.integers(0, 3, (5, 8, 9))  # classes 1 and 2 are foreground
    masks[4] = 0  # an image without foreground
    fg = np.clip((masks > 0) * 0.35 + rng.random(masks.shape) * 0.7, 0, 1)
    res = segmentation_metrics(masks, fg)
    truth, pred = (masks > 0), fg >= 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, got in [(None, res.overall)] + list(enumerate(res.images)):
            t = truth.reshape(-1) if i is None else truth[i].reshape(-1)
            q = pred.reshape(-1) if i is None else pred[i].reshape(-1)
            assert got["iou"] == pytest.approx(sk.jaccard_score(t, q, zero_division=0))
            assert got["dice"] == pytest.approx(sk.f1_score(t, q, zero_division=0))
            assert got["precision"] == pytest.approx(sk.precision_score(t, q, zero_division=0))
            assert got["recall"] == pytest.approx(sk.recall_score(t, q, zero_division=0))
            assert got["f1"] == pytest.approx(sk.f1_score(t, q, zero_division=0))
            assert got["accuracy"] == pytest.approx(sk.accuracy_score(t, q))
        for j, th in enumerate(res.sweep["threshold"]):
            q = fg.reshape(-1) >= th
            t = truth.reshape(-1)
            assert res.sweep["f1"][j] == pytest.approx(sk.f1_score(t, q, zero_division=0))
            assert res.sweep["precision"][j] == pytest.approx(
                sk.precision_score(t, q, zero_division=0))
            assert res.sweep["recall"][j] == pytest.approx(sk.recall_score(t, q))
            assert res.sweep["accuracy"][j] == pytest.approx(sk.accuracy_score(t, q))
    assert res.worst(1) == [int(np.argmin([img["iou"] for img in res.images]))]


def test_threshold_sweep_finds_the_known_best_threshold() -> None:
    # Foreground pixels score 0.30…0.39, background 0.05…0.295: only the threshold
    # 0.30 of the 0.01 grid separates them perfectly.
    rng = np.random.default_rng(7)
    masks = rng.integers(0, 2, (4, 16, 16))
    fg = np.where(masks > 0, rng.uniform(0.30, 0.39, masks.shape),
                  rng.uniform(0.05, 0.295, masks.shape))
    res = segmentation_metrics(masks, fg)
    assert res.best_threshold == pytest.approx(0.30)
    assert max(res.sweep["f1"]) == pytest.approx(1.0)
    assert res.overall["recall"] == 0.0  # at 0.5 nothing is foreground
