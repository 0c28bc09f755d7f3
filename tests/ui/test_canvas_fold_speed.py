"""Folding and unfolding a 1,000-layer network does each piece of work once: the selection
is announced once however many selected cards a fold hides, the summary is not re-read
(a fold changes no shape), frames are kept and shown again rather than made anew, and
Qt's bounding-rect questions are answered in C++ (no Python `boundingRect`)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QApplication, QGraphicsScene

from cnnstudio.core.architectures import block_chain
from cnnstudio.core.graph import Graph
from cnnstudio.project import Project
from cnnstudio.ui import summary_model
from cnnstudio.ui.canvas import GraphView, editing, style
from cnnstudio.ui.canvas.edges import EdgeItem
from cnnstudio.ui.canvas.group_item import GroupFrame, GroupItem
from cnnstudio.ui.canvas.items import NodeItem
from cnnstudio.ui.commands import RenameGroupCommand, SetParamsCommand
from cnnstudio.ui.document import Document
from cnnstudio.ui.summary_table import SummaryPanel

pytestmark = pytest.mark.gui


def _view(qtbot, graph: Graph) -> GraphView:
    view = GraphView(Document(Project(graph=graph)))
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    QApplication.processEvents()
    return view


def _stages(graph: Graph) -> list[str]:
    return [g.id for g in graph.groups if g.parent is None]


def test_folding_a_selected_stage_announces_the_selection_once(qtbot):
    g = block_chain(300)
    view = _view(qtbot, g)
    scene, doc = view.graph_scene, view.document
    stage = max(_stages(g), key=lambda s: len(g.groups.nodes(s)))
    members = g.groups.nodes(stage)
    assert len(members) > 50
    scene.select_nodes(members)
    assert doc.selection == [n for n in g.ids if n in set(members)]
    heard: list[list[str]] = []
    doc.selection_changed.connect(heard.append)
    assert editing.set_folded(scene, [stage], True)
    # Hiding each selected card deselected it, and Qt said so each time (a selection
    # re-read per hidden card: ~200 ms for a 250-layer stage). Now: once for all of
    # them, once for the card that takes over the selection.
    assert len(heard) <= 2
    card = scene.group_item_for(stage)
    assert card is not None and card.isSelected()
    assert set(doc.selection) == set(members)
    assert not any(scene.item_for(n).isSelected() for n in members)
    assert editing.set_folded(scene, [stage], False)  # and back: the nodes selected
    assert set(doc.selection) == set(members)
    assert all(scene.item_for(n).isSelected() for n in members)


def test_a_fold_does_not_re_read_the_summary_but_edits_and_renames_do(qtbot, monkeypatch):
    calls: list[int] = []
    real = summary_model.SummaryModel.refresh

    def counting(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(summary_model.SummaryModel, "refresh", counting)
    g = block_chain(120)
    view = _view(qtbot, g)
    doc = view.document
    panel = SummaryPanel(doc)
    qtbot.addWidget(panel)
    panel.show()
    panel.table.set_folded(True)  # blocks as rows: their names show
    qtbot.wait(30)  # the deferred refreshes run
    calls.clear()
    stages = _stages(g)
    editing.set_folded(view.graph_scene, stages, True)
    qtbot.wait(30)  # the deferred refreshes run
    editing.set_folded(view.graph_scene, stages, False)
    qtbot.wait(30)  # the deferred refreshes run
    assert calls == []  # shapes and rows are those of before
    conv = next(n.id for n in g if n.type == "Conv2d")
    params = dict(g.node(conv).params, out_channels=int(g.node(conv).params["out_channels"]) + 8)
    doc.undo_stack.push(SetParamsCommand(doc, conv, params))
    qtbot.wait(30)  # the deferred refreshes run
    assert len(calls) == 1  # a real edit is read again...
    doc.undo_stack.push(RenameGroupCommand(doc, stages[0], "Renamed stage"))
    qtbot.wait(30)  # the deferred refreshes run
    assert len(calls) == 2  # ...and so is a new block name, the inference unchanged
    assert panel.table.summary.index_of(stages[0]).data() == "Renamed stage"


def test_frames_are_kept_while_folded_and_shown_again_where_they_were(qtbot):
    g = block_chain(200)
    view = _view(qtbot, g)
    scene = view.graph_scene
    stage = _stages(g)[1]
    inner = [c for c in g.groups.children(stage) if c in g.groups]
    frames = {gid: scene.frame_for(gid) for gid in [stage, *inner]}
    outlines = {gid: frame.frame_rect() for gid, frame in frames.items()}
    assert all(frame is not None and frame.isVisible() for frame in frames.values())
    assert editing.set_folded(scene, [stage], True)
    for gid, frame in frames.items():
        assert scene.frame_for(gid) is None  # not shown: folded, or inside the fold
        assert frame.scene() is scene and not frame.isVisible()
    assert editing.set_folded(scene, [stage], False)
    for gid, frame in frames.items():
        assert scene.frame_for(gid) is frame and frame.isVisible()
        assert frame.frame_rect() == outlines[gid]
    # A visible frame surrounds its members' cards, as worked out by Qt itself.
    for gid, frame in frames.items():
        united = QRectF()
        for member in g.groups.children(gid):
            item = scene.frame_for(member) or scene.item_for(member)
            shown = item.frame_rect() if isinstance(item, GroupFrame) \
                else item.sceneBoundingRect()
            united = united.united(shown)
        assert frame.frame_rect().contains(united)
    # An ungrouped block's kept frame leaves the scene with it.
    assert editing.set_folded(scene, [inner[0]], True)
    spare = frames[inner[0]]
    assert editing.ungroup(scene, inner[0])
    scene.flush()
    assert spare.scene() is None


def test_unfolded_positions_frames_and_routes_are_those_of_before(qtbot):
    g = block_chain()
    view = _view(qtbot, g)
    scene = view.graph_scene
    scene.flush()
    before = {n.id: n.pos for n in g}
    frames = {gid: f.frame_rect() for gid, f in scene.groups.frames.items()}
    routes = {e: scene.router.drawn_ends(e) for e in scene.edge_items()}
    stages = _stages(g)
    for folded in (True, False):
        assert editing.set_folded(scene, stages, folded)
        scene.flush()
    middle = [gid for gid in g.groups.ids if gid not in stages][len(g.groups) // 2]
    for folded in (True, False):
        assert editing.set_folded(scene, [middle], folded)
        scene.flush()
    assert {n.id: n.pos for n in g} == before
    assert {n.id: (i.x(), i.y()) for n in g if (i := scene.item_for(n.id))} == before
    assert {gid: f.frame_rect() for gid, f in scene.groups.frames.items()} == frames
    assert {e: scene.router.drawn_ends(e) for e in scene.edge_items()} == routes


def test_qt_asks_no_python_method_for_bounding_rects(qtbot):
    # Qt asks an item for its bounding rect several times per move, show and paint; a
    # Python override made unfolding a 1,000-layer network answer ~10,000 such calls.
    for cls in (NodeItem, GroupItem, GroupFrame, EdgeItem):
        assert "boundingRect" not in vars(cls)
    node = NodeItem("conv1", "Conv2d")
    margin = style.PORT_RADIUS + 5
    w, h = style.NODE_WIDTH, style.NODE_HEIGHT
    assert node.boundingRect() == QRectF(-w / 2 - margin, -h / 2 - margin,
                                         w + 2 * margin, h + 2 * margin)
    assert node.boundingRect().contains(node.shape().boundingRect())
    card = GroupItem("block1", "Block")
    assert card.boundingRect().contains(card.shape().boundingRect())
    frame = GroupFrame("block1", "Block")
    frame.set_rect(QRectF(0, 0, 300, 200))
    assert frame.boundingRect().contains(frame.frame_rect())
    scene = _view(qtbot, block_chain(60)).graph_scene
    assert scene.itemIndexMethod() == QGraphicsScene.ItemIndexMethod.NoIndex
    for edge in scene.edge_items():
        assert edge.boundingRect().contains(edge.shape().boundingRect())
