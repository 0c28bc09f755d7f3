"""Every data source kind trains end to end through train_project (files made here).

The files include the hostile ones a scraped folder has: a truncated PNG, a zero-byte
file and a text file in a class folder; they are skipped and training still runs.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnstudio.core.graph import Graph
from cnnstudio.project import Project
from cnnstudio.train import COMPLETED, train_project

RNG = np.random.default_rng(0)
CLASSES = 3


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


def classifier(shape: list[int], classes: int = CLASSES) -> Graph:
    g = Graph()
    g.add_node("Input", {"shape": shape}, id="input")
    conv = "Conv1d" if len(shape) == 2 else "Conv2d"
    g.add_node(conv, {"out_channels": 4, "kernel_size": 3, "padding": 1}, id="conv",
               inputs=["input"])
    g.add_node("ReLU", {}, id="relu", inputs=["conv"])
    g.add_node("Flatten", {}, id="flat", inputs=["relu"])
    g.add_node("Linear", {"out_features": classes}, id="fc", inputs=["flat"])
    return g


def segmenter(shape: list[int], classes: int) -> Graph:
    g = Graph()
    g.add_node("Input", {"shape": shape}, id="input")
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}, id="conv",
               inputs=["input"])
    g.add_node("ReLU", {}, id="relu", inputs=["conv"])
    g.add_node("Conv2d", {"out_channels": classes, "kernel_size": 1}, id="head", inputs=["relu"])
    return g


def images(n: int, size: int = 8, channels: int = 1) -> np.ndarray:
    shape = (n, size, size) if channels == 1 else (n, size, size, channels)
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def train(tmp_path: Path, graph: Graph, source: dict, task: str = "classification"):
    project = Project(name="t", task=task, graph=graph, path=tmp_path / "p.cnnproj",
                      data={"source": source, "val_fraction": 0.25},
                      training={"epochs": 1, "batch_size": 8, "max_batches_per_epoch": 2,
                                "device": "cpu"})
    result = train_project(project)
    assert result.status == COMPLETED, result.message
    assert project.weights is not None and project.runs[-1]["status"] == COMPLETED
    return result


def test_image_folder_with_broken_files(tmp_path: Path) -> None:
    root = tmp_path / "folder"
    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True)
        for i, img in enumerate(images(6, 12, 3)):
            Image.fromarray(img).save(root / f"class{c}" / f"{i}.png")
    (root / "class0" / "empty.png").write_bytes(b"")
    (root / "class1" / "notes.txt").write_text("not an image")
    good = (root / "class2" / "0.png").read_bytes()
    (root / "class2" / "cut.png").write_bytes(good[: len(good) // 2])
    result = train(tmp_path, classifier([1, 8, 8]), {"kind": "folder", "path": "folder"})
    assert result.class_names == ["class0", "class1", "class2"]


def test_segmentation_folder(tmp_path: Path) -> None:
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i in range(8):
        Image.fromarray(images(1, 8, 3)[0]).save(tmp_path / "images" / f"{i}.png")
        mask = RNG.integers(0, 3, (8, 8), dtype=np.uint8)
        Image.fromarray(mask).save(tmp_path / "masks" / f"{i}.png")
    train(tmp_path, segmenter([3, 8, 8], 3),
          {"kind": "segmentation_folder", "images": "images", "masks": "masks"}, "segmentation")


def test_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=images(24), y=np.arange(24) % CLASSES)
    train(tmp_path, classifier([1, 8, 8]), {"kind": "npz", "path": "d.npz"})


def test_csv_signals(tmp_path: Path) -> None:
    rows = [",".join([str(i % CLASSES)] + [f"{v:.3f}" for v in RNG.normal(size=32)])
            for i in range(24)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    train(tmp_path, classifier([1, 32]), {"kind": "csv", "path": "s.csv"})


def test_mnist_idx_gz(tmp_path: Path) -> None:
    pixels, labels = images(24, 28), (np.arange(24) % CLASSES).astype(np.uint8)
    with gzip.open(tmp_path / "img.idx.gz", "wb") as f:
        f.write(struct.pack(">HBBIII", 0, 0x08, 3, 24, 28, 28) + pixels.tobytes())
    with gzip.open(tmp_path / "lab.idx.gz", "wb") as f:
        f.write(struct.pack(">HBBI", 0, 0x08, 1, 24) + labels.tobytes())
    train(tmp_path, classifier([1, 8, 8]),
          {"kind": "idx", "images": "img.idx.gz", "labels": "lab.idx.gz"})


def test_cifar10_binary(tmp_path: Path) -> None:
    folder = tmp_path / "cifar"
    folder.mkdir()
    records = b"".join(bytes([i % CLASSES]) + images(1, 32, 3)[0].transpose(2, 0, 1).tobytes()
                       for i in range(24))
    (folder / "data_batch_1.bin").write_bytes(records)
    (folder / "batches.meta.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    train(tmp_path, classifier([3, 8, 8], 10), {"kind": "cifar10", "path": "cifar"})


@pytest.mark.parametrize("name, shape, classes, task", [
    ("digits", [1, 8, 8], 10, "classification"),
    ("xo", [1, 9, 9], 2, "classification"),
    ("shapes", [3, 16, 16], 3, "classification"),
    ("signals", [1, 128], 4, "classification"),
    ("shapes-seg", [3, 16, 16], 4, "segmentation"),
])
def test_builtins(tmp_path: Path, name: str, shape: list[int], classes: int, task: str) -> None:
    graph = segmenter(shape, classes) if task == "segmentation" else classifier(shape, classes)
    train(tmp_path, graph, {"kind": "builtin", "name": name}, task)
