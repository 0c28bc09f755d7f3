"""Mouse work on the canvas: connecting ports, dragging nodes, selecting, panning.

Mouse events are sent to the viewport as QMouseEvent objects (QTest's moves with a
button held are not dependable offscreen).
"""

from __future__ import annotations

import pytest
from mouse_events import drag, send
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication

from cnnstudio.core.graph import Graph
from cnnstudio.project.model import Project
from cnnstudio.ui.canvas import GraphView
from cnnstudio.ui.document import Document

pytestmark = pytest.mark.gui

LEFT, MIDDLE = Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton
NONE = Qt.MouseButton.NoButton
NO_MOD = Qt.KeyboardModifier.NoModifier


def graph() -> Graph:
    g = Graph()
    g.add_node("Input", {"shape": [1, 16, 16]}, id="input", pos=(0, 0))
    g.add_node("Concat", {}, id="cat", inputs=["input"], pos=(0, 90))
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3}, id="conv1", inputs=["cat"],
               pos=(0, 180))
    g.add_node("ReLU", {}, id="relu1", inputs=["conv1"], pos=(0, 270))
    g.add_node("ReLU", {}, id="loose", pos=(300, 270))
    return g


@pytest.fixture
def doc(qapp) -> Document:
    return Document(Project(graph=graph()))


@pytest.fixture
def view(qtbot, doc) -> GraphView:
    v = GraphView(doc)
    qtbot.addWidget(v)
    v.resize(1000, 700)
    v.show()
    v.centerOn(150, 150)
    return v


def out_port(view: GraphView, node_id: str) -> QPointF:
    item = view.graph_scene.item_for(node_id)
    return item.mapToScene(item.output_anchor())


def in_port(view: GraphView, node_id: str) -> QPointF:
    item = view.graph_scene.item_for(node_id)
    return item.mapToScene(item.input_anchor(0, 1))


def body(view: GraphView, node_id: str) -> QPointF:
    return view.graph_scene.item_for(node_id).pos() + QPointF(30, 0)


# ---- connecting --------------------------------------------------------------------------


def test_drag_from_output_port_to_input_port_connects(view, doc):
    count = doc.undo_stack.count()
    drag(view, out_port(view, "conv1"), in_port(view, "loose"))
    assert doc.graph.node("loose").inputs == ["conv1"]
    assert doc.undo_stack.count() == count + 1
    assert ("conv1", "loose", 0) in [e.key for e in view.graph_scene.edge_items()]
    assert not [i for i in view.graph_scene.items() if i.zValue() == 10]  # wire removed
    doc.undo_stack.undo()
    assert doc.graph.node("loose").inputs == []


def test_drop_on_the_node_body_connects_too(view, doc):
    drag(view, out_port(view, "relu1"), body(view, "loose"))
    assert doc.graph.node("loose").inputs == ["relu1"]


def test_cycle_is_shown_red_and_refused(view, doc):
    before, count = doc.graph.to_dict(), doc.undo_stack.count()
    messages = []
    view.message.connect(messages.append)
    drag(view, out_port(view, "relu1"), body(view, "cat"), release=False)
    cat = view.graph_scene.item_for("cat")
    assert cat.connect_state == "invalid"
    assert any("cycle" in m for m in messages)
    send(view, QEvent.Type.MouseButtonRelease, body(view, "cat"), LEFT, NONE)
    assert cat.connect_state is None
    assert doc.graph.to_dict() == before and doc.undo_stack.count() == count


@pytest.mark.parametrize("source, target, why", [
    ("relu1", "conv1", "already has its input"),
    ("relu1", "input", "takes no inputs"),
    ("relu1", "relu1", "itself"),
])
def test_invalid_targets_are_refused(view, doc, source, target, why):
    before = doc.graph.to_dict()
    messages = []
    view.message.connect(messages.append)
    drag(view, out_port(view, source), body(view, target) + QPointF(0, 8))
    assert any(why in m for m in messages)
    assert doc.graph.to_dict() == before


def test_valid_target_is_shown_green_while_dragging(view):
    drag(view, out_port(view, "conv1"), body(view, "loose"), release=False)
    assert view.graph_scene.item_for("loose").connect_state == "valid"
    QApplication.sendEvent(view, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Escape, NO_MOD))
    assert view.graph_scene.item_for("loose").connect_state is None


def test_merge_node_takes_many_inputs(view, doc):
    drag(view, out_port(view, "loose"), in_port(view, "cat"))
    assert doc.graph.node("cat").inputs == ["input", "loose"]
    assert view.graph_scene.item_for("cat").input_count == 2


