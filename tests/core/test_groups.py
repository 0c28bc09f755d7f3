"""Groups in the graph model: nesting, membership through edits, the file form, folding."""

from __future__ import annotations

import pytest

from cnnstudio.core.errors import DuplicateIdError, FormatError, GraphError
from cnnstudio.core.folding import card_position, fold_moves, unfold_moves
from cnnstudio.core.graph import Graph


def _chain(length: int = 6) -> Graph:
    """input → n1 → … → n{length}, one row apart (ROW 90), one column."""
    g = Graph()
    g.add_node("Input", {"shape": [1, 8, 8]}, id="input", pos=(0.0, 0.0))
    previous = "input"
    for i in range(1, length + 1):
        previous = g.add_node("ReLU", {}, id=f"n{i}", inputs=[previous], pos=(0.0, 90.0 * i)).id
    return g


def test_nested_groups_know_their_members_and_what_shows_them():
    g = _chain()
    inner = g.groups.add(["n2", "n3"], "Inner")
    outer = g.groups.add([inner.id, "n4"], "Outer")
    assert g.groups.children(outer.id) == ["n4", inner.id]
    assert g.groups.nodes(outer.id) == ["n2", "n3", "n4"]
    assert g.groups.ancestors("n2") == [outer.id, inner.id]
    assert g.groups.shown_as("n2") == "n2"
    g.groups.set_collapsed(inner.id, True)
    assert g.groups.shown_as("n2") == inner.id
    g.groups.set_collapsed(outer.id, True)
    assert g.groups.shown_as("n2") == outer.id and g.groups.shown_as("n5") == "n5"


def test_grouping_nodes_of_different_groups_or_unknown_ids_is_refused():
    g = _chain()
    g.groups.add(["n1", "n2"], "A")
    with pytest.raises(GraphError, match="different groups"):
        g.groups.add(["n2", "n3"], "B")
    with pytest.raises(GraphError, match="no node or group"):
        g.groups.add(["nope"], "B")
    with pytest.raises(GraphError, match="at least one"):
        g.groups.add([], "B")
    with pytest.raises(GraphError, match="name"):
        g.groups.add(["n3"], "  ")


def test_a_group_inside_a_group_takes_its_members_place():
    g = _chain()
    outer = g.groups.add(["n1", "n2", "n3"], "Outer")
    inner = g.groups.add(["n2", "n3"], "Inner")
    assert inner.parent == outer.id
    assert g.groups.children(outer.id) == ["n1", inner.id]


def test_group_ids_and_node_ids_share_one_namespace():
    g = _chain()
    group = g.groups.add(["n1"], "A", id="blockA")
    with pytest.raises(DuplicateIdError):
        g.add_node("ReLU", {}, id="blockA")
    with pytest.raises(DuplicateIdError):
        g.rename_node("n2", "blockA")
    with pytest.raises(DuplicateIdError):
        g.groups.add(["n2"], "B", id="n3")
    assert group.id in g.taken_ids() and "n3" in g.taken_ids()
    g.groups.add(["n2"], "B", id="relu1")
    assert g.new_id("ReLU") == "relu2"


def test_removing_a_node_and_putting_it_back_keeps_its_group():
    g = _chain()
    group = g.groups.add(["n2", "n3"], "A")
    index = g.index_of("n2")
    node = g.node("n2")
    g.remove_node("n2")
    assert g.groups.nodes(group.id) == ["n3"]
    g.insert_node(node, index)
    assert g.groups.nodes(group.id) == ["n2", "n3"]
    g.rename_node("n3", "renamed")
    assert g.groups.nodes(group.id) == ["n2", "renamed"]


def test_a_group_whose_nodes_are_all_deleted_is_empty_and_not_saved():
    g = _chain()
    group = g.groups.add(["n2"], "A")
    g.remove_node("n2")
    assert g.groups.is_empty(group.id)
    assert "groups" not in g.to_dict()


def test_ungroup_moves_members_to_the_parent_and_can_be_undone():
    g = _chain()
    outer = g.groups.add(["n1", "n2", "n3"], "Outer")
    inner = g.groups.add(["n2", "n3"], "Inner")
    removed, members = g.groups.remove(inner.id)
    assert g.groups.children(outer.id) == ["n1", "n2", "n3"]
    again = g.groups.add(members, removed.name, id=removed.id)
    assert again.parent == outer.id and g.groups.nodes(inner.id) == ["n2", "n3"]


def test_group_events_reach_listeners():
    g = _chain()
    events = []
    g.subscribe(lambda event, **details: events.append((event, details)))
    group = g.groups.add(["n1"], "A")
    g.groups.set_collapsed(group.id, True)
    g.groups.rename(group.id, "B")
    g.groups.remove(group.id)
    g.move_nodes({"n1": (5.0, 5.0), "n2": (6.0, 6.0)})
    assert [e for e, _ in events] == ["group_added", "group_changed", "group_changed",
                                      "group_removed", "nodes_moved"]
    assert events[-1][1] == {"nodes": ["n1", "n2"]}


