"""Stratified, seeded splits and their sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnstudio.data import DataError, load_dataset
from cnnstudio.data.split import make_splits, stratified_split, val_count


@pytest.mark.parametrize("n, fraction, expected", [
    (10, 0.2, 2), (5, 0.2, 1), (3, 0.2, 1), (1, 0.2, 0), (2, 0.25, 1),  # 0.5 rounds up
    (7, 0.5, 4), (3, 0.9, 2), (1, 0.9, 0), (10, 0.0, 0), (4, 0.1, 0),
])
def test_val_count_by_hand(n: int, fraction: float, expected: int) -> None:
    assert val_count(n, fraction) == expected


def test_stratified_sizes_per_class() -> None:
    labels = np.array([0] * 10 + [1] * 5 + [2] * 3 + [3] * 1)
    train, val = stratified_split(labels, 0.2, seed=0)
    # per class: round(10*.2)=2, round(5*.2)=1, round(3*.2)=1, round(1*.2)=0
    assert np.bincount(labels[val], minlength=4).tolist() == [2, 1, 1, 0]
    assert np.bincount(labels[train], minlength=4).tolist() == [8, 4, 2, 1]
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(labels)))
    assert train.dtype == np.int64 and list(train) == sorted(train)


def test_split_is_deterministic_for_the_seed() -> None:
    labels = np.repeat(np.arange(5), 40)
    a = stratified_split(labels, 0.3, seed=7)
    b = stratified_split(labels, 0.3, seed=7)
    c = stratified_split(labels, 0.3, seed=8)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_load_dataset_split_follows_seed_and_fraction() -> None:
    source = {"kind": "builtin", "name": "digits"}
    a = load_dataset(source, input_shape=[1, 8, 8], seed=3, val_fraction=0.25)
    b = load_dataset(source, input_shape=[1, 8, 8], seed=3, val_fraction=0.25)
    c = load_dataset(source, input_shape=[1, 8, 8], seed=4, val_fraction=0.25)
    assert torch.equal(a.splits["val"], b.splits["val"])
    assert not torch.equal(a.splits["val"], c.splits["val"])
    counts = torch.bincount(a.y[a.splits["val"]], minlength=10)
    expected = [int(n * 0.25 + 0.5) for n in torch.bincount(a.y, minlength=10).tolist()]
    assert counts.tolist() == expected
    assert set(a.splits) == {"train", "val"}


def test_bad_fraction_is_an_error() -> None:
    with pytest.raises(DataError, match="val_fraction"):
        load_dataset({"kind": "builtin", "name": "xo"}, input_shape=[1, 9, 9], val_fraction=1.0)


def test_segmentation_split_is_random_not_stratified() -> None:
    splits = make_splits(np.zeros((10, 2, 2)), "segmentation", None, 0.3, seed=0)
    assert len(splits["val"]) == 3 and len(splits["train"]) == 7


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=80),
       st.floats(0, 0.95), st.integers(0, 2**31))
def test_split_properties(labels: list[int], fraction: float, seed: int) -> None:
    y = np.array(labels)
    train, val = stratified_split(y, fraction, seed)
    assert len(np.intersect1d(train, val)) == 0
    assert len(train) + len(val) == len(y)
    for c in np.unique(y):
        n_c = int((y == c).sum())
        assert int((y[val] == c).sum()) == val_count(n_c, fraction)
        assert int((y[train] == c).sum()) >= 1