def test_picking_up_a_connected_input_moves_it_in_one_step(view, doc):
    before, count = doc.graph.to_dict(), doc.undo_stack.count()
    drag(view, in_port(view, "relu1"), in_port(view, "loose"))
    assert doc.graph.node("relu1").inputs == []
    assert doc.graph.node("loose").inputs == ["conv1"]
    assert doc.undo_stack.count() == count + 1  # disconnect + connect in one macro
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before


def test_dropping_a_picked_up_input_on_empty_canvas_disconnects_it(view, doc):
    drag(view, in_port(view, "relu1"), QPointF(-400, 200))
    assert doc.graph.node("relu1").inputs == []
    doc.undo_stack.undo()
    assert doc.graph.node("relu1").inputs == ["conv1"]


def test_dragging_from_a_free_input_port_finds_a_source(view, doc):
    drag(view, in_port(view, "loose"), body(view, "conv1"))
    assert doc.graph.node("loose").inputs == ["conv1"]


# ---- moving and selecting ----------------------------------------------------------------


def test_dragging_selected_nodes_is_one_undo_entry(view, doc):
    doc.set_selection(["conv1", "relu1"])
    count = doc.undo_stack.count()
    start, end = body(view, "conv1"), body(view, "conv1") + QPointF(60, 30)
    drag(view, start, end, release=False)
    assert doc.graph.node("conv1").pos == (0, 180)  # only the items move during the drag
    assert view.graph_scene.item_for("relu1").pos() == QPointF(60, 300)
    send(view, QEvent.Type.MouseButtonRelease, end, LEFT, NONE)
    assert doc.undo_stack.count() == count + 1
    assert doc.graph.node("conv1").pos == (60, 210)
    assert doc.graph.node("relu1").pos == (60, 300)
    edge = next(e for e in view.graph_scene.edge_items() if e.key == ("cat", "conv1", 0))
    assert edge.sceneBoundingRect().bottom() >= 210 - 30  # the edge followed its node
    doc.undo_stack.undo()
    assert doc.graph.node("conv1").pos == (0, 180)
    assert view.graph_scene.item_for("relu1").pos() == QPointF(0, 270)


def test_a_click_without_moving_pushes_nothing(view, doc):
    count = doc.undo_stack.count()
    drag(view, body(view, "conv1"), body(view, "conv1"))
    assert doc.undo_stack.count() == count
    assert doc.selection == ["conv1"]


def test_rubber_band_and_ctrl_click_select(view, doc):
    drag(view, QPointF(-150, 140), QPointF(150, 300))
    assert doc.selection == ["conv1", "relu1"]
    send(view, QEvent.Type.MouseButtonPress, body(view, "loose"), LEFT, LEFT,
         Qt.KeyboardModifier.ControlModifier)
    send(view, QEvent.Type.MouseButtonRelease, body(view, "loose"), LEFT, NONE,
         Qt.KeyboardModifier.ControlModifier)
    assert doc.selection == ["conv1", "relu1", "loose"]
    shift = Qt.KeyboardModifier.ShiftModifier
    send(view, QEvent.Type.MouseButtonPress, body(view, "input"), LEFT, LEFT, shift)
    send(view, QEvent.Type.MouseButtonRelease, body(view, "input"), LEFT, NONE, shift)
    assert doc.selection == ["input", "conv1", "relu1", "loose"]
    send(view, QEvent.Type.MouseButtonPress, body(view, "cat"), LEFT, LEFT)
    send(view, QEvent.Type.MouseButtonRelease, body(view, "cat"), LEFT, NONE)
    assert doc.selection == ["cat"]


def test_delete_key_deletes_the_selection(view, doc):
    doc.set_selection(["loose"])
    view.setFocus()
    QApplication.sendEvent(view, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Delete, NO_MOD))
    assert "loose" not in doc.graph


# ---- panning -----------------------------------------------------------------------------


def test_middle_button_and_space_drag_pan(view, doc):
    view.set_zoom(3.0)
    bars = view.horizontalScrollBar(), view.verticalScrollBar()
    before = [b.value() for b in bars]
    centre = view.mapToScene(view.viewport().rect().center())
    drag(view, centre, centre + QPointF(30, 20), button=MIDDLE)
    assert [b.value() for b in bars] != before
    before = [b.value() for b in bars]
    QApplication.sendEvent(view, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Space, NO_MOD))
    where = view.graph_scene.item_for("conv1").pos()
    drag(view, where, where + QPointF(20, 20))
    QApplication.sendEvent(view, QKeyEvent(QEvent.Type.KeyRelease, Qt.Key.Key_Space, NO_MOD))
    assert [b.value() for b in bars] != before
    assert doc.graph.node("conv1").pos == (0, 180)  # panning over a node does not move it