def test_groups_round_trip_through_the_file_form_and_copies():
    g = _chain()
    inner = g.groups.add(["n2", "n3"], "Inner", collapsed=True)
    g.groups.add([inner.id, "n4"], "Outer")
    g.direction = "right"
    data = g.to_dict()
    assert data["groups"] == [
        {"id": inner.id, "name": "Inner", "nodes": ["n2", "n3"], "collapsed": True},
        {"id": "block2", "name": "Outer", "nodes": ["n4", inner.id], "collapsed": False}]
    assert data["direction"] == "right"
    assert Graph.from_dict(data).to_dict() == data
    assert g.copy().to_dict() == data
    other = Graph()
    other.replace_with(g)
    assert other.to_dict() == data


def test_unknown_keys_of_a_group_are_kept():
    data = _chain().to_dict()
    data["groups"] = [{"id": "g", "name": "G", "nodes": ["n1"], "colour": "teal"}]
    assert Graph.from_dict(data).to_dict()["groups"][0]["colour"] == "teal"


@pytest.mark.parametrize("groups, path", [
    ("x", "groups"),
    ([1], "groups[0]"),
    ([{"id": "1x", "nodes": ["n1"]}], "groups[0].id"),
    ([{"id": "n1", "nodes": ["n2"]}], "groups[0].id"),
    ([{"id": "g", "nodes": ["n1"]}, {"id": "g", "nodes": ["n2"]}], "groups[1].id"),
    ([{"id": "g", "nodes": []}], "groups[0].nodes"),
    ([{"id": "g", "nodes": [3]}], "groups[0].nodes"),
    ([{"id": "g", "nodes": ["ghost"]}], "groups[0].nodes[0]"),
    ([{"id": "g", "nodes": ["g"]}], "groups[0].nodes[0]"),
    ([{"id": "g", "nodes": ["n1"]}, {"id": "h", "nodes": ["n1"]}], "groups[1].nodes[0]"),
    ([{"id": "g", "nodes": ["h"]}, {"id": "h", "nodes": ["g"]}], "groups[0]"),
    ([{"id": "g", "name": 5, "nodes": ["n1"]}], "groups[0].name"),
    ([{"id": "g", "nodes": ["n1"], "collapsed": "yes"}], "groups[0].collapsed"),
    ([{"id": "g", "nodes": ["n1"], "collapsed": True, "fold_shift": -1}],
     "groups[0].fold_shift"),
])
def test_malformed_groups_are_refused_with_the_path_at_fault(groups, path):
    data = _chain().to_dict()
    data["groups"] = groups
    with pytest.raises(FormatError) as caught:
        Graph.from_dict(data)
    assert caught.value.path == path, str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_unknown_direction_is_refused():
    data = _chain().to_dict()
    data["direction"] = "up"
    with pytest.raises(FormatError, match="direction"):
        Graph.from_dict(data)


# ---- folding ------------------------------------------------------------------------------


def test_folding_closes_the_gap_and_unfolding_restores_every_position():
    g = _chain(8)
    before = {n.id: n.pos for n in g}
    group = g.groups.add(["n2", "n3", "n4"], "Block")
    assert card_position(g, group.id) == (0.0, 180.0)
    moves, shift = fold_moves(g, group.id)
    assert shift == 180.0
    assert moves == {f"n{i}": (0.0, 90.0 * i - 180.0) for i in range(5, 9)}
    g.move_nodes(moves)
    g.groups.set_collapsed(group.id, True, shift)
    g = Graph.from_dict(g.to_dict())  # the shift survives saving
    g.move_nodes(unfold_moves(g, group.id))
    g.groups.set_collapsed(group.id, False)
    assert {n.id: n.pos for n in g} == before


def test_folding_flows_along_x_when_the_graph_flows_right():
    g = _chain(4)
    g.direction = "right"
    g.move_nodes({n.id: (n.pos[1], 0.0) for n in g})
    group = g.groups.add(["n1", "n2"], "Block")
    moves, shift = fold_moves(g, group.id)
    assert shift == 90.0 and moves == {"n3": (180.0, 0.0), "n4": (270.0, 0.0)}


def test_nothing_moves_when_a_node_stands_beside_the_block():
    g = _chain(6)
    g.add_node("ReLU", {}, id="side", inputs=["n1"], pos=(230.0, 180.0))
    group = g.groups.add(["n2", "n3"], "Block")
    assert fold_moves(g, group.id) == ({}, 0.0)
    g.groups.set_collapsed(group.id, True, 0.0)
    assert unfold_moves(g, group.id) == {}


