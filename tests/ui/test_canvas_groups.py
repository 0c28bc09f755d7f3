"""Groups on the canvas: grouping, folding into a card, nesting, dragging and deleting a
folded block, menus, saving, and the speed of all that on a 1,000-node graph."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mouse_events import drag, send
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtWidgets import QApplication

from cnnstudio.core.blocks import residual_block
from cnnstudio.core.folding import card_position
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import layered_positions
from cnnstudio.project.model import Project
from cnnstudio.ui.canvas import GraphScene, GraphView, editing, style
from cnnstudio.ui.canvas.group_item import GroupItem
from cnnstudio.ui.commands import (
    GraphSnapshotCommand,
    GroupCommand,
    MoveNodesCommand,
    SetParamsCommand,
)
from cnnstudio.ui.document import Document

pytestmark = pytest.mark.gui

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
NO_MOD = Qt.KeyboardModifier.NoModifier
ROWS = ["input", "conv1", "bn1", "relu1", "conv2", "relu2", "add", "flat", "fc"]


def graph() -> Graph:
    """A column: Stem (conv1, bn1, relu1) and Body (conv2, relu2) blocks, a skip from the
    stem's last layer to the Add after the body."""
    g = Graph()
    g.add_node("Input", {"shape": [1, 16, 16]}, id="input")
    g.add_node("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}, id="conv1",
               inputs=["input"])
    g.add_node("BatchNorm2d", {}, id="bn1", inputs=["conv1"])
    g.add_node("ReLU", {}, id="relu1", inputs=["bn1"])
    g.add_node("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}, id="conv2",
               inputs=["relu1"])
    g.add_node("ReLU", {}, id="relu2", inputs=["conv2"])
    g.add_node("Add", {}, id="add", inputs=["relu2", "relu1"])
    g.add_node("Flatten", {}, id="flat", inputs=["add"])
    g.add_node("Linear", {"out_features": 10}, id="fc", inputs=["flat"])
    for row, node_id in enumerate(ROWS):
        g.node(node_id).pos = (0.0, 90.0 * row)
    g.groups.add(["conv1", "bn1", "relu1"], "Stem", id="stem")
    g.groups.add(["conv2", "relu2"], "Body", id="body")
    return g


@pytest.fixture
def doc(qapp) -> Document:
    return Document(Project(graph=graph()))


@pytest.fixture
def view(qtbot, doc) -> GraphView:
    v = GraphView(doc)
    qtbot.addWidget(v)
    v.resize(900, 900)
    v.show()
    v.graph_scene.refresh_inference()
    return v


def positions(doc: Document) -> dict[str, tuple[float, float] | None]:
    return {node.id: node.pos for node in doc.graph}


def anchor(item, which: str, index: int = 0, count: int = 1) -> QPointF:
    local = item.output_anchor() if which == "out" else item.input_anchor(index, count)
    return item.pos() + local


def drawn(scene: GraphScene, source: str, target: str) -> tuple[QPointF, QPointF]:
    edge = next(e for e in scene.edge_items() if (e.source, e.target) == (source, target))
    assert edge.isVisible()
    ends = scene.router.drawn_ends(edge)
    assert ends is not None
    return ends


def click(view: GraphView, kind: QEvent.Type, scene_pos: QPointF, button=LEFT,
          buttons=LEFT) -> None:
    send(view, kind, scene_pos, button, buttons)


# ---- grouping ------------------------------------------------------------------------------


def test_group_a_selection_then_undo_and_redo(view, doc):
    scene = view.graph_scene
    scene.select_nodes(["flat", "fc"])
    group_id = editing.group_selection(scene)
    assert group_id is not None and doc.undo_stack.count() == 1
    group = doc.graph.groups.get(group_id)
    assert group.name == "Group 1" and doc.graph.groups.nodes(group_id) == ["flat", "fc"]
    frame = scene.frame_for(group_id)
    assert frame is not None
    for node_id in ("flat", "fc"):
        assert frame.frame_rect().contains(scene.item_for(node_id).sceneBoundingRect())
    doc.undo_stack.undo()
    assert group_id not in doc.graph.groups and scene.frame_for(group_id) is None
    assert doc.graph.node("flat").group is None
    doc.undo_stack.redo()
    assert doc.graph.groups.nodes(group_id) == ["flat", "fc"]
    assert scene.frame_for(group_id) is not None


