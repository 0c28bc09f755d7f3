"""Data faults under training: NaN and extreme values in the data, files that vanish or
rot during a run or between listing and decoding, bad images and decompression bombs, and
data paths a downloaded project may point anywhere. Each ends in one clear line; bad files
are skipped and listed, never fatal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnstudio.cli import main
from cnnstudio.data import load_dataset
from cnnstudio.project import read_project, write_project
from cnnstudio.train import train_project

from .helpers import assert_one_line, template_project
from .test_training_faults import At, project_with

pytestmark = pytest.mark.timeout(180)


def npz_project(tmp_path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    np.savez(tmp_path / "data.npz", x=x, y=y)
    return project_with("xo", tmp_path, data={"source": {"kind": "npz", "path": "data.npz"},
                                               "val_fraction": 0.2})


def xo_arrays(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 9, 9), dtype=np.float32), (np.arange(n) % 2).astype(np.int64)


def test_nan_in_the_data_is_refused_before_training(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    x, y = xo_arrays()
    x[5, 0, 3, 3] = np.nan
    path = npz_project(tmp_path, x, y)
    before = path.read_bytes()
    assert main(["train", str(path)]) == 1
    err = capsys.readouterr().err
    assert_one_line(err)
    assert "NaN or infinity" in err
    assert path.read_bytes() == before  # nothing trained, nothing written


def test_extreme_values_in_the_data_end_in_a_clear_failure(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, y = xo_arrays()
    x[::7] = 3e38  # finite float32, but the sums of a convolution overflow
    result = train_project(read_project(npz_project(tmp_path, x, y)))
    assert result.status in ("failed", "completed")
    if result.status == "failed":
        assert_one_line(result.message)
    if result.state_dict is not None:
        assert all(bool(torch.isfinite(v).all()) for v in result.state_dict.values())


# ---- the data changes under a run ------------------------------------------------------------


def image_folder(root: Path, per_class: int = 12) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    for label in ("o", "x"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (9, 9), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i:03d}.png")
    return root


@pytest.mark.parametrize("fault", ["deleted", "corrupted"])
def test_the_data_vanishing_during_training_does_not_stop_it(tmp_path: Path, fault: str) -> None:
    images = image_folder(tmp_path / "images")
    path = project_with("xo", tmp_path, epochs=3, batch_size=4,
                        data={"source": {"kind": "folder", "path": "images"}})

    def spoil(trainer) -> None:  # noqa: ANN001
        if fault == "deleted":
            shutil.rmtree(images)
        else:
            for file in images.rglob("*.png"):
                file.write_bytes(b"\x89PNG garbage" + bytes(50))

    result = train_project(read_project(path), callbacks=[At(1, 2, spoil)])
    assert result.status == "completed", result.message
    assert len(result.epochs) == 3  # every epoch ran on the decoded, cached samples
    # The next load sees the damage and says so in one line (deleted), or skips the
    # unreadable files and finds nothing usable (corrupted).
    again = train_project(read_project(path))
    assert again.status == "failed"
    assert_one_line(again.message)
    assert ("not found" in again.message) if fault == "deleted" else (
        "no usable image" in again.message)


def test_files_lost_or_broken_before_decoding_are_skipped_and_listed(tmp_path: Path) -> None:
    images = image_folder(tmp_path / "images")
    (images / "x" / "005.png").write_bytes(b"not an image at all")
    doomed = images / "o" / "003.png"

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "decoding" and done == 0 and doomed.exists():
            doomed.unlink()  # listed by the scan, gone when its turn comes

    dataset = load_dataset({"kind": "folder", "path": str(images)}, input_shape=[1, 9, 9],
                           progress=progress)
    skipped = {Path(s.path).name: s.reason for s in dataset.skipped}
    assert set(skipped) == {"003.png", "005.png"}, skipped
    assert "No such file" in skipped["003.png"] or "cannot read" in skipped["003.png"]
    assert all(reason and "\n" not in reason for reason in skipped.values())
    assert len(dataset.x) == 22


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height pixels (a decompression bomb) with no data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_bad_images_are_skipped_and_listed_never_fatal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = image_folder(tmp_path / "images")
    good = (images / "x" / "000.png").read_bytes()
    junk = {"bomb.png": bomb_png(60_000, 60_000), "truncated.png": good[:40],
            "empty.png": b"", "text.png": b"hello", "pickle.png": b"\x80\x04K\x01.",
            "zip.png": b"PK\x03\x04" + bytes(40)}
    for name, data in junk.items():
        (images / "o" / name).write_bytes(data)
    dataset = load_dataset({"kind": "folder", "path": str(images)}, input_shape=[1, 9, 9])
    skipped = {Path(s.path).name: s.reason for s in dataset.skipped}
    assert set(skipped) == set(junk), skipped
    assert "decompression bomb" in skipped["bomb.png"]
    assert all(reason and "\n" not in reason for reason in skipped.values())
    assert len(dataset.x) == 24
    # predict: each bad image gets its own line, the good ones their classes; exit 2.
    path = project_with("xo", tmp_path, epochs=1,
                        data={"source": {"kind": "folder", "path": "images"}})
    assert main(["train", str(path)]) == 0
    capsys.readouterr()
    files = [str(images / "o" / n) for n in junk] + [str(images / "x" / "000.png")]
    assert main(["predict", str(path), *files, "--json"]) == 2
    out, err = capsys.readouterr()
    results = json.loads(out)
    assert [bool(r.get("error")) for r in results] == [True] * len(junk) + [False]
    assert_one_line(err)


@pytest.mark.parametrize("source", [
    {"kind": "npz", "path": "data\x00.npz"}, {"kind": "folder", "path": "/dev/null"},
    {"kind": "csv", "path": "/dev/zero"}, {"kind": "npz", "path": "/no/such/file.npz"},
    {"kind": "idx", "images": "x" * 5000, "labels": "y"},
    {"kind": "cifar10", "path": "."}, {"kind": "segmentation_folder", "images": "..",
                                       "masks": "../.."},
], ids=["nul", "devnull-folder", "devzero-csv", "missing", "long", "cwd", "parents"])
def test_hostile_data_paths_fail_in_one_line(tmp_path: Path, source: dict,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A downloaded project can point its data anywhere: the run fails with one line (a
    device file is never read), and `predict`, which may need the data for class names,
    says so without an internal error."""
    task_template = "unet" if source["kind"] == "segmentation_folder" else "xo"
    path = project_with(task_template, tmp_path, data={"source": source})
    result = train_project(read_project(path))
    assert result.status == "failed"
    assert_one_line(result.message)
    if task_template == "xo":
        from PIL import Image

        project = read_project(path)
        project.weights = template_project("xo", weights=True).weights
        write_project(project, path)
        Image.new("L", (9, 9)).save(tmp_path / "x.png")
        assert main(["predict", str(path), str(tmp_path / "x.png")]) == 1
        err = capsys.readouterr().err
        assert_one_line(err)
