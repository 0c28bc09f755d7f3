"""The shipped sample projects open, infer cleanly and train out of the box."""

from pathlib import Path

import pytest

from cnnstudio.core.data_sources import builtin_classes
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.project import read_project
from cnnstudio.train import COMPLETED, train_project

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "sample_projects").glob("*.cnnproj"))


def test_the_expected_samples_are_shipped():
    assert {p.stem for p in SAMPLES} == {"digits", "xo", "shapes", "shapes-seg", "signals"}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_trains_a_few_batches(path, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    project = read_project(path)
    source = project.data["source"]
    assert source["kind"] == "builtin"
    inference = infer_shapes(project.graph, task=project.task,
                             num_classes=builtin_classes(project.data))
    assert inference.problems == []
    project.training.update({"epochs": 1, "max_batches_per_epoch": 2, "device": "cpu"})
    result = train_project(project)
    assert result.status == COMPLETED, result.message
    metric = "val_iou" if project.task == "segmentation" else "val_accuracy"
    assert result.epochs[0][metric] is not None
