"""Compound edits: copy/paste/duplicate of node groups and block insertion."""

import json

import pytest

from cnnstudio.core.blocks import BLOCKS
from cnnstudio.core.edits import (
    copy_nodes,
    duplicate_nodes,
    fresh_id,
    insert_block,
    paste_nodes,
)
from cnnstudio.core.errors import FormatError
from cnnstudio.core.graph import Graph
from cnnstudio.core.shapes import infer_shapes


def chain() -> Graph:
    g = Graph()
    g.add_node("Input", {"shape": [1, 8, 8]}, id="input", pos=(0, 0))
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3}, id="conv1", inputs=["input"],
               pos=(0, 90))
    g.add_node("ReLU", {}, id="relu1", inputs=["conv1"], pos=(0, 180))
    g.add_node("Flatten", {}, id="flat", inputs=["relu1"])
    return g


def test_copy_keeps_internal_connections_and_drops_outside_ones():
    g = chain()
    data = copy_nodes(g, ["relu1", "conv1"])
    assert [n["id"] for n in data["nodes"]] == ["conv1", "relu1"]  # graph order
    assert data["nodes"][0]["inputs"] == []  # input is outside the copied set
    assert data["nodes"][1]["inputs"] == ["conv1"]
    assert json.loads(json.dumps(data)) == data  # clipboard-safe


def test_paste_gives_fresh_ids_keeps_edges_and_offsets_positions():
    g = chain()
    before = set(g.ids)
    new = paste_nodes(g, copy_nodes(g, ["conv1", "relu1"]), (40, 40))
    assert len(new) == 2 and not set(new) & before
    conv, relu = (g.node(nid) for nid in new)
    assert conv.type == "Conv2d" and conv.params == {"out_channels": 4, "kernel_size": 3}
    assert conv.inputs == [] and relu.inputs == [conv.id]
    assert conv.pos == (40, 130) and relu.pos == (40, 220)
    assert new == ["conv2", "relu2"]


def test_paste_into_an_empty_graph_keeps_the_ids():
    data = copy_nodes(chain(), ["input", "conv1"])
    g = Graph()
    assert paste_nodes(g, data) == ["input", "conv1"]
    assert g.node("conv1").inputs == ["input"]


def test_paste_of_nodes_without_position_keeps_none():
    g = chain()
    (new,) = paste_nodes(g, copy_nodes(g, ["flat"]))
    assert g.node(new).pos is None


@pytest.mark.parametrize("data", [
    None, [], {"nodes": 3}, {"nodes": [{"id": "a", "type": "Nope"}]},
    {"nodes": [{"id": "a", "type": "Conv2d", "params": {"kernel_size": 0}}]},
    {"nodes": [{"id": "a", "type": "ReLU", "inputs": ["b"]},
               {"id": "b", "type": "ReLU", "inputs": ["a"]}]},
])
def test_bad_paste_data_raises_and_changes_nothing(data):
    g = chain()
    before = g.to_dict()
    with pytest.raises(FormatError):
        paste_nodes(g, data)
    assert g.to_dict() == before


def test_paste_drops_references_to_nodes_that_were_not_copied():
    g = chain()
    data = {"nodes": [{"id": "r", "type": "ReLU", "params": {}, "inputs": ["elsewhere"]}]}
    (new,) = paste_nodes(g, data)
    assert g.node(new).inputs == []


def test_duplicate_twice_gives_distinct_ids():
    g = chain()
    first = duplicate_nodes(g, ["conv1", "relu1"])
    second = duplicate_nodes(g, ["conv1", "relu1"])
    assert len(set(first + second)) == 4
    assert g.node(second[1]).inputs == [second[0]]