def test_grouping_a_whole_block_with_a_node_nests_the_block(view, doc):
    scene = view.graph_scene
    scene.select_nodes(["conv2", "relu2", "add"])
    group_id = editing.group_selection(scene, "Stage")
    assert doc.graph.groups.children(group_id) == ["add", "body"]
    assert doc.graph.groups.get("body").parent == group_id
    assert scene.frame_for("body").depth == 1 and scene.frame_for(group_id).depth == 0
    # The outer frame surrounds the inner one, tab included.
    assert scene.frame_for(group_id).frame_rect().contains(scene.frame_for("body").frame_rect())


def test_frames_follow_their_members(view, doc, qapp):
    scene = view.graph_scene
    item = scene.item_for("relu2")
    start = item.pos() + QPointF(30, 0)
    drag(view, start, start + QPointF(300, 40), release=False)  # the frame follows a pause
    qapp.processEvents()
    assert scene.frame_for("body").frame_rect().contains(item.sceneBoundingRect())
    scene.commit_moves()
    doc.undo_stack.push(MoveNodesCommand(doc, {"conv2": ((0.0, 360.0), (-400.0, 360.0)),
                                               "relu2": ((0.0, 450.0), (0.0, 450.0))}))
    frame = scene.frame_for("body").frame_rect()
    assert frame.contains(scene.item_for("conv2").sceneBoundingRect())
    assert frame.left() < -400 - style.NODE_WIDTH / 2 and frame.right() < 300
    assert drawn(scene, "conv2", "relu2")[0] == anchor(scene.item_for("conv2"), "out")


def test_ungroup_and_undo(view, doc):
    scene = view.graph_scene
    assert editing.ungroup(scene, "stem")
    assert "stem" not in doc.graph.groups and doc.graph.node("conv1").group is None
    assert scene.frame_for("stem") is None
    doc.undo_stack.undo()
    assert doc.graph.groups.nodes("stem") == ["conv1", "bn1", "relu1"]
    assert doc.graph.groups.get("stem").name == "Stem" and scene.frame_for("stem") is not None


def test_rename_is_one_undo_entry_and_bad_names_are_refused(view, doc):
    scene = view.graph_scene
    editing.set_folded(scene, ["stem"], True)
    assert editing.rename(scene, "stem", "  Entry  ")
    assert doc.graph.groups.get("stem").name == "Entry"
    assert scene.group_item_for("stem").name == "Entry"
    assert not editing.rename(scene, "stem", "Entry")  # unchanged: no entry
    count = doc.undo_stack.count()
    with pytest.raises(Exception, match="non-empty"):
        editing.rename(scene, "stem", "   ")
    assert doc.undo_stack.count() == count
    doc.undo_stack.undo()
    assert scene.group_item_for("stem").name == "Stem"


# ---- folding -------------------------------------------------------------------------------


def test_fold_shows_one_card_with_the_block_facts_and_reattached_edges(view, doc):
    scene = view.graph_scene
    before = positions(doc)
    assert editing.set_folded(scene, ["stem"], True)
    assert doc.undo_stack.count() == 1
    card = scene.group_item_for("stem")
    assert isinstance(card, GroupItem) and card.isVisible()
    assert (card.x(), card.y()) == card_position(doc.graph, "stem") == (0.0, 90.0)
    for node_id in ("conv1", "bn1", "relu1"):
        assert not scene.item_for(node_id).isVisible()
    assert card in scene.visible_items() and scene.item_for("conv1") not in scene.visible_items()
    scene.refresh_inference()
    assert card.shape_text == "1×16×16 → 8×16×16"
    assert card.params_text == "96 params" and card.layer_count == 3  # 8·9+8 + 2·8
    assert card.macs_text.endswith("MACs")
    # The nodes past the block close the gap: up by the block's length (two rows).
    assert doc.graph.groups.get("stem").fold_shift == 180.0
    for node_id in ("conv2", "relu2", "add", "flat", "fc"):
        assert doc.graph.node(node_id).pos == (0.0, before[node_id][1] - 180.0)
        assert scene.item_for(node_id).pos() == QPointF(*doc.graph.node(node_id).pos)
    # Edges from and to the block meet the card's ports; edges inside it are hidden.
    assert drawn(scene, "input", "conv1")[1] == anchor(card, "in") - QPointF(0, style.PORT_RADIUS)
    assert drawn(scene, "relu1", "conv2")[0] == anchor(card, "out")
    assert drawn(scene, "relu1", "add")[0] == anchor(card, "out")
    inside = next(e for e in scene.edge_items() if (e.source, e.target) == ("conv1", "bn1"))
    assert not inside.isVisible()
    # Every edge past the block was moved along with its nodes.
    add = scene.item_for("add")
    assert drawn(scene, "relu2", "add")[1] == anchor(add, "in", 0, 2) - QPointF(0, 5)
    assert drawn(scene, "flat", "fc")[0] == anchor(scene.item_for("flat"), "out")
    assert editing.set_folded(scene, ["stem"], False)
    assert positions(doc) == before
    assert doc.graph.groups.get("stem").fold_shift == 0.0
    assert scene.group_item_for("stem") is None and scene.item_for("bn1").isVisible()
    assert drawn(scene, "conv1", "bn1")[0] == anchor(scene.item_for("conv1"), "out")


