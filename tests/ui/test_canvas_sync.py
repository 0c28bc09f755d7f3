"""Property: whatever sequence of edits, undos and redos, the scene equals the graph."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from PySide6.QtWidgets import QApplication

from cnnstudio.core.edits import duplicate_nodes
from cnnstudio.core.graph import Graph
from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.project.model import Project
from cnnstudio.ui.canvas import GraphScene, connection_problem
from cnnstudio.ui.commands import (
    AddNodeCommand,
    ConnectCommand,
    DisconnectCommand,
    MoveNodesCommand,
    RemoveNodesCommand,
    SetParamsCommand,
    push_snapshot,
)
from cnnstudio.ui.document import Document

pytestmark = pytest.mark.gui

LAYERS = [("ReLU", {}), ("Conv2d", {"out_channels": 4, "kernel_size": 3}),
          ("MaxPool2d", {"kernel_size": 2}), ("Add", {}), ("Concat", {}), ("Flatten", {})]


def start_graph() -> Graph:
    g = Graph()
    g.add_node("Input", {"shape": [2, 12, 12]}, id="input", pos=(0, 0))
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3}, id="conv1", inputs=["input"],
               pos=(0, 90))
    return g


class CanvasMirrorsGraph(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.app = QApplication.instance() or QApplication([])
        self.doc = Document(Project(graph=start_graph()))
        self.scene = GraphScene(self.doc)
        self.stack = self.doc.undo_stack

    def teardown(self) -> None:
        self.scene.deleteLater()

    @property
    def ids(self) -> list[str]:
        return self.doc.graph.ids

    @rule(data=st.data(), layer=st.sampled_from(LAYERS), x=st.integers(-400, 400))
    def add(self, data, layer, x):
        source = data.draw(st.sampled_from([None, *self.ids]))
        inputs = [source] if source else []
        self.stack.push(AddNodeCommand(self.doc, layer[0], layer[1], pos=(x, 200),
                                       inputs=inputs))

    @rule(data=st.data())
    def remove(self, data):
        if self.ids:
            chosen = data.draw(st.lists(st.sampled_from(self.ids), min_size=1, max_size=3))
            self.stack.push(RemoveNodesCommand(self.doc, chosen))

    @rule(data=st.data())
    def connect(self, data):
        pairs = [(s, t) for s in self.ids for t in self.ids
                 if connection_problem(self.doc.graph, s, t) is None]
        if pairs:
            source, target = data.draw(st.sampled_from(pairs))
            self.stack.push(ConnectCommand(self.doc, source, target))

    @rule(data=st.data())
    def disconnect(self, data):
        edges = self.doc.graph.edges()
        if edges:
            self.stack.push(DisconnectCommand(self.doc, *data.draw(st.sampled_from(edges))))

    @rule(data=st.data(), channels=st.integers(1, 6), kernel=st.integers(1, 20))
    def set_params(self, data, channels, kernel):
        convs = [n.id for n in self.doc.graph if n.type == "Conv2d"]
        if convs:  # big kernels make shape problems, which must show and clear too
            node = data.draw(st.sampled_from(convs))
            self.stack.push(SetParamsCommand(self.doc, node, {"out_channels": channels,
                                                              "kernel_size": kernel}))

    @rule(data=st.data(), dx=st.integers(-100, 100), dy=st.integers(-100, 100))
    def move(self, data, dx, dy):
        if self.ids:
            node = self.doc.graph.node(data.draw(st.sampled_from(self.ids)))
            old = node.pos or (0.0, 0.0)
            self.stack.push(MoveNodesCommand(self.doc, {node.id: (old, (old[0] + dx,
                                                                         old[1] + dy))}))

    @rule(data=st.data())
    def duplicate(self, data):
        if self.ids:
            chosen = data.draw(st.lists(st.sampled_from(self.ids), min_size=1, max_size=3))
            push_snapshot(self.doc, "Duplicate", lambda g: duplicate_nodes(g, chosen))

    @rule()
    def undo(self):
        self.stack.undo()

    @rule()
    def redo(self):
        self.stack.redo()

    @rule()
    def let_events_run(self):
        self.app.processEvents()

    @invariant()
    def scene_equals_graph(self):
        graph, scene = self.doc.graph, self.scene
        assert {i.node_id for i in scene.node_items()} == set(graph.ids)
        assert sorted(e.key for e in scene.edge_items()) == sorted(graph.edges())
        for node in graph:
            item = scene.item_for(node.id)
            if node.pos is not None:
                assert (item.x(), item.y()) == (node.pos[0], node.pos[1])
        scene.refresh_inference()
        inference = self.doc.inference
        for node in graph:
            item = scene.item_for(node.id)
            info = inference.nodes[node.id]
            assert item.shape_text == (fmt_shape(info.shape) if info.shape else "")
            errors = [p for p in inference.problems_for(node.id) if p.severity == "error"]
            assert (item.severity == "error") == bool(errors)
            assert item.input_count == len(node.inputs)
            assert item.output_count == sum(s == node.id for s, _, _ in graph.edges())
        for edge in scene.edge_items():
            assert edge.label == scene.item_for(edge.source).shape_text


CanvasMirrorsGraph.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestCanvasMirrorsGraph = CanvasMirrorsGraph.TestCase
