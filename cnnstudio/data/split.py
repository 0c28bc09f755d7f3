"""Seeded train/validation splits: stratified per class for classification."""

from __future__ import annotations

import math

import numpy as np
import torch

from .errors import DataError
from .sources.base import GROUP_TEST, GROUP_TRAIN, GROUP_VAL


def val_count(n: int, val_fraction: float) -> int:
    """Samples of a group of ``n`` that go to validation.

    ``round(n * val_fraction)`` with halves rounded up (so counts are easy to check by hand),
    keeping at least one sample for training when ``n >= 1``.
    """
    return max(0, min(math.floor(n * val_fraction + 0.5), n - 1))


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices so each class sends ``val_count(n_c, val_fraction)`` to val.

    ``labels`` are (N,) class indices. Returns sorted (train, val) int64 index arrays; the
    same labels, fraction and seed always give the same split.
    """
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    val_parts = []
    for members in np.split(order, bounds):
        if len(members):
            val_parts.append(rng.permutation(members)[: val_count(len(members), val_fraction)])
    val = np.sort(np.concatenate(val_parts)) if val_parts else np.empty(0, np.int64)
    mask = np.ones(len(labels), bool)
    mask[val] = False
    return np.flatnonzero(mask).astype(np.int64), val.astype(np.int64)


def random_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` at random (no classes to stratify, e.g. segmentation)."""
    labels = np.zeros(n, np.int64)
    return stratified_split(labels, val_fraction, seed)


def make_splits(y: np.ndarray, task: str, group: np.ndarray | None, val_fraction: float,
                seed: int) -> dict[str, torch.Tensor]:
    """Return ``{"train", "val"[, "test"]}`` int64 index tensors.

    Sources with their own splits (``group``) keep them; when they bring no validation part,
    it is taken from their training part by ``val_fraction``. Raises DataError for a
    fraction outside [0, 1).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction {val_fraction} must be at least 0 and below 1")
    n = len(y)
    group = np.full(n, GROUP_TRAIN, np.int8) if group is None else np.asarray(group)
    pool = np.flatnonzero(group == GROUP_TRAIN)
    explicit_val = np.flatnonzero(group == GROUP_VAL)
    test = np.flatnonzero(group == GROUP_TEST)
    if len(explicit_val):
        train, val = pool, explicit_val
    else:
        if task == "classification":
            tr, va = stratified_split(np.asarray(y)[pool], val_fraction, seed)
        else:
            tr, va = random_split(len(pool), val_fraction, seed)
        train, val = pool[tr], pool[va]
    splits = {"train": torch.from_numpy(train.astype(np.int64)),
              "val": torch.from_numpy(val.astype(np.int64))}
    if len(test):
        splits["test"] = torch.from_numpy(test.astype(np.int64))
    return splits
