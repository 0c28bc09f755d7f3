"""`Dataset.files`: each sample's file, in load order, through the cache and the splits."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnstudio.data import load_dataset
from cnnstudio.data.sources import images

from .helpers import gray, rgb, truncated_png, write_image

SHAPE = [1, 8, 8]


def first_pixel(path: str) -> int:
    """What the file holds (each test picture is one uniform gray)."""
    return int(np.asarray(Image.open(path).convert("L"))[0, 0])


@pytest.fixture
def unsorted_folder(tmp_path: Path) -> Path:
    """Classes and files written out of name order; one broken file, one hidden file."""
    root = tmp_path / "pics"
    value = 10
    for cls, names in (("zebra", ["b.png", "a.png"]), ("ant", ["c.png", "10.png", "09.png"]),
                       ("mole", ["x.png"])):
        for name in names:
            write_image(root / cls / name, gray(value))
            value += 10
    truncated_png(root / "ant" / "broken.png")
    write_image(root / "mole" / ".hidden.png", gray(250))
    return root


def test_folder_files_are_sorted_classes_then_sorted_names(unsorted_folder: Path) -> None:
    ds = load_dataset({"kind": "folder", "path": str(unsorted_folder)}, input_shape=SHAPE)
    expected = [str(unsorted_folder / cls / name)
                for cls in sorted(["zebra", "ant", "mole"])
                for name in sorted(p.name for p in (unsorted_folder / cls).iterdir()
                                   if not p.name.startswith(".") and p.name != "broken.png")]
    assert ds.files == expected
    # sample i is file i: its label is its folder's class, its pixels the file's
    assert [ds.class_names[c] for c in ds.y.tolist()] == [Path(f).parent.name for f in expected]
    assert ds.x[:, 0, 0, 0].tolist() == [first_pixel(f) for f in expected]


def test_nested_and_split_folders_name_the_file_of_each_sample(tmp_path: Path) -> None:
    root = tmp_path / "split"
    value = 5
    for split in ("val", "train"):
        for cls in ("b", "a"):
            for name in ("2.png", "1.png", "deeper/0.png"):
                write_image(root / split / cls / name, gray(value))
                value += 7
    ds = load_dataset({"kind": "folder", "path": root}, input_shape=SHAPE)
    assert ds.files is not None and len(ds.files) == len(ds.x) == 12
    assert ds.x[:, 0, 0, 0].tolist() == [first_pixel(f) for f in ds.files]
    assert [ds.class_names[c] for c in ds.y.tolist()] == [
        Path(f).relative_to(root).parts[1] for f in ds.files]
    for split, folder in (("train", "train"), ("val", "val")):
        assert {Path(ds.files[i]).relative_to(root).parts[0]
                for i in ds.splits[split].tolist()} == {folder}


def test_a_cache_hit_gives_the_same_files_and_a_moved_folder_its_own(
        unsorted_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset({"kind": "folder", "path": unsorted_folder}, input_shape=SHAPE)
    calls = []
    real = images.decode_image
    monkeypatch.setattr(images, "decode_image", lambda *a: calls.append(a) or real(*a))
    again = load_dataset({"kind": "folder", "path": unsorted_folder}, input_shape=SHAPE)
    assert calls == [] and again.files == first.files
    # Same names, sizes and times elsewhere: the same cache entry, with the new folder's paths
    moved = shutil.copytree(unsorted_folder, tmp_path / "moved")
    there = load_dataset({"kind": "folder", "path": moved}, input_shape=SHAPE)
    assert calls == []
    assert there.files == [str(moved / Path(f).relative_to(unsorted_folder))
                           for f in first.files]


def test_memory_mapped_datasets_keep_their_files(unsorted_folder: Path,
                                                 private_cache: Path) -> None:
    for _ in range(2):  # decoded, then a cache hit, both over the budget
        ds = load_dataset({"kind": "folder", "path": unsorted_folder}, input_shape=SHAPE,
                          memory_budget=1)
        assert ds.x[:, 0, 0, 0].tolist() == [first_pixel(f) for f in ds.files]


def test_segmentation_files_are_the_images(tmp_path: Path) -> None:
    root = tmp_path / "seg"
    for name, colour in (("b", (90, 1, 2)), ("a", (30, 1, 2)), ("c", (60, 1, 2))):
        write_image(root / "images" / f"{name}.png", rgb(colour))
        write_image(root / "masks" / f"{name}.png", np.eye(8, dtype=np.uint8))
    source = {"kind": "segmentation_folder", "images": str(root / "images"),
              "masks": str(root / "masks")}
    for _ in range(2):  # decoded, then from the cache
        ds = load_dataset(source, input_shape=[3, 8, 8], task="segmentation")
        assert ds.files == [str(root / "images" / f"{n}.png") for n in ("a", "b", "c")]
        assert ds.x[:, 0, 0, 0].tolist() == [np.asarray(Image.open(f))[0, 0, 0]
                                              for f in ds.files] == [30, 90, 60]


def test_sources_without_files_of_their_own_have_none(tmp_path: Path) -> None:
    ds = load_dataset({"kind": "builtin", "name": "digits"}, input_shape=SHAPE)
    assert ds.files is None
    path = tmp_path / "arrays.npz"
    np.savez(path, x=np.zeros((4, 1, 8, 8), np.float32), y=np.array([0, 1, 0, 1]))
    for _ in range(2):
        assert load_dataset({"kind": "npz", "path": str(path)}, input_shape=SHAPE).files is None


def test_split_folders_load_in_name_order_test_train_val(tmp_path: Path) -> None:
    root = tmp_path / "split"
    value = 3
    for split in ("val", "train", "test"):  # written out of order
        for cls in ("b", "a"):
            for name in ("1.png", "0.png"):
                write_image(root / split / cls / name, gray(value))
                value += 11
    ds = load_dataset({"kind": "folder", "path": root}, input_shape=SHAPE)
    assert ds.files is not None
    in_order = [Path(f).relative_to(root).parts for f in ds.files]
    assert in_order == [(split, cls, name) for split in sorted(["val", "train", "test"])
                        for cls in ("a", "b") for name in ("0.png", "1.png")]
    assert ds.x[:, 0, 0, 0].tolist() == [first_pixel(f) for f in ds.files]
    assert sorted(ds.splits) == ["test", "train", "val"]
    for split in ("test", "train", "val"):
        assert {Path(ds.files[i]).relative_to(root).parts[0]
                for i in ds.splits[split].tolist()} == {split}


def test_files_are_absolute_when_the_data_path_is_relative(
        unsorted_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(unsorted_folder.parent)
    for _ in range(2):  # decoded, then from the cache
        ds = load_dataset({"kind": "folder", "path": unsorted_folder.name}, input_shape=SHAPE,
                          base_dir=".")
        assert ds.files is not None and all(Path(f).is_absolute() for f in ds.files)
        assert all(Path(f).parent.parent == unsorted_folder for f in ds.files)
        assert ds.x[:, 0, 0, 0].tolist() == [first_pixel(f) for f in ds.files]
