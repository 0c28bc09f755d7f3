"""The canvas mirrors the document's graph and turns drops, edits and menus into commands."""

from __future__ import annotations

import time
import warnings

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from cnnstudio.core.graph import Graph
from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.templates import get_template
from cnnstudio.project.model import Project
from cnnstudio.ui.canvas import EdgeItem, GraphScene, GraphView, NodeItem
from cnnstudio.ui.canvas.view import MIN_ZOOM
from cnnstudio.ui.commands import AddNodeCommand, SetParamsCommand
from cnnstudio.ui.document import Document
from cnnstudio.ui.mime import MIME_BLOCK, MIME_LAYER, MIME_NODES

pytestmark = pytest.mark.gui


def small_graph() -> Graph:
    g = Graph()
    g.add_node("Input", {"shape": [1, 16, 16]}, id="input", pos=(0, 0))
    g.add_node("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}, id="conv1",
               inputs=["input"], pos=(0, 90))
    g.add_node("ReLU", {}, id="relu1", inputs=["conv1"], pos=(0, 180))
    g.add_node("MaxPool2d", {"kernel_size": 2}, id="pool1", inputs=["relu1"], pos=(0, 270))
    g.add_node("Flatten", {}, id="flat", inputs=["pool1"], pos=(0, 360))
    g.add_node("Linear", {"out_features": 10}, id="fc", inputs=["flat"], pos=(0, 450))
    return g


@pytest.fixture
def doc(qapp) -> Document:
    return Document(Project(graph=small_graph()))


@pytest.fixture
def view(qtbot, doc) -> GraphView:
    v = GraphView(doc)
    qtbot.addWidget(v)
    v.resize(900, 700)
    v.show()
    v.graph_scene.refresh_inference()
    return v


def assert_in_sync(scene: GraphScene, doc: Document) -> None:
    """Items == graph: node ids, edges, and (after a refresh) shapes and edge labels."""
    scene.refresh_inference()
    graph = doc.graph
    assert {i.node_id for i in scene.node_items()} == set(graph.ids)
    assert sorted(e.key for e in scene.edge_items()) == sorted(graph.edges())
    inference = doc.inference
    for node in graph:
        item = scene.item_for(node.id)
        info = inference.nodes[node.id]
        expected = fmt_shape(info.shape) if info.shape is not None else ""
        assert item.shape_text == expected, node.id
        assert item.input_count == len(node.inputs)
        if node.pos is not None:
            assert (item.x(), item.y()) == pytest.approx(node.pos)
    for edge in scene.edge_items():
        assert edge.label == scene.item_for(edge.source).shape_text


