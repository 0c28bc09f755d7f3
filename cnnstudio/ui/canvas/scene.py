"""The scene: a mirror of `document.graph`, one NodeItem per node, one EdgeItem per input.

It listens to the document (graph events update single items; a reset is diffed
against the items, so undoing a paste keeps the rest of the picture) and changes the
graph only through commands: a drag of nodes becomes one MoveNodesCommand on release.
Captions, shapes and problem colours follow `inference_invalidated`, coalesced into one
refresh per event-loop turn, so a 50-node delete re-infers once, not 50 times.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QPointF, QRectF
from PySide6.QtGui import QPainterPath, QPainterPathStroker
from PySide6.QtWidgets import QGraphicsScene, QGraphicsSceneMouseEvent

from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.layout import COLUMN_WIDTH, ROW_HEIGHT, layered_positions
from cnnstudio.core.shapes import ERROR
from cnnstudio.ui.canvas import style
from cnnstudio.ui.canvas.edges import DETOUR_DROP, DETOUR_RISE, EdgeItem, curve
from cnnstudio.ui.canvas.items import NodeItem
from cnnstudio.ui.commands import MoveNodesCommand
from cnnstudio.ui.document import Document, deferred


class GraphScene(QGraphicsScene):
    """Items mirroring one document's graph."""

    def __init__(self, document: Document, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self._nodes: dict[str, NodeItem] = {}
        self._inputs: dict[str, list[EdgeItem]] = {}  # target → its input edges, by index
        self._outputs: dict[str, list[EdgeItem]] = {}  # source → edges leaving it
        self._bulk = False  # while diffing a reset: edges are routed once at the end
        self._selecting = False  # while mirroring the document's selection
        self._skip_inference = False
        self._press_positions: dict[str, QPointF] = {}
        self._refresh_timer = deferred(self, self.refresh_inference)
        document.node_added.connect(self._add_node)
        document.node_removed.connect(self._drop_node_item)
        document.node_moved.connect(self._move_node)
        document.node_renamed.connect(self._rename)
        document.edge_added.connect(self._edge_changed)
        document.edge_removed.connect(self._edge_changed)
        document.graph_reset.connect(self.sync_all)
        document.inference_invalidated.connect(self._on_inference_invalidated)
        document.selection_changed.connect(self._on_document_selection)
        self.selectionChanged.connect(self._on_scene_selection)
        self.sync_all()
        self.refresh_inference()

    # ---- looking things up --------------------------------------------------------------

    def item_for(self, node_id: str) -> NodeItem | None:
        """The item showing node `node_id`, if any."""
        return self._nodes.get(node_id)

    def node_items(self) -> list[NodeItem]:
        """Every node item (one per graph node)."""
        return list(self._nodes.values())

    def edge_items(self) -> list[EdgeItem]:
        """Every edge item, grouped by target in graph order."""
        return [e for edges in self._inputs.values() for e in edges]

    def edges_into(self, node_id: str) -> list[EdgeItem]:
        """The edge items feeding `node_id`, by input index."""
        return list(self._inputs.get(node_id, ()))

    def node_at(self, scene_pos: QPointF, exclude: NodeItem | None = None) -> NodeItem | None:
        """The topmost node item under `scene_pos` (ports count as part of the node)."""
        for item in self.items(scene_pos):
            if isinstance(item, NodeItem) and item is not exclude:
                return item
        return None

    def edge_at(self, scene_pos: QPointF) -> EdgeItem | None:
        """The edge under `scene_pos`, unless a node covers it there."""
        for item in self.items(scene_pos):
            if isinstance(item, NodeItem):
                return None
            if isinstance(item, EdgeItem):
                return item
        return None

    def selected_node_ids(self) -> list[str]:
        """Selected nodes, in graph order."""
        chosen = {i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)}
        return [nid for nid in self.document.graph.ids if nid in chosen]

    def selected_edges(self) -> list[EdgeItem]:
        """Selected edge items (a Delete disconnects them)."""
        return [i for i in self.selectedItems() if isinstance(i, EdgeItem)]

    # ---- mirroring the graph ------------------------------------------------------------

    def sync_all(self) -> None:
        """Match the items to the whole graph: reuse, create and drop items as needed."""
        graph = self.document.graph
        self._bulk = True
        try:
            stale = dict(self._nodes)
            layered: dict[str, tuple[float, float]] | None = None
            for node in graph:
                item = stale.pop(node.id, None)
                if item is not None and item.type_name != node.type:
                    self._drop_node_item(node.id)
                    item = None
                if item is None:
                    item = self._make_node_item(node.id, node.type)
                if node.pos is not None:
                    pos = node.pos
                else:  # hand-written files may lack positions: lay those out once
                    layered = layered if layered is not None else layered_positions(graph)
                    pos = layered.get(node.id, (0.0, 0.0))
                item.setPos(QPointF(*pos))
            for node_id in stale:
                self._drop_node_item(node_id)
            for node in graph:
                self._sync_inputs(node.id)
        finally:
            self._bulk = False
        for edges in self._inputs.values():
            for edge in edges:
                self._route(edge)
        self._schedule_refresh()

    def _add_node(self, node_id: str) -> None:
        node = self.document.graph.node(node_id)
        item = self._make_node_item(node.id, node.type)
        item.setPos(QPointF(*node.pos) if node.pos is not None else self._free_spot(node.id))
        self._sync_inputs(node.id)

    def _edge_changed(self, _source: str, target: str, _index: int) -> None:
        self._sync_inputs(target)

    def _move_node(self, node_id: str) -> None:
        self._skip_inference = True  # a move changes no shape: ignore its invalidation
        node = self.document.graph.node(node_id)
        item = self._nodes.get(node.id)
        if item is not None and node.pos is not None:
            item.setPos(QPointF(*node.pos))

    def _make_node_item(self, node_id: str, type_name: str) -> NodeItem:
        item = NodeItem(node_id, type_name)
        self._nodes[node_id] = item
        self._inputs.setdefault(node_id, [])
        self._outputs.setdefault(node_id, [])
        self.addItem(item)
        return item

    def _drop_node_item(self, node_id: str) -> None:
        incoming = self._inputs.pop(node_id, [])
        for edge in incoming:
            self._drop_edge(edge)
        for source in {e.source for e in incoming}:
            if source in self._nodes:
                self._nodes[source].set_output_count(len(self._outputs.get(source, ())))
        for edge in list(self._outputs.pop(node_id, [])):
            self._drop_edge(edge)
            incoming = self._inputs.get(edge.target)
            if incoming and edge in incoming:
                incoming.remove(edge)
        item = self._nodes.pop(node_id, None)
        if item is not None:
            self.removeItem(item)

    def _drop_edge(self, edge: EdgeItem) -> None:
        outgoing = self._outputs.get(edge.source)
        if outgoing and edge in outgoing:
            outgoing.remove(edge)
        if edge.scene() is self:
            self.removeItem(edge)

    def _sync_inputs(self, target: str) -> None:
        """Make the target's edge items match its `inputs`, reusing unchanged ones."""
        item = self._nodes.get(target)
        if item is None or target not in self.document.graph:
            return
        inputs = self.document.graph.node(target).inputs
        old = self._inputs.get(target, [])
        new: list[EdgeItem] = []
        for index, source in enumerate(inputs):
            keep = None
            if index < len(old) and old[index].source == source and old[index] not in new:
                keep = old[index]
            if keep is None:
                keep = next((e for e in old if e.source == source and e not in new), None)
            if keep is None and source in self._nodes:
                keep = EdgeItem(source, target, index)
                self.addItem(keep)
                self._outputs.setdefault(source, []).append(keep)
                keep.set_label(self._nodes[source].shape_text)
            if keep is not None:
                keep.index = index
                new.append(keep)
        for edge in old:
            if edge not in new:
                self._drop_edge(edge)
        self._inputs[target] = new
        item.set_input_count(len(new))
        for source in {e.source for e in old + new}:
            if source in self._nodes:
                self._nodes[source].set_output_count(len(self._outputs.get(source, ())))
        if not self._bulk:
            for edge in new:
                self._route(edge)

    def _rename(self, old: str, new: str) -> None:
        item = self._nodes.pop(old, None)
        if item is None:
            return
        self._nodes[new] = item
        item.set_node_id(new)
        self._inputs[new] = self._inputs.pop(old, [])
        self._outputs[new] = self._outputs.pop(old, [])
        for edge in self._inputs[new]:
            edge.target = new
        for edge in self._outputs[new]:
            edge.source = new
        for edge in self._inputs[new] + self._outputs[new]:
            edge.setToolTip(f"{edge.source} → {edge.target}: {edge.label}")

    def _free_spot(self, node_id: str) -> QPointF:
        """A place for a node that came without a position: under its first input, else
        where the layered layout puts it; moved right until no card is in the way."""
        node = self.document.graph.node(node_id)
        source = self._nodes.get(node.inputs[0]) if node.inputs else None
        if source is not None:
            spot = source.pos() + QPointF(0, ROW_HEIGHT)
        else:
            spot = QPointF(*layered_positions(self.document.graph).get(node_id, (0.0, 0.0)))
        me = self._nodes.get(node_id)
        for _ in range(200):
            area = QRectF(spot.x() - style.NODE_WIDTH / 2, spot.y() - style.NODE_HEIGHT / 2,
                          style.NODE_WIDTH, style.NODE_HEIGHT)
            if not any(isinstance(i, NodeItem) and i is not me for i in self.items(area)):
                break
            spot += QPointF(COLUMN_WIDTH, 0)
        return spot

    # ---- edge routing -------------------------------------------------------------------

    def _route(self, edge: EdgeItem) -> None:
        source, target = self._nodes.get(edge.source), self._nodes.get(edge.target)
        if source is None or target is None:
            return
        count = len(self._inputs.get(edge.target, ()))
        start = source.mapToScene(source.output_anchor())
        end = target.mapToScene(target.input_anchor(edge.index, count))
        edge.set_ends(start, end - QPointF(0, style.PORT_RADIUS), self._bulge(source, target),
                      self._label_left(source))

    def _label_left(self, source: NodeItem) -> bool:
        """Shape labels go left of a source's port when all its edges bend right, so the
        label never sits on a curve (and a fan-out's labels still coincide)."""
        targets = [self._nodes.get(e.target) for e in self._outputs.get(source.node_id, ())]
        return bool(targets) and all(t is not None and t.x() > source.x() + 10
                                     for t in targets)

    def _bulge(self, source: NodeItem, target: NodeItem) -> float | None:
        """The x an edge detours along when its plain curve would run behind other cards
        (skip connections, branches that end rows later); None when the curve is clear."""
        start = source.mapToScene(source.output_anchor())
        end = target.mapToScene(target.input_anchor(0, 1))
        if end.y() - start.y() < DETOUR_DROP + DETOUR_RISE + style.NODE_HEIGHT:
            return None  # adjacent rows: the curve stays in the gap between them
        stroker = QPainterPathStroker()
        stroker.setWidth(6.0)
        hits = self._cards_on(stroker.createStroke(curve(start, end)), source, target)
        if not hits:
            return None
        top, bottom = start.y() + DETOUR_DROP, end.y() - DETOUR_RISE
        reach = style.NODE_WIDTH / 2 + 36
        best = None
        for direction in (1.0, -1.0):
            xs = [i.x() for i in hits] + [start.x(), end.x()]
            side = (max(xs) + reach) if direction > 0 else (min(xs) - reach)
            for _ in range(8):  # step past cards standing on the detour line itself
                lane = QRectF(side - 12, top, 24, bottom - top)
                blocking = self._cards_on(lane, source, target)
                if not blocking:
                    break
                xs = [i.x() for i in blocking]
                side = (max(xs) + reach) if direction > 0 else (min(xs) - reach)
            cost = abs(side - start.x()) + abs(side - end.x())
            if best is None or cost < best[0]:
                best = (cost, side)
        return best[1] if best else None

    def _cards_on(self, area: QRectF | QPainterPath, *skip: NodeItem) -> list[NodeItem]:
        return [i for i in self.items(area) if isinstance(i, NodeItem) and i not in skip]

    def node_item_moved(self, item: NodeItem) -> None:
        """Called by a NodeItem whose position changed: re-route its edges."""
        if self._bulk:
            return
        for edge in self._inputs.get(item.node_id, ()):
            # The source's other edges too: their label side depends on where this node is.
            for sibling in self._outputs.get(edge.source, ()):
                self._route(sibling)
        for edge in self._outputs.get(item.node_id, ()):
            self._route(edge)

    # ---- inference: captions, shapes, problems ------------------------------------------

    def _on_inference_invalidated(self) -> None:
        if self._skip_inference:
            self._skip_inference = False
            return
        self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def refresh_inference(self) -> None:
        """Show the document's current shapes and problems now (normally deferred to the
        next event-loop turn); only items whose text or colour changed repaint."""
        self._refresh_timer.stop()
        inference = self.document.inference
        problems: dict[str, list] = {}
        for problem in inference.problems:
            if problem.node is not None:
                problems.setdefault(problem.node, []).append(problem)
        for node_id, item in self._nodes.items():
            info = inference.nodes.get(node_id)
            caption = info.caption if info is not None else ""
            shape = fmt_shape(info.shape) if info is not None and info.shape is not None else ""
            shape_changed = shape != item.shape_text
            item.set_texts(caption, shape)
            found = problems.get(node_id, [])
            severity = None
            if found:
                severity = ERROR if any(p.severity == ERROR for p in found) else "warning"
            item.set_problems(severity, [p.message for p in found])
            if shape_changed:
                for edge in self._outputs.get(node_id, ()):
                    edge.set_label(shape)

    # ---- selection ----------------------------------------------------------------------

    def _on_scene_selection(self) -> None:
        if not self._selecting:
            self.document.set_selection(self.selected_node_ids())

    def _on_document_selection(self, node_ids: list) -> None:
        if set(node_ids) == set(self.selected_node_ids()):
            return
        self._selecting = True
        try:
            wanted = set(node_ids)
            for node_id, item in self._nodes.items():
                item.setSelected(node_id in wanted)
        finally:
            self._selecting = False

    def select_nodes(self, node_ids: list[str]) -> None:
        """Select exactly these nodes (and no edges); the document follows."""
        self._selecting = True
        try:
            self.clearSelection()
            for node_id in node_ids:
                item = self._nodes.get(node_id)
                if item is not None:
                    item.setSelected(True)
        finally:
            self._selecting = False
        self.document.set_selection(self.selected_node_ids())

    # ---- dragging nodes: one command per drag -------------------------------------------

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mousePressEvent(event)
        self._press_positions = {i.node_id: QPointF(i.pos()) for i in self.selectedItems()
                                 if isinstance(i, NodeItem)}

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        self.commit_moves()

    def commit_moves(self) -> None:
        """Push one MoveNodesCommand for the nodes dragged since the mouse press."""
        started, self._press_positions = self._press_positions, {}
        graph = self.document.graph
        moves = {}
        for node_id, start in started.items():
            item = self._nodes.get(node_id)
            if item is None or node_id not in graph or item.pos() == start:
                continue
            new = (float(round(item.x())), float(round(item.y())))
            # A node shown at a computed place has no pos yet: undo returns it there.
            old = graph.node(node_id).pos or (start.x(), start.y())
            moves[node_id] = (old, new)
        if moves:
            self.document.undo_stack.push(MoveNodesCommand(self.document, moves))