def test_undo_of_a_fold_restores_positions_and_shift_exactly(view, doc):
    scene = view.graph_scene
    doc.graph.node("fc").pos = (13.25, 700.5)
    before = positions(doc)
    editing.set_folded(scene, ["body"], True)
    editing.set_folded(scene, ["stem"], True)
    shifts = (doc.graph.groups.get("stem").fold_shift, doc.graph.groups.get("body").fold_shift)
    folded = positions(doc)
    doc.undo_stack.undo()
    assert doc.graph.groups.get("stem").collapsed is False
    doc.undo_stack.undo()
    assert positions(doc) == before
    assert [g.fold_shift for g in doc.graph.groups] == [0.0, 0.0]
    doc.undo_stack.redo()
    doc.undo_stack.redo()
    assert positions(doc) == folded
    assert (doc.graph.groups.get("stem").fold_shift,
            doc.graph.groups.get("body").fold_shift) == shifts


def test_folding_nested_groups(view, doc):
    scene = view.graph_scene
    before = positions(doc)
    doc.undo_stack.push(GroupCommand(doc, ["stem", "body"], "Stage", "stage"))
    editing.set_folded(scene, ["stem"], True)
    assert scene.frame_for("stage") is not None and scene.group_item_for("stem") is not None
    editing.set_folded(scene, ["stage"], True)
    assert scene.group_item_for("stem") is None and scene.frame_for("stage") is None
    card = scene.group_item_for("stage")
    assert card is not None and card.pos() == QPointF(0, 90)
    hidden = {"conv1", "bn1", "relu1", "conv2", "relu2"}
    assert {i.node_id for i in scene.visible_items()} == {*ROWS, "stage"} - hidden
    assert drawn(scene, "relu2", "add")[0] == anchor(card, "out")
    # Two edges run from the stage into the Add (relu2 and the skip from relu1): both show.
    assert drawn(scene, "relu1", "add")[0] == anchor(card, "out")
    editing.set_folded(scene, ["stage"], False)
    assert scene.group_item_for("stem") is not None  # the inner block is still folded
    assert scene.frame_for("stage") is not None
    editing.reveal(scene, "bn1")
    assert scene.item_for("bn1").isVisible()
    assert positions(doc) == before


def test_edges_into_a_card_from_one_item_are_drawn_once(view, doc):
    scene = view.graph_scene
    doc.undo_stack.push(GroupCommand(doc, ["body", "add"], "Tail", "tail"))
    editing.set_folded(scene, ["tail"], True)
    card = scene.group_item_for("tail")
    # relu1 → conv2 and relu1 → add both enter the folded tail from relu1: one line.
    into = [e for e in scene.edge_items() if e.source == "relu1" and e.isVisible()]
    assert len(into) == 1 and card.ports.input_count == 1
    assert scene.router.drawn_ends(into[0])[1] == anchor(card, "in") - QPointF(0, 5)
    editing.set_folded(scene, ["stem"], True)
    between = [e for e in scene.edge_items() if e.source == "relu1" and e.isVisible()]
    assert len(between) == 1
    assert scene.router.drawn_ends(between[0])[0] == anchor(scene.group_item_for("stem"), "out")
    editing.set_folded(scene, ["tail"], False)
    shown = sorted(e.target for e in scene.edge_items() if e.source == "relu1" and e.isVisible())
    assert shown == ["add", "conv2"]  # unfolded: both again, from the stem's card


