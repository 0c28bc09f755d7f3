"""Auto Layout of a big network off the GUI thread (issue 15: no action holds the window
50 ms): the layout arrives as one undo entry, exactly as laying it out at once would leave
the graph; an edit made meanwhile drops it; a busy cursor shows while it runs."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import auto_layout
from cnnstudio.core.templates import get_template
from cnnstudio.project.model import Project
from cnnstudio.ui.canvas import GraphView, layout_runner
from cnnstudio.ui.commands import MoveNodesCommand
from cnnstudio.ui.document import Document

pytestmark = pytest.mark.gui


@pytest.fixture
def off_thread(monkeypatch):
    """Every network counts as big: the worker path, on a graph quick to build."""
    monkeypatch.setattr(layout_runner, "OFF_THREAD_FROM", 1)


def _view(qtbot, graph: Graph) -> GraphView:
    view = GraphView(Document(Project(graph=graph)))
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.graph_scene.flush()
    return view


def _scrambled() -> Graph:
    """The ResNet template with every node somewhere else and one block folded."""
    graph = get_template("resnet").graph()
    graph.move_nodes({n.id: (37.0 * i % 500, -53.0 * i) for i, n in enumerate(graph)})
    graph.groups.set_collapsed(graph.groups.ids[1], True)
    return graph


def _expected(graph: Graph, direction: str | None = None) -> dict:
    """The reference: core's auto_layout on a copy, at once."""
    copy = graph.copy()
    if direction is not None:
        copy.direction = direction
    auto_layout(copy)
    return copy.to_dict()


def _drag(doc: Document) -> None:
    """The user drags the input somewhere (one undo entry)."""
    doc.undo_stack.push(MoveNodesCommand(doc, {"input": (doc.graph.node("input").pos,
                                                         (1234.0, 567.0))}))


def _busy() -> bool:
    cursor = QApplication.overrideCursor()
    return cursor is not None and cursor.shape() == Qt.CursorShape.BusyCursor


def test_a_big_network_is_laid_out_on_a_worker_and_arrives_as_one_undo_entry(qtbot,
                                                                             off_thread):
    view = _view(qtbot, _scrambled())
    doc = view.document
    before, expected = doc.graph.to_dict(), _expected(doc.graph)
    assert expected != before
    shown = []
    view.show_laid_out = lambda: shown.append(True)  # the view shows it once it is there
    runner = layout_runner.runner(view.graph_scene)
    view.auto_layout()
    assert runner.pending and _busy()
    assert doc.graph.to_dict() == before and doc.undo_stack.count() == 0  # not yet
    qtbot.waitUntil(lambda: not runner.pending, timeout=10_000)
    assert doc.graph.to_dict() == expected
    assert doc.undo_stack.count() == 1 and doc.undo_stack.undoText() == "Auto layout"
    assert shown == [True] and not _busy()
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before
    doc.undo_stack.redo()
    assert doc.graph.to_dict() == expected


def test_an_edit_while_the_layout_runs_drops_the_stale_layout(qtbot, off_thread):
    view = _view(qtbot, _scrambled())
    doc = view.document
    runner = layout_runner.runner(view.graph_scene)
    shown = []
    view.show_laid_out = lambda: shown.append(True)
    view.auto_layout()
    # The result can only be delivered by the event loop, so this edit comes first.
    _drag(doc)
    edited = doc.graph.to_dict()
    qtbot.waitUntil(lambda: not runner.pending, timeout=10_000)
    QApplication.processEvents()
    assert doc.graph.to_dict() == edited  # the layout of the old graph was not applied
    assert doc.undo_stack.count() == 1 and shown == [] and not _busy()
    view.auto_layout()  # asked again, it lays out the graph as it is now
    qtbot.waitUntil(lambda: not runner.pending, timeout=10_000)
    assert doc.graph.to_dict() == _expected(doc.graph.copy()) and shown == [True]


