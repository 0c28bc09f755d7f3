"""Every user edit is a command on the document's QUndoStack.

Simple edits (add, remove, connect, disconnect, parameters, moves, and grouping,
folding and renaming blocks) have their own commands that replay exactly the Graph mutation and its inverse, so the canvas updates
one item at a time. Compound edits (paste, block insert, auto layout, quick fixes,
rename) are `GraphSnapshotCommand`s: they run a function on the graph once and undo/redo
by swapping whole graph snapshots.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtGui import QUndoCommand

from cnnstudio.core.edits import with_ancestors
from cnnstudio.core.errors import GraphError
from cnnstudio.core.folding import fold_moves, unfold_moves
from cnnstudio.core.graph import Graph, Node
from cnnstudio.core.groups import Group, check_name
from cnnstudio.ui.document import Document

# Ids for QUndoCommand.id(): consecutive commands with the same id may merge.
MERGE_PARAMS = 1001
# Edits of one field closer together than this are one gesture (spin-box steps held down,
# wheel turns): they merge. A later edit of the same field is a new undo entry.
MERGE_WINDOW_S = 1.0
clock = time.monotonic  # tests replace it to step time


class AddNodeCommand(QUndoCommand):
    """Add one node (its id is fixed on first redo so redo after undo gives the same id)."""

    def __init__(self, doc: Document, type_name: str, params: dict[str, Any] | None = None,
                 pos: tuple[float, float] | None = None, inputs: list[str] | None = None,
                 node_id: str | None = None) -> None:
        super().__init__(f"Add {type_name}")
        self.doc, self.type_name, self.params = doc, type_name, params
        self.pos, self.inputs, self.node_id = pos, list(inputs or []), node_id

    def redo(self) -> None:
        node = self.doc.graph.add_node(self.type_name, copy.deepcopy(self.params), id=self.node_id,
                                       inputs=self.inputs, pos=self.pos)
        self.node_id = node.id
        self.params = copy.deepcopy(node.params)

    def undo(self) -> None:
        self.doc.graph.remove_node(self.node_id)


class RemoveNodesCommand(QUndoCommand):
    """Remove nodes and their connections; undo puts them back where they were."""

    def __init__(self, doc: Document, node_ids: list[str]) -> None:
        super().__init__("Delete" if len(node_ids) != 1 else f"Delete {node_ids[0]}")
        self.doc = doc
        self.node_ids = [nid for nid in doc.graph.ids if nid in set(node_ids)]
        self._removed: list[tuple[int, Node, list[tuple[str, int]]]] = []

    def redo(self) -> None:
        graph = self.doc.graph
        self._removed = []
        for nid in self.node_ids:
            index = graph.index_of(nid)
            node = copy.deepcopy(graph.node(nid))
            cut = graph.remove_node(nid)
            self._removed.append((index, node, cut))

    def undo(self) -> None:
        graph = self.doc.graph
        for index, node, cut in reversed(self._removed):
            graph.insert_node(copy.deepcopy(node), index)
            for target, i in cut:
                graph.connect(node.id, target, i)


class ConnectCommand(QUndoCommand):
    def __init__(self, doc: Document, source: str, target: str, index: int | None = None) -> None:
        super().__init__(f"Connect {source} → {target}")
        self.doc, self.source, self.target, self.index = doc, source, target, index
        self._placed: int | None = None

    def redo(self) -> None:
        self.doc.graph.connect(self.source, self.target, self.index)
        node = self.doc.graph.node(self.target)
        self._placed = self.index if self.index is not None else len(node.inputs) - 1

    def undo(self) -> None:
        self.doc.graph.disconnect(self.source, self.target, self._placed)


class DisconnectCommand(QUndoCommand):
    def __init__(self, doc: Document, source: str, target: str, index: int | None = None) -> None:
        super().__init__(f"Disconnect {source} → {target}")
        self.doc, self.source, self.target, self.index = doc, source, target, index

    def redo(self) -> None:
        self.index = self.doc.graph.disconnect(self.source, self.target, self.index)

    def undo(self) -> None:
        self.doc.graph.connect(self.source, self.target, self.index)


class SetParamsCommand(QUndoCommand):
    """Replace one node's params. Validation happens before the push: construct it only
    with params that `LayerType.resolve` accepted.

    `field` names the parameter the user edited (found from the change when not given).
    Only edits of the same field of the same node within MERGE_WINDOW_S of each other
    merge (the steps of one spin box held down are one gesture), so three fields edited
    one after another are three undo steps, and so is one field edited three times.
    """

    def __init__(self, doc: Document, node_id: str, params: dict[str, Any],
                 field: str | None = None) -> None:
        self.doc, self.node_id = doc, node_id
        self.old = copy.deepcopy(doc.graph.node(node_id).params)
        self.new = copy.deepcopy(params)
        if field is None:
            changed = {k for k in {*self.old, *self.new} if self.old.get(k) != self.new.get(k)}
            field = next(iter(changed)) if len(changed) == 1 else None
        self.field = field
        self.when = clock()
        super().__init__(f"Edit {node_id}.{field}" if field else f"Edit {node_id}")

    def id(self) -> int:
        return MERGE_PARAMS

    def mergeWith(self, other: QUndoCommand) -> bool:
        if (not isinstance(other, SetParamsCommand) or other.node_id != self.node_id
                or self.field is None or other.field != self.field
                or other.when - self.when > MERGE_WINDOW_S):
            return False
        self.new, self.when = other.new, other.when
        self.setObsolete(self.new == self.old)  # stepped back to the start: no entry at all
        return True

    def redo(self) -> None:
        self.doc.graph.set_params(self.node_id, copy.deepcopy(self.new))

    def undo(self) -> None:
        self.doc.graph.set_params(self.node_id, copy.deepcopy(self.old))


class SetTrainableCommand(QUndoCommand):
    """Freeze (`trainable` False) or unfreeze nodes as one undo entry; undo gives each
    node back its own flag. Raises MissingNodeError (before any push) for an unknown id."""

    def __init__(self, doc: Document, node_ids: Iterable[str], trainable: bool,
                 label: str | None = None) -> None:
        graph = doc.graph
        self.node_ids = [nid for nid in dict.fromkeys(node_ids)
                         if graph.node(nid).trainable != trainable]
        verb = "Unfreeze" if trainable else "Freeze"
        super().__init__(label or (f"{verb} {self.node_ids[0]}" if len(self.node_ids) == 1
                                   else f"{verb} {len(self.node_ids)} layers"))
        self.doc, self.trainable = doc, trainable

    @property
    def changes(self) -> bool:
        return bool(self.node_ids)

    def redo(self) -> None:
        self.doc.graph.set_trainable(self.node_ids, self.trainable)

    def undo(self) -> None:
        self.doc.graph.set_trainable(self.node_ids, not self.trainable)


def set_trainable(doc: Document, node_ids: Iterable[str], trainable: bool, *,
                  up_to: bool = False, label: str | None = None) -> bool:
    """Freeze or unfreeze `node_ids` (with `up_to`, also every node they depend on: "freeze
    up to here") as one undo entry named `label` (else "Freeze conv1", "Freeze 12 layers");
    False when nothing changes (no entry then)."""
    ids = with_ancestors(doc.graph, node_ids) if up_to else list(node_ids)
    command = SetTrainableCommand(doc, ids, trainable, label)
    if command.changes:
        doc.undo_stack.push(command)
    return command.changes


class MoveNodesCommand(QUndoCommand):
    """Nodes dragged to new places: one undo entry per drag (pushed on mouse release)."""

    def __init__(self, doc: Document, moves: dict[str, tuple[tuple[float, float] | None,
                                                               tuple[float, float]]]) -> None:
        super().__init__("Move" if len(moves) != 1 else f"Move {next(iter(moves))}")
        self.doc, self.moves = doc, dict(moves)
        self._first = True

    def redo(self) -> None:
        self._apply({nid: new for nid, (_, new) in self.moves.items()})

    def undo(self) -> None:
        self._apply({nid: old for nid, (old, _) in self.moves.items() if old is not None})

    def _apply(self, positions: dict[str, tuple[float, float]]) -> None:
        # Many nodes (a folded card's block) move in one event, so the canvas routes once.
        if len(positions) > 1:
            self.doc.graph.move_nodes(positions)
        else:
            for nid, pos in positions.items():
                self.doc.graph.move_node(nid, pos)


class GraphSnapshotCommand(QUndoCommand):
    """A compound edit: `edit(graph)` runs once on a copy; undo/redo swap snapshots.

    If `edit` raises, nothing changes and the exception propagates before the push
    (call `prepare()` first, or use `push_snapshot`).
    """

    def __init__(self, doc: Document, label: str, edit: Callable[[Graph], Any]) -> None:
        super().__init__(label)
        self.doc = doc
        self.before = doc.graph.copy()
        after = doc.graph.copy()
        self.result = edit(after)
        self.after = after

    def redo(self) -> None:
        self.doc.graph.replace_with(self.after)

    def undo(self) -> None:
        self.doc.graph.replace_with(self.before)


def push_snapshot(doc: Document, label: str, edit: Callable[[Graph], Any]) -> Any:
    """Run a compound edit as one undoable step; return what `edit` returned.

    Exceptions from `edit` (e.g. a GraphError) propagate and leave the graph unchanged.
    """
    command = GraphSnapshotCommand(doc, label, edit)
    doc.undo_stack.push(command)
    return command.result


class SetSettingsCommand(QUndoCommand):
    """Replace the project's `data` or `training` section (already validated)."""

    def __init__(self, doc: Document, section: str, value: dict[str, Any],
                 label: str | None = None) -> None:
        super().__init__(label or f"Edit {section} settings")
        self.doc, self.section = doc, section
        self.old = copy.deepcopy(getattr(doc.project, section))
        self.new = copy.deepcopy(value)

    def _apply(self, value: dict[str, Any]) -> None:
        setattr(self.doc.project, self.section, copy.deepcopy(value))
        self.doc.settings_changed.emit(self.section)

    def redo(self) -> None:
        self._apply(self.new)

    def undo(self) -> None:
        self._apply(self.old)

    def rebase(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Rewrite both states it puts back (e.g. data paths after a save elsewhere)."""
        self.old, self.new = change(self.old), change(self.new)


# ---- groups ------------------------------------------------------------------------------
# Group edits touch a few fields (and, for a fold, the positions of the nodes that close
# the gap), so they replay exactly those rather than swapping 1,000-node snapshots.

Positions = dict[str, tuple[float, float]]


def _positions(graph: Graph, node_ids: Iterable[str]) -> Positions:
    return {nid: pos for nid in node_ids if (pos := graph.node(nid).pos) is not None}


def _move(graph: Graph, positions: Positions) -> None:
    if positions:
        graph.move_nodes(positions)


class GroupCommand(QUndoCommand):
    """Group `members` (node and group ids with one common parent) under `name`; the new
    group's id is fixed on first redo. Raises GraphError (before any push) when they
    cannot be grouped."""

    def __init__(self, doc: Document, members: list[str], name: str,
                 group_id: str | None = None) -> None:
        name = check_name(name)
        groups = doc.graph.groups
        members = list(dict.fromkeys(members))
        if not members:
            raise GraphError("select at least one node to group")
        if len({groups.parent_of(m) for m in members}) > 1:  # raises for an unknown id
            raise GraphError("these nodes lie in different groups; group within one group")
        super().__init__(f"Group {name}")
        self.doc, self.members, self.name, self.group_id = doc, members, name, group_id

    def redo(self) -> None:
        self.group_id = self.doc.graph.groups.add(self.members, self.name, id=self.group_id).id

    def undo(self) -> None:
        self.doc.graph.groups.remove(self.group_id)


class UngroupCommand(QUndoCommand):
    """Dissolve a group: its members join its parent. A folded group unfolds first (the
    nodes past it move back), so nothing is left overlapping."""

    def __init__(self, doc: Document, group_id: str) -> None:
        group = doc.graph.groups.get(group_id)  # raises MissingNodeError
        if doc.graph.groups.is_empty(group_id):  # kept only for undoing its nodes' delete
            raise GraphError(f"block {group.name!r} has no layers left to ungroup")
        super().__init__(f"Ungroup {group.name}")
        self.doc, self.group_id = doc, group_id
        self._group: Group | None = None
        self._members: list[str] = []
        self._position = 0
        self._before: Positions = {}
        self._after: Positions = {}

    def redo(self) -> None:
        graph = self.doc.graph
        if graph.groups.get(self.group_id).collapsed:
            self._after = unfold_moves(graph, self.group_id)
            self._before = _positions(graph, self._after)
            _move(graph, self._after)
        self._position = graph.groups.position(self.group_id)
        group, self._members = graph.groups.remove(self.group_id)
        self._group = copy.deepcopy(group)

    def undo(self) -> None:
        graph, saved = self.doc.graph, self._group
        assert saved is not None
        graph.groups.add(self._members, saved.name, id=saved.id, collapsed=saved.collapsed,
                         position=self._position)
        graph.groups.get(saved.id).extra = copy.deepcopy(saved.extra)
        graph.groups.set_collapsed(saved.id, saved.collapsed, saved.fold_shift)
        _move(graph, self._before)


class FoldCommand(QUndoCommand):
    """Fold (or unfold) groups as one undo entry: the nodes past each block move up by its
    length (`core.folding`) and the group remembers that shift; undo puts back exactly the
    positions and shifts of before. Inner groups fold first, outer ones unfold first.

    The moves of all the groups reach the graph as one `move_nodes`, so the canvas places
    each node once however many blocks fold."""

    def __init__(self, doc: Document, group_ids: list[str], folded: bool) -> None:
        groups = doc.graph.groups
        todo = [g for g in dict.fromkeys(group_ids) if groups.get(g).collapsed != folded]
        todo.sort(key=lambda g: len(groups.ancestors(g)), reverse=folded)
        verb = "Fold" if folded else "Unfold"
        super().__init__(f"{verb} {groups.get(todo[0]).name}" if len(todo) == 1
                         else f"{verb} {len(todo)} blocks" if todo else verb)
        self.doc, self.group_ids, self.folded = doc, todo, folded
        self._before: Positions = {}
        self._after: Positions = {}
        self._shifts: list[tuple[str, float, float]] = []  # group, shift before, after

    @property
    def changes(self) -> bool:
        return bool(self.group_ids)

    def _plan(self) -> None:
        """Each group's moves depend on the folds before it (what they moved, and which
        nodes they hid): work them out on the nodes and groups directly, then put those
        back for the one real move and the announced folds."""
        graph = self.doc.graph
        for group_id in self.group_ids:
            group = graph.groups.get(group_id)
            old_shift = group.fold_shift
            if self.folded:
                moves, shift = fold_moves(graph, group_id)
            else:
                moves, shift = unfold_moves(graph, group_id), 0.0
            for node_id, pos in moves.items():
                node = graph.node(node_id)
                if node_id not in self._before and node.pos is not None:
                    self._before[node_id] = node.pos
                node.pos = pos
            group.collapsed, group.fold_shift = self.folded, shift
            self._shifts.append((group_id, old_shift, shift))
        self._after = {nid: p for nid in self._before if (p := graph.node(nid).pos) is not None}
        for node_id, pos in self._before.items():
            graph.node(node_id).pos = pos
        for group_id, old_shift, _ in self._shifts:
            group = graph.groups.get(group_id)
            group.collapsed, group.fold_shift = not self.folded, old_shift

    def redo(self) -> None:
        graph = self.doc.graph
        if not self._shifts:
            self._plan()
        _move(graph, self._after)
        for group_id, _, shift in self._shifts:
            graph.groups.set_collapsed(group_id, self.folded, shift)

    def undo(self) -> None:
        graph = self.doc.graph
        for group_id, old_shift, _ in reversed(self._shifts):
            graph.groups.set_collapsed(group_id, not self.folded, old_shift)
        _move(graph, self._before)


class RenameGroupCommand(QUndoCommand):
    def __init__(self, doc: Document, group_id: str, name: str) -> None:
        self.old = doc.graph.groups.get(group_id).name
        self.new = check_name(name)  # raises GraphError before any push
        super().__init__(f"Rename {self.old} to {self.new}")
        self.doc, self.group_id = doc, group_id

    def redo(self) -> None:
        self.doc.graph.groups.rename(self.group_id, self.new)

    def undo(self) -> None:
        self.doc.graph.groups.rename(self.group_id, self.old)


class LayoutCommand(QUndoCommand):
    """Auto layout as moves: each node to its place in `laid_out` (the graph laid out on a
    copy) and each group's fold shift as there, in one `nodes_moved` event — not a
    whole-graph swap, which rebuilds every item (54 ms on ResNet-50). Use it only when
    every node already has a position (a move cannot take one away again on undo)."""

    def __init__(self, doc: Document, laid_out: Graph) -> None:
        super().__init__("Auto layout")
        graph = self.graph = doc.graph
        self._after = {n.id: n.pos for n in laid_out
                       if n.pos is not None and graph.node(n.id).pos != n.pos}
        self._before = _positions(graph, self._after)
        self._folds_after = {g.id: (g.collapsed, g.fold_shift) for g in laid_out.groups}
        self._folds_before = {g.id: (g.collapsed, g.fold_shift) for g in graph.groups}

    def _apply(self, positions: Positions, folds: dict[str, tuple[bool, float]]) -> None:
        for group_id, (collapsed, shift) in folds.items():
            self.graph.groups.set_collapsed(group_id, collapsed, shift)
        _move(self.graph, positions)

    def redo(self) -> None:
        self._apply(self._after, self._folds_after)

    def undo(self) -> None:
        self._apply(self._before, self._folds_before)
