"""Runs side by side: the listing and the diff of two run records (settings, graph, metrics)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cnnstudio.project.run_compare import (
    UnknownRun,
    changed_nodes,
    compare_runs,
    find_run,
    list_runs,
    metrics_table,
    settings_table,
)
from cnnstudio.project.settings import fill_training
from tests.project.helpers import chain_graph


def record(run_id: str, **changes: Any) -> dict[str, Any]:
    """A run record as training writes it: filled settings, the data section, the graph."""
    run = {"id": run_id, "status": "completed", "init": "fresh", "best_epoch": 2,
           "settings": fill_training({}), "data": {"source": {"kind": "builtin",
                                                               "name": "digits"}},
           "graph": chain_graph().to_dict(),
           "epochs": [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.5},
                      {"epoch": 2, "train_loss": 0.5, "val_loss": 0.4, "val_accuracy": 0.8}],
           "best": {"epoch": 2, "train_loss": 0.5, "val_loss": 0.4, "val_accuracy": 0.8,
                    "val_precision": [0.1, 0.2]}}
    run.update(changes)
    return run


def test_identical_runs_differ_in_nothing():
    a, b = record("run-1"), record("run-2")
    assert compare_runs(a, b) == {"settings": [], "graph": {"added": [], "removed": [],
                                                            "changed": []},
                                  "metrics": {"a": {}, "b": {}}}


def test_two_runs_with_different_settings_and_graphs():
    a = record("run-1")
    b = copy.deepcopy(a)
    b["id"] = "run-2"
    b["settings"]["optimizer"]["lr"] = a["settings"]["optimizer"]["lr"] * 3
    b["settings"]["batch_size"] = a["settings"]["batch_size"] * 2
    b["data"]["source"]["name"] = "xo"
    nodes = {n["id"]: n for n in b["graph"]["nodes"]}
    nodes["conv1"]["params"]["out_channels"] = 8
    nodes["relu1"]["type"] = "GELU"
    b["graph"]["nodes"] = [n for n in b["graph"]["nodes"] if n["id"] != "flat"]
    nodes["fc"]["inputs"] = ["pool"]
    b["graph"]["nodes"].insert(3, {"id": "pool", "type": "AdaptiveAvgPool2d",
                                   "params": {"output_size": 1}, "inputs": ["relu1"]})
    b["best"] = {**a["best"], "val_accuracy": 0.9}

    diff = compare_runs(a, b)

    assert diff["settings"] == [
        {"key": "data.source.name", "a": "digits", "b": "xo"},
        {"key": "training.batch_size", "a": a["settings"]["batch_size"],
         "b": 2 * a["settings"]["batch_size"]},
        {"key": "training.optimizer.lr", "a": a["settings"]["optimizer"]["lr"],
         "b": 3 * a["settings"]["optimizer"]["lr"]}]
    conv_a = {n["id"]: n for n in a["graph"]["nodes"]}["conv1"]["params"]
    assert diff["graph"] == {
        "added": ["pool"], "removed": ["flat"],
        "changed": [{"id": "conv1", "a": {"params": conv_a},
                     "b": {"params": {**conv_a, "out_channels": 8}}},
                    {"id": "relu1", "a": {"type": "ReLU"}, "b": {"type": "GELU"}},
                    {"id": "fc", "a": {"inputs": ["flat"]}, "b": {"inputs": ["pool"]}}]}
    assert diff["metrics"] == {"a": {"val_accuracy": 0.8}, "b": {"val_accuracy": 0.9}}
    assert changed_nodes(diff["graph"]) == ["pool", "conv1", "relu1", "fc"]


def test_a_key_only_one_run_has_is_none_for_the_other():
    a, b = record("run-1"), record("run-2")
    del a["data"]  # a record from before the data section was kept
    assert compare_runs(a, b)["settings"] == [
        {"key": "data.source.kind", "a": None, "b": "builtin"},
        {"key": "data.source.name", "a": None, "b": "digits"}]


def test_records_without_a_graph_give_an_empty_graph_diff():
    a, b = record("run-1"), record("run-2")
    del a["graph"]
    b["graph"]["nodes"].pop()
    assert compare_runs(a, b)["graph"] == {"added": [], "removed": [], "changed": []}


def test_list_runs_keeps_the_scalar_best_metrics():
    runs = [record("run-1"), record("run-2", init={"from_run": "run-1"}, status="stopped")]
    assert list_runs(runs) == [
        {"id": "run-1", "status": "completed", "init": "fresh", "best_epoch": 2,
         "best": {"train_loss": 0.5, "val_loss": 0.4, "val_accuracy": 0.8}},
        {"id": "run-2", "status": "stopped", "init": {"from_run": "run-1"}, "best_epoch": 2,
         "best": {"train_loss": 0.5, "val_loss": 0.4, "val_accuracy": 0.8}}]


def test_an_unknown_run_names_the_known_ones():
    with pytest.raises(UnknownRun, match="no run 'run-9' in this project \\(runs: run-1\\)"):
        find_run([record("run-1")], "run-9")


def test_tables_for_three_runs_keep_keys_where_any_run_differs():
    a, b, c = record("run-1"), record("run-2"), record("run-3")
    c["settings"]["seed"] = a["settings"]["seed"] + 1
    b["best"] = {"val_loss": 0.3}
    seed = a["settings"]["seed"]
    assert settings_table([a, b, c]) == [("training.seed", [seed, seed, seed + 1])]
    assert settings_table([a, b]) == []
    assert metrics_table([a, b]) == [("train_loss", [0.5, None]), ("val_accuracy", [0.8, None]),
                                     ("val_loss", [0.4, 0.3])]
