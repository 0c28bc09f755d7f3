"""The sizes and modes a source held before its samples were fitted to the Input: counted
while decoding (folders: each kept file; arrays and built-ins: the array), and kept in the
disk cache, so a second load reports them too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from cnnstudio.data import load_dataset


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(
                root / name / f"{i}.png")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(root / "cat" / "grey.png")  # 30 wide
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    return root


def test_a_folder_reports_each_kept_files_size_and_mode_also_from_the_cache(tmp_path):
    root = _folder(tmp_path / "pics")
    cache = tmp_path / "cache"
    first = load_dataset({"kind": "folder", "path": str(root)}, input_shape=[1, 8, 8],
                         cache_dir=cache)
    assert first.sample_shape == (1, 8, 8)
    assert first.source_formats == {(32, 32, "RGB"): 8, (20, 30, "L"): 1}  # broken: not kept
    [meta] = cache.glob("*/meta.json")
    assert json.loads(meta.read_text())["formats"]
    again = load_dataset({"kind": "folder", "path": str(root)}, input_shape=[1, 8, 8],
                         cache_dir=cache)
    assert again.source_formats == first.source_formats


def test_jpeg_draft_decoding_still_reports_the_stored_size(tmp_path):
    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    Image.fromarray(np.full((400, 600, 3), 90, np.uint8)).save(root / "a" / "big.jpg")
    ds = load_dataset({"kind": "folder", "path": str(root)}, input_shape=[3, 16, 16],
                      cache_dir=tmp_path / "cache")
    assert ds.source_formats == {(400, 600, "RGB"): 1}


def test_arrays_and_builtins_report_their_layout(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((6, 28, 28, 3), np.uint8), y=np.arange(6) % 2)
    ds = load_dataset({"kind": "npz", "path": str(tmp_path / "a.npz")}, input_shape=[1, 8, 8],
                      cache_dir=tmp_path / "cache")
    assert ds.source_formats == {(28, 28, "RGB"): 6}
    digits = load_dataset({"kind": "builtin", "name": "digits"}, input_shape=[3, 16, 16])
    assert digits.source_formats == {(8, 8, "L"): 1797}
    signals = load_dataset({"kind": "builtin", "name": "signals"}, input_shape=[1, 128])
    assert signals.source_formats == {}  # not images


def test_a_segmentation_folder_reports_its_images(tmp_path):
    for i in range(3):
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(np.full((12, 16, 4), 9, np.uint8)).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray(np.eye(12, 16, dtype=np.uint8)).save(tmp_path / "masks" / f"{i}.png")
    ds = load_dataset({"kind": "segmentation_folder", "images": str(tmp_path / "images"),
                       "masks": str(tmp_path / "masks")}, input_shape=[1, 8, 8],
                      task="segmentation", cache_dir=tmp_path / "cache")
    assert ds.source_formats == {(12, 16, "RGBA"): 3}
