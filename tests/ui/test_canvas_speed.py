"""The canvas stays responsive on big and odd graphs: work split over event-loop turns
(edges routed near the view first, the overview map redrawn a turn later), a cheap
background, and routing that never walks an enormous grid."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication

from cnnstudio.core.architectures import block_chain
from cnnstudio.core.graph import Graph
from cnnstudio.project import Project
from cnnstudio.ui.canvas import GraphView, editing, style
from cnnstudio.ui.canvas.card_index import CardIndex
from cnnstudio.ui.canvas.scene import ROUTE_AT_ONCE
from cnnstudio.ui.document import Document

pytestmark = pytest.mark.gui


def _view(qtbot, graph: Graph) -> GraphView:
    view = GraphView(Document(Project(graph=graph)))
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    QApplication.processEvents()
    return view


def _drawn_right(view: GraphView) -> None:
    """Every visible edge runs from its source item's port to its target item's."""
    scene = view.graph_scene
    for edge in scene.edge_items():
        ends = scene.edge_ends(edge)
        if ends is None:
            continue
        source, target, slot, count = ends
        start, end = scene.router.drawn_ends(edge)
        assert start == source.pos() + source.output_anchor()
        assert end == (target.pos() + target.input_anchor(slot, count)
                       - QPointF(0, style.PORT_RADIUS))


def test_nodes_a_billion_units_apart_route_at_once(qtbot):
    # Positions are clamped to ±1e9: an edge that long once made the routing grid walk
    # every 256-unit cell of its bounding box (hours, and gigabytes).
    g = Graph()
    g.add_node("Input", {"shape": [1, 8, 8]}, id="a", pos=(-1e9, -1e9))
    g.add_node("ReLU", {}, id="mid", inputs=["a"], pos=(0.0, 0.0))
    g.add_node("ReLU", {}, id="b", inputs=["a"], pos=(1e9, 1e9))
    g.add_node("Add", {}, id="c", inputs=["b", "mid"], pos=(1e9, -1e9))
    started = time.perf_counter()
    view = _view(qtbot, g)
    scene = view.graph_scene
    view.document.graph.move_node("mid", (5e8, 3e8))
    scene.flush()
    assert time.perf_counter() - started < 2.0
    assert CardIndex.cell_span((-1e9, -1e9, 1e9, 1e9)) is None  # too many cells to walk
    _drawn_right(view)


def test_unfolding_a_1000_node_network_routes_near_the_view_first(qtbot):
    g = block_chain()
    view = _view(qtbot, g)
    scene = view.graph_scene
    stages = [group.id for group in g.groups if group.parent is None]
    assert editing.set_folded(scene, stages, True)
    QApplication.processEvents()
    view.set_zoom(1.0)
    view.centerOn(scene.item_for(g.ids[0]))
    QApplication.processEvents()
    routed: list[object] = []
    original = scene.router.route

    def counting(edge, label_sides=None):
        routed.append(edge)
        original(edge, label_sides)
    scene.router.route = counting  # type: ignore[method-assign]
    try:
        assert editing.set_folded(scene, stages, False)
    finally:
        del scene.router.route  # no cycle left through the instance
    # The turn that unfolded routed at most ROUTE_AT_ONCE edges, the first ones among
    # them; the rest wait for later turns.
    assert len(routed) <= ROUTE_AT_ONCE
    first = next(e for e in scene.edge_items() if e.source == g.ids[0])
    assert first in routed and first not in scene.router.pending
    last = scene.edges_into(g.ids[-1])[0]
    assert last in scene.router.pending
    qtbot.waitUntil(lambda: not scene.router.pending, timeout=5000)
    _drawn_right(view)


def test_an_edge_waiting_to_be_routed_is_routed_when_asked_for(qtbot):
    g = block_chain()
    view = _view(qtbot, g)
    scene = view.graph_scene
    stages = [group.id for group in g.groups if group.parent is None]
    editing.set_folded(scene, stages, True)
    QApplication.processEvents()
    view.set_zoom(1.0)
    view.centerOn(scene.item_for(g.ids[0]))
    editing.set_folded(scene, stages, False)
    waiting = next(iter(scene.router.pending))
    ends = scene.edge_ends(waiting)
    assert ends is not None
    start, _ = scene.router.drawn_ends(waiting)  # routed now, on demand
    assert start == ends[0].pos() + ends[0].output_anchor()
    scene.flush()  # and flush routes every edge left
    assert not scene.router.pending
    _drawn_right(view)


def test_the_overview_redraws_its_cards_in_a_later_turn(qtbot):
    g = block_chain(200)
    view = _view(qtbot, g)
    view.set_zoom(1.0)
    overview = view.overview
    qtbot.waitUntil(overview.isVisible)
    overview.repaint()
    cards = overview._pixmap
    assert cards is not None
    stage = next(group.id for group in g.groups if group.parent is None)
    editing.set_folded(view.graph_scene, [stage], True)
    overview.repaint()  # the fold's own turn: the old cards still show
    assert overview._pixmap is cards
    qtbot.waitUntil(lambda: overview._pixmap is not cards, timeout=2000)


@pytest.mark.parametrize("zoom, dots", [(1.0, True), (0.5, True), (0.3, False)])
def test_background_dots_lie_on_the_grid_and_vanish_zoomed_out(qapp, zoom, dots):
    image = QImage(400, 300, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    painter.scale(zoom, zoom)
    pal = qapp.palette()
    style.paint_canvas(painter, QRectF(0, 0, 400 / zoom, 300 / zoom), zoom, pal)
    painter.end()
    back = style.canvas_color(pal)

    def differs(colour: QColor) -> bool:  # a dot, however faint (half a pixel at 50 %)
        return any(abs(a - b) > 8 for a, b in zip(colour.getRgb()[:3], back.getRgb()[:3],
                                                     strict=True))
    step = round(style.GRID * zoom)
    assert differs(image.pixelColor(2 * step, 3 * step)) == dots
    assert not differs(image.pixelColor(2 * step + step // 2, 3 * step + step // 2))

