"""Fitting arrays to the Input shape: channels as Pillow converts them, sizes, layouts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnstudio.data import DataError
from cnnstudio.data.convert import (
    convert_channels,
    fit_images,
    fit_signals,
    image_dtype,
    layout_images,
    resize_masks,
)
from cnnstudio.data.sources.base import Target


def test_rgb_to_gray_equals_pillow_exactly() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 3, 17, 13), dtype=np.uint8)
    gray = convert_channels(rgb, 1, "t")
    for i in range(5):
        expected = np.asarray(Image.fromarray(rgb[i].transpose(1, 2, 0)).convert("L"))
        np.testing.assert_array_equal(gray[i, 0], expected)


def test_channel_conversions() -> None:
    gray = np.full((2, 1, 3, 3), 7, np.uint8)
    assert convert_channels(gray, 3, "t").shape == (2, 3, 3, 3)
    rgba = convert_channels(gray, 4, "t")
    assert rgba[:, :3].min() == 7 and rgba[:, 3].min() == 255
    with pytest.raises(DataError, match="cannot convert 2-channel images"):
        convert_channels(np.zeros((1, 2, 3, 3), np.uint8), 3, "t")


def test_resize_matches_pillow_bilinear() -> None:
    img = np.random.default_rng(1).integers(0, 256, (1, 3, 20, 30), dtype=np.uint8)
    out = fit_images(img, Target(3, (8, 12)), "t")
    expected = np.asarray(Image.fromarray(img[0].transpose(1, 2, 0)).resize((12, 8),
                                                                          Image.BILINEAR))
    np.testing.assert_array_equal(out[0].transpose(1, 2, 0), expected)
    floats = fit_images(img.astype(np.float32) / 255, Target(3, (8, 12)), "t")
    assert floats.dtype == np.float32
    np.testing.assert_allclose(floats * 255, out.astype(np.float32), atol=1.0)


@pytest.mark.parametrize("size, new", [((5, 7), (16, 9)), ((16, 16), (5, 3)), ((8, 8), (8, 8))])
def test_mask_resize_is_nearest_like_pillow(size: tuple[int, int], new: tuple[int, int]) -> None:
    mask = np.random.default_rng(2).integers(0, 6, (1, *size), dtype=np.int64)
    out = resize_masks(mask, new)
    expected = np.asarray(Image.fromarray(mask[0].astype(np.uint8)).resize(
        (new[1], new[0]), Image.NEAREST))
    np.testing.assert_array_equal(out[0], expected)


def test_layouts() -> None:
    t = Target(3, (4, 5))
    assert layout_images(np.zeros((2, 4, 5)), t, "t").shape == (2, 1, 4, 5)
    assert layout_images(np.zeros((2, 3, 4, 5)), t, "t").shape == (2, 3, 4, 5)
    assert layout_images(np.zeros((2, 4, 5, 3)), t, "t").shape == (2, 3, 4, 5)
    with pytest.raises(DataError, match="expected images shaped"):
        layout_images(np.zeros((2, 20)), t, "t")


def test_dtypes() -> None:
    assert image_dtype(np.array([True, False]), "t").tolist() == [255, 0]
    assert image_dtype(np.array([0, 200], np.int64), "t").dtype == np.uint8
    with pytest.raises(DataError, match="NaN"):
        image_dtype(np.array([np.nan]), "t")


def test_signal_resampling_rule() -> None:
    x = np.stack([np.full(100, 3.0), np.linspace(-1, 1, 100)]).astype(np.float32)
    out = fit_signals(x, Target(1, (25,)), "t")  # flat rows are one channel
    assert out.shape == (2, 1, 25)
    np.testing.assert_allclose(out[0, 0], 3.0, rtol=1e-6)
    assert np.all(np.diff(out[1, 0]) > 0) and abs(out[1, 0].mean()) < 1e-5
    same = fit_signals(x[:, None], Target(1, (100,)), "t")
    np.testing.assert_array_equal(same[:, 0], x)
    up = fit_signals(x, Target(1, (400,)), "t")
    np.testing.assert_allclose(up[1, 0, ::4].mean(), 0, atol=1e-2)