def test_frame_fold_button_and_tab_double_click_fold(view, doc):
    scene = view.graph_scene
    frame = scene.frame_for("body")
    button = frame.button_rect().center()
    click(view, QEvent.Type.MouseButtonPress, button)
    click(view, QEvent.Type.MouseButtonRelease, button, LEFT, NONE)
    assert doc.graph.groups.get("body").collapsed and doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    frame = scene.frame_for("body")
    assert scene.activate_at(frame.tab_rect().topLeft() + QPointF(6, 6))
    assert doc.graph.groups.get("body").collapsed


def test_double_click_on_a_folded_card_unfolds_it(view, doc):
    scene = view.graph_scene
    editing.set_folded(scene, ["stem"], True)
    card = scene.group_item_for("stem")
    click(view, QEvent.Type.MouseButtonDblClick, card.pos())
    assert not doc.graph.groups.get("stem").collapsed
    assert scene.group_item_for("stem") is None and scene.item_for("conv1").isVisible()
    assert not scene.activate_at(QPointF(3000, 3000))  # empty canvas: left to the view


def test_direction_right_turns_every_item_and_edge(view, doc):
    scene = view.graph_scene
    editing.set_folded(scene, ["stem"], True)

    def turn(graph):
        graph.direction = "right"
        for node in graph:
            node.pos = (node.pos[1], node.pos[0])  # rows become columns

    doc.undo_stack.push(GraphSnapshotCommand(doc, "Left to right", turn))
    card = scene.group_item_for("stem")
    assert scene.direction == "right" and card.ports.direction == "right"
    assert all(item.direction == "right" for item in scene.node_items())
    assert all(edge.direction == "right" for edge in scene.edge_items())
    start, end = drawn(scene, "relu1", "conv2")
    assert start == card.pos() + QPointF(style.GROUP_WIDTH / 2, 0)  # the card's right edge
    conv2 = scene.item_for("conv2")
    assert end == conv2.pos() + QPointF(-style.NODE_WIDTH / 2 - style.PORT_RADIUS, 0)
    doc.undo_stack.undo()
    assert scene.direction == "down" and card.ports.direction == "down"


# ---- a folded block as a whole -------------------------------------------------------------


def test_dragging_a_folded_card_moves_its_members_in_one_step(view, doc):
    scene = view.graph_scene
    editing.set_folded(scene, ["stem"], True)
    before = positions(doc)
    count = doc.undo_stack.count()
    card = scene.group_item_for("stem")
    start = card.pos() + QPointF(20, 0)
    drag(view, start, start + QPointF(60, 30))
    assert doc.undo_stack.count() == count + 1
    moved = positions(doc)
    for node_id in ("conv1", "bn1", "relu1"):
        assert moved[node_id] == (before[node_id][0] + 60, before[node_id][1] + 30)
    assert moved["input"] == before["input"]
    card = scene.group_item_for("stem")
    assert card.pos() == QPointF(60, 120)
    assert drawn(scene, "input", "conv1")[1] == anchor(card, "in") - QPointF(0, 5)
    doc.undo_stack.undo()
    assert positions(doc) == before and scene.group_item_for("stem").pos() == QPointF(0, 90)


def test_selecting_a_card_selects_its_block_and_delete_removes_it(view, doc):
    scene = view.graph_scene
    editing.set_folded(scene, ["stem"], True)
    scene.group_item_for("stem").setSelected(True)
    assert scene.selected_node_ids() == ["conv1", "bn1", "relu1"]
    assert doc.selection == ["conv1", "bn1", "relu1"]
    view.delete_selection()
    assert "conv1" not in doc.graph and scene.group_item_for("stem") is None
    assert doc.graph.node("conv2").inputs == []
    doc.undo_stack.undo()
    assert doc.graph.groups.nodes("stem") == ["conv1", "bn1", "relu1"]
    card = scene.group_item_for("stem")
    assert card is not None and not scene.item_for("bn1").isVisible()
    assert drawn(scene, "relu1", "conv2")[0] == anchor(card, "out")
    scene.select_nodes(["conv1", "bn1", "relu1"])
    assert card.isSelected()


