"""Frozen layers on the command line: `summary` (text and --json) against torch's own
counts, a bad `trainable` value as one line, and `train --fresh` that still freezes."""

import json

import pytest
import torch
from safetensors.torch import load as load_tensors

from cnnstudio.cli import main
from cnnstudio.nn import build_module
from cnnstudio.project import read_project, write_project

FROZEN = ("conv1", "conv2")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def project_path(tmp_path, capsys):
    path = tmp_path / "digits.cnnproj"
    assert main(["new", "--template", "digits-lenet", str(path)]) == 0
    project = read_project(path)
    project.graph.set_trainable(FROZEN, False)
    project.training.update({"epochs": 1, "max_batches_per_epoch": 3, "device": "cpu"})
    write_project(project, path)
    capsys.readouterr()
    return path


def test_summary_json_gives_each_layer_trainable_and_the_frozen_total(project_path, capsys):
    assert main(["summary", str(project_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    module = build_module(read_project(project_path).graph)
    for node_id in FROZEN:
        module.module_for(node_id).requires_grad_(False)
    params = list(module.parameters())
    assert doc["total_params"] == sum(p.numel() for p in params)
    assert doc["frozen_params"] == sum(p.numel() for p in params if not p.requires_grad) > 0
    assert {layer["id"] for layer in doc["layers"] if not layer["trainable"]} == set(FROZEN)
    assert all(isinstance(layer["trainable"], bool) for layer in doc["layers"])

    assert main(["summary", str(project_path)]) == 0
    text = capsys.readouterr().out
    trainable = doc["total_params"] - doc["frozen_params"]
    assert f"Trainable params: {trainable:,}" in text
    assert f"Frozen params: {doc['frozen_params']:,} (2 frozen layer(s))" in text


def test_a_trainable_that_is_not_a_bool_is_one_line_exit_2(tmp_path, capsys):
    doc = {"format": "cnnstudio.project", "version": 1, "graph": {"nodes": [
        {"id": "input", "type": "Input", "params": {"shape": [1, 8, 8]}, "inputs": []},
        {"id": "fc", "type": "Linear", "params": {"out_features": 2}, "inputs": ["input"],
         "trainable": "no"}]}}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "graph.nodes[1].trainable: must be true or false" in err and "\n" not in err


def test_train_fresh_still_freezes(project_path, capsys):
    assert main(["train", str(project_path), "--json"]) == 0
    assert main(["train", str(project_path), "--fresh", "--json"]) == 0
    capsys.readouterr()
    project = read_project(project_path)
    assert project.runs[-1]["init"] == "fresh"
    assert all(not n.trainable for n in project.graph if n.id in FROZEN)  # kept in the file
    torch.manual_seed(project.training_settings()["seed"])
    initial = build_module(project.graph).state_dict()
    weights = load_tensors(project.weights)
    for key, value in weights.items():  # frozen: the seeded init; the rest trained
        assert torch.equal(value, initial[key]) == key.startswith(FROZEN), key