def drop(view: GraphView, mime: QMimeData, scene_pos: QPointF) -> tuple[bool, bool]:
    """Synthesize enter, move and drop at `scene_pos`; return (enter accepted, drop accepted)."""
    port = view.viewport()
    local = QPointF(view.mapFromScene(scene_pos))
    actions = Qt.DropAction.CopyAction
    with warnings.catch_warnings():  # Qt 6 marks the QPoint constructors deprecated (no QPointF)
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(local.toPoint(), actions, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
        move = QDragMoveEvent(local.toPoint(), actions, mime, Qt.MouseButton.LeftButton,
                              Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(port, enter)
    QApplication.sendEvent(port, move)
    dropped = QDropEvent(local, actions, mime, Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(port, dropped)
    return enter.isAccepted(), dropped.isAccepted()


def layer_mime(name: str, fmt: str = MIME_LAYER) -> QMimeData:
    mime = QMimeData()
    mime.setData(fmt, name.encode("utf-8"))
    return mime


# ---- mirroring ---------------------------------------------------------------------------


def test_scene_mirrors_the_graph_with_shapes_and_captions(view, doc):
    scene = view.graph_scene
    assert view.objectName() == "graphView"
    assert_in_sync(scene, doc)
    conv = scene.item_for("conv1")
    assert conv.title == "Conv2d 8@3×3 s1 p1"
    assert conv.shape_text == "8×16×16"
    assert isinstance(conv, NodeItem) and all(isinstance(e, EdgeItem) for e in scene.edge_items())
    edge = next(e for e in scene.edge_items() if e.key == ("conv1", "relu1", 0))
    assert edge.label == "8×16×16"
    # Data flows downwards: the edge leaves the bottom of conv1 and enters the top of relu1.
    assert edge.boundingRect().top() >= conv.sceneBoundingRect().center().y()


def test_graph_events_update_single_items(view, doc):
    scene = view.graph_scene
    kept = scene.item_for("conv1")
    doc.undo_stack.push(AddNodeCommand(doc, "ReLU", {}, pos=(300, 90), inputs=["conv1"]))
    doc.undo_stack.push(SetParamsCommand(doc, "conv1", {"out_channels": 4, "kernel_size": 3,
                                                        "padding": 1}))
    assert scene.item_for("conv1") is kept  # edited in place, not rebuilt
    assert_in_sync(scene, doc)
    assert kept.shape_text == "4×16×16"
    doc.graph.rename_node("conv1", "first")
    assert scene.item_for("first") is kept and kept.node_id == "first"
    assert_in_sync(scene, doc)
    doc.graph.rename_node("first", "conv1")
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert_in_sync(scene, doc)


def test_nodes_without_position_are_laid_out(qtbot):
    g = Graph.from_dict(get_template("inception").graph().to_dict())
    for node in g.to_dict()["nodes"]:
        g.node(node["id"]).pos = None
    doc = Document(Project(graph=g))
    scene = GraphScene(doc)
    rects = [i.sceneBoundingRect() for i in scene.node_items()]
    overlaps = sum(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])
    assert overlaps == 0


def test_opening_another_project_rebuilds_and_shows_its_top(view, doc):
    template = get_template("resnet")
    doc.set_project(Project(graph=template.graph()))
    QApplication.processEvents()
    assert_in_sync(view.graph_scene, doc)
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(view.graph_scene.item_for("input").sceneBoundingRect())
    assert view.zoom() >= 0.7  # long networks open readable, not fitted into a strip


def test_reset_keeps_unchanged_items(view, doc):
    scene = view.graph_scene
    kept = scene.item_for("relu1")
    view.graph_scene.select_nodes(["conv1"])
    view.duplicate_selection()  # a snapshot command: the graph is reset
    assert scene.item_for("relu1") is kept
    assert_in_sync(scene, doc)


def test_problem_marks_the_node_and_clears_when_fixed(view, doc):
    scene = view.graph_scene
    doc.undo_stack.push(SetParamsCommand(doc, "conv1", {"out_channels": 8, "kernel_size": 40}))
    qtbot_wait(scene)
    item = scene.item_for("conv1")
    assert item.severity == "error"
    message = doc.inference.problems_for("conv1")[0].message
    assert message in item.toolTip()
    assert "⚠" in item.toolTip()
    assert item.shape_text == ""
    assert scene.item_for("relu1").severity is None  # downstream: no repeated problem
    doc.undo_stack.undo()
    qtbot_wait(scene)
    assert item.severity is None and "⚠" not in item.toolTip()
    assert item.shape_text == "8×16×16"


def test_warning_is_orange_not_red(qtbot):
    g = Graph()
    g.add_node("Input", {"shape": [1, 8, 8]}, id="input", pos=(0, 0))
    g.add_node("Linear", {"out_features": 4}, id="fc", inputs=["input"], pos=(0, 90))
    # Data of unknown class count: only the Linear-on-a-map warning remains.
    doc = Document(Project(graph=g, data={"source": {"kind": "folder", "path": "x"}}))
    scene = GraphScene(doc)
    assert [p.severity for p in doc.inference.problems] == ["warning"]
    assert scene.item_for("fc").severity == "warning"
    assert doc.inference.problems[0].message in scene.item_for("fc").toolTip()


def qtbot_wait(scene: GraphScene) -> None:
    """Let the coalesced inference refresh run, as the event loop would."""
    QApplication.processEvents()
    assert not scene._refresh_timer.isActive()


def test_refresh_is_coalesced_and_moves_do_not_reinfer(view, doc, monkeypatch):
    scene = view.graph_scene
    calls = []
    original = scene.refresh_inference
    monkeypatch.setattr(scene, "refresh_inference", lambda: calls.append(1) or original())
    scene._refresh_timer.timeout.disconnect()
    scene._refresh_timer.timeout.connect(scene.refresh_inference)
    doc.undo_stack.beginMacro("many")
    for i in range(5):
        doc.undo_stack.push(AddNodeCommand(doc, "ReLU", {}, pos=(400, 90 * i)))
    doc.undo_stack.endMacro()
    QApplication.processEvents()
    assert len(calls) == 1
    doc.graph.move_node("fc", (10, 500))
    QApplication.processEvents()
    assert len(calls) == 1


# ---- selection ---------------------------------------------------------------------------


def test_selection_is_mirrored_both_ways(view, doc):
    scene = view.graph_scene
    doc.set_selection(["relu1", "fc"])
    assert {i.node_id for i in scene.selectedItems()} == {"relu1", "fc"}
    scene.item_for("conv1").setSelected(True)
    assert doc.selection == ["conv1", "relu1", "fc"]  # graph order
    view.select_all()
    assert doc.selection == doc.graph.ids
    scene.clearSelection()
    assert doc.selection == []


# ---- drops from the palette --------------------------------------------------------------


def test_drop_layer_adds_a_node_at_the_drop_point(view, doc):
    before = doc.graph.to_dict()
    count = doc.undo_stack.count()
    target = QPointF(320, 150)
    entered, dropped = drop(view, layer_mime("Conv2d"), target)
    assert entered and dropped
    new = [nid for nid in doc.graph.ids if nid not in {n["id"] for n in before["nodes"]}]
    assert len(new) == 1
    node = doc.graph.node(new[0])
    assert node.type == "Conv2d" and node.inputs == []
    assert node.pos == pytest.approx((320, 150), abs=2)
    assert doc.selection == new
    assert doc.undo_stack.count() == count + 1
    assert_in_sync(view.graph_scene, doc)
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before
    assert_in_sync(view.graph_scene, doc)


def test_drop_layer_on_an_edge_inserts_it(view, doc):
    before = doc.graph.to_dict()
    # The curve of a straight chain is a vertical line: aim exactly at it.
    on_line = QPointF(view.graph_scene.item_for("pool1").x(),
                      (view.graph_scene.item_for("relu1").y() + 270) / 2)
    drop(view, layer_mime("Dropout"), on_line)
    new = doc.selection[0]
    assert doc.graph.node(new).inputs == ["relu1"]
    assert doc.graph.node("pool1").inputs == [new]
    assert_in_sync(view.graph_scene, doc)
    doc.undo_stack.undo()  # one entry
    assert doc.graph.to_dict() == before


def test_drop_block_goes_after_the_selected_node(view, doc):
    doc.set_selection(["relu1"])
    count = doc.undo_stack.count()
    drop(view, layer_mime("Residual block", MIME_BLOCK), QPointF(400, 400))
    assert doc.undo_stack.count() == count + 1
    new = doc.selection
    assert len(new) >= 5
    assert any(doc.graph.node(nid).inputs == ["relu1"] for nid in new)
    assert all(doc.graph.node(nid).pos[1] > 180 for nid in new)
    assert doc.inference.nodes[new[-1]].shape == (8, 16, 16)
    assert_in_sync(view.graph_scene, doc)


def test_file_drops_are_left_to_the_window(view, doc):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile("/tmp/net.cnnproj")])
    entered, dropped = drop(view, mime, QPointF(0, 0))
    assert not entered and not dropped
    assert len(doc.graph) == 6