def test_copy_paste_and_duplicate_of_a_folded_block(view, doc, qapp):
    scene = view.graph_scene
    editing.set_folded(scene, ["stem"], True)
    scene.select_nodes(doc.graph.groups.nodes("stem"))
    view.copy_selection()
    pasted = view.paste()
    # The copy carries the block (unfolded, a new group of the same name).
    copies = {doc.graph.node(n).group for n in pasted}
    assert len(pasted) == 3 and len(copies) == 1 and None not in copies and "stem" not in copies
    copy = doc.graph.groups.get(copies.pop())
    assert copy.name == "Stem" and not copy.collapsed
    assert all(scene.item_for(n).isVisible() for n in pasted)
    scene.select_nodes(doc.graph.groups.nodes("stem"))
    assert len(view.duplicate_selection()) == 3


# ---- menus ---------------------------------------------------------------------------------


def test_context_menus_offer_the_block_actions(view, doc):
    scene = view.graph_scene
    menu = view.context_menu(scene.item_for("bn1").pos())
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert {"Group", "Fold block", "Rename block…", "Ungroup"} <= set(texts)
    next(a for a in menu.actions() if a.text() == "Fold block").trigger()
    assert doc.graph.groups.get("stem").collapsed
    menu = view.context_menu(scene.group_item_for("stem").pos())
    actions = {a.text(): a for a in menu.actions() if not a.isSeparator()}
    assert {"Unfold block", "Rename block…", "Ungroup", "Delete"} <= set(actions)
    assert doc.selection == ["conv1", "bn1", "relu1"]
    actions["Ungroup"].trigger()
    assert "stem" not in doc.graph.groups and scene.item_for("bn1").isVisible()
    menu = view.context_menu(QPointF(3000, 3000))
    assert "Group automatically" in [a.text() for a in menu.actions()]


def test_edit_menu_group_fold_ungroup(window):
    actions = window.actions_
    scene = window.view.graph_scene
    assert actions.group.shortcut().toString() == "Ctrl+G"
    assert actions.ungroup.shortcut().toString() == "Ctrl+Shift+G"
    assert actions.fold.shortcut().toString() == "Ctrl+Shift+E"
    shortcuts = [a.shortcut().toString() for a in window.findChildren(type(actions.group))
                 if not a.shortcut().isEmpty()]
    assert len(shortcuts) == len(set(shortcuts)), "two actions share a shortcut"
    existing = set(window.project.graph.groups.ids)
    for group_id in existing:  # the template comes grouped: start from bare layers
        editing.ungroup(scene, group_id)
    scene.select_nodes(["conv1", "relu1"])
    actions.group.trigger()
    (group,) = list(window.project.graph.groups)
    actions.fold.trigger()
    assert group.collapsed and scene.group_item_for(group.id) is not None
    actions.fold.trigger()  # the selected card: unfolds
    assert not group.collapsed
    scene.select_nodes(["conv1"])
    actions.ungroup.trigger()
    assert not len(window.project.graph.groups)
    window.undo_stack.undo()
    assert group.id in window.project.graph.groups
    scene.clearSelection()
    actions.fold.trigger()  # nothing selected: a hint, no entry
    assert "Select a block" in window.status.currentMessage()


def test_group_automatically_is_one_undo_entry(view, doc):
    g = Graph()
    x = g.add_node("Input", {"shape": [8, 8, 8]}, id="input").id
    for _ in range(3):
        x = residual_block(g, x, 8, 8)
    doc.undo_stack.push(GraphSnapshotCommand(doc, "Replace", lambda graph: graph.replace_with(g)))
    count = doc.undo_stack.count()
    found = editing.auto_group(view.graph_scene)
    assert found and doc.undo_stack.count() == count + 1
    assert all(view.graph_scene.frame_for(gid) is not None for gid in found)
    assert editing.auto_group(view.graph_scene) == []  # nothing left: no entry
    assert doc.undo_stack.count() == count + 1


# ---- saving --------------------------------------------------------------------------------


