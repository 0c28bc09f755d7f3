"""Warm start or fresh start: `train_project(fresh=...)` and the run records' `init`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save

from cnnstudio.core.templates import get_template
from cnnstudio.nn import weights_to_bytes
from cnnstudio.project import project_from_dict
from cnnstudio.project.origin import (
    describe_init,
    starting_point,
    stopped_run,
    weights_digest,
    weights_run,
)
from cnnstudio.train import Callback, train_project
from cnnstudio.train.api import RESUME_MEMBER


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


def digits_project(**training):
    doc = get_template("digits-lenet").project_dict()
    doc["training"] = {"epochs": 1, "batch_size": 32, "max_batches_per_epoch": 2,
                       "device": "cpu", **training}
    return project_from_dict(doc)


def tensors(weights: bytes) -> dict[str, torch.Tensor]:
    return load_tensors(weights)


def same(a: bytes, b: bytes) -> bool:
    x, y = tensors(a), tensors(b)
    return x.keys() == y.keys() and all(x[k].equal(y[k]) for k in x)


class StopAt(Callback):
    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_batch_end(self, trainer, info) -> None:
        if info.batch == self.batch:
            trainer.request_stop()


def test_a_warm_start_names_its_run_and_fresh_starts_from_the_seeded_init() -> None:
    project = digits_project()
    assert starting_point(project) == "fresh" and weights_run(project) is None
    assert train_project(project).status == "completed"
    first = project.runs[0]
    assert first["init"] == "fresh" and first["weights_sha256"] == weights_digest(project.weights)
    assert starting_point(project) == {"from_run": "run-1"}
    assert starting_point(project, fresh=True) == "fresh"
    after_one = project.weights

    assert train_project(project).status == "completed"  # continues from run-1's weights
    assert project.runs[1]["init"] == {"from_run": "run-1"}
    assert not same(project.weights, after_one)
    assert weights_run(project) == "run-2"

    assert train_project(project, fresh=True).status == "completed"
    assert project.runs[2]["init"] == "fresh"
    # New weights seeded by training.seed: the same run as run-1, bit for bit.
    assert same(project.weights, after_one)
    assert [r["id"] for r in project.runs] == ["run-1", "run-2", "run-3"]


def test_the_trainer_knows_its_init_before_the_first_batch() -> None:
    seen = []

    class Look(Callback):
        def on_fit_start(self, trainer):
            seen.append((trainer.init, trainer.resumed_at))

    project = digits_project()
    train_project(project, callbacks=[Look()])
    train_project(project, callbacks=[Look()])
    assert seen == [("fresh", None), ({"from_run": "run-1"}, None)]


def test_fresh_ignores_a_stopped_run_and_a_resume_keeps_its_init() -> None:
    project = digits_project(epochs=2)
    train_project(project)
    assert train_project(project, callbacks=[StopAt(1)]).status == "stopped"
    assert stopped_run(project) is project.runs[-1]
    assert project.runs[-1]["init"] == {"from_run": "run-1"}
    resumed = digits_project(epochs=2)
    resumed.runs, resumed.weights = list(project.runs), project.weights
    resumed.attachments = dict(project.attachments)
    where = []

    class Look(Callback):
        def on_fit_start(self, trainer):
            where.append(trainer.resumed_at)

    assert train_project(resumed, callbacks=[Look()]).status == "completed"
    assert where == [(0, 1)]  # it resumed: epoch 1, batch 2
    assert [r["id"] for r in resumed.runs] == ["run-1", "run-2"]
    assert resumed.runs[-1]["init"] == {"from_run": "run-1"}  # kept from the stopped record

    assert train_project(project, fresh=True, callbacks=[Look()]).status == "completed"
    assert where[-1] is None  # not resumed
    assert [r["status"] for r in project.runs] == ["completed", "stopped", "completed"]
    assert project.runs[-1]["init"] == "fresh" and RESUME_MEMBER not in project.attachments
    assert stopped_run(project) is None


def test_weights_from_no_run_and_weights_that_do_not_fit() -> None:
    project = digits_project()
    train_project(project)
    # Weights changed by hand (here: other values, same graph) match no run's digest.
    project.weights = save({k: v + 1 for k, v in tensors(project.weights).items()})
    assert weights_run(project) is None
    assert starting_point(project) == {"from_run": None}
    train_project(project)
    assert project.runs[-1]["init"] == {"from_run": None}
    assert describe_init(project.runs[-1]["init"]) == ("the project's weights (from no"
                                                       " recorded run)")
    # Weights of another network: training starts from new weights, and says so.
    project.weights = weights_to_bytes(torch.nn.Linear(2, 2))
    result = train_project(project)
    assert "do not fit the graph" in result.message
    assert project.runs[-1]["init"] == "fresh"


def test_older_records_without_init_still_load_and_count() -> None:
    project = digits_project()
    train_project(project)
    for record in project.runs:
        del record["init"], record["weights_sha256"]
    old = {"id": "run-2", "status": "failed", "best_epoch": None}  # left no weights
    project.runs.append(old)
    assert weights_run(project) == "run-1"  # taken at its word: it completed
    assert describe_init(project.runs[0].get("init")) == "unrecorded weights"
    train_project(project)
    assert project.runs[-1]["init"] == {"from_run": "run-1"}
    assert [r["id"] for r in project.runs] == ["run-1", "run-2", "run-3"]


def test_a_run_that_left_no_weights_is_not_where_weights_came_from() -> None:
    project = digits_project()
    train_project(project)
    project.runs.append({"id": "run-2", "status": "failed", "weights_sha256": None})
    assert weights_run(project) == "run-1"
    project.weights = None
    assert weights_run(project) is None and starting_point(project) == "fresh"
