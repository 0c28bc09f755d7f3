"""Drawing a connection: the wire that follows the mouse from a port to a target.

Nothing changes in the graph during the drag; on release one command (or one macro,
when an existing input was picked up and dropped elsewhere) is pushed, or nothing when
the target is invalid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QToolTip

from cnnstudio.core.errors import ArityError, CycleError
from cnnstudio.core.graph import Graph
from cnnstudio.ui.canvas.edges import EdgeItem, WireItem
from cnnstudio.ui.canvas.items import IN_PORT, NodeItem
from cnnstudio.ui.commands import ConnectCommand, DisconnectCommand

if TYPE_CHECKING:
    from cnnstudio.ui.canvas.view import GraphView


def connection_problem(graph: Graph, source: str, target: str) -> str | None:
    """Why `source` → `target` cannot be connected, or None if it can."""
    try:
        graph.check_connect(source, target)
    except (ArityError, CycleError) as err:
        return err.message
    return None


class ConnectionDrag:
    """One wire being dragged in `view`.

    Three ways to start: from an output port (a new connection from that node), from a
    free input port (a new connection into that node, dropped on a source), or from a
    connected input port (the nearest input is picked up and may be dropped elsewhere).
    """

    def __init__(self, view: GraphView, node: NodeItem, port: str, scene_pos: QPointF) -> None:
        self.view = view
        self.scene = view.graph_scene
        self.graph = self.scene.document.graph
        self.detached: EdgeItem | None = None
        self.reverse = False  # True: the fixed end is a target, we look for a source
        self.fixed = node
        if port == IN_PORT:
            edges = self.scene.edges_into(node.node_id)
            if edges:
                self.detached = min(edges, key=lambda e: _distance_x(e, node, scene_pos))
                self.fixed = self.scene.item_for(self.detached.source) or node
            else:
                self.reverse = True
        # Checks run against the graph as it will be once the picked-up input is gone.
        self.check_graph = self.graph
        if self.detached is not None:
            self.check_graph = self.graph.copy()
            self.check_graph.disconnect(*self.detached.key)
            self.detached.hide()
        self.candidate: NodeItem | None = None
        self.reason: str | None = None
        self.wire = WireItem()
        self.scene.addItem(self.wire)
        self.move(scene_pos)

    def _anchor(self) -> QPointF:
        if self.reverse:
            return self.fixed.mapToScene(self.fixed.input_anchor(0, 1))
        return self.fixed.mapToScene(self.fixed.output_anchor())

    def move(self, scene_pos: QPointF) -> None:
        """Follow the mouse; highlight the node under it green (valid) or red (invalid)."""
        candidate = self.scene.node_at(scene_pos)
        if candidate is self.fixed and candidate.port_at(scene_pos) is not None:
            candidate = None  # still on the port the drag started from
        reason = None
        if candidate is not None:
            source, target = self._ends(candidate)
            reason = connection_problem(self.check_graph, source, target)
        if candidate is not self.candidate and self.candidate is not None:
            self.candidate.set_connect_state(None)
        self.candidate, self.reason = candidate, reason
        state = None if candidate is None else ("invalid" if reason else "valid")
        if candidate is not None:
            candidate.set_connect_state(state)
        self.wire.set_state(state)
        end = scene_pos
        if state == "valid":  # snap to the port the connection will use
            end = (candidate.mapToScene(candidate.output_anchor()) if self.reverse
                   else candidate.mapToScene(candidate.input_tip(0, 1)))
        if self.reverse:
            self.wire.set_ends(end, self._anchor())
        else:
            self.wire.set_ends(self._anchor(), end)
        self._explain(scene_pos)

    def _ends(self, candidate: NodeItem) -> tuple[str, str]:
        if self.reverse:
            return candidate.node_id, self.fixed.node_id
        return self.fixed.node_id, candidate.node_id

    def _explain(self, scene_pos: QPointF) -> None:
        message = f"Cannot connect: {self.reason}" if self.reason else ""
        if self.candidate is not None and not self.reason:
            source, target = self._ends(self.candidate)
            message = f"Release to connect {source} → {target}"
        self.view.message.emit(message)
        if self.reason:
            global_pos = self.view.viewport().mapToGlobal(self.view.mapFromScene(scene_pos))
            QToolTip.showText(global_pos, message, self.view.viewport())
        else:
            QToolTip.hideText()

    def finish(self, scene_pos: QPointF) -> None:
        """Drop the wire: connect, reconnect, disconnect or (invalid target) do nothing."""
        self.move(scene_pos)
        doc = self.scene.document
        stack = doc.undo_stack
        candidate, reason, detached = self.candidate, self.reason, self.detached
        self.cancel()
        graph = doc.graph
        if detached is not None and detached.key not in graph.edges():
            return  # the graph changed under the drag (an undo by shortcut): do nothing
        if candidate is not None and (candidate.node_id not in graph
                                      or self.fixed.node_id not in graph):
            return
        if candidate is None:
            if detached is not None:  # an input dragged off into empty space: cut it
                stack.push(DisconnectCommand(doc, *detached.key))
            return
        if reason is not None:
            return
        source, target = self._ends(candidate)
        if detached is None:
            stack.push(ConnectCommand(doc, source, target))
        elif target != detached.target:
            stack.beginMacro(f"Reconnect {source} → {target}")
            stack.push(DisconnectCommand(doc, *detached.key))
            stack.push(ConnectCommand(doc, source, target))
            stack.endMacro()

    def cancel(self) -> None:
        """Remove the wire and every highlight; the graph is untouched."""
        if self.candidate is not None:
            self.candidate.set_connect_state(None)
        if self.detached is not None and self.detached.scene() is self.scene:
            self.detached.show()
        if self.wire.scene() is self.scene:
            self.scene.removeItem(self.wire)
        QToolTip.hideText()
        self.view.message.emit("")


def _distance_x(edge: EdgeItem, node: NodeItem, scene_pos: QPointF) -> float:
    count = len(node.scene().edges_into(node.node_id))  # type: ignore[union-attr]
    anchor = node.mapToScene(node.input_anchor(edge.index, count))
    if node.direction == "right":  # merge inputs spread along the left edge
        return abs(anchor.y() - scene_pos.y())
    return abs(anchor.x() - scene_pos.x())
