"""Auto Layout as one undo entry, worked out off the GUI thread for big networks.

Laying out a 1,000-layer network takes some 25 ms, on a copy taken first (10 ms), and
pushing and showing it up to 20 more: together they would hold the window too long. So from
OFF_THREAD_FROM nodes the layout runs on a worker thread, on a copy of the graph taken when
the user asked, with a busy cursor meanwhile; when it arrives it is pushed as one entry,
unless the network changed meanwhile (any edit, undo included): then it is dropped, since
applying it would silently take that change back. Smaller networks are laid out at once,
the same way."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QApplication, QGraphicsScene

from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import Shapes, auto_layout
from cnnstudio.ui.commands import LayoutCommand, push_snapshot
from cnnstudio.ui.document import Document
from cnnstudio.ui.training.background import Background

# GUI-thread time of a layout at once (copy, lay out, push, show; a loaded 2-core AMD
# EPYC): 176 nodes ~12 ms, 300 ~17, 400 ~26, 1,000 ~60. On the worker, a 1,000-node one
# holds the GUI thread ~10 ms to copy, then ~5–20 ms to push and show.
OFF_THREAD_FROM = 300
RUNNER_NAME = "autoLayoutRunner"
_KIND = "layout"


def laid_out(graph: Graph, direction: str | None = None,
             shapes: Shapes | None = None) -> Graph:
    """`graph` (a copy nobody else holds) laid out, flowing `direction` when given;
    `shapes`: its nodes' output shapes (the document's inference: not inferred again)."""
    if direction is not None:
        graph.direction = direction
    auto_layout(graph, shapes)
    return graph


def shapes_of(doc: Document) -> Shapes:
    """The document's inferred output shapes, by node id (kept up to date by the
    document: inferring a copy's afresh would take a 1,000-layer network 15 ms more)."""
    return {nid: info.shape for nid, info in doc.inference.nodes.items()}


def take_layout(graph: Graph, layout: Graph) -> None:
    """Give `graph` the direction, positions and folds of `layout` (laid out on a copy of
    it): the state `auto_layout` would leave it in."""
    graph.direction = layout.direction
    for group in layout.groups:
        graph.groups.set_collapsed(group.id, group.collapsed, group.fold_shift)
    graph.move_nodes({node.id: node.pos for node in layout if node.pos is not None})


def push_layout(doc: Document, layout: Graph, label: str, whole: bool) -> None:
    """Push `layout` (laid out on a copy of `doc.graph` as it stands) as one entry: moves
    and fold shifts, or a snapshot when it changes more than moves can undo (`whole`: the
    direction, or nodes that had no position)."""
    if whole:
        push_snapshot(doc, label, lambda graph: take_layout(graph, layout))
    else:
        doc.undo_stack.push(LayoutCommand(doc, layout))


class LayoutRunner(QObject):
    """The scene's layouts on a worker thread (one per scene: `runner`)."""

    def __init__(self, scene: QGraphicsScene) -> None:
        super().__init__(scene)
        self.setObjectName(RUNNER_NAME)
        self._worker = Background(self, needs_torch=False)
        self._cursor = False  # our busy cursor is on

    @property
    def pending(self) -> bool:
        """True while a layout is being worked out (its result not yet delivered)."""
        return self._worker.pending(_KIND)

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Wait (tests, benchmarks) until the worker is done; its result is delivered by
        the event loop. True when it is."""
        return self._worker.wait(timeout_ms)

    def start(self, doc: Document, direction: str | None, label: str, whole: bool,
              done: Callable[[], None] | None) -> None:
        """Lay out a copy of `doc.graph` on the worker; push it when it arrives and the
        graph is as it was, then call `done`. A newer start replaces this one."""
        graph, revision = doc.graph, doc.graph.revision
        copy, shapes = graph.copy(), shapes_of(doc)

        def arrived(layout: Graph) -> None:
            self._idle()
            if doc.graph is not graph or graph.revision != revision:
                return  # the network changed meanwhile: this layout would undo that
            push_layout(doc, layout, label, whole)
            if done is not None:
                done()

        def failed(error: BaseException) -> None:
            self._idle()
            raise error

        if not self._cursor:
            QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
            self._cursor = True
        self._worker.submit(_KIND, lambda: laid_out(copy, direction, shapes), arrived, failed)

    def _idle(self) -> None:
        if self._cursor and not self.pending:
            QApplication.restoreOverrideCursor()
            self._cursor = False


def runner(scene: QGraphicsScene) -> LayoutRunner:
    """The scene's LayoutRunner (made on first use)."""
    found = scene.findChild(LayoutRunner, RUNNER_NAME)
    return found if found is not None else LayoutRunner(scene)


def lay_out(scene: QGraphicsScene, doc: Document, direction: str | None,
            done: Callable[[], None] | None) -> bool:
    """Auto layout of `doc.graph` (flowing `direction` when given) as one undo entry;
    False when there is nothing to do. See the module's docstring for when it is pushed;
    `done` runs once it is."""
    graph = doc.graph
    if direction is None and not len(graph) or direction == graph.direction:
        return False
    if direction is None:
        label = "Auto layout"
    else:
        label = "Layout left to right" if direction == "right" else "Layout top to bottom"
    whole = direction is not None or any(node.pos is None for node in graph)
    if len(graph) >= OFF_THREAD_FROM:
        runner(scene).start(doc, direction, label, whole, done)
        return True
    push_layout(doc, laid_out(graph.copy(), direction, shapes_of(doc)), label, whole)
    if done is not None:
        done()
    return True