def test_an_undo_while_the_layout_runs_drops_it_too(qtbot, off_thread):
    view = _view(qtbot, _scrambled())
    doc = view.document
    _drag(doc)
    runner = layout_runner.runner(view.graph_scene)
    view.auto_layout()
    doc.undo_stack.undo()
    undone = doc.graph.to_dict()
    qtbot.waitUntil(lambda: not runner.pending, timeout=10_000)
    QApplication.processEvents()
    assert doc.graph.to_dict() == undone and doc.undo_stack.index() == 0


def test_asking_twice_while_it_runs_makes_one_entry(qtbot, off_thread):
    view = _view(qtbot, _scrambled())
    doc = view.document
    expected = _expected(doc.graph)
    runner = layout_runner.runner(view.graph_scene)
    view.auto_layout()
    view.auto_layout()
    qtbot.waitUntil(lambda: not runner.pending, timeout=10_000)
    QApplication.processEvents()
    assert doc.graph.to_dict() == expected and doc.undo_stack.count() == 1 and not _busy()


def test_a_new_direction_arrives_from_the_worker_and_undoes_to_the_old(qtbot, off_thread):
    view = _view(qtbot, get_template("inception").graph())
    doc = view.document
    before, expected = doc.graph.to_dict(), _expected(doc.graph, "right")
    runner = layout_runner.runner(view.graph_scene)
    assert view.set_direction("right")
    assert doc.graph.direction == "down"  # not yet
    qtbot.waitUntil(lambda: not runner.pending, timeout=10_000)
    assert doc.graph.direction == "right" and doc.graph.to_dict() == expected
    assert doc.undo_stack.undoText() == "Layout left to right"
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before
    assert not view.set_direction("down")  # it flows down already: nothing to do


def test_a_u_net_laid_out_on_the_worker_is_still_a_u(qtbot, off_thread):
    graph = get_template("unet").graph()
    graph.move_nodes({n.id: (0.0, 90.0 * i) for i, n in enumerate(graph)})  # a column
    view = _view(qtbot, graph)
    doc = view.document
    expected = _expected(doc.graph)
    runner = layout_runner.runner(view.graph_scene)
    view.auto_layout()
    qtbot.waitUntil(lambda: not runner.pending, timeout=10_000)
    assert doc.graph.to_dict() == expected
    xs = {pos[0] for pos in (n.pos for n in doc.graph)}
    assert len(xs) >= 5  # the stages stand side by side: not one column


def test_nodes_without_a_place_get_one_from_the_worker(qtbot, off_thread):
    graph = get_template("vgg").graph()
    for node in graph:
        node.pos = None  # as a file without positions is read
    view = _view(qtbot, graph)
    doc = view.document
    expected = _expected(doc.graph)
    runner = layout_runner.runner(view.graph_scene)
    view.auto_layout()
    qtbot.waitUntil(lambda: not runner.pending, timeout=10_000)
    assert doc.graph.to_dict() == expected
    doc.undo_stack.undo()
    assert all(node.pos is None for node in doc.graph)


def test_a_failed_layout_ends_the_busy_cursor_and_is_reported(qtbot, off_thread,
                                                              monkeypatch):
    def broken(graph, direction=None, shapes=None):
        raise RuntimeError("layout broke")

    monkeypatch.setattr(layout_runner, "laid_out", broken)
    view = _view(qtbot, _scrambled())
    before = view.document.graph.to_dict()
    runner = layout_runner.runner(view.graph_scene)
    with qtbot.captureExceptions() as raised:
        view.auto_layout()
        qtbot.waitUntil(lambda: not runner.pending, timeout=10_000)
    assert [str(error) for _, error, _ in raised] == ["layout broke"]
    assert not _busy() and view.document.graph.to_dict() == before


def test_a_small_network_is_laid_out_at_once(qtbot):
    view = _view(qtbot, _scrambled())
    doc = view.document
    assert len(doc.graph) < layout_runner.OFF_THREAD_FROM
    expected = _expected(doc.graph)
    view.auto_layout()
    assert not layout_runner.runner(view.graph_scene).pending and not _busy()
    assert doc.graph.to_dict() == expected and doc.undo_stack.count() == 1
