"""Freezing layers in the window: the inspector's Trainable box, the canvas menu's Freeze /
Unfreeze / Freeze up to here (one undo entry each), frozen cards, and the summary's
trainable and frozen counts."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QCheckBox, QLabel, QWidget

from cnnstudio.core.graph import Graph
from cnnstudio.project.model import Project
from cnnstudio.ui.canvas import GraphView
from cnnstudio.ui.commands import push_snapshot
from cnnstudio.ui.document import Document

pytestmark = pytest.mark.gui


def chain_graph() -> Graph:
    """input → conv1 → bn1 → relu1 → conv2 → relu2 → flat → fc, with a side branch
    (side: conv from the input, added to conv2's output) that is no ancestor of relu1."""
    g = Graph()
    g.add_node("Input", {"shape": [1, 16, 16]}, id="input", pos=(0, 0))
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}, id="conv1",
               inputs=["input"], pos=(0, 90))
    g.add_node("BatchNorm2d", {}, id="bn1", inputs=["conv1"], pos=(0, 180))
    g.add_node("ReLU", {}, id="relu1", inputs=["bn1"], pos=(0, 270))
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}, id="conv2",
               inputs=["relu1"], pos=(0, 360))
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 1}, id="side", inputs=["input"],
               pos=(300, 270))
    g.add_node("Add", {}, id="add", inputs=["conv2", "side"], pos=(0, 450))
    g.add_node("Flatten", {}, id="flat", inputs=["add"], pos=(0, 540))
    g.add_node("Linear", {"out_features": 3}, id="fc", inputs=["flat"], pos=(0, 630))
    g.groups.add(["conv1", "bn1", "relu1"], "Stem", id="stem")
    return g


@pytest.fixture
def doc(qapp) -> Document:
    return Document(Project(graph=chain_graph()))


@pytest.fixture
def view(qtbot, doc) -> GraphView:
    v = GraphView(doc)
    qtbot.addWidget(v)
    v.resize(900, 800)
    v.show()
    v.graph_scene.refresh_inference()
    return v


def frozen(doc: Document) -> set[str]:
    return {n.id for n in doc.graph if not n.trainable}


def menu_actions(view: GraphView, point: QPointF) -> dict:
    return {a.text(): a for a in view.context_menu(point).actions() if not a.isSeparator()}


def test_freeze_up_to_here_freezes_the_layer_and_its_ancestors_in_one_entry(view, doc):
    scene = view.graph_scene
    actions = menu_actions(view, scene.item_for("conv2").pos())
    assert {"Freeze", "Unfreeze", "Freeze up to here"} <= set(actions)
    assert actions["Freeze"].isEnabled() and not actions["Unfreeze"].isEnabled()
    count = doc.undo_stack.count()
    actions["Freeze up to here"].trigger()
    assert frozen(doc) == {"input", "conv1", "bn1", "relu1", "conv2"}  # not side, not fc
    assert doc.undo_stack.count() == count + 1
    assert doc.undo_stack.undoText() == "Freeze up to conv2"
    assert scene.item_for("bn1").frozen and not scene.item_for("side").frozen
    assert "frozen" in scene.item_for("conv1").toolTip()
    doc.undo_stack.undo()
    assert frozen(doc) == set() and not scene.item_for("bn1").frozen
    doc.undo_stack.redo()
    assert frozen(doc) == {"input", "conv1", "bn1", "relu1", "conv2"}