def _fold(g: Graph, group_id: str) -> None:
    moves, shift = fold_moves(g, group_id)
    g.move_nodes(moves)
    g.groups.set_collapsed(group_id, True, shift)


def _unfold(g: Graph, group_id: str) -> None:
    g.move_nodes(unfold_moves(g, group_id))
    g.groups.set_collapsed(group_id, False)


@pytest.mark.parametrize("unfold_order", [("x", "y"), ("y", "x")])
def test_a_folded_block_moves_as_one_when_another_folds(unfold_order):
    g = _chain(10)
    before = {n.id: n.pos for n in g}
    g.groups.add(["n2", "n3", "n4"], "X", id="x")
    g.groups.add(["n6", "n7", "n8"], "Y", id="y")
    _fold(g, "x")
    hidden = {m: g.node(m).pos for m in ("n2", "n3", "n4")}
    _fold(g, "y")  # X's hidden members lie level with Y now: they are not "beside" it
    assert g.groups.get("y").fold_shift == 180.0
    assert {m: g.node(m).pos for m in hidden} == hidden
    assert g.node("n9").pos == (0.0, 90.0 * 9 - 360.0)
    for group_id in unfold_order:
        _unfold(g, group_id)
    assert {n.id: n.pos for n in g} == before


def test_folding_an_upstream_block_carries_a_folded_block_below_it_whole():
    g = _chain(10)
    before = {n.id: n.pos for n in g}
    g.groups.add(["n6", "n7", "n8"], "Y", id="y")
    g.groups.add(["n2", "n3", "n4"], "X", id="x")
    _fold(g, "y")
    _fold(g, "x")
    assert [g.node(m).pos[1] for m in ("n6", "n7", "n8")] == [360.0, 450.0, 540.0]
    _unfold(g, "y")
    _unfold(g, "x")
    assert {n.id: n.pos for n in g} == before


def test_a_folded_card_stands_where_the_block_output_stands():
    g = _chain(2)
    g.add_node("ReLU", {}, id="skip", inputs=["n2"], pos=(230.0, 270.0))
    g.add_node("ReLU", {}, id="main", inputs=["n2"], pos=(0.0, 270.0))
    g.add_node("Add", {}, id="join", inputs=["main", "skip"], pos=(0.0, 360.0))
    group = g.groups.add(["skip", "main", "join"], "Residual")
    assert card_position(g, group.id) == (0.0, 270.0)


def test_nesting_deeper_than_the_limit_is_refused_in_files_and_edits():
    from cnnstudio.core.groups import MAX_DEPTH

    data = _chain().to_dict()
    data["groups"] = [{"id": f"g{i}", "nodes": [f"g{i + 1}" if i < MAX_DEPTH else "n1"]}
                      for i in range(MAX_DEPTH + 1)]
    with pytest.raises(FormatError, match=f"at most {MAX_DEPTH} deep") as caught:
        Graph.from_dict(data)
    assert caught.value.path.startswith("groups[")
    data["groups"] = data["groups"][1:]  # exactly MAX_DEPTH levels: fine
    g = Graph.from_dict(data)
    with pytest.raises(GraphError, match="deep"):
        g.groups.add(["g1"], "One too many")
    with pytest.raises(GraphError, match="deep"):
        g.groups.add(["n1"], "Inside the innermost")


def test_an_undone_ungroup_goes_back_to_its_place_in_the_order():
    g = _chain()
    g.groups.add(["n1"], "A", id="a")
    g.groups.add(["n2"], "B", id="b")
    g.groups.add(["n3"], "C", id="c")
    before = g.to_dict()
    position = g.groups.position("b")
    group, members = g.groups.remove("b")
    g.groups.add(members, group.name, id=group.id, position=position)
    assert g.to_dict() == before


def test_the_fold_map_gives_each_group_its_depth_and_the_fold_that_hides_it():
    g = _chain()
    inner = g.groups.add(["n2", "n3"], "Inner", id="inner")
    middle = g.groups.add([inner.id, "n4"], "Middle", id="middle")
    g.groups.add([middle.id, "n5"], "Outer", id="outer")
    g.groups.add(["n1"], "Apart", id="apart", collapsed=True)
    assert g.groups.fold_map() == ({"inner": 2, "middle": 1, "outer": 0, "apart": 0},
                                   {"inner": None, "middle": None, "outer": None,
                                    "apart": "apart"})
    g.groups.set_collapsed("inner", True)
    g.groups.set_collapsed("middle", True)
    assert g.groups.fold_map()[1] == {"inner": "middle", "middle": "middle", "outer": None,
                                      "apart": "apart"}
