"""The per-node `trainable` flag: file form, validation, one-event edits, copy/paste, and
the frozen parameter counts of the summary against torch's own count."""

from __future__ import annotations

import pytest

from cnnstudio.core.edits import copy_nodes, duplicate_nodes, paste_nodes
from cnnstudio.core.errors import FormatError, MissingNodeError
from cnnstudio.core.graph import Graph
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.core.summary import summary_rows, summary_text
from cnnstudio.core.templates import resnet_style
from cnnstudio.project import project_from_dict, project_to_dict

DOC = {"nodes": [
    {"id": "input", "type": "Input", "params": {"shape": [1, 8, 8]}, "inputs": []},
    {"id": "conv", "type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 3},
     "inputs": ["input"], "trainable": False, "note": "mine"},
    {"id": "bn", "type": "BatchNorm2d", "params": {}, "inputs": ["conv"], "trainable": False},
    {"id": "flat", "type": "Flatten", "params": {}, "inputs": ["bn"]},
    {"id": "fc", "type": "Linear", "params": {"out_features": 3}, "inputs": ["flat"]},
]}


def test_the_key_round_trips_and_is_written_only_when_false() -> None:
    graph = Graph.from_dict(DOC)
    assert [n.trainable for n in graph] == [True, False, False, True, True]
    assert graph.node("conv").extra == {"note": "mine"}  # not an unknown key any more
    assert graph.to_dict() == DOC
    graph.set_trainable(["conv", "bn"], True)
    assert all("trainable" not in n for n in graph.to_dict()["nodes"])


@pytest.mark.parametrize("value", [0, 1, "false", None, [], {"a": 1}])
def test_a_trainable_that_is_not_a_bool_names_its_json_path(value) -> None:
    doc = {"format": "cnnstudio.project", "version": 1,
           "graph": {"nodes": [dict(DOC["nodes"][0]), {**DOC["nodes"][1], "trainable": value}]}}
    with pytest.raises(FormatError) as info:
        project_from_dict(doc)
    assert info.value.path == "graph.nodes[1].trainable"
    assert "true or false" in str(info.value) and "\n" not in str(info.value)


def test_set_trainable_is_one_event_naming_only_the_nodes_that_changed() -> None:
    graph = Graph.from_dict(DOC)
    heard = []
    graph.subscribe(lambda event, **details: heard.append((event, details)))
    before = graph.revision
    assert graph.set_trainable(["input", "conv", "fc", "fc"], False) == ["input", "fc"]
    assert heard == [("trainable_changed", {"nodes": ["input", "fc"]})]
    assert graph.revision == before + 1
    assert graph.set_trainable(["conv"], False) == [] and len(heard) == 1  # nothing changed
    with pytest.raises(MissingNodeError):
        graph.set_trainable(["fc", "nope"], True)
    assert not graph.node("fc").trainable  # checked before anything changed


def test_copy_paste_duplicate_and_graph_copies_keep_the_flag() -> None:
    graph = Graph.from_dict(DOC)
    assert not graph.copy().node("conv").trainable
    new = duplicate_nodes(graph, ["conv", "bn", "fc"])
    assert [graph.node(nid).trainable for nid in new] == [False, False, True]
    other = Graph()
    pasted = paste_nodes(other, copy_nodes(graph, ["input", "conv"]))
    assert [other.node(nid).trainable for nid in pasted] == [True, False]
    removed = graph.node("bn")
    index = graph.index_of("bn")
    graph.remove_node("bn")
    graph.insert_node(removed, index)  # what undo of a delete does
    assert not graph.node("bn").trainable


def test_a_project_file_keeps_frozen_nodes() -> None:
    doc = {"format": "cnnstudio.project", "version": 1, "name": "t", "task": "classification",
           "graph": DOC, "data": {}, "training": {}, "runs": []}
    assert project_to_dict(project_from_dict(doc)) == doc


def test_frozen_totals_and_rows_match_torch_counts() -> None:
    pytest.importorskip("torch")
    from cnnstudio.nn import build_module

    graph = resnet_style(10)
    ids = graph.ids
    frozen = set(ids[: len(ids) * 2 // 3])  # the backbone's first two thirds
    graph.set_trainable(frozen, False)
    inference = infer_shapes(graph)
    assert inference.ok
    module = build_module(graph)
    for nid in frozen:
        module.module_for(nid).requires_grad_(False)
    params = list(module.parameters())
    assert inference.total_params == sum(p.numel() for p in params)
    assert inference.frozen_params == sum(p.numel() for p in params if not p.requires_grad)
    assert inference.trainable_params == sum(p.numel() for p in params if p.requires_grad)
    assert 0 < inference.frozen_params < inference.total_params
    rows = {r.id: r for r in summary_rows(graph, inference)}
    assert {nid for nid, r in rows.items() if not r.trainable} == frozen
    for nid in ids:
        own = sum(p.numel() for p in module.module_for(nid).parameters())
        assert rows[nid].params == own


def test_the_text_summary_says_what_is_frozen() -> None:
    graph = Graph.from_dict(DOC)
    inference = infer_shapes(graph)
    text = summary_text("t", graph, inference)
    conv, bn, fc = 4 * 9 + 4, 2 * 4, 3 * 4 * 6 * 6 + 3
    assert inference.frozen_params == conv + bn
    assert f"Total params: {conv + bn + fc:,}" in text
    assert f"Trainable params: {fc:,}" in text
    assert f"Frozen params: {conv + bn:,} (2 frozen layer(s))" in text
    conv_line = next(line for line in text.splitlines() if line.startswith("conv "))
    assert conv_line.endswith("no (frozen)")
    graph.set_trainable(["conv", "bn"], True)
    plain = summary_text("t", graph, infer_shapes(graph))
    assert "Frozen" not in plain and "Trainable" not in plain


def test_a_copied_graph_shares_nothing_mutable_and_keeps_every_field():
    from cnnstudio.core.graph import Graph

    graph = Graph()
    graph.add_node("Input", {"shape": [1, 8, 8]}, id="input")
    conv = graph.add_node("Conv2d", {"out_channels": 4, "kernel_size": [3, 3]}, id="conv",
                          inputs=["input"])
    conv.extra["note"] = {"by": ["hand"]}
    graph.set_trainable(["conv"], False)
    clone = graph.copy()
    assert [n.to_dict() for n in clone] == [n.to_dict() for n in graph]
    copied = clone.node("conv")
    copied.params["kernel_size"][0] = 5
    copied.inputs.append("x")
    copied.extra["note"]["by"].append("machine")
    assert conv.params["kernel_size"] == [3, 3] and conv.inputs == ["input"]
    assert conv.extra["note"] == {"by": ["hand"]}
    assert copied.trainable is False and copied.group == conv.group