def test_freeze_and_unfreeze_a_selection_and_a_block(view, doc):
    scene = view.graph_scene
    scene.select_nodes(["conv2", "fc"])
    actions = menu_actions(view, scene.item_for("fc").pos())
    assert doc.selection == ["conv2", "fc"]  # a node of the selection keeps it
    actions["Freeze"].trigger()
    assert frozen(doc) == {"conv2", "fc"}
    assert doc.undo_stack.undoText() == "Freeze 2 layers"
    actions = menu_actions(view, scene.item_for("fc").pos())
    assert actions["Unfreeze"].isEnabled()
    actions["Unfreeze"].trigger()
    assert frozen(doc) == set()

    doc.graph.groups.set_collapsed("stem", True)  # a folded block's card
    scene.flush()
    card = scene.group_item_for("stem")
    menu_actions(view, card.pos())["Freeze"].trigger()
    assert frozen(doc) == {"conv1", "bn1", "relu1"}
    scene.refresh_inference()
    assert "frozen" in card.params_text
    doc.undo_stack.undo()
    assert frozen(doc) == set()


def test_a_whole_graph_undo_keeps_the_cards_frozen_state(view, doc):
    scene = view.graph_scene
    doc.graph.set_trainable(["conv1"], False)
    assert scene.item_for("conv1").frozen
    push_snapshot(doc, "Rename", lambda g: g.rename_node("fc", "head"))
    doc.undo_stack.undo()  # the graph is swapped whole: items are synced to it
    assert scene.item_for("conv1").frozen and not scene.item_for("conv2").frozen


def test_the_inspector_checkbox_is_one_undo_entry_per_change(window, qtbot):
    doc = window.document
    doc.set_selection(["conv1"])
    inspector = window.findChild(QWidget, "inspector")
    check = inspector.findChild(QCheckBox, "trainableCheck")
    assert check is not None and check.isChecked()
    count = doc.undo_stack.count()
    check.click()
    assert not doc.graph.node("conv1").trainable
    assert doc.undo_stack.count() == count + 1 and doc.undo_stack.undoText() == "Freeze conv1"
    assert "(frozen)" in inspector.findChild(QWidget, "detail_params").text()
    check.click()
    assert doc.graph.node("conv1").trainable and doc.undo_stack.count() == count + 2
    doc.undo_stack.undo()  # the box follows the graph, and following is no new edit
    assert not check.isChecked() and doc.undo_stack.count() == count + 2
    doc.undo_stack.undo()
    assert check.isChecked() and doc.graph.node("conv1").trainable


def test_the_summary_and_status_bar_show_trainable_and_frozen_counts(window, qtbot):
    doc = window.document
    summary = window.findChild(QWidget, "modelSummary")
    totals = window.findChild(QLabel, "summaryTotals")
    status = window.findChild(QLabel, "statusParams")
    inference = doc.inference
    conv = inference.nodes["conv1"].params + inference.nodes["conv2"].params
    total = inference.total_params
    doc.graph.set_trainable(["conv1", "conv2"], False)
    qtbot.waitUntil(lambda: "frozen" in totals.text())
    plain = totals.text().replace("<b>", "").replace("</b>", "")
    assert f"{total:,} params ({total - conv:,} trainable, {conv:,} frozen)" in plain
    qtbot.waitUntil(lambda: status.text() == f"params: {total:,} ({conv:,} frozen)")
    model = summary.model()
    types = {model.index(r, 0).data(): model.index(r, 1).data() for r in range(model.rowCount())}
    assert types["conv1"].endswith("❄ frozen") and types["conv2"].endswith("❄ frozen")
    assert "frozen" not in types["classifier"]
    doc.graph.set_trainable(["conv1", "conv2"], True)
    qtbot.waitUntil(lambda: "frozen" not in totals.text())


def test_a_folded_summary_row_counts_its_frozen_layers(doc):
    from cnnstudio.ui.summary_model import SummaryModel

    model = SummaryModel(doc)
    model.set_folded(True)
    row = model.index_of("stem", 1)
    assert row.data() == "block · 3 layers"
    doc.graph.set_trainable(["conv1"], False)
    model.refresh()
    assert row.data() == "block · 3 layers  · 1 frozen"
    doc.graph.set_trainable(["bn1", "relu1"], False)
    model.refresh()
    assert row.data() == "block · 3 layers  ❄ frozen"
