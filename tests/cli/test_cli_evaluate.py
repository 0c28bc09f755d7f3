"""`cnnstudio evaluate` end to end on a tiny trained folder project with a test/ split."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnstudio.cli import main
from cnnstudio.project import read_project, write_project
from cnnstudio.train.model_io import DataRequest, TrainedModel

sk = pytest.importorskip("sklearn.metrics")

CLASSES = ("a", "b", "c", "d", "e")  # five: top-5 is reported


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


def _pictures(root: Path, per_class: int, seed: int, classes=CLASSES) -> None:
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (8, 8)) + 30 * c  # the class shows in brightness
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:02d}.png")


@pytest.fixture
def project_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> Path:
    _pictures(tmp_path / "pics" / "train", 6, 0)
    _pictures(tmp_path / "pics" / "test", 3, 1)
    path = tmp_path / "shapes.cnnproj"
    assert main(["new", "--template", "digits-lenet", str(path)]) == 0
    project = read_project(path)
    project.data["source"] = {"kind": "folder", "path": "pics"}
    project.graph.set_param("classifier", "out_features", len(CLASSES))
    project.training.update({"epochs": 1, "max_batches_per_epoch": 2, "device": "cpu"})
    write_project(project, path)
    assert main(["train", str(path)]) == 0
    capsys.readouterr()
    return path


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_equals_sklearn_and_reports_are_written(project_path: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, project_path, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"samples", "accuracy", "top5", "classes", "macro", "weighted",
                        "confusion_matrix"}
    # The reference: the saved model's probabilities on the test split, through sklearn.
    project = read_project(project_path)
    dataset = DataRequest.of(project).load()
    index = dataset.splits["test"].numpy()
    p = TrainedModel.saved(project).probabilities(dataset.x[index].numpy())
    y = dataset.y[index].numpy()
    pred = p.argmax(1)
    assert doc["samples"] == len(index) == 3 * len(CLASSES)
    assert doc["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns that k = 5 classes is trivial
        assert doc["top5"] == pytest.approx(sk.top_k_accuracy_score(y, p, k=5))
    assert doc["confusion_matrix"] == sk.confusion_matrix(y, pred, labels=range(5)).tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prec, rec, f1, sup = sk.precision_recall_fscore_support(y, pred, labels=range(5),
                                                                zero_division=0)
        macro = sk.precision_recall_fscore_support(y, pred, average="macro", zero_division=0,
                                                   labels=range(5))
    assert [c["class"] for c in doc["classes"]] == list(CLASSES)
    for k, c in enumerate(doc["classes"]):
        assert (c["precision"], c["recall"], c["f1"]) == pytest.approx((prec[k], rec[k], f1[k]))
        assert c["support"] == sup[k]
        assert c["roc_auc"] == pytest.approx(sk.roc_auc_score(y == k, p[:, k]), abs=1e-6)
        assert c["average_precision"] == pytest.approx(
            sk.average_precision_score(y == k, p[:, k]), abs=1e-6)
    assert [doc["macro"][k] for k in ("precision", "recall", "f1")] == pytest.approx(macro[:3])

    md = tmp_path / "out" / "report.md"
    md.parent.mkdir()
    code, out, err = run(capsys, project_path, "-o", md)
    assert code == 0, err
    assert "accuracy" in out and "confusion matrix" in out
    text = md.read_text()
    for name in ("confusion", "curves"):
        png = md.with_name(f"report-{name}.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"({png.name})" in text
    html = tmp_path / "report.html"
    assert run(capsys, project_path, "--split", "val", "-o", html)[0] == 0
    assert html.read_text().count("data:image/png;base64,") == 2


def test_other_data_and_errors_are_one_line(project_path: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    same = tmp_path / "more"
    _pictures(same, 2, 5)
    code, out, err = run(capsys, project_path, "--data", same, "--json")
    assert code == 0, err
    assert json.loads(out)["samples"] == 2 * len(CLASSES)
    other = tmp_path / "other"
    _pictures(other, 2, 5, classes=("x", "y"))
    for args, status in (((project_path, "--data", other), 2),
                         ((project_path, "--data", tmp_path / "nowhere"), 2),
                         ((project_path, "-o", tmp_path / "report.txt"), 2),
                         ((project_path, "-o", tmp_path / "no" / "r.md"), 2)):
        code, out, err = run(capsys, *args)
        assert (code, out) == (status, ""), err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    project = read_project(project_path)
    project.weights = None
    write_project(project, project_path)
    code, out, err = run(capsys, project_path)
    assert code == 1 and "no trained weights" in err and len(err.strip().splitlines()) == 1


def test_segmentation_equals_sklearn_on_pixels(tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    import torch

    path = tmp_path / "seg.cnnproj"
    assert main(["new", "--template", "unet", str(path)]) == 0
    project = read_project(path)
    project.training.update({"epochs": 1, "max_batches_per_epoch": 1, "device": "cpu"})
    write_project(project, path)
    assert main(["train", str(path)]) == 0
    capsys.readouterr()
    report = tmp_path / "seg.md"
    code, out, err = run(capsys, path, "--split", "val", "--json", "-o", report)
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"samples", "iou", "dice", "precision", "recall", "f1",
                        "best_threshold", "images"}
    project = read_project(path)
    dataset = DataRequest.of(project).load()
    index = dataset.splits["val"].numpy()
    model = TrainedModel.saved(project)
    with torch.no_grad():
        logits = model.module()(model.prep.to_float(dataset.x[index].numpy()))
    pred = (logits.argmax(1) > 0).numpy()
    truth = dataset.y[index].numpy() > 0
    assert doc["samples"] == len(index) == len(doc["images"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, q = truth.reshape(-1), pred.reshape(-1)
        assert doc["iou"] == pytest.approx(sk.jaccard_score(t, q, zero_division=0))
        assert doc["dice"] == pytest.approx(sk.f1_score(t, q, zero_division=0))
        assert doc["precision"] == pytest.approx(sk.precision_score(t, q, zero_division=0))
        assert doc["recall"] == pytest.approx(sk.recall_score(t, q, zero_division=0))
        i = 0
        assert doc["images"][i]["iou"] == pytest.approx(
            sk.jaccard_score(truth[i].reshape(-1), pred[i].reshape(-1), zero_division=0))
    assert 0 < doc["best_threshold"] < 1
    assert report.with_name("seg-sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert report.with_name("seg-worst.png").read_bytes()[:4] == b"\x89PNG"
    # Built-in data has no test split: the default falls back to val and says so.
    code, out, err = run(capsys, path, "--json")
    assert code == 0 and json.loads(out) == doc and "no test split" in err
    code, out, err = run(capsys, path, "--split", "test")
    assert code == 2 and out == "" and "test split is empty" in err


def test_a_model_with_non_finite_outputs_is_refused_not_scored(project_path: Path,
                                                               capsys, monkeypatch) -> None:
    # NaN probabilities would otherwise give plausible-looking metrics (accuracy 0.5…).
    import numpy as np

    from cnnstudio.train import evaluation_run

    real = evaluation_run._outputs

    def broken(*args, **kwargs):
        out = real(*args, **kwargs)
        return np.full_like(out, np.nan)

    monkeypatch.setattr(evaluation_run, "_outputs", broken)
    code, out, err = run(capsys, project_path, "--json")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "not finite" in err