def test_groups_and_folds_survive_save_and_open(window, tmp_path):
    scene = window.view.graph_scene
    scene.select_nodes(["conv1", "relu1"])
    group_id = editing.group_selection(scene, "Features")
    editing.set_folded(scene, [group_id], True)
    folded = {n.id: n.pos for n in window.project.graph}
    path = tmp_path / "grouped.cnnproj"
    assert window.save_project(path)
    window.new_project("digits-lenet")
    assert window.open_project(path)
    graph = window.project.graph
    group = graph.groups.get(group_id)
    assert group.name == "Features" and group.collapsed and group.fold_shift > 0
    assert {n.id: n.pos for n in graph} == folded
    scene = window.view.graph_scene
    assert scene.group_item_for(group_id) is not None
    assert not scene.item_for("conv1").isVisible()
    editing.set_folded(scene, [group_id], False)
    assert scene.item_for("conv1").isVisible()


# ---- scale ---------------------------------------------------------------------------------


def big_graph(nodes: int = 1000) -> Graph:
    """Residual blocks in a chain, each a group, ten to a stage."""
    g = Graph()
    x = g.add_node("Input", {"shape": [3, 32, 32]}, id="input").id
    x = g.add_node("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1},
                   inputs=[x]).id
    blocks = []
    while len(g) < nodes - 8:
        before = set(g.ids)
        x = residual_block(g, x, 16, 16)
        blocks.append([n for n in g.ids if n not in before])
    for node_id, pos in layered_positions(g).items():
        g.node(node_id).pos = pos
    for start in range(0, len(blocks), 10):
        stage = [g.groups.add(members, f"Block {start + i + 1}").id
                 for i, members in enumerate(blocks[start:start + 10])]
        g.groups.add(stage, f"Stage {start // 10 + 1}")
    return g


def test_a_1000_node_grouped_graph_opens_folds_and_edits_fast(qapp):
    g = big_graph()
    doc = Document(Project(graph=g))
    started = time.perf_counter()
    scene = GraphScene(doc)
    opened = time.perf_counter() - started
    stages = [group.id for group in g.groups if group.parent is None]
    timings = []
    for folded in (True, False):
        started = time.perf_counter()
        assert editing.set_folded(scene, stages[:1], folded)
        QApplication.processEvents()
        timings.append(time.perf_counter() - started)
    conv = [n.id for n in g if n.type == "Conv2d"][5]
    params = {**g.node(conv).params, "out_channels": 16, "bias": False}
    started = time.perf_counter()
    doc.undo_stack.push(SetParamsCommand(doc, conv, params))
    scene.refresh_inference()
    edited = time.perf_counter() - started
    print(f"1,000 nodes: open {opened * 1000:.0f} ms, fold {timings[0] * 1000:.0f} ms, "
          f"unfold {timings[1] * 1000:.0f} ms, edit {edited * 1000:.0f} ms")
    # Generous bounds: the targets (300, 50, 50, 30 ms) hold on an idle machine; a shared
    # test machine runs several times slower.
    assert opened < 1.5 and max(timings) < 0.4 and edited < 0.3
    for group_id in stages[:1]:
        assert scene.group_item_for(group_id) is None
    assert all(item.isVisible() for item in scene.node_items())


# ---- any sequence of group edits leaves the picture matching the graph ---------------------

group_steps = st.lists(st.one_of(
    st.tuples(st.just("group"), st.lists(st.integers(0, 8), min_size=1, max_size=4)),
    st.tuples(st.sampled_from(["ungroup", "fold", "unfold", "drag"]), st.integers(0, 9)),
    st.tuples(st.just("delete"), st.integers(0, 8)),
    st.tuples(st.sampled_from(["undo", "redo"])),
), max_size=12)


def check_picture(scene: GraphScene, doc: Document) -> None:
    """Hidden nodes are exactly the folded ones; a card per folded block, a frame per
    unfolded one; every visible edge runs between the ports of the items showing its ends."""
    scene.flush()
    graph, groups = doc.graph, doc.graph.groups
    for node in graph:
        item = scene.item_for(node.id)
        assert item.isVisible() == (groups.shown_as(node.id) == node.id), node.id
        assert (item.x(), item.y()) == node.pos
    for group in groups:
        hidden = groups.is_empty(group.id) or any(groups.get(a).collapsed
                                                  for a in groups.ancestors(group.id))
        card, frame = scene.group_item_for(group.id), scene.frame_for(group.id)
        assert (card is not None) == (not hidden and group.collapsed), group.id
        assert (frame is not None) == (not hidden and not group.collapsed), group.id
        if card is not None:
            assert (card.x(), card.y()) == card_position(graph, group.id)
    for edge in scene.edge_items():
        ends = scene.edge_ends(edge)
        source, target = groups.shown_as(edge.source), groups.shown_as(edge.target)
        assert edge.isVisible() == (ends is not None)
        if source == target:
            assert not edge.isVisible()
        if ends is None:
            continue
        source_item, target_item, slot, count = ends
        start, end = scene.router.drawn_ends(edge)
        assert start == anchor(source_item, "out")
        assert end == anchor(target_item, "in", slot, count) - QPointF(0, style.PORT_RADIUS)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=group_steps)
