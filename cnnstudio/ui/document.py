"""The open project as the window sees it: project, undo stack, inference, selection.

Views never own state: they read `Document.graph` / `Document.inference` and listen to
its signals; they change the graph only by pushing commands (`cnnstudio.ui.commands`)
onto `undo_stack`, so every edit can be undone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, SignalInstance
from PySide6.QtGui import QUndoStack

from cnnstudio.core.data_sources import builtin_classes
from cnnstudio.core.graph import Graph
from cnnstudio.core.shapes import Inference, infer_shapes
from cnnstudio.project.model import Project

# Shapes and problems depend neither on where nodes stand nor on how they are grouped:
# these events keep the inference (folding a block of a 1,000-node graph re-infers nothing)
# — except that a lone layer's "Connect after <the layer above>" fix reads positions.
_KEEPS_SHAPES = frozenset({"node_moved", "nodes_moved", "group_added", "group_removed",
                           "group_changed"})
_MOVES = frozenset({"node_moved", "nodes_moved"})


class Document(QObject):
    """One open project. Signals carry plain Python values; the graph's come after the
    edit, one per `core.Graph` event, with that event's details as arguments."""

    node_added = Signal(str)  # node id
    node_removed = Signal(str)
    node_moved = Signal(str)
    nodes_moved = Signal(list)  # node ids moved together (folding a block shifts many)
    trainable_changed = Signal(list)  # node ids frozen or unfrozen together
    node_renamed = Signal(str, str)  # old id, new id
    params_changed = Signal(str)
    edge_added = Signal(str, str, int)  # source, target, input index
    edge_removed = Signal(str, str, int)
    group_added = Signal(str)  # group id
    group_removed = Signal(str)
    group_changed = Signal(str)  # folded, unfolded or renamed
    graph_edited = Signal()  # after each of the above: for whoever minds any edit
    graph_reset = Signal()  # the whole graph was replaced (open, snapshot undo)
    inference_invalidated = Signal()  # shapes/problems are stale: `inference` recomputes
    selection_changed = Signal(list)  # selected node ids
    project_replaced = Signal()  # a different project was opened
    settings_changed = Signal(str)  # "data" or "training" section edited

    def __init__(self, project: Project | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self._project = project or Project()
        self._inference: Inference | None = None
        self._selection: list[str] = []
        self.num_classes: int | None = None  # known once data is loaded; else from builtins
        self._attach(self._project.graph)
        self.settings_changed.connect(self._on_settings_changed)

    def _on_settings_changed(self, section: str) -> None:
        if section == "data":  # the class count may have changed
            self.num_classes = None
            self._inference = None
            self.inference_invalidated.emit()

    # ---- the project ---------------------------------------------------------------------

    @property
    def project(self) -> Project:
        return self._project

    @property
    def graph(self) -> Graph:
        return self._project.graph

    @property
    def path(self) -> Path | None:
        return self._project.path

    def set_project(self, project: Project) -> None:
        """Replace the open project (open/new); clears undo history and selection."""
        self._project.graph.unsubscribe(self._on_graph_event)
        self._project = project
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self._selection = []
        self.num_classes = None
        self._attach(project.graph)
        self.project_replaced.emit()
        self.graph_reset.emit()
        self.selection_changed.emit([])

    def _attach(self, graph: Graph) -> None:
        graph.subscribe(self._on_graph_event)
        self._inference = None

    def _on_graph_event(self, event: str, **details: object) -> None:
        if event not in _KEEPS_SHAPES or (event in _MOVES and self._lone_layers()):
            self._inference = None
        if event == "reset":
            self.graph_reset.emit()
        else:  # the signal of the event's name; Graph passes its details in that order
            getattr(self, event).emit(*details.values())
            self.graph_edited.emit()
        if event in ("node_removed", "reset"):
            kept = [nid for nid in self._selection if nid in self.graph]
            if kept != self._selection:
                self.set_selection(kept)
        if event == "node_renamed":
            self._selection = [details["new"] if nid == details["old"] else nid
                               for nid in self._selection]
        self.inference_invalidated.emit()

    def _lone_layers(self) -> bool:
        """Whether the current inference offers a lone layer a fix that positions choose."""
        inference = self._inference
        return inference is not None and any(
            fix.kind in ("remove_node", "connect_after")
            for problem in inference.problems for fix in problem.fixes)

    # ---- derived data --------------------------------------------------------------------

    def class_count(self) -> int | None:
        """Classes of the data: loaded data if known, else the built-in dataset's count."""
        return self.num_classes or builtin_classes(self._project.data)

    def set_num_classes(self, count: int | None) -> None:
        """The loaded data's class count; the classifier's output size is checked against
        it, so the inference is recomputed and the views told."""
        if count != self.num_classes:
            self.num_classes = count
            self._inference = None
            self.inference_invalidated.emit()

    @property
    def inference(self) -> Inference:
        """Shapes and problems of the current graph (recomputed after each edit, lazily)."""
        if self._inference is None:
            self._inference = infer_shapes(self.graph, task=self._project.task,
                                           num_classes=self.class_count())
        return self._inference

    # ---- selection -----------------------------------------------------------------------

    @property
    def selection(self) -> list[str]:
        return list(self._selection)

    def set_selection(self, node_ids: list[str]) -> None:
        ids = [nid for nid in node_ids if nid in self.graph]
        if ids != self._selection:
            self._selection = ids
            self.selection_changed.emit(list(ids))


def deferred(parent: QObject, slot: Callable[[], object], *signals: SignalInstance,
             ms: int = 0) -> QTimer:
    """A single-shot timer that calls `slot` `ms` after the last of `signals` (or its own
    `start()`): with 0, once per turn of the event loop, however many events one edit sent."""
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(slot)
    for signal in signals:
        signal.connect(timer.start)
    return timer
