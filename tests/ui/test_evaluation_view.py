"""The Evaluate dock on a tiny trained folder project with a test/ split: the numbers it
shows are `evaluate_project`'s, computed off the GUI thread."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnstudio.cli import main
from cnnstudio.project import read_project, write_project
from cnnstudio.train.evaluation_run import evaluate_project

CLASSES = ("a", "b", "c", "d", "e")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


def _pictures(root: Path, per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (8, 8)) + 30 * c
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:02d}.png")


def _project(tmp_path: Path, train: bool) -> Path:
    _pictures(tmp_path / "pics" / "train", 6, 0)
    _pictures(tmp_path / "pics" / "test", 3, 1)
    path = tmp_path / "shapes.cnnproj"
    assert main(["new", "--template", "digits-lenet", str(path)]) == 0
    project = read_project(path)
    project.data["source"] = {"kind": "folder", "path": "pics"}
    project.graph.set_param("classifier", "out_features", len(CLASSES))
    project.training.update({"epochs": 1, "max_batches_per_epoch": 2, "device": "cpu"})
    write_project(project, path)
    if train:
        assert main(["train", str(path)]) == 0
    return path


def _cell(table, row: int, col: int) -> str:
    return table.item(row, col).text()


def test_shown_numbers_are_evaluate_projects(window, qtbot, tmp_path: Path) -> None:
    path = _project(tmp_path, train=True)
    assert window.open_project(path)
    assert window.findChild(object, "evaluationDock") is not None
    assert window.findChild(object, "actionEvaluate") is not None
    view = window.findChild(object, "evaluationView")
    assert view is window.evaluation.view
    view.evaluate()
    qtbot.waitUntil(lambda: view.evaluation is not None, timeout=60_000)
    assert view.worker_thread not in (None, threading.main_thread().ident)
    doc = evaluate_project(read_project(path)).to_json()
    assert f"accuracy {doc['accuracy']:.4f}" in view.message.text()
    assert f"top-5 {doc['top5']:.4f}" in view.message.text()
    table = view.class_table
    assert table.rowCount() == len(CLASSES) + 2
    for k, row in enumerate(doc["classes"]):
        assert _cell(table, k, 0) == row["class"]
        for c, key in enumerate(("precision", "recall", "f1"), start=1):
            assert float(_cell(table, k, c)) == pytest.approx(row[key], abs=5e-5)
        assert int(_cell(table, k, 4)) == row["support"]
    for r, name in ((len(CLASSES), "macro"), (len(CLASSES) + 1, "weighted")):
        assert float(_cell(table, r, 3)) == pytest.approx(doc[name]["f1"], abs=5e-5)
    assert view.confusion.matrix.tolist() == doc["confusion_matrix"]
    mistakes = view.evaluation.result.mistakes
    assert view.mistakes.count() == len(mistakes)
    if mistakes:
        view.mistakes.setCurrentRow(0)
        probs = view.evaluation.probabilities[mistakes[0]["index"]]
        top = CLASSES[int(np.argmax(probs))]
        assert view.probabilities.text().startswith(f"{top}: {probs.max():.1%}")
    report = tmp_path / "report.md"
    view.save_report(str(report))
    qtbot.waitUntil(lambda: "Report saved" in view.message.text(), timeout=60_000)
    assert report.read_text().startswith("# Evaluation")


def test_untrained_project_says_so_in_one_line(window, tmp_path: Path) -> None:
    assert window.open_project(_project(tmp_path, train=False))
    view = window.evaluation.view
    view.evaluate()
    assert "\n" not in view.message.text()
    assert "train" in view.message.text()
    assert view.evaluation is None


def test_segmentation_shows_evaluate_projects_numbers(window, qtbot, tmp_path: Path) -> None:
    path = tmp_path / "seg.cnnproj"
    assert main(["new", "--template", "unet", str(path)]) == 0
    project = read_project(path)
    project.training.update({"epochs": 1, "max_batches_per_epoch": 1, "device": "cpu"})
    write_project(project, path)
    assert main(["train", str(path)]) == 0
    assert window.open_project(path)
    view = window.evaluation.view
    view.split.setCurrentIndex(view.split.findData("val"))
    view.evaluate()
    qtbot.waitUntil(lambda: view.evaluation is not None, timeout=120_000)
    doc = evaluate_project(read_project(path), split="val").to_json()
    for key in ("iou", "dice", "precision", "recall", "f1"):
        assert f"{key} {doc[key]:.4f}" in view.message.text()
    assert f"best threshold {doc['best_threshold']:.4f}" in view.message.text()
    assert view.image_table.rowCount() == len(doc["images"])
    for r, img in enumerate(doc["images"]):
        assert float(_cell(view.image_table, r, 1)) == pytest.approx(img["iou"], abs=5e-5)
    assert 0 < view.worst.count() <= len(doc["images"])
