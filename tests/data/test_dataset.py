"""Normalisation statistics and batch conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cnnstudio.data import Dataset, channel_stats, load_dataset


def test_stats_match_numpy_on_the_train_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 3, 6, 5), dtype=np.uint8)
    x[:, 1] //= 4  # channels with different spreads
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(40) % 4)
    ds = load_dataset({"kind": "npz", "path": tmp_path / "d.npz"}, input_shape=[3, 6, 5],
                      val_fraction=0.25)
    train = x[ds.splits["train"].numpy()] / 255.0
    np.testing.assert_allclose(ds.mean, train.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(ds.std, train.std(axis=(0, 2, 3)), rtol=1e-10)
    assert len(ds.splits["train"]) == 28  # 10 per class, round(2.5) = 3 to val: 7 x 4


def test_stats_of_float_signals_are_raw_units() -> None:
    x = torch.tensor([[[1.0, 3.0]], [[5.0, 7.0]], [[100.0, 100.0]]])
    mean, std = channel_stats(x, torch.tensor([0, 1]))
    assert mean == pytest.approx([4.0]) and std == pytest.approx([np.std([1, 3, 5, 7])])


def test_stats_in_chunks_equal_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    import cnnstudio.data.dataset as dataset_module

    x = torch.randint(0, 256, (50, 2, 4, 4), dtype=torch.uint8)
    idx = torch.arange(0, 50, 3)
    whole = channel_stats(x, idx)
    monkeypatch.setattr(dataset_module, "_STATS_CHUNK_ELEMENTS", 40)  # 1 sample per chunk
    chunked = channel_stats(x, idx)
    assert whole[0] == pytest.approx(chunked[0]) and whole[1] == pytest.approx(chunked[1])


def test_constant_channel_gets_unit_std() -> None:
    mean, std = channel_stats(torch.full((3, 1, 2, 2), 51, dtype=torch.uint8), torch.arange(3))
    assert mean == pytest.approx([0.2]) and std == [1.0]


def make(x: torch.Tensor, mean: list[float], std: list[float]) -> Dataset:
    return Dataset(x=x, y=torch.zeros(len(x), dtype=torch.int64), class_names=["a"],
                   task="classification", splits={}, skipped=[], mean=mean, std=std)


def test_batch_to_float_uint8_and_float() -> None:
    x = torch.tensor([[[[0, 255]], [[51, 102]]]], dtype=torch.uint8)  # (1, 2, 1, 2)
    ds = make(x, [0.5, 0.2], [0.25, 0.1])
    out = ds.batch_to_float(x)
    expected = (x.double() / 255 - torch.tensor([0.5, 0.2]).view(2, 1, 1).double()) / \
        torch.tensor([0.25, 0.1]).view(2, 1, 1).double()
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ds.batch_to_float(x, normalize=False),
                               torch.tensor([[[[0.0, 1.0]], [[0.2, 0.4]]]]))
    floats = x.float() / 255
    before = floats.clone()
    torch.testing.assert_close(ds.batch_to_float(floats), out)
    assert torch.equal(floats, before)  # the input is never modified in place


def test_batch_to_float_signals() -> None:
    x = torch.tensor([[[2.0, 4.0]]])
    ds = make(x, [3.0], [2.0])
    assert ds.batch_to_float(x).tolist() == [[[-0.5, 0.5]]]


def test_class_counts() -> None:
    ds = load_dataset({"kind": "builtin", "name": "shapes"}, input_shape=[1, 16, 16])
    assert ds.class_counts() == [500, 500, 500]
    assert ds.class_counts("val") == [100, 100, 100]
    assert ds.sample_shape == (1, 16, 16) and ds.num_classes == 3
