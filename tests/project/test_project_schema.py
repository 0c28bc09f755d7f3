"""project.json ⇄ Project: validation with JSON paths, unknown keys, versions, migrations."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnstudio.core.errors import FormatError
from cnnstudio.project import CURRENT_VERSION, Project, project_from_dict, project_to_dict, schema

from .helpers import dag_graph, full_project, minimal_doc
from .strategies import datas, trainings


def test_spec_example_round_trips_exactly_and_in_order():
    doc = minimal_doc()
    out = project_to_dict(project_from_dict(doc))
    assert out == {**doc, "runs": []}
    assert list(out) == list(schema.TOP_KEYS)


def test_missing_optional_sections_take_defaults_without_writing_them():
    project = project_from_dict(minimal_doc(name=..., task=..., data=..., training=...))
    assert (project.name, project.task, project.data, project.training) == (
        "Untitled", "classification", {}, {})
    assert project.training_settings()["epochs"] == 10
    out = project_to_dict(project)
    assert out["data"] == {} and out["training"] == {}


def test_data_and_training_are_stored_as_given_not_filled_names_canonical():
    """Not filled with defaults; names in any case are read, and kept in their canonical
    spelling (the one rule: any case in, canonical spelling stored)."""
    doc = minimal_doc(training={"optimizer": {"name": "sgd"}, "schedule": {"name": "COSINE"},
                                "loss": {"name": "Cross_Entropy"}, "checkpoint": "Last",
                                "device": "CPU", "lr_note": "Adam"},
                      data={"source": {"kind": "BuiltIn", "name": "XO"}})
    project = project_from_dict(doc)
    assert project.training == {"optimizer": {"name": "SGD"}, "schedule": {"name": "cosine"},
                                "loss": {"name": "cross_entropy"}, "checkpoint": "last",
                                "device": "cpu", "lr_note": "Adam"}
    assert project.data == {"source": {"kind": "builtin", "name": "xo"}}
    assert project.training_settings()["optimizer"]["name"] == "SGD"
    assert project_to_dict(project)["training"]["optimizer"] == {"name": "SGD"}


def test_unknown_keys_survive_at_every_level_we_own():
    doc = minimal_doc(app_state={"zoom": 1.5}, zzz=1)
    doc["graph"]["layout"] = "auto"
    doc["graph"]["nodes"][1]["color"] = "#ff0000"
    doc["data"]["cache"] = {"keep": True}
    doc["data"]["source"]["encoding"] = "latin-1"
    doc["training"]["gradient_clip"] = 1.0
    doc["training"]["optimizer"]["foreach"] = False
    out = project_to_dict(project_from_dict(copy.deepcopy(doc)))
    assert out == {**doc, "runs": []}
    assert list(out)[-2:] == ["app_state", "zzz"]  # extras after the known keys


def test_to_dict_returns_copies():
    project = full_project(dag_graph())
    out = project_to_dict(project)
    out["data"]["source"]["path"] = "elsewhere"
    out["runs"].append({})
    out["graph"]["nodes"][3]["comment"] = "changed"
    assert project.data["source"]["path"] == "images"
    assert len(project.runs) == 1
    assert project.graph.node("conv_b").extra["comment"] == "shortcut"


def test_from_dict_does_not_keep_references_to_the_document():
    doc = minimal_doc(runs=[{"id": "r"}], extra_key={"a": [1]})
    project = project_from_dict(doc)
    doc["training"]["epochs"] = 99
    doc["runs"][0]["id"] = "changed"
    doc["extra_key"]["a"].append(2)
    assert project.training["epochs"] == 10
    assert project.runs == [{"id": "r"}]
    assert project.extra == {"extra_key": {"a": [1]}}


def test_an_extra_named_like_a_known_key_never_overrides_it():
    project = Project(extra={"format": "evil", "version": 99, "kept": 1})
    out = project_to_dict(project)
    assert out["format"] == "cnnstudio.project" and out["version"] == CURRENT_VERSION
    assert out["kept"] == 1


def _fault(doc: Any) -> FormatError:
    with pytest.raises(FormatError) as info:
        project_from_dict(doc)
    return info.value


def _nodes(*changes: tuple[int, str, Any]) -> dict[str, Any]:
    doc = minimal_doc()
    for index, key, value in changes:
        if value is ...:
            del doc["graph"]["nodes"][index][key]
        else:
            doc["graph"]["nodes"][index][key] = value
    return doc


@pytest.mark.parametrize(("doc", "path", "words"), [
    ([1, 2], "", "JSON object"),
    (minimal_doc(format=...), "format", "not a CNN Studio project"),
    (minimal_doc(format="keras.model"), "format", 'got "keras.model"'),
    (minimal_doc(version=...), "version", "missing"),
    (minimal_doc(version="1"), "version", 'must be an integer, got "1"'),
    (minimal_doc(version=True), "version", "must be an integer, got true"),
    (minimal_doc(version=1.0), "version", "must be an integer"),
    (minimal_doc(version=0), "version", "format version 0 is unknown"),
    (minimal_doc(name=7), "name", "must be a string"),
    (minimal_doc(task="detection"), "task", "classification, segmentation"),
    (minimal_doc(graph=...), "graph", "missing"),
    (minimal_doc(graph=[]), "graph", "'nodes'"),
    (minimal_doc(graph={"nodes": {}}), "graph.nodes", "must be a list"),
    (_nodes((1, "id", ...)), "graph.nodes[1].id", "non-empty string"),
    (_nodes((1, "id", "input")), "graph.nodes[1].id", "duplicate id 'input'"),
    (_nodes((1, "inputs", ["nowhere"])), "graph.nodes[1].inputs[0]", "no node with id 'nowhere'"),
    (_nodes((2, "inputs", ["fc"])), "graph.nodes", "cycle: "),
    (_nodes((1, "type", "Conv9d")), "graph.nodes[1].type", "unknown layer type 'Conv9d'"),
    (_nodes((1, "type", [10**300] * 4)), "graph.nodes[1].type", "unknown layer type [1000"),
    (_nodes((1, "id", [10**300] * 4)), "graph.nodes[1].id", "non-empty string, got [1000"),
    (_nodes((1, "params", {"out_channels": 4, "kernel_size": 0})),
     "graph.nodes[1].params.kernel_size", "got 0"),
    (minimal_doc(data=[]), "data", "must be an object"),
    (minimal_doc(data={"val_fraction": 1}), "data.val_fraction", "< 1"),
    (minimal_doc(training={"optimizer": {"lr": -1}}), "training.optimizer.lr",
     "must be > 0, got -1"),
    (minimal_doc(training={"epochs": "ten"}), "training.epochs", 'integer, got "ten"'),
    (minimal_doc(training={"batch_size": True}), "training.batch_size", "integer, got true"),
    (minimal_doc(runs={}), "runs", "must be a list"),
    (minimal_doc(runs=[{}, 3]), "runs[1]", "must be an object"),
])
def test_malformed_documents_name_the_json_path(doc: Any, path: str, words: str):
    err = _fault(doc)
    assert err.path == path
    assert words in err.message
    assert "\n" not in str(err) and len(str(err)) < 200


def test_newer_version_is_refused_with_the_whole_sentence():
    err = _fault(minimal_doc(version=2))
    assert isinstance(err, schema.NewerVersionError)
    assert str(err) == ("this project was saved by a newer CNN Studio (format version 2);"
                        " this version reads up to 1")


def test_older_versions_are_migrated_in_order(monkeypatch: pytest.MonkeyPatch):
    calls: list[int] = []

    def v_minus_1_to_0(doc: dict[str, Any]) -> dict[str, Any]:
        calls.append(doc["version"])
        doc["title"] = doc.pop("label")
        return doc

    def v0_to_v1(doc: dict[str, Any]) -> dict[str, Any]:
        calls.append(doc["version"])
        assert doc["version"] == 0  # the caller stamps each step's result
        doc["name"] = doc.pop("title")
        doc["graph"] = {"nodes": doc.pop("layers")}
        return doc

    monkeypatch.setattr(schema, "MIGRATIONS", {-1: v_minus_1_to_0, 0: v0_to_v1})
    old = minimal_doc(version=-1, name=..., label="Old net")
    old["layers"] = old.pop("graph")["nodes"]
    original = copy.deepcopy(old)
    project = project_from_dict(old)
    assert calls == [-1, 0]
    assert project.name == "Old net"
    assert project.graph.ids == ["input", "conv1", "relu1", "flat", "fc"]
    assert project_to_dict(project)["version"] == CURRENT_VERSION
    assert old == original  # the caller's document is not changed


def test_a_failing_migration_is_a_format_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(schema, "MIGRATIONS", {0: lambda doc: doc["missing"]})
    err = _fault(minimal_doc(version=0))
    assert "cannot update this project from format version 0" in str(err)
    assert "KeyError" in str(err)


@settings(max_examples=40, deadline=None)
@given(training=trainings, data=datas, extra=st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k not in schema.TOP_KEYS),
    st.integers() | st.text(max_size=5) | st.lists(st.booleans(), max_size=3), max_size=3))
def test_valid_documents_round_trip_through_json(training, data, extra):
    doc = {**minimal_doc(training=training, data=data), "runs": [{"n": 1}], **extra}
    text = json.dumps(project_to_dict(project_from_dict(doc)), allow_nan=False)
    assert json.loads(text) == doc
