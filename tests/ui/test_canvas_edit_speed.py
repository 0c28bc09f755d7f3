"""What keeps an edit cheap on a large graph: edge labels that change no geometry when
they fit, and a parameter edit that does not re-measure the canvas's content."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QApplication, QGraphicsScene

from cnnstudio.core.graph import Graph
from cnnstudio.project.model import Project
from cnnstudio.ui.canvas import EdgeItem, GraphView
from cnnstudio.ui.commands import SetParamsCommand
from cnnstudio.ui.document import Document

pytestmark = pytest.mark.gui


def _edge(scene: QGraphicsScene, label_left: bool = False) -> EdgeItem:
    edge = EdgeItem("a", "b", 0)
    scene.addItem(edge)
    edge.set_ends(QPointF(0, 0), QPointF(40, 200), label_left=label_left)
    return edge


def _laid_out_afresh(scene: QGraphicsScene, text: str, label_left: bool) -> QRectF:
    fresh = _edge(scene, label_left)
    fresh.set_label(text)
    return QRectF(fresh._label_rect)


@pytest.mark.parametrize("label_left", [False, True])
def test_labels_sit_where_a_fresh_layout_puts_them_and_stay_inside_the_bounds(qapp, label_left):
    scene = QGraphicsScene()
    edge = _edge(scene, label_left)
    calls = []
    original = edge.prepareGeometryChange
    edge.prepareGeometryChange = lambda: (calls.append(1), original())
    for text in ["64×56×56", "", "8×7×7", "64×56×56", "1024×112×112", "", "64×56×56"]:
        edge.set_label(text)
        assert edge.label == text and (text in edge.toolTip()) and ("→" in edge.toolTip())
        if not text:
            assert edge._label_rect.isNull()
            continue
        assert edge._label_rect == _laid_out_afresh(scene, text, label_left)
        assert edge.boundingRect().contains(edge._label_rect)
        assert edge.shape().contains(edge._label_rect.center())
    # Only a label wider than any before grows the bounds (the first and "1024×112×112").
    assert len(calls) == 2


def _view(qtbot) -> tuple[GraphView, Document]:
    g = Graph()
    g.add_node("Input", {"shape": [1, 16, 16]}, id="input", pos=(0, 0))
    g.add_node("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}, id="conv",
               inputs=["input"], pos=(0, 90))
    g.add_node("Flatten", {}, id="flat", inputs=["conv"], pos=(0, 180))
    doc = Document(Project(graph=g))
    view = GraphView(doc)
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    QApplication.processEvents()
    return view, doc


def test_a_parameter_edit_keeps_the_measured_content_and_a_move_re_measures(qtbot):
    view, doc = _view(qtbot)
    scene = view.graph_scene
    before = view.content_rect()
    measured = []
    original = scene.content_rect
    scene.content_rect = lambda: (measured.append(1), original())[1]
    doc.undo_stack.push(SetParamsCommand(doc, "conv", {"out_channels": 4, "kernel_size": 3,
                                                       "padding": 1}))
    QApplication.processEvents()
    QApplication.processEvents()
    assert scene.item_for("conv").shape_text == "4×16×16"
    assert view.content_rect() == before and not measured
    doc.graph.move_node("flat", (300, 400))
    QApplication.processEvents()
    QApplication.processEvents()
    rect = view.content_rect()
    assert measured and rect.bottom() > before.bottom() and rect.right() > before.right()
