"""Segmentation folders: images paired with same-stem class-index masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnstudio.data import DataError, load_dataset

from .helpers import gray, rgb, write_image


def quarter_mask(value: int, size: int = 8) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[: size // 2, : size // 2] = value
    return mask


@pytest.fixture
def seg(tmp_path: Path) -> Path:
    root = tmp_path / "seg"
    for i, value in enumerate([1, 2, 1]):
        write_image(root / "images" / f"im{i}.png", rgb((50 * i, 100, 200)))
        write_image(root / "masks" / f"im{i}.png", quarter_mask(value))
    return root


def test_pairs_by_stem_and_resizes_masks_nearest(seg: Path) -> None:
    write_image(seg / "images" / "lonely.jpg", rgb((1, 2, 3)))
    write_image(seg / "masks" / "orphan.png", quarter_mask(1))
    ds = load_dataset({"kind": "segmentation_folder", "images": "images", "masks": "masks"},
                      input_shape=[3, 16, 16], task="segmentation", base_dir=seg)
    assert ds.task == "segmentation"
    assert ds.x.shape == (3, 3, 16, 16) and ds.y.shape == (3, 16, 16)
    assert str(ds.y.dtype) == "torch.int64"
    assert ds.class_names == ["class_0", "class_1", "class_2"]
    assert ds.y[1, :8, :8].unique().tolist() == [2] and ds.y[1, 8:].unique().tolist() == [0]
    assert ds.x[2, 0].unique().tolist() == [100]
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert reasons == {"lonely.jpg": "no mask with the same name",
                       "orphan.png": "no image with the same name"}
    assert len(ds.splits["train"]) + len(ds.splits["val"]) == 3


def test_classes_txt_names_classes_and_bounds_values(seg: Path) -> None:
    (seg / "masks" / "classes.txt").write_text("background\nroad\ncar\n")
    write_image(seg / "images" / "bad.png", rgb((0, 0, 0)))
    write_image(seg / "masks" / "bad.png", quarter_mask(7))
    ds = load_dataset({"kind": "segmentation_folder", "images": seg / "images",
                       "masks": seg / "masks"}, input_shape=[1, 8, 8], task="segmentation")
    assert ds.class_names == ["background", "road", "car"]
    assert len(ds.x) == 3
    (bad,) = ds.skipped
    assert bad.reason == "mask has class 7 but classes.txt names 3 classes"


def test_bad_masks_are_skipped(seg: Path) -> None:
    write_image(seg / "images" / "color.png", gray(5))
    write_image(seg / "masks" / "color.png", rgb((255, 0, 0)))
    write_image(seg / "images" / "size.png", gray(5, 8))
    write_image(seg / "masks" / "size.png", quarter_mask(1, 4))
    write_image(seg / "images" / "trunc.png", gray(5))
    (seg / "masks" / "trunc.png").write_bytes(b"")
    Image.fromarray(quarter_mask(1)).convert("P").save(seg / "masks" / "im0.png")
    ds = load_dataset({"kind": "segmentation_folder", "images": seg / "images",
                       "masks": seg / "masks"}, input_shape=[1, 8, 8], task="segmentation")
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert reasons["color.png"].startswith("mask is a colour image")
    assert reasons["size.png"] == "mask size 4x4 differs from the image's 8x8"
    assert reasons["trunc.png"] == "empty file"
    assert len(ds.x) == 3 and ds.y[0, 0, 0] == 1  # the palette mask is read as indices


def test_segmentation_needs_segmentation_task(seg: Path) -> None:
    with pytest.raises(DataError, match="gives segmentation data; the project task is "
                                        "classification"):
        load_dataset({"kind": "segmentation_folder", "images": seg / "images",
                      "masks": seg / "masks"}, input_shape=[1, 8, 8])
    with pytest.raises(DataError, match="needs a 'masks' path"):
        load_dataset({"kind": "segmentation_folder", "images": seg / "images"},
                     input_shape=[1, 8, 8], task="segmentation")


def test_segmentation_over_budget_maps_masks_too(seg: Path, tmp_path: Path) -> None:
    source = {"kind": "segmentation_folder", "images": seg / "images", "masks": seg / "masks"}
    (seg / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    write_image(seg / "masks" / "broken.png", quarter_mask(1))
    plain = load_dataset(source, input_shape=[1, 8, 8], task="segmentation")
    mapped = load_dataset(source, input_shape=[1, 8, 8], task="segmentation",
                          cache_dir=tmp_path / "small", memory_budget=10)
    assert len(mapped.x) == 3 and [Path(s.path).name for s in mapped.skipped] == ["broken.png"]
    assert torch.equal(plain.x, mapped.x) and torch.equal(plain.y, mapped.y)
    maps = Path("/proc/self/maps")
    if maps.exists():
        text = maps.read_text()
        (entry,) = list((tmp_path / "small").iterdir())
        assert str(entry / "x.npy") in text and str(entry / "y.npy") in text