# ---- edits: one undo entry each; undo all / redo all -------------------------------------


def test_edits_are_single_undo_entries_and_undo_redo_round_trip(view, doc, qapp):
    scene = view.graph_scene
    stack = doc.undo_stack
    start = doc.graph.to_dict()
    steps = []

    def step(action):
        count = stack.count()
        result = action()
        assert stack.count() == count + 1, action
        assert_in_sync(scene, doc)
        steps.append(doc.graph.to_dict())
        return result

    scene.select_nodes(["conv1", "relu1"])
    view.copy_selection()
    assert qapp.clipboard().mimeData().hasFormat(MIME_NODES)
    pasted = step(view.paste)
    assert len(pasted) == 2 and not set(pasted) & {n["id"] for n in start["nodes"]}
    assert doc.graph.node(pasted[1]).inputs == [pasted[0]]  # internal edge kept
    assert doc.graph.node(pasted[0]).inputs == []  # outside edge dropped
    assert doc.graph.node(pasted[0]).pos == (40, 130)
    assert doc.selection == pasted
    again = step(view.paste)
    assert doc.graph.node(again[0]).pos == (80, 170)  # each paste a step further
    dup = step(view.duplicate_selection)
    assert len(dup) == 2 and doc.selection == dup
    scene.select_nodes(["pool1"])
    edge = next(e for e in scene.edge_items() if e.key == ("conv1", "relu1", 0))
    edge.setSelected(True)
    step(view.delete_selection)
    assert "pool1" not in doc.graph and doc.graph.node("relu1").inputs == []
    step(view.auto_layout)
    end = doc.graph.to_dict()
    while stack.canUndo():
        stack.undo()
    assert doc.graph.to_dict() == start
    assert_in_sync(scene, doc)
    while stack.canRedo():
        stack.redo()
    assert doc.graph.to_dict() == end
    assert_in_sync(scene, doc)


