"""The scene: a mirror of `document.graph`, one NodeItem per node, one EdgeItem per input,
a card per folded group and a frame around each unfolded one (`group_sync.py`).

It listens to the document (graph events update single items; a reset is diffed
against the items, so undoing a paste keeps the rest of the picture) and changes the
graph only through commands: a drag of nodes (or of folded cards) becomes one
MoveNodesCommand on release. Captions, shapes and problem colours follow
`inference_invalidated`, coalesced into one refresh per event-loop turn, so a 50-node
delete re-infers once, not 50 times. Group changes and bulk moves are likewise applied
once per turn (`flush`), so folding a block that shifts 500 nodes touches each edge once
(where edges run: `routing.py`; hit tests, selection and mouse: `interaction.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from PySide6.QtCore import QObject, QPointF, QRectF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene

from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.layout import COLUMN_WIDTH, ROW_HEIGHT, layered_positions
from cnnstudio.core.shapes import ERROR, Inference
from cnnstudio.ui.canvas import style
from cnnstudio.ui.canvas.edges import EdgeItem
from cnnstudio.ui.canvas.group_item import GroupItem
from cnnstudio.ui.canvas.group_sync import GroupSync
from cnnstudio.ui.canvas.interaction import SceneInteraction
from cnnstudio.ui.canvas.items import NodeItem
from cnnstudio.ui.canvas.routing import EdgeRouter
from cnnstudio.ui.canvas.scene_lookup import SceneLookup
from cnnstudio.ui.document import Document, deferred

# While many items are added or moved at once the scene rect is pinned to this: a growing
# scene rect makes Qt rebuild its item index query by query (0.6 s to open 1,000 nodes).
_BULK_RECT = QRectF(-1e7, -1e7, 2e7, 2e7)
# A change that leaves more edges than this to route (unfolding a 1,000-node network)
# routes those near the view at once and the rest in later event-loop turns, this many a
# turn (~6 ms), ROUTE_LATER_MS apart so the canvas repaints in a turn of its own: no turn
# holds the window over 50 ms. The first of them comes ROUTE_LATER_MS after the end of
# the change's own turn (not of its flush), so the change is painted before it.
ROUTE_AT_ONCE = 150
ROUTE_LATER_MS = 16


class GraphScene(SceneLookup, SceneInteraction, QGraphicsScene):
    """Items mirroring one document's graph (what is where: `SceneLookup`; selection and
    mouse: `SceneInteraction`)."""

    def __init__(self, document: Document, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # No BSP index: moving, showing or hiding an item re-files it there, and ending a
        # bulk change (the scene rect pinned and released) rebuilt the whole tree — ~2,000
        # items each time a block of a 1,000-layer network folds. Every item's bounding
        # rect is C++ (rect items), so a paint or hit test that walks all ~3,000 of them
        # costs well under a millisecond; routing keeps its own index (`CardIndex`).
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.document = document
        self.direction = "down"
        self._nodes: dict[str, NodeItem] = {}
        self._inputs: dict[str, list[EdgeItem]] = {}  # target → its input edges, by index
        self._outputs: dict[str, list[EdgeItem]] = {}  # source → edges leaving it
        self._bulk = False  # while many items move at once: edges are routed once at the end
        self._selecting = False  # while mirroring the document's selection
        self._skip_inference = False
        self._press_positions: dict[str, QPointF] = {}
        self._inference: Inference | None = None  # what the items show now
        self._shown_facts: dict[str, tuple] = {}  # per node: (item, info, problems) shown
        self.groups = GroupSync(self)
        self.router = EdgeRouter(self)
        # Work left for `flush`: a group rebuild, edges to route, frames to fit.
        self._regroup = False
        self._reroute: set[EdgeItem] = set()
        self._refit: set[str] = set()
        self._shown_before: set[QGraphicsItem] = set()  # cards shown before the first of them
        # Items moved in bulk this turn, by how much: edges whose whole neighbourhood moved
        # by one offset are shifted rather than routed again (`EdgeRouter.translate`).
        self._shifted: dict[QGraphicsItem, tuple[float, float]] = {}
        self._refresh_timer = deferred(self, self.refresh_inference)
        self._flush_timer = deferred(self, self._flush_turn)
        self._route_timer = deferred(self, self._route_some, ms=ROUTE_LATER_MS)
        self._route_arm_timer = deferred(self, self._route_timer.start)
        document.node_added.connect(self._add_node)
        document.node_removed.connect(self._drop_node_item)
        document.node_moved.connect(self._move_node)
        document.nodes_moved.connect(self._move_nodes)
        document.node_renamed.connect(self._rename)
        document.trainable_changed.connect(self._trainable_changed)
        document.edge_added.connect(self._edge_changed)
        document.edge_removed.connect(self._edge_changed)
        for signal in (document.group_added, document.group_removed, document.group_changed):
            signal.connect(self._group_changed)
        document.graph_reset.connect(self.sync_all)
        document.inference_invalidated.connect(self._on_inference_invalidated)
        document.selection_changed.connect(self._on_document_selection)
        self.selectionChanged.connect(self._on_scene_selection)
        self.sync_all()
        self.refresh_inference()

    # ---- mirroring the graph ------------------------------------------------------------

    @contextmanager
    def _bulk_change(self) -> Iterator[None]:
        """Many items change at once: no routing per item, Qt's index left alone."""
        if self._bulk:  # already inside one
            yield
            return
        self._bulk = True
        self.router.invalidate()  # positions and visibility change unseen by it
        # Not announced: the pinned rect is no content.
        blocked = self.blockSignals(True)
        self.setSceneRect(_BULK_RECT)
        self.blockSignals(blocked)
        try:
            yield
        finally:
            self._bulk = False
            self.setSceneRect(QRectF())  # back to growing with the items (and saying so)

    def sync_all(self) -> None:
        """Match the items to the whole graph: reuse, create and drop items as needed."""
        graph = self.document.graph
        with self._bulk_change():
            stale = dict(self._nodes)
            layered: dict[str, tuple[float, float]] | None = None
            for node in graph:
                item = stale.pop(node.id, None)
                if item is not None and item.type_name != node.type:
                    self._drop_node_item(node.id)
                    item = None
                if item is None:
                    item = self._make_node_item(node.id, node.type)
                item.set_frozen(not node.trainable)
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
            if graph.direction != self.direction:
                self._set_direction(graph.direction)
            self.groups.rebuild()
            self.router.invalidate()
            self._regroup, self._refit, self._reroute, self._shifted = False, set(), set(), {}
            self.router.pending.clear()  # every edge is routed here
            label_sides: dict[QGraphicsItem, bool] = {}
            for edges in self._inputs.values():
                for edge in edges:
                    self.router.route(edge, label_sides)
        self._schedule_refresh()

    def clear_selection_quietly(self) -> None:
        """Deselect every item without telling the document: for a caller that selects
        anew at once (`select_nodes`), so the document hears of one selection, not two."""
        self._selecting = True
        try:
            self.clearSelection()
        finally:
            self._selecting = False

    def _set_direction(self, direction: str) -> None:
        self.direction = direction
        for item in [*self._nodes.values(), *self.groups.cards.values(), *self.edge_items()]:
            item.set_direction(direction)

    def _add_node(self, node_id: str) -> None:
        node = self.document.graph.node(node_id)
        item = self._make_node_item(node.id, node.type)
        item.set_frozen(not node.trainable)
        if node.group is not None:  # e.g. a delete undone inside a folded block
            shown = self.document.graph.groups.shown_as(node_id)
            if shown != node_id:
                self.groups.shown[node_id] = shown
                item.setVisible(False)
            self._regroup_later()
        item.setPos(QPointF(*node.pos) if node.pos is not None else self._free_spot(node.id))
        self.router.item_added(item)
        self._sync_inputs(node.id)

    def _trainable_changed(self, node_ids: list) -> None:
        graph = self.document.graph
        for node_id in node_ids:
            item = self._nodes.get(node_id)
            if item is not None:
                item.set_frozen(not graph.node(node_id).trainable)

    def _edge_changed(self, _source: str, target: str, _index: int) -> None:
        self._sync_inputs(target)
        if self.groups.cards:  # an edge into a card may now join or leave a duplicate
            self._regroup_later()

    def _move_node(self, node_id: str) -> None:
        self._skip_inference = True  # a move changes no shape: ignore its invalidation
        node = self.document.graph.node(node_id)
        item = self._nodes.get(node.id)
        if item is not None and node.pos is not None:
            self._shifted.pop(item, None)
            item.setPos(QPointF(*node.pos))
            self.node_item_moved(item)
        if node.group is not None:  # its frame, or its folded block's card
            self._regroup_later()

    def _move_nodes(self, node_ids: list) -> None:
        """Many nodes moved in one event (folding a block, a dragged card): place them
        now; the edges they touch are routed once, in `flush`."""
        self._skip_inference = True
        graph = self.document.graph
        if not self._shifted:
            self._shown_before = set(self.cards_as_drawn())
        shifted, nodes, inputs, outputs = self._shifted, self._nodes, self._inputs, self._outputs
        reroute = self._reroute
        node_of = graph.node
        sources: set[str] = set()  # whose edges to route: the moved nodes and their inputs
        with self._bulk_change():
            for node_id in node_ids:
                item = nodes.get(node_id)
                pos = node_of(node_id).pos
                if item is None or pos is None:
                    continue
                x, y = item.x(), item.y()
                px, py = pos
                if x == px and y == py:
                    continue
                dx, dy = shifted.get(item, (0.0, 0.0))  # remembered for `flush`
                shifted[item] = (round(dx + px - x, 6), round(dy + py - y, 6))
                item.setPos(px, py)
                sources.add(node_id)
                sources.update(edge.source for edge in inputs.get(node_id, ()))  # label sides
            for source in sources:
                reroute.update(outputs.get(source, ()))
        if len(graph.groups):
            self._regroup = True
        self._flush_timer.start()

    def _group_changed(self, _group_id: str) -> None:
        self._skip_inference = True  # grouping changes no shape
        self._regroup_later()

    def _regroup_later(self) -> None:
        self._regroup = True
        self._flush_timer.start()

    def flush(self, routes: bool = True) -> None:
        """Apply the group changes and bulk moves of this event-loop turn now: cards and
        frames, hidden nodes and edges, then route each affected edge once. `routes`
        False: when many edges are to be routed, route those near the view now and leave
        the rest to later turns (`ROUTE_AT_ONCE`); True routes every one now."""
        self._flush_timer.stop()
        if self._regroup or self._reroute or self._refit:
            self._apply_changes(routes)
        if routes and self.router.pending:
            self._route_arm_timer.stop()
            self._route_timer.stop()
            self.router.route_pending()

    def _flush_turn(self) -> None:
        self.flush(routes=False)

    def _apply_changes(self, routes: bool) -> None:
        shown_before, self._shown_before = self._shown_before, set()
        with self._bulk_change():
            full: set[EdgeItem] = set()
            if self._regroup:
                full = self.groups.rebuild()
                self.router.invalidate()
                for card, shift in self.groups.card_shifts.items():
                    self._shifted[card] = shift
                    self._reroute.update(self.groups.card_edges.get(card.group_id, ()))
                self._regroup, self._refit = False, set()
            elif self._refit:
                refit, self._refit = self._refit, set()
                self.groups.update_frames(refit)
                self.router.frames_changed()
            reroute, self._reroute = self._reroute - full, set()
            shifted, self._shifted = self._shifted, {}
            full.update(self.router.translate(
                [e for e in reroute if e.scene() is self], shifted, shown_before))
            edges = [e for e in full if e.scene() is self]
            if not routes and len(edges) > ROUTE_AT_ONCE:
                edges, later = self.router.split_near_view(edges, ROUTE_AT_ONCE)
                self.router.pending.update(later)
            if not routes and self.router.pending:
                # Edges left from this change or an earlier one: routed from
                # ROUTE_LATER_MS after this change's turn, once it is painted.
                self._route_timer.stop()
                self._route_arm_timer.start()
            label_sides: dict[QGraphicsItem, bool] = {}
            for edge in edges:
                self.router.route(edge, label_sides)

    def _route_some(self) -> None:
        """Route the next ROUTE_AT_ONCE of the edges left for later, in this turn."""
        if self._regroup or self._reroute or self._refit:
            self.flush(routes=False)
        if self.router.route_pending(ROUTE_AT_ONCE):
            self._route_timer.start()

    def _make_node_item(self, node_id: str, type_name: str) -> NodeItem:
        item = NodeItem(node_id, type_name)
        if self.direction != "down":
            item.set_direction(self.direction)
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
            self.router.item_removed(item)
        self.groups.shown.pop(node_id, None)
        if len(self.document.graph.groups):  # its block may be empty now, or its frame smaller
            self._regroup_later()

    def _drop_edge(self, edge: EdgeItem) -> None:
        outgoing = self._outputs.get(edge.source)
        if outgoing and edge in outgoing:
            outgoing.remove(edge)
        self._reroute.discard(edge)
        self.router.forget(edge)
        self.groups.forget_edge(edge)
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
                if self.direction != "down":
                    keep.set_direction(self.direction)
                self.addItem(keep)
                self._outputs.setdefault(source, []).append(keep)
                keep.set_label(self._nodes[source].shape_text)
                shown = self.groups.shown_id
                if shown(source) == shown(target) != target:  # both inside one folded block
                    keep.setVisible(False)
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
                self.router.route(edge)

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
        if old in self.groups.shown:
            self.groups.shown[new] = self.groups.shown.pop(old)
        if len(self.document.graph.groups):
            self._regroup_later()

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

    # ---- edges follow their cards -------------------------------------------------------

    def node_item_moved(self, item: NodeItem | GroupItem) -> None:
        """Called by a node item or card whose position changed: re-route its edges, and
        fit the frames around it when the drag pauses."""
        if self._bulk:
            return
        self._shifted.pop(item, None)
        self.router.item_moved(item)
        graph = self.document.graph
        if isinstance(item, GroupItem):
            edges = self.groups.card_edges.get(item.group_id, [])
            parent = graph.groups.parent_of(item.group_id) \
                if item.group_id in graph.groups else None
        else:
            edges = [*self._inputs.get(item.node_id, ()), *self._outputs.get(item.node_id, ())]
            parent = graph.node(item.node_id).group if item.node_id in graph else None
        sources = {self.groups.shown_id(e.source) for e in edges}
        for source_id in sources:  # their other edges too: the label side depends on us
            source = self.groups.item(source_id)
            if source is not None:
                for edge in self.edges_leaving(source):
                    self.router.route(edge)
        for edge in edges:
            self.router.route(edge)
        if parent is not None and parent in graph.groups:
            self._refit.add(parent)
            self._flush_timer.start()

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
        inference = self._inference = self.document.inference
        problems: dict[str, list] = {}
        for problem in inference.problems:
            if problem.node is not None:
                problems.setdefault(problem.node, []).append(problem)
        shown, self._shown_facts = self._shown_facts, {}
        for node_id, item in self._nodes.items():
            info = inference.nodes.get(node_id)
            found = problems.get(node_id, [])
            # Inference reuses an unchanged node's NodeInfo: most items need no Qt work.
            self._shown_facts[node_id] = (item, info, found)
            last = shown.get(node_id)
            if last is not None and last[0] is item and last[1] is info and last[2] == found:
                continue
            caption = info.caption if info is not None else ""
            shape = fmt_shape(info.shape) if info is not None and info.shape is not None else ""
            shape_changed = shape != item.shape_text
            item.set_texts(caption, shape)
            severity = None
            if found:
                severity = ERROR if any(p.severity == ERROR for p in found) else "warning"
            item.set_problems(severity, [p.message for p in found])
            if shape_changed:
                for edge in self._outputs.get(node_id, ()):
                    edge.set_label(shape)
        self.flush(routes=False)
        self.groups.refresh_facts(inference)
