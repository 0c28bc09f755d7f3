"""Issue 15 point 4: Fit fits (folding the deepest level of blocks that keeps it legible),
the overview map, Find, and the View menu's actions (SPEC §2.3)."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QPalette
from PySide6.QtWidgets import QApplication

from cnnstudio.core.architectures import block_chain, googlenet, resnet50
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import auto_layout as layout_graph
from cnnstudio.core.templates import get_template
from cnnstudio.project import Project
from cnnstudio.ui.canvas import GraphView, editing, style
from cnnstudio.ui.canvas.find import NO_MATCH, find_matches
from cnnstudio.ui.canvas.fitting import fold_levels, plan_folding
from cnnstudio.ui.canvas.view import FIT_LEGIBLE_ZOOM, MIN_LEGIBLE_ZOOM, MIN_ZOOM
from cnnstudio.ui.document import Document


def _view(qtbot, graph: Graph, size=(1280, 800)) -> GraphView:
    view = GraphView(Document(Project(graph=graph)))
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    QApplication.processEvents()
    return view


def _ungrouped(graph: Graph) -> Graph:
    for group_id in reversed(graph.groups.ids):  # inner groups were made last
        graph.groups.remove(group_id)
    return graph


def _outside(view: GraphView) -> list[str]:
    seen = view.visible_scene_rect()
    return [item.node_id for item in view.visible_items()
            if not seen.contains(item.sceneBoundingRect())]


def _collapsed(graph: Graph) -> set[str]:
    return {g.id for g in graph.groups if g.collapsed}


def _view_centre(view: GraphView) -> QPointF:
    return view.mapToScene(view.viewport().rect().center())


# ---- Fit --------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: get_template("unet").graph(),
    lambda: get_template("resnet").graph(),
    resnet50,
    block_chain,
    lambda: _ungrouped(block_chain()),
], ids=["unet", "resnet-template", "resnet50", "chain-1000", "chain-1000-ungrouped"])
def test_fit_leaves_no_card_outside_the_view(qtbot, make):
    view = _view(qtbot, make())
    view.fit_all()
    QApplication.processEvents()
    assert view.visible_items()
    assert _outside(view) == []
    # Nothing of the content (frames, folded cards) hangs outside either.
    assert view.visible_scene_rect().contains(view.content_rect())


def test_fit_shows_a_huge_ungrouped_network_below_the_users_zoom_limit(qtbot):
    view = _view(qtbot, _ungrouped(block_chain()))
    view.fit_all()
    fitted = view.zoom()
    assert fitted < MIN_ZOOM  # 1,000 layers in one long column
    assert view.document.undo_stack.count() == 0  # no group to fold: nothing changed
    view.zoom_out()
    assert view.zoom() == pytest.approx(fitted)  # not further out than Fit went
    view.zoom_in()
    assert view.zoom() > fitted


def test_the_users_zoom_out_stops_at_the_minimum(qtbot):
    view = _view(qtbot, get_template("xo").graph())
    for _ in range(40):
        view.zoom_out()
    assert view.zoom() == pytest.approx(MIN_ZOOM)


def _levels(graph: Graph) -> list[list[str]]:
    """The blocks of each nesting depth, deepest first (found without fitting.py)."""
    groups = graph.groups
    by_depth: dict[int, list[str]] = {}
    for group in groups:
        if not any(groups.get(a).collapsed for a in groups.ancestors(group.id)) \
                and not group.collapsed:
            by_depth.setdefault(len(groups.ancestors(group.id)), []).append(group.id)
    return [by_depth[d] for d in sorted(by_depth, reverse=True)]


def _fitted_zoom_folding(view: GraphView, blocks: list[str]) -> tuple[float, QRectF]:
    """Really fold `blocks`, measure the fitted zoom and the content, then undo."""
    stack = view.document.undo_stack
    before = stack.index()
    assert editing.set_folded(view.graph_scene, blocks, True)
    QApplication.processEvents()
    rect = QRectF(view.graph_scene.content_rect())
    stack.setIndex(before)
    QApplication.processEvents()
    return view.fit_zoom(rect), rect


@pytest.mark.parametrize(("make", "size", "folds"), [
    (resnet50, (1280, 800), "blocks"),  # 24 rows: legible with the stages unfolded
    (resnet50, (500, 240), "stages"),
    (resnet50, (300, 130), "outermost, illegible"),
    (block_chain, (1280, 800), "stages"),  # 141 blocks: too many rows to read
    (lambda: get_template("unet").graph(), (1280, 800), "nothing"),
], ids=["resnet50", "resnet50-small", "resnet50-tiny", "chain-1000",
        "unet"])
def test_fit_folds_the_deepest_level_that_is_legible_and_undo_restores_it(
        qtbot, make, size, folds):
    graph = make()
    view = _view(qtbot, graph, size)
    positions = {n.id: n.pos for n in graph}
    expanded_zoom = view.fit_zoom(view.content_rect())
    if folds == "nothing":
        assert expanded_zoom >= FIT_LEGIBLE_ZOOM
        view.fit_all()
        assert _collapsed(graph) == set() and view.document.undo_stack.count() == 0
        return
    assert expanded_zoom < FIT_LEGIBLE_ZOOM
    levels = _levels(graph)  # deepest first; fitted zoom of each, folded for real
    zooms = [_fitted_zoom_folding(view, level)[0] for level in levels]
    deepest_legible = next((i for i, z in enumerate(zooms) if z >= FIT_LEGIBLE_ZOOM), None)
    expected_level = {"blocks": 0, "stages": 1, "outermost, illegible": None}[folds]
    assert deepest_legible == expected_level
    assert view.document.undo_stack.index() == 0 and _collapsed(graph) == set()
    view.fit_all()
    QApplication.processEvents()
    assert _collapsed(graph) == set(levels[-1 if expected_level is None else expected_level])
    if folds == "blocks":  # the bottleneck blocks fold, the stages show as frames
        names = {graph.groups.get(g).name for g in _collapsed(graph)}
        assert len(names) == 16 and all(n.startswith("Bottleneck") for n in names)
        frames = view.graph_scene.groups.frames
        assert {graph.groups.get(g).name for g in frames} >= {"Stage 1", "Stage 4"}
    assert view.document.undo_stack.count() == 1
    fitted = min(view.fit_zoom(view.content_rect()), 1.5)
    assert view.zoom() == pytest.approx(fitted)
    if expected_level is not None:
        assert view.zoom() >= FIT_LEGIBLE_ZOOM
    assert _outside(view) == []
    assert view.visible_scene_rect().contains(view.content_rect())
    view.document.undo_stack.undo()
    QApplication.processEvents()
    assert _collapsed(graph) == set()
    assert {n.id: n.pos for n in graph} == positions
    assert all(g.fold_shift == 0.0 for g in graph.groups)
    assert len(view.visible_items()) == len(graph)


def test_fit_in_the_window_folds_resnet50s_blocks_when_that_is_legible(window, qtbot):
    from pathlib import Path

    window.resize(1280, 800)
    window.show()
    sample = Path(__file__).parents[2] / "sample_projects" / "real-size" / "resnet50.cnnproj"
    assert window.open_project(sample)
    QApplication.processEvents()
    view = window.findChild(GraphView, "graphView")
    graph = view.document.graph
    levels = _levels(graph)
    zooms = [_fitted_zoom_folding(view, level)[0] for level in levels]
    expected = next((lv for lv, z in zip(levels, zooms, strict=True)
                     if z >= FIT_LEGIBLE_ZOOM), levels[-1])
    window.findChild(QAction, "actionFit").trigger()
    QApplication.processEvents()
    assert _collapsed(graph) == set(expected)
    if zooms[0] >= FIT_LEGIBLE_ZOOM:  # the blocks folded inside their stages' frames
        assert all(graph.groups.get(g).name.startswith("Bottleneck") for g in expected)
    assert _outside(view) == []
    assert view.document.undo_stack.count() == 1


def _two_long_branches() -> Graph:
    """Input → two 40-layer branches side by side, each a block → Add: folding a block
    moves nothing (the other branch stands beside it), so the network stays as long."""
    from cnnstudio.core.layout import auto_layout

    g = Graph()
    g.add_node("Input", {"shape": [1, 8, 8]}, id="input")
    ends = []
    for side in ("left", "right"):
        previous, members = "input", []
        for i in range(40):
            previous = g.add_node("ReLU", {}, id=f"{side}{i}", inputs=[previous]).id
            members.append(previous)
        g.groups.add(members, side.title())
        ends.append(previous)
    g.add_node("Add", {}, id="join", inputs=ends)
    auto_layout(g)
    return g


def test_fit_does_not_fold_when_folding_would_not_show_the_network_larger(qtbot):
    view = _view(qtbot, _two_long_branches(), size=(700, 390))
    unfolded = view.fit_zoom(view.content_rect())
    assert unfolded < FIT_LEGIBLE_ZOOM  # too small to read: Fit considers folding
    view.fit_all()
    assert _collapsed(view.document.graph) == set()
    assert view.document.undo_stack.count() == 0
    assert _outside(view) == []
    assert view.zoom() == pytest.approx(unfolded, rel=0.01)


def test_fit_leaves_folded_blocks_folded(qtbot):
    graph = resnet50()
    view = _view(qtbot, graph)
    stage = next(g.id for g in graph.groups if g.name == "Stage 3")
    assert editing.set_folded(view.graph_scene, [stage], True)
    view.fit_all()
    blocks = {g.id for g in graph.groups if g.name.startswith("Bottleneck")
              and stage not in graph.groups.ancestors(g.id)}
    assert _collapsed(graph) == blocks | {stage}
    view.document.undo_stack.undo()
    assert _collapsed(graph) == {stage}


def _right(graph: Graph) -> Graph:
    graph.direction = "right"
    layout_graph(graph)
    return graph


@pytest.mark.parametrize("make", [
    resnet50, lambda: _right(googlenet()), lambda: get_template("unet").graph(), block_chain,
], ids=["resnet50", "googlenet-right", "unet", "chain-1000"])
def test_fit_predicts_each_foldings_extent_exactly_and_fast(qtbot, make):
    graph = make()
    view = _view(qtbot, graph)
    # Some blocks folded already (every third inner one): their cards count as they are.
    inner = [g.id for g in graph.groups if g.parent is not None][::3]
    if inner:
        assert editing.set_folded(view.graph_scene, inner, True)
        QApplication.processEvents()
    for level in fold_levels(graph):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            plan = plan_folding(graph, level)
            times.append(time.perf_counter() - start)
        assert min(times) < 0.05
        _, real = _fitted_zoom_folding(view, plan.order)
        assert plan.rect().getCoords() == pytest.approx(real.getCoords())


def test_fit_keeps_a_legible_network_unfolded(qtbot):
    graph = get_template("resnet").graph()
    view = _view(qtbot, graph)
    view.fit_all()
    assert view.zoom() >= FIT_LEGIBLE_ZOOM
    assert _collapsed(graph) == set()
    assert view.document.undo_stack.count() == 0


def test_zooming_and_scrolling_do_not_measure_the_network_again(qtbot, monkeypatch):
    view = _view(qtbot, _ungrouped(block_chain()))
    view.fit_all()
    scene = view.graph_scene
    calls = []
    measure = scene.content_rect
    monkeypatch.setattr(scene, "content_rect", lambda: calls.append(1) or measure())
    for _ in range(10):
        view.zoom_in()
    view.verticalScrollBar().setValue(view.verticalScrollBar().value() + 200)
    QApplication.processEvents()
    assert calls == []  # cached: a wheel step walks no 1,000 items
    view.document.graph.move_node("input", (0.0, -500.0))  # an edit: measured afresh
    view.fit_all()
    assert calls
    assert _outside(view) == []


def test_showing_a_node_hidden_in_a_folded_block_scrolls_to_the_blocks_card(qtbot):
    graph = resnet50()
    view = _view(qtbot, graph)
    stage = next(g.id for g in graph.groups if g.name == "Stage 4")
    assert editing.set_folded(view.graph_scene, [stage], True)
    view.center_on(graph.groups.nodes(stage)[3])  # e.g. from the problems list
    card = view.graph_scene.group_item_for(stage)
    assert (card.sceneBoundingRect().center() - _view_centre(view)).manhattanLength() < 20
    assert graph.groups.get(stage).collapsed  # nothing unfolded


# ---- Find -------------------------------------------------------------------------------

def test_find_matches_ids_first_then_types_then_blocks(qapp):
    graph = resnet50()
    matches = find_matches(graph, "CONV1")
    assert matches[0] == "conv1"  # the exact id first, whatever the case typed
    assert all("conv1" in m for m in matches)
    by_type = find_matches(graph, "maxpool")
    assert by_type and all(graph.node(m).type == "MaxPool2d" for m in by_type)
    blocks = find_matches(graph, "stage 3")
    assert [graph.groups.get(b).name for b in blocks] == ["Stage 3"]
    assert find_matches(graph, "   ") == []


def _find(view: GraphView, qtbot, text: str) -> None:
    view.find_bar.open()
    field = view.find_bar.field
    field.clear()
    qtbot.keyClicks(field, text)


def test_find_by_id_selects_and_centres_the_node_at_a_legible_zoom(qtbot):
    view = _view(qtbot, _ungrouped(block_chain()))
    view.fit_all()
    target = "relu300" if "relu300" in view.document.graph else list(view.document.graph.ids)[600]
    _find(view, qtbot, target)
    qtbot.keyClick(view.find_bar.field, Qt.Key.Key_Return)
    assert view.document.selection == [target]
    assert view.zoom() >= MIN_LEGIBLE_ZOOM
    item = view.graph_scene.item_for(target)
    assert view.visible_scene_rect().contains(item.sceneBoundingRect())
    centre = item.sceneBoundingRect().center()
    assert (centre - _view_centre(view)).manhattanLength() < 20
    assert view.find_bar.status.text().startswith("1 of ")


def test_find_by_type_cycles_through_the_matches(qtbot):
    view = _view(qtbot, get_template("resnet").graph())
    bar = view.find_bar
    _find(view, qtbot, "batchnorm")
    matches = bar.matches
    assert len(matches) >= 3
    graph = view.document.graph
    assert all(graph.node(m).type.startswith("BatchNorm") for m in matches)
    assert bar.status.text() == f"{len(matches)} matches"
    qtbot.keyClick(bar.field, Qt.Key.Key_Return)
    assert view.document.selection == [matches[0]]
    qtbot.keyClick(bar.field, Qt.Key.Key_Return)  # Enter again: the next one
    assert view.document.selection == [matches[1]]
    assert bar.status.text() == f"2 of {len(matches)}"
    bar.previous_match()  # Shift+F3
    assert view.document.selection == [matches[0]]
    bar.previous_match()  # wraps round to the last
    assert view.document.selection == [matches[-1]]
    assert bar.status.text() == f"{len(matches)} of {len(matches)}"


def test_find_keeps_up_with_edits_made_while_it_is_open(qtbot):
    from cnnstudio.ui.commands import AddNodeCommand

    view = _view(qtbot, get_template("xo").graph())
    _find(view, qtbot, "gelu")
    assert view.find_bar.status.text() == NO_MATCH
    doc = view.document
    doc.undo_stack.push(AddNodeCommand(doc, "GELU", {}, (0.0, 900.0)))
    qtbot.waitUntil(lambda: view.find_bar.status.text() == "1 match")
    completer = view.find_bar.field.completer()
    assert "GELU" in completer.model().stringList()


def test_find_recounts_after_an_edit_once_a_match_was_shown(qtbot):
    view = _view(qtbot, get_template("resnet").graph())
    bar, doc = view.find_bar, view.document
    _find(view, qtbot, "batchnorm")
    count = len(bar.matches)
    qtbot.keyClick(bar.field, Qt.Key.Key_Return)
    qtbot.keyClick(bar.field, Qt.Key.Key_Return)
    second = bar.matches[1]
    first = bar.matches[0]
    view.graph_scene.select_nodes([first])
    view.delete_selection()  # a match before the shown one goes: the place follows it
    qtbot.waitUntil(lambda: bar.status.text() == f"1 of {count - 1}")
    assert second in bar.matches
    view.graph_scene.select_nodes([m for m in bar.matches])
    view.delete_selection()  # every match gone
    qtbot.waitUntil(lambda: bar.status.text() == NO_MATCH)
    doc.undo_stack.undo()
    qtbot.waitUntil(lambda: bar.status.text() == f"{count - 1} matches")


def test_find_reveals_a_node_inside_a_folded_block(qtbot):
    graph = resnet50()
    view = _view(qtbot, graph)
    stage = next(g.id for g in graph.groups if g.name == "Stage 2")
    block = next(g for g in graph.groups.children(stage) if g in graph.groups)
    assert editing.set_folded(view.graph_scene, [stage, block], True)
    target = graph.groups.nodes(block)[1]
    assert graph.groups.shown_as(target) == stage
    before = view.document.undo_stack.count()
    _find(view, qtbot, target)
    qtbot.keyClick(view.find_bar.field, Qt.Key.Key_Return)
    assert graph.groups.shown_as(target) == target  # both folds opened
    assert view.document.undo_stack.count() == before + 1  # as one undo entry
    assert view.document.selection == [target]
    item = view.graph_scene.item_for(target)
    assert item.isVisible()
    assert view.visible_scene_rect().contains(item.sceneBoundingRect())


def test_find_a_block_by_name_selects_its_card_or_opens_the_blocks_around_it(qtbot):
    graph = resnet50()
    view = _view(qtbot, graph)
    top = [g.id for g in graph.groups if g.parent is None]
    assert editing.set_folded(view.graph_scene, top, True)  # Stem, Stage 1–4, Classifier
    stage3 = next(g.id for g in graph.groups if g.name == "Stage 3")
    _find(view, qtbot, "stage 3")
    qtbot.keyClick(view.find_bar.field, Qt.Key.Key_Return)
    card = view.graph_scene.group_item_for(stage3)
    assert card is not None and card.isSelected()
    assert set(view.document.selection) == set(graph.groups.nodes(stage3))
    assert (card.sceneBoundingRect().center() - _view_centre(view)).manhattanLength() < 20
    # A block inside a folded stage: the stage opens (the block itself stays as it was).
    block = next(g for g in graph.groups if g.name == "Bottleneck 7")
    stage = graph.groups.parent_of(block.id)
    assert graph.groups.get(stage).collapsed
    _find(view, qtbot, "bottleneck 7")
    qtbot.keyClick(view.find_bar.field, Qt.Key.Key_Return)
    assert not graph.groups.get(stage).collapsed and not block.collapsed
    assert set(view.document.selection) == set(graph.groups.nodes(block.id))


def test_find_reports_no_match_in_red_and_esc_gives_the_canvas_back(qtbot):
    view = _view(qtbot, get_template("resnet").graph())
    bar = view.find_bar
    view.activateWindow()
    _find(view, qtbot, "conv")
    normal = bar.field.palette().color(QPalette.ColorRole.Base)
    qtbot.keyClicks(bar.field, "zzz")
    assert bar.status.text() == NO_MATCH
    assert bar.field.palette().color(QPalette.ColorRole.Base) != normal
    qtbot.keyClick(bar.field, Qt.Key.Key_Return)
    assert view.document.selection == []
    bar.field.setText("conv")
    assert bar.field.palette().color(QPalette.ColorRole.Base) == normal
    qtbot.keyClick(bar.field, Qt.Key.Key_Escape)
    assert bar.isHidden()
    assert view.window().focusWidget() is view


# ---- overview map -----------------------------------------------------------------------

def test_overview_shows_when_the_network_does_not_fit_and_clicks_move_the_view(qtbot):
    view = _view(qtbot, _ungrouped(resnet50()), size=(900, 600))
    view.set_zoom(1.0)
    view.center_on_point(QPointF(0, 0))
    overview = view.overview
    assert overview.isVisible()
    assert view.viewport().geometry().contains(overview.geometry())
    target = QPoint(overview.width() // 2, overview.height() - 20)
    qtbot.mouseClick(overview, Qt.MouseButton.LeftButton, pos=target)
    expected = overview.to_scene(QPointF(target))
    assert (_view_centre(view) - expected).manhattanLength() < 4
    assert expected.y() > 5000  # far down the long column: the view really moved
    overview.set_enabled(False)
    assert overview.isHidden()
    overview.set_enabled(True)
    view.fit_all(fold=False)
    assert overview.isHidden()  # the whole network is in view: nothing to navigate


def test_overview_draws_the_cards_and_the_visible_region(qtbot):
    view = _view(qtbot, _ungrouped(resnet50()), size=(900, 600))
    view.set_zoom(1.0)
    view.center_on_point(QPointF(0, 0))
    image = view.overview.grab().toImage()
    colours = {image.pixelColor(x, y).name() for x in range(0, image.width(), 2)
               for y in range(0, image.height(), 2)}
    conv = style.category_color("Convolution").name()
    assert conv in colours  # the convolution cards, in their category colour


def test_scrolling_repaints_the_outline_only_and_an_edit_redraws_the_cards(qtbot):
    view = _view(qtbot, _ungrouped(resnet50()), size=(900, 600))
    view.set_zoom(1.0)
    overview = view.overview
    overview.repaint()
    cards = overview._pixmap
    assert cards is not None
    bar = view.verticalScrollBar()
    bar.setValue(bar.value() + 300)
    overview.repaint()
    assert overview._pixmap is cards  # the cards were not drawn again
    view.document.set_selection(["conv1"])  # the selection is drawn: new cards
    qtbot.waitUntil(lambda: overview._pixmap is not cards)


def test_a_parameter_edit_leaves_the_overview_as_drawn_and_a_move_redraws_it(qtbot):
    from cnnstudio.ui.commands import MoveNodesCommand, SetParamsCommand

    view = _view(qtbot, _ungrouped(resnet50()), size=(900, 600))
    view.set_zoom(1.0)
    overview, doc = view.overview, view.document
    qtbot.wait(150)  # the map drawn after opening
    overview.repaint()
    cards = overview._pixmap
    params = dict(doc.graph.node("conv1").params, out_channels=32)
    doc.undo_stack.push(SetParamsCommand(doc, "conv1", params))
    qtbot.wait(150)
    overview.repaint()
    assert overview._pixmap is cards  # nothing on the map changed
    x, y = doc.graph.node("conv1").pos
    doc.undo_stack.push(MoveNodesCommand(doc, {"conv1": ((x, y), (x + 40, y))}))
    qtbot.waitUntil(lambda: overview._pixmap is not cards)


def test_the_canvas_alone_opens_find_with_ctrl_f_and_closes_it_with_esc(qtbot):
    view = _view(qtbot, get_template("xo").graph())
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert view.find_bar.isVisible()
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert view.find_bar.isHidden()


# ---- actions ----------------------------------------------------------------------------

def test_view_actions_carry_their_object_names(window):
    for name, shortcut in (("actionFit", "Ctrl+0"), ("actionAutoLayout", "Ctrl+L"),
                           ("actionFind", "Ctrl+F")):
        action = window.findChild(QAction, name)
        assert action is not None, name
        assert action.shortcut().toString() == shortcut
    assert window.findChild(QAction, "actionOverview").isChecked()


def test_no_two_window_actions_share_a_shortcut(window):
    seen: dict[str, str] = {}
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            text = key.toString()
            assert text not in seen, f"{text}: {seen.get(text)} and {action.text()}"
            seen[text] = action.text()


def test_find_action_opens_the_bar(window, qtbot):
    window.show()
    window.findChild(QAction, "actionFind").trigger()
    bar = window.view.find_bar
    assert bar.isVisible()
    qtbot.keyClicks(bar.field, "relu1")
    window.findChild(QAction, "actionFindNext").trigger()  # F3
    assert window.document.selection == ["relu1"]


def test_layout_direction_lays_out_left_to_right_as_one_undo_entry(window):
    graph = window.project.graph
    down = window.findChild(QAction, "actionDirectionDown")
    right = window.findChild(QAction, "actionDirectionRight")
    assert down.isChecked() and not right.isChecked()
    before = {n.id: n.pos for n in graph}
    right.trigger()
    graph = window.project.graph
    assert graph.direction == "right"
    assert right.isChecked() and not down.isChecked()
    assert window.undo_stack.count() == 1
    first, last = graph.node("input").pos, graph.node("classifier").pos
    assert last[0] - first[0] > abs(last[1] - first[1])  # the flow runs across now
    window.undo_stack.undo()
    graph = window.project.graph
    assert graph.direction == "down"
    assert down.isChecked()
    assert {n.id: n.pos for n in graph} == before


def test_a_layout_too_long_to_read_whole_shows_its_start_legibly(qtbot):
    view = _view(qtbot, get_template("resnet").graph(), size=(900, 600))
    assert view.set_direction("right")
    assert view.document.undo_stack.count() == 1  # the layout only: nothing folded
    assert view.zoom() >= FIT_LEGIBLE_ZOOM
    seen = view.visible_scene_rect()
    assert seen.contains(view.graph_scene.item_for("input").sceneBoundingRect())
    assert view.overview.isVisible()  # the rest is on the map
    assert not view.set_direction("right")  # already so: no second entry
    assert view.document.undo_stack.count() == 1