def test_paste_of_foreign_text_does_nothing(view, doc, qapp):
    qapp.clipboard().setText("not a graph")
    count = doc.undo_stack.count()
    assert view.paste() == []
    assert doc.undo_stack.count() == count


def test_delete_of_a_lone_edge_is_a_disconnect(view, doc):
    edge = next(e for e in view.graph_scene.edge_items() if e.key == ("pool1", "flat", 0))
    view.graph_scene.clearSelection()
    edge.setSelected(True)
    view.delete_selection()
    assert doc.graph.node("flat").inputs == []
    assert doc.undo_stack.undoText().startswith("Disconnect")


def test_context_menus(view, doc):
    scene = view.graph_scene
    menu = view.context_menu(scene.item_for("relu1").pos())
    actions = {a.text(): a for a in menu.actions() if not a.isSeparator()}
    assert set(actions) == {"Delete", "Duplicate", "Disconnect inputs", "Group", "Freeze",
                            "Unfreeze", "Freeze up to here"}
    assert doc.selection == ["relu1"]
    actions["Disconnect inputs"].trigger()
    assert doc.graph.node("relu1").inputs == []
    point = QPointF(scene.item_for("flat").x(), 315)  # on the straight pool1 → flat line
    menu = view.context_menu(point)
    assert [a.text() for a in menu.actions()] == ["Delete connection"]
    menu.actions()[0].trigger()
    assert doc.graph.node("flat").inputs == []
    menu = view.context_menu(QPointF(2000, 2000))
    assert "Auto layout" in [a.text() for a in menu.actions()]


# ---- zoom --------------------------------------------------------------------------------


def test_zoom_limits_fit_and_ctrl_wheel(view):
    for _ in range(40):
        view.zoom_in()
    assert view.zoom() == pytest.approx(4.0)
    for _ in range(60):
        view.zoom_out()
    assert view.zoom() == pytest.approx(MIN_ZOOM)  # 0.02: a 1,000-node network still fits
    view.reset_zoom()
    assert view.zoom() == pytest.approx(1.0)
    view.fit_all()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    for item in view.graph_scene.node_items():
        assert visible.contains(item.sceneBoundingRect())
    before = view.zoom()
    centre = QPointF(view.viewport().rect().center())
    wheel = QWheelEvent(centre, QPointF(view.viewport().mapToGlobal(centre.toPoint())),
                        QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), wheel)
    assert view.zoom() == pytest.approx(before * 1.2)
    view.center_on("fc")


# ---- scale -------------------------------------------------------------------------------


def test_a_300_node_graph_opens_fast_and_edits_touch_few_items(qtbot):
    g = Graph()
    x = g.add_node("Input", {"shape": [3, 32, 32]}, id="input").id
    while len(g) < 300:
        x = g.add_node("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1},
                       inputs=[x]).id
        x = g.add_node("ReLU", {}, inputs=[x]).id
    doc = Document(Project(graph=g))
    started = time.perf_counter()
    view = GraphView(doc)
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    QApplication.processEvents()
    elapsed = time.perf_counter() - started
    assert len(view.graph_scene.node_items()) == len(g) >= 300
    assert elapsed < 1.0, f"building the scene took {elapsed:.2f} s"
    print(f"300-node scene built and shown in {elapsed * 1000:.0f} ms")
    # Editing the last conv changes the text of only that node and the node after it.
    last_conv = [n.id for n in g if n.type == "Conv2d"][-1]
    updated = []
    for item in view.graph_scene.node_items():
        item.update = lambda *a, _id=item.node_id: updated.append(_id)
    doc.undo_stack.push(SetParamsCommand(doc, last_conv, {"out_channels": 4, "kernel_size": 3,
                                                          "padding": 1}))
    view.graph_scene.refresh_inference()
    assert set(updated) <= {last_conv, *g.consumers(last_conv)}