# Deleting a node whose edges run into a folded card (relu1 → Body, relu1 → add): the
# card's edge list kept the first removed edge until the next rebuild, and routing the
# second asked that edge's ends (a KeyError, found about one run in three).
@example(steps=[("delete", 0), ("delete", 0), ("fold", 1), ("delete", 1)])
def test_any_group_edit_sequence_keeps_the_picture_right(qapp, steps):
    doc = Document(Project(graph=graph()))
    scene = GraphScene(doc)
    stack = doc.undo_stack
    for step in steps:
        kind, ids, group_ids = step[0], doc.graph.ids, doc.graph.groups.ids
        if kind == "group" and ids:
            scene.select_nodes([ids[i % len(ids)] for i in step[1]])
            editing.group_selection(scene)
        elif kind in ("ungroup", "fold", "unfold", "drag") and group_ids:
            group_id = group_ids[step[1] % len(group_ids)]
            if kind == "ungroup":
                editing.ungroup(scene, group_id)
            elif kind == "drag":
                card = scene.group_item_for(group_id)
                if card is not None:
                    scene._press_positions = {group_id: QPointF(card.pos())}
                    card.moveBy(40, 25)
                    scene.commit_moves()
            else:
                editing.set_folded(scene, [group_id], kind == "fold")
        elif kind == "delete" and ids:
            scene.select_nodes([ids[step[1] % len(ids)]])
            editing.delete(scene, scene.selected_node_ids(), [])
        elif kind == "undo":
            stack.undo()
        elif kind == "redo":
            stack.redo()
        check_picture(scene, doc)
    while stack.canUndo():
        stack.undo()
    check_picture(scene, doc)
    assert positions(doc) == {n: (0.0, 90.0 * row) for row, n in enumerate(ROWS)}
    scene.deleteLater()


def test_a_merge_input_moves_to_its_new_port_when_another_is_cut(view, doc):
    scene = view.graph_scene
    editing.delete(scene, [], [e for e in scene.edge_items() if e.key == ("relu2", "add", 0)])
    add = scene.item_for("add")
    # relu1 → add is input 0 of 1 now: the single port's place, not the second of two.
    assert drawn(scene, "relu1", "add")[1] == anchor(add, "in", 0, 1) - QPointF(0, 5)


# ---- edges around frames -----------------------------------------------------------------

@pytest.mark.parametrize("template", ["resnet", "unet", "inception"])
def test_detours_keep_clear_of_the_frames_they_run_beside(qapp, template):
    """A skip edge's lane (or a U-Net's edge back up to a decoder) runs at least 30 units
    from the side of every frame beside it: 10 units away it read as a second border."""
    from cnnstudio.core.templates import get_template

    doc = Document(Project(graph=get_template(template).graph()))
    scene = GraphScene(doc)
    scene.flush()
    frames = [f.frame_rect() for f in scene.groups.frames.values()]
    assert frames
    lanes = 0
    for edge in scene.edge_items():
        ends = scene.edge_ends(edge)
        if ends is None:
            continue
        source, target = ends[0], ends[1]
        side = scene.router.detour(source, target)
        if side is None:
            continue
        lanes += 1
        start = source.pos() + source.output_anchor()
        end = target.pos() + target.input_anchor(0, 1)
        low, high = sorted((start.y(), end.y()))
        for frame in frames:
            if frame.bottom() < low + 28 or frame.top() > high - 14:
                continue  # not beside the lane's run
            gap = min(abs(side - frame.left()), abs(side - frame.right()))
            assert gap >= 30 - 1e-6, (edge.source, edge.target, side, frame)
    assert lanes  # the templates do have skips and branches that detour
    scene.deleteLater()
