"""Built-in datasets: the real UCI digits and the procedural sets."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from cnnstudio.data import DataError, load_dataset
from cnnstudio.data import builtin_data as b


def test_digits_are_the_real_uci_digits() -> None:
    ds = load_dataset({"kind": "builtin", "name": "digits"}, input_shape=[1, 8, 8])
    assert ds.x.shape == (1797, 1, 8, 8) and str(ds.x.dtype) == "torch.uint8"
    assert ds.class_names == [str(i) for i in range(10)]
    assert torch.bincount(ds.y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # the first sample of the UCI file is a 0: row 0 is 0,0,5,13,9,1,0,0 (scaled by 255/16)
    assert ds.y[0] == 0
    assert ds.x[0, 0, 0].tolist() == [0, 0, 80, 207, 143, 16, 0, 0]
    assert int(ds.x.max()) == 255
    assert len(ds.splits["train"]) + len(ds.splits["val"]) == 1797


def test_digits_resized_and_to_rgb() -> None:
    ds = load_dataset({"kind": "builtin", "name": "digits"}, input_shape=[3, 28, 28])
    assert ds.x.shape == (1797, 3, 28, 28)
    assert torch.equal(ds.x[:, 0], ds.x[:, 2])


@pytest.mark.parametrize("name, shape, task, n, classes", [
    ("xo", [1, 9, 9], "classification", 1000, ["O", "X"]),
    ("shapes", [3, 32, 32], "classification", 1500, ["circle", "square", "triangle"]),
    ("shapes-seg", [3, 32, 32], "segmentation", 600,
     ["background", "circle", "square", "triangle"]),
    ("signals", [1, 128], "classification", 1000, ["sine", "square", "sawtooth", "noise"]),
])
def test_procedural_sets(name: str, shape: list[int], task: str, n: int,
                         classes: list[str]) -> None:
    make = {"xo": b.make_xo, "shapes": b.make_shapes, "shapes-seg": b.make_shapes_seg,
            "signals": b.make_signals}[name]
    started = time.process_time()  # CPU time: other jobs on the machine do not count
    make(n, 0)
    assert time.process_time() - started < 1.0
    ds = load_dataset({"kind": "builtin", "name": name}, input_shape=shape, task=task)
    assert ds.x.shape == (n, *shape) and ds.class_names == classes
    again = load_dataset({"kind": "builtin", "name": name}, input_shape=shape, task=task)
    assert torch.equal(ds.x, again.x) and torch.equal(ds.y, again.y)
    other = load_dataset({"kind": "builtin", "name": name, "seed": 1}, input_shape=shape,
                         task=task)
    assert not torch.equal(ds.x, other.x)
    if task == "classification":
        assert ds.class_counts() == [n // len(classes)] * len(classes)
    else:
        assert ds.y.shape == (n, 32, 32) and set(ds.y.unique().tolist()) == {0, 1, 2, 3}


def test_xo_pixels_are_plus_minus_one_as_0_and_255() -> None:
    x, y = b.make_xo(200, seed=0)
    assert set(np.unique(x).tolist()) == {0, 255}
    # an X crosses the centre; an O leaves it empty (allowing for noise and shifts)
    centre = x[:, 0, 3:6, 3:6].mean(axis=(1, 2))
    assert centre[y == 1].mean() > 2 * centre[y == 0].mean()


def test_shapes_seg_masks_mark_the_coloured_pixels() -> None:
    x, masks = b.make_shapes_seg(50, seed=0)
    bright = x.min(axis=1) >= 130  # shapes are drawn with every channel in 130..255
    assert ((masks > 0) == bright).mean() > 0.97


def test_signal_classes_look_like_their_names() -> None:
    x, y = b.make_signals(400, seed=0)
    values = x[:, 0]
    square = values[y == 1]
    assert np.mean(np.abs(np.abs(square) - np.abs(square).mean(axis=1, keepdims=True))) < 0.2
    rough = np.abs(np.diff(values, axis=1)).mean(axis=1)
    assert rough[y == 3].mean() > 3 * rough[y == 0].mean()  # noise vs sine


def test_builtin_resize_and_errors() -> None:
    ds = load_dataset({"kind": "builtin", "name": "signals"}, input_shape=[1, 64])
    assert ds.x.shape == (1000, 1, 64)
    small = load_dataset({"kind": "builtin", "name": "shapes-seg", "samples": 10},
                         input_shape=[1, 16, 16], task="segmentation")
    assert small.x.shape == (10, 1, 16, 16) and small.y.shape == (10, 16, 16)
    with pytest.raises(DataError, match="unknown built-in dataset 'mnist'"):
        load_dataset({"kind": "builtin", "name": "mnist"}, input_shape=[1, 28, 28])
    with pytest.raises(DataError, match="is for segmentation"):
        load_dataset({"kind": "builtin", "name": "shapes-seg"}, input_shape=[3, 32, 32])
    with pytest.raises(DataError, match="not \\[channels, height, width\\]"):
        load_dataset({"kind": "builtin", "name": "digits"}, input_shape=[1, 64])
    with pytest.raises(DataError, match="not \\[channels, length\\]"):
        load_dataset({"kind": "builtin", "name": "signals"}, input_shape=[1, 8, 8])
    with pytest.raises(DataError, match="input shape"):
        load_dataset({"kind": "builtin", "name": "digits"}, input_shape=[1, 0, 8])
