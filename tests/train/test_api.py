"""train_project and predict on whole projects (the built-in digits)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnstudio.core.templates import get_template
from cnnstudio.data import load_dataset
from cnnstudio.nn import build_module, load_weights
from cnnstudio.project import project_from_dict
from cnnstudio.train import Callback, PredictError, predict, train_project
from cnnstudio.train.api import NORMALIZATION_KEY, RESUME_MEMBER

from .helpers import Recorder


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


def digits_project(**training):
    doc = get_template("digits-lenet").project_dict()
    doc["training"] = {"epochs": 1, "batch_size": 32, "max_batches_per_epoch": 3,
                       "device": "cpu", **training}
    return project_from_dict(doc)


def test_train_project_writes_weights_and_a_json_safe_record() -> None:
    project = digits_project()
    result = train_project(project)
    assert result.status == "completed", result.message
    assert project.weights is not None
    record = project.runs[-1]
    json.dumps(record, allow_nan=False)
    assert record["id"] == "run-1" and record["status"] == "completed"
    assert record["settings"]["max_batches_per_epoch"] == 3
    assert record["class_names"] == [str(i) for i in range(10)]
    assert len(record["confusion_matrix"]) == 10 and record["best_epoch"] == 1
    assert {"epoch", "train_loss", "val_loss", "val_accuracy", "val_top5", "lr", "seconds"} \
        <= record["epochs"][0].keys()
    assert record["started"] <= record["finished"] and record["skipped_files"] == 0
    size = int.from_bytes(project.weights[:8], "little")
    meta = json.loads(project.weights[8:8 + size])["__metadata__"]
    assert json.loads(meta[NORMALIZATION_KEY])["mean"] == record["normalization"]["mean"]
    assert RESUME_MEMBER not in project.attachments

    class StartWeights(Callback):
        def on_fit_start(self, trainer):
            self.state = {k: v.clone() for k, v in trainer.module.state_dict().items()}

    start = StartWeights()
    saved = build_module(project.graph)
    load_weights(saved, project.weights)
    train_project(project, epochs=1, callbacks=[start])  # continues from the saved weights
    assert [r["id"] for r in project.runs] == ["run-1", "run-2"]
    assert all(torch.equal(v, start.state[k]) for k, v in saved.state_dict().items())


def test_stop_then_resume_through_the_project_is_exact() -> None:
    reference = digits_project(epochs=2, max_batches_per_epoch=4, checkpoint="last")
    assert train_project(reference).status == "completed"

    project = digits_project(epochs=2, max_batches_per_epoch=4, checkpoint="last")
    stopped = train_project(project, callbacks=[Recorder(stop_at=(1, 2))])
    assert stopped.status == "stopped"
    assert project.runs[-1]["status"] == "stopped" and RESUME_MEMBER in project.attachments

    resumed = train_project(project)
    assert resumed.status == "completed", resumed.message
    assert [r["id"] for r in project.runs] == ["run-1"]  # the stopped record was continued
    assert project.runs[-1]["status"] == "completed" and len(project.runs[-1]["epochs"]) == 2
    assert RESUME_MEMBER not in project.attachments
    assert project.weights == reference.weights


def test_resume_false_starts_a_new_run() -> None:
    project = digits_project(epochs=2)
    train_project(project, callbacks=[Recorder(stop_at=(1, 1))])
    result = train_project(project, resume=False)
    assert result.status == "completed"
    assert [r["status"] for r in project.runs] == ["stopped", "completed"]


def test_class_count_mismatch_fails_without_touching_the_project() -> None:
    project = digits_project()
    project.graph.set_param("classifier", "out_features", 7)
    result = train_project(project)
    assert result.status == "failed"
    assert "7 outputs but the data has 10 classes" in result.message
    assert project.runs == [] and project.weights is None


def test_missing_data_folder_fails_with_one_line(tmp_path: Path) -> None:
    project = digits_project()
    project.data = {"source": {"kind": "folder", "path": str(tmp_path / "nowhere")}}
    result = train_project(project)
    assert result.status == "failed" and "\n" not in result.message and result.message
    assert project.runs == []


def test_predict_preprocesses_like_training(tmp_path: Path) -> None:
    project = digits_project(epochs=1, max_batches_per_epoch=5)
    train_project(project)
    dataset = load_dataset({"kind": "builtin", "name": "digits"}, input_shape=[1, 8, 8])
    paths = []
    for i in range(3):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(dataset.x[i, 0].numpy()).save(path)
        paths.append(path)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    out = predict(project, [*paths, tmp_path / "broken.png"], top=3)
    module = build_module(project.graph)
    load_weights(module, project.weights)
    module.eval()
    with torch.no_grad():
        probs = torch.softmax(module(dataset.batch_to_float(dataset.x[:3])), 1)
    for i in range(3):
        assert out[i]["image"] == str(paths[i]) and len(out[i]["top"]) == 3
        best = out[i]["top"][0]
        assert best["class"] == str(int(probs[i].argmax()))
        assert best["probability"] == pytest.approx(float(probs[i].max()), abs=1e-6)
    assert out[3]["top"] == [] and "not an image" in out[3]["error"]


def test_predict_needs_weights_and_classification() -> None:
    with pytest.raises(PredictError, match="no trained weights"):
        predict(digits_project(), [])
    seg = project_from_dict(get_template("unet").project_dict())
    with pytest.raises(PredictError, match="segmentation"):
        predict(seg, [])


@pytest.mark.parametrize("template,metric", [("cnn1d", "val_accuracy"), ("unet", "val_iou")])
def test_other_tasks_train_through_the_project(template: str, metric: str) -> None:
    doc = get_template(template).project_dict()
    doc["training"] = {"epochs": 1, "batch_size": 8, "max_batches_per_epoch": 2,
                       "device": "cpu"}
    doc["data"]["val_fraction"] = 0.05
    project = project_from_dict(doc)
    result = train_project(project)
    assert result.status == "completed", result.message
    assert project.runs[-1]["epochs"][0][metric] is not None


def test_a_bad_input_shape_fails_the_run_with_the_parameter_message() -> None:
    project = digits_project()
    project.graph.input_node().params["shape"] = [1, 0, 8]
    result = train_project(project)
    assert result.status == "failed"
    assert result.message.startswith("input.shape: must contain integers"), result.message