@pytest.mark.parametrize("wanted, taken, expected", [
    ("conv1", set(), "conv1"),
    ("conv1", {"conv1"}, "conv2"),
    ("conv1", {"conv1", "conv2"}, "conv3"),
    ("classifier", {"classifier"}, "classifier2"),
    ("relu_1", {"relu_1"}, "relu1"),
    ("forward", set(), "node1"),
    ("9lives", set(), "node1"),
])
def test_fresh_id(wanted, taken, expected):
    assert fresh_id(wanted, taken) == expected


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_insert_block_places_new_nodes_below_the_source(name):
    g = Graph()
    g.add_node("Input", {"shape": [3, 16, 16]}, id="input", pos=(100, 50))
    g.add_node("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}, id="conv1",
               inputs=["input"], pos=(100, 140))
    new = insert_block(g, BLOCKS[name][1], "conv1", 8)
    assert new and all(g.node(nid).pos is not None for nid in new)
    assert all(g.node(nid).pos[1] > 140 for nid in new)
    assert g.node("conv1").pos == (100, 140)
    assert infer_shapes(g).ok


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_an_inserted_block_is_one_group_named_after_the_palette_entry(name):
    g = chain()
    new = insert_block(g, BLOCKS[name][1], "relu1", 4, name)
    (group,) = list(g.groups)
    assert group.name == name and group.parent is None and not group.collapsed
    assert g.groups.nodes(group.id) == new
    assert all(g.node(n).group is None for n in g.ids if n not in new)
    again = Graph.from_dict(g.to_dict())  # the group is saved with the project
    assert [(x.name, again.groups.nodes(x.id)) for x in again.groups] == [(name, new)]


def test_a_block_without_a_name_is_not_grouped_and_a_snapshot_undoes_the_group():
    g = chain()
    insert_block(g, BLOCKS["VGG block"][1], "relu1", 4)
    assert len(g.groups) == 0
    g = chain()
    before = g.copy()
    insert_block(g, BLOCKS["Residual block"][1], "relu1", 4, "Residual block")
    after = g.copy()
    g.replace_with(before)  # undo, as the editor's snapshot commands do
    assert len(g.groups) == 0 and g.to_dict() == chain().to_dict()
    g.replace_with(after)  # redo
    assert [x.name for x in g.groups] == ["Residual block"]
    assert g.to_dict() == after.to_dict()


def test_blocks_inserted_twice_make_two_groups():
    g = chain()
    first = insert_block(g, BLOCKS["Residual block"][1], "relu1", 4, "Residual block")
    second = insert_block(g, BLOCKS["Residual block"][1], first[-1], 4, "Residual block")
    groups = list(g.groups)
    assert [g.groups.nodes(x.id) for x in groups] == [first, second]
    assert len({x.id for x in groups}) == 2


def test_copied_blocks_come_along_nested_with_fresh_ids():
    from cnnstudio.core.architectures import resnet50

    g = resnet50()
    stage = next(group for group in g.groups if group.name.startswith("Stage 1"))
    blocks = g.groups.children(stage.id)
    before = set(g.groups.ids)
    new = duplicate_nodes(g, g.groups.nodes(stage.id))
    made = [group for group in g.groups if group.id not in before]
    assert [group.name for group in made] == [g.groups.get(b).name for b in blocks] + [
        stage.name]
    outer = made[-1]
    assert outer.parent is None and set(g.groups.nodes(outer.id)) == set(new)
    assert all(group.parent == outer.id for group in made[:-1])


def test_a_partly_copied_block_is_left_behind_and_bad_blocks_are_dropped():
    from cnnstudio.core.architectures import resnet50

    g = resnet50()
    block = next(group for group in g.groups if group.name == "Bottleneck 1")
    some = g.groups.nodes(block.id)[:3]
    assert "groups" not in copy_nodes(g, some)
    data = copy_nodes(g, g.groups.nodes(block.id))
    data["groups"][0]["nodes"].append("nowhere")
    before = len(g.groups)
    new = paste_nodes(g, data)
    assert len(new) == len(g.groups.nodes(block.id)) and len(g.groups) == before
