"""Image folders: class subfolders, skipped files, conversion, explicit splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnstudio.data import DataError, load_dataset

from .helpers import gray, make_class_folder, rgb, truncated_png, write_image


def reasons(ds) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in ds.skipped}


def test_class_folders_give_sorted_classes_and_values(tmp_path: Path) -> None:
    root = make_class_folder(tmp_path / "pics", {
        "dog": [gray(10), gray(20)],
        "cat": [gray(200), gray(210), gray(220)],
    })
    ds = load_dataset({"kind": "folder", "path": str(root)}, input_shape=[1, 8, 8])
    assert ds.class_names == ["cat", "dog"]
    assert ds.x.dtype.is_floating_point is False and ds.x.shape == (5, 1, 8, 8)
    assert ds.y.tolist() == [0, 0, 0, 1, 1]
    # files are read in sorted order, so sample i is the i-th file
    assert ds.x[:, 0, 0, 0].tolist() == [200, 210, 220, 10, 20]
    assert ds.task == "classification" and ds.skipped == []


def test_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    root = make_class_folder(tmp_path / "pics", {"a": [gray(1), gray(2)], "b": [gray(3)]})
    truncated_png(root / "a" / "broken.png")
    (root / "a" / "zero.png").write_bytes(b"")
    (root / "b" / "notes.txt").write_text("not a picture\n")
    (root / "b" / ".hidden").write_text("ignored silently")
    (root / "loose.png").write_bytes(b"")  # beside the class folders
    ds = load_dataset({"kind": "folder", "path": root}, input_shape=[1, 8, 8])
    assert len(ds.x) == 3
    got = reasons(ds)
    assert got["zero.png"] == "empty file"
    assert "truncated" in got["broken.png"]
    assert got["notes.txt"].startswith("not an image")
    assert got["loose.png"] == "not inside a class folder"
    assert ".hidden" not in got
    assert all(Path(s.path).is_absolute() for s in ds.skipped)


def test_empty_class_is_dropped_and_listed(tmp_path: Path) -> None:
    root = make_class_folder(tmp_path / "pics", {"a": [gray(1)], "c": [gray(3), gray(4)]})
    (root / "b").mkdir()
    (root / "b" / "junk.txt").write_text("x")
    ds = load_dataset({"kind": "folder", "path": root}, input_shape=[1, 8, 8])
    assert ds.class_names == ["a", "c"]
    assert ds.y.tolist() == [0, 1, 1]
    got = reasons(ds)
    assert got["b"] == "empty class: no usable image"
    assert got["junk.txt"].startswith("not an image")


def test_folder_without_usable_image_is_one_error(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.txt").write_text("hello")
    (root / "a" / "y.png").write_bytes(b"")
    (root / "a" / "z.jpg").write_bytes(b"\xff\xd8\xff garbage")
    message = r"^no usable image in .*pics: 3 files skipped \(x.txt: not an image"
    with pytest.raises(DataError, match=message) as err:
        load_dataset({"kind": "folder", "path": root}, input_shape=[1, 8, 8])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("source, message", [
    ({"kind": "folder", "path": "missing"}, "image folder not found"),
    ({"kind": "folder"}, "needs a 'path'"),
    ({"kind": "video"}, "unknown data source kind 'video'"),
])
def test_malformed_sources(tmp_path: Path, source: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset(source, input_shape=[1, 8, 8], base_dir=tmp_path)


def test_relative_path_uses_base_dir(tmp_path: Path) -> None:
    make_class_folder(tmp_path / "proj" / "data", {"a": [gray(5)], "b": [gray(6)]})
    ds = load_dataset({"kind": "folder", "path": "data"}, input_shape=[1, 8, 8],
                      base_dir=tmp_path / "proj")
    assert len(ds.x) == 2


def test_rgb_folder_to_gray_8x8_matches_pillow(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    root = make_class_folder(tmp_path / "pics", {"a": [picture], "b": [rgb((255, 0, 0))]})
    ds = load_dataset({"kind": "folder", "path": root}, input_shape=[1, 8, 8])
    expected = np.asarray(Image.fromarray(picture).convert("L").resize((8, 8), Image.BILINEAR))
    assert ds.x.shape == (2, 1, 8, 8)
    np.testing.assert_array_equal(ds.x[0, 0].numpy(), expected)
    assert ds.x[1].unique().tolist() == [76]  # Pillow's luma of pure red: 299*255/1000


def test_gray_folder_to_three_channels(tmp_path: Path) -> None:
    root = make_class_folder(tmp_path / "pics", {"a": [gray(77, 16)], "b": [gray(9, 16)]})
    ds = load_dataset({"kind": "folder", "path": root}, input_shape=[3, 4, 6])
    assert ds.x.shape == (2, 3, 4, 6)
    assert ds.x[0].unique().tolist() == [77] and ds.x[1].unique().tolist() == [9]


def test_unusual_modes_are_converted(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    sixteen = np.full((8, 8), 65535, np.uint16)
    write_image(root / "a" / "rgba.png", np.dstack([rgb((0, 0, 255)), gray(0)]))
    Image.fromarray(sixteen).save(root / "a" / "deep.png")
    (root / "b").mkdir()
    Image.fromarray(gray(128)).convert("P").save(root / "b" / "pal.gif")
    ds = load_dataset({"kind": "folder", "path": root}, input_shape=[1, 8, 8])
    assert ds.skipped == []
    values = sorted(int(v) for v in ds.x[:, 0, 0, 0])
    assert values == [29, 128, 255]  # blue's luma, palette gray, 16-bit white


def test_decompression_bomb_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_class_folder(tmp_path / "pics", {"a": [gray(1, 8)], "b": [gray(2, 8)]})
    write_image(root / "a" / "huge.png", gray(3, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 40x40 = 1600: over 1x and 2x
    write_image(root / "b" / "big.png", gray(3, 30))  # 900 pixels: only the warning level
    ds = load_dataset({"kind": "folder", "path": root}, input_shape=[1, 8, 8])
    got = reasons(ds)
    assert got["huge.png"].startswith("image too large")
    assert got["big.png"].startswith("image too large")
    assert len(ds.x) == 2


def test_explicit_train_val_test_folders(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    make_class_folder(root / "train", {"a": [gray(1)] * 4, "b": [gray(2)] * 3})
    make_class_folder(root / "val", {"a": [gray(3)], "b": [gray(4)]})
    make_class_folder(root / "test", {"b": [gray(5)] * 2})
    ds = load_dataset({"kind": "folder", "path": root}, input_shape=[1, 8, 8], val_fraction=0.5)
    assert ds.class_names == ["a", "b"]
    assert sorted(ds.x[ds.splits["train"], 0, 0, 0].tolist()) == [1] * 4 + [2] * 3
    assert sorted(ds.x[ds.splits["val"], 0, 0, 0].tolist()) == [3, 4]
    assert ds.x[ds.splits["test"], 0, 0, 0].tolist() == [5, 5]
    assert ds.y[ds.splits["test"]].tolist() == [1, 1]


def test_train_and_test_only_takes_val_from_train(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    make_class_folder(root / "train", {"a": [gray(1)] * 5, "b": [gray(2)] * 5})
    make_class_folder(root / "test", {"a": [gray(9)], "b": [gray(9)]})
    ds = load_dataset({"kind": "folder", "path": root}, input_shape=[1, 8, 8], val_fraction=0.2)
    assert len(ds.splits["train"]) == 8 and len(ds.splits["val"]) == 2
    assert ds.y[ds.splits["val"]].tolist() == [0, 1]
    assert ds.x[ds.splits["test"], 0, 0, 0].tolist() == [9, 9]


def test_progress_is_reported_and_throttled(tmp_path: Path) -> None:
    root = make_class_folder(tmp_path / "pics", {"a": [gray(i) for i in range(150)],
                                                 "b": [gray(i) for i in range(150)]})
    calls: list[tuple[str, int, int]] = []
    load_dataset({"kind": "folder", "path": root}, input_shape=[1, 8, 8],
                 progress=lambda *a: calls.append(a))
    decoding = [c for c in calls if c[0] == "decoding"]
    assert decoding[0] == ("decoding", 0, 300) and decoding[-1] == ("decoding", 300, 300)
    assert len(decoding) <= 52
    assert [c[1] for c in decoding] == sorted(c[1] for c in decoding)
    assert ("scanning", 2, 2) in calls


def test_image_folder_needs_image_input(tmp_path: Path) -> None:
    root = make_class_folder(tmp_path / "pics", {"a": [gray(1)]})
    with pytest.raises(DataError, match=r"not \[channels, height, width\]"):
        load_dataset({"kind": "folder", "path": root}, input_shape=[1, 128])
    with pytest.raises(DataError, match="1 \\(gray\\), 3 \\(RGB\\) or 4"):
        load_dataset({"kind": "folder", "path": root}, input_shape=[2, 8, 8])
    with pytest.raises(DataError, match="gives classification data"):
        load_dataset({"kind": "folder", "path": root}, input_shape=[1, 8, 8], task="segmentation")
