"""Block edits that must leave a tidy, exactly undoable picture: automatic grouping makes
room for its frames, an undone ungroup keeps the blocks' order, folds skip hidden blocks."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from cnnstudio.core import architectures
from cnnstudio.core.graph import Graph
from cnnstudio.project.model import Project
from cnnstudio.ui.canvas import GraphView, editing
from cnnstudio.ui.canvas.items import NodeItem
from cnnstudio.ui.commands import UngroupCommand
from cnnstudio.ui.document import Document

pytestmark = pytest.mark.gui


def _view(qtbot, graph: Graph) -> GraphView:
    view = GraphView(Document(Project(graph=graph)))
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.graph_scene.flush()
    return view


def _ungrouped(graph: Graph) -> Graph:
    for group_id in reversed(graph.groups.ids):
        graph.groups.remove(group_id)
    return graph


def test_grouping_automatically_makes_room_for_every_new_frame(qtbot):
    view = _view(qtbot, _ungrouped(architectures.resnet50()))
    scene = view.graph_scene
    new = editing.auto_group(scene)
    scene.flush()
    QApplication.processEvents()
    assert len(new) >= 20
    graph = view.document.graph
    for group_id in new:
        frame = scene.frame_for(group_id)
        assert frame is not None and frame.isVisible()
        inside = set(graph.groups.nodes(group_id))
        foreign = [item.node_id for item in scene.items(frame.sceneBoundingRect())
                   if isinstance(item, NodeItem) and item.isVisible()
                   and item.node_id not in inside]
        assert not foreign, (group_id, foreign)
    view.document.undo_stack.undo()  # one step: the blocks and the layout go together
    assert len(graph.groups) == 0


def test_an_undone_ungroup_keeps_the_order_of_the_blocks(qtbot):
    view = _view(qtbot, architectures.resnet50())
    doc = view.document
    before = doc.graph.to_dict()
    stage = next(g for g in doc.graph.groups if g.name.startswith("Stage 2"))
    middle = doc.graph.groups.children(stage.id)[1]
    doc.undo_stack.push(UngroupCommand(doc, middle))
    assert doc.graph.to_dict() != before
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before


def test_a_block_hidden_in_a_folded_block_is_not_unfolded_on_its_own(qtbot):
    view = _view(qtbot, architectures.resnet50())
    scene, graph = view.graph_scene, view.document.graph
    before = graph.to_dict()
    stage = next(g for g in graph.groups if g.name.startswith("Stage 3"))
    inner = graph.groups.children(stage.id)[-1]
    assert editing.set_folded(scene, [inner], True)
    assert editing.set_folded(scene, [stage.id], True)
    assert not editing.set_folded(scene, [inner], False)  # hidden: left alone
    assert editing.set_folded(scene, [stage.id], False)
    assert editing.set_folded(scene, [inner], False)
    assert graph.to_dict() == before


def test_moving_a_lone_layer_updates_which_layer_its_fix_connects_it_after(qtbot):
    g = Graph()
    g.add_node("Input", {"shape": [1, 8, 8]}, id="input", pos=(0.0, 0.0))
    g.add_node("ReLU", {}, id="first", inputs=["input"], pos=(0.0, 90.0))
    g.add_node("ReLU", {}, id="second", inputs=["first"], pos=(0.0, 180.0))
    g.add_node("ReLU", {}, id="lone", pos=(0.0, 120.0))
    doc = Document(Project(graph=g))

    def connect_fix() -> str:
        return next(fix.label for problem in doc.inference.problems
                    for fix in problem.fixes if fix.kind == "connect_after")

    assert connect_fix() == "Connect after first"
    doc.graph.move_node("lone", (0.0, 300.0))
    assert connect_fix() == "Connect after second"
    doc.graph.groups.add(["first"], "Block")  # a block changes no shape: kept
    inference = doc.inference
    doc.graph.groups.set_collapsed(doc.graph.groups.ids[0], True)
    assert doc.inference is inference


def test_auto_layout_moves_every_node_as_one_undo_step_and_keeps_the_folds(qtbot):
    from cnnstudio.core.layout import auto_layout

    graph = architectures.resnet50()
    view = _view(qtbot, graph)
    scene, doc = view.graph_scene, view.document
    stage = next(g.id for g in doc.graph.groups if g.name.startswith("Stage 2"))
    assert editing.set_folded(scene, [stage], True)
    doc.graph.move_nodes({"conv1": (500.0, 40.0), "classifier": (-300.0, 9000.0)})  # a mess
    before = doc.graph.to_dict()
    expected = doc.graph.copy()
    auto_layout(expected)
    count = doc.undo_stack.count()
    view.auto_layout()
    assert doc.undo_stack.count() == count + 1
    assert doc.graph.to_dict() == expected.to_dict()
    assert doc.graph.groups.get(stage).collapsed
    scene.flush()
    card = scene.group_item_for(stage)
    assert card is not None and card.isVisible()
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before
    doc.undo_stack.redo()
    assert doc.graph.to_dict() == expected.to_dict()
