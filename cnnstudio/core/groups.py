"""Groups: named blocks of nodes (a residual block, a ResNet stage) the canvas folds into one card.

Membership is stored where it cannot go stale: each node knows its innermost group
(`Node.group`) and each group its parent group (`Group.parent`). Removing a node and undoing
the removal therefore keeps it in its group with no bookkeeping, and renaming a node changes
nothing here. A group whose nodes were all deleted is kept (an undo may bring them back) but
is empty: nothing shows it and the file does not list it.

The file form is `graph.groups`: `[{"id", "name", "nodes": [member ids], "collapsed"}]`,
where a member is a node id or a nested group's id; unknown keys of a group are kept.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnnstudio.core.errors import (
    DuplicateIdError,
    FormatError,
    GraphError,
    InvalidIdError,
    MissingNodeError,
    show_value,
)
from cnnstudio.core.ids import MAX_NODES, check_id

if TYPE_CHECKING:
    from cnnstudio.core.graph import Graph

GROUP_KEYS = ("id", "name", "nodes", "collapsed", "fold_shift")
MAX_NAME_LENGTH = 100
# Far deeper than any real network (a ResNet is 2 deep); a hostile file nesting thousands of
# groups would otherwise cost quadratic time to read and recursion downstream.
MAX_DEPTH = 32


@dataclass
class Group:
    """One block: its id (shares the node ids' namespace), display name, parent group
    (None at top level) and whether the canvas shows it folded into one card."""

    id: str
    name: str
    parent: str | None = None
    collapsed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept on save
    # How far the nodes past the block moved up when it folded (core.folding); unfolding
    # moves them back by as much. 0 when folding moved nothing.
    fold_shift: float = 0.0


def check_name(name: Any) -> str:
    """`name` stripped if it can name a group; raise GraphError otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise GraphError(f"a group name must be a non-empty string, got {show_value(name)}")
    if len(name) > MAX_NAME_LENGTH:
        raise GraphError(f"a group name is at most {MAX_NAME_LENGTH} characters")
    return name.strip()


class GroupTable:
    """The groups of one graph (`graph.groups`), in creation order. Mutations validate,
    store, then notify the graph's listeners: group_added(group), group_removed(group),
    group_changed(group) (folded, unfolded or renamed)."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph
        self._groups: dict[str, Group] = {}
        # (graph membership revision, direct members, every node inside) per group: the
        # canvas asks for these on every redraw of a 1,000-node graph, so they are computed
        # once per change of who is in the graph (not per move or parameter edit).
        self._index: tuple[int, dict[str, list[str]], dict[str, list[str]]] | None = None

    # ---- reading ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Group]:
        return iter(list(self._groups.values()))

    def __len__(self) -> int:
        return len(self._groups)

    def __contains__(self, group_id: object) -> bool:
        return group_id in self._groups

    @property
    def ids(self) -> list[str]:
        return list(self._groups)

    def get(self, group_id: str) -> Group:
        try:
            return self._groups[group_id]
        except KeyError:
            raise MissingNodeError(f"no group with id {group_id!r}", node=group_id) from None

    def parent_of(self, member: str) -> str | None:
        """The group directly holding `member` (a node or group id), or None."""
        if member in self._groups:
            parent = self._groups[member].parent
        elif member in self._graph:
            parent = self._graph.node(member).group
        else:
            raise MissingNodeError(f"no node or group with id {member!r}", node=member)
        return parent if parent in self._groups else None

    def ancestors(self, member: str) -> list[str]:
        """The groups holding `member`, outermost first."""
        chain: list[str] = []
        seen: set[str] = set()
        parent = self.parent_of(member)
        while parent is not None and parent not in seen:
            chain.append(parent)
            seen.add(parent)
            parent = self._groups[parent].parent if self._groups[parent].parent in self else None
        return list(reversed(chain))

    def fold_map(self) -> tuple[dict[str, int], dict[str, str | None]]:
        """For every group: its nesting depth (0 at top level), and the outermost folded
        group over it, itself included (None when it shows unfolded)."""
        depth: dict[str | None, int] = {None: -1}
        folded_at: dict[str | None, str | None] = {None: None}

        def resolve(group_id: str) -> None:
            chain = []  # up to the first group already known (nesting ≤ MAX_DEPTH)
            current: str | None = group_id
            while current not in depth:
                chain.append(current)
                parent = self._groups[current].parent
                current = parent if parent in self._groups else None
            for group in reversed(chain):
                parent = self._groups[group].parent
                parent = parent if parent in self._groups else None
                depth[group] = depth[parent] + 1
                above = folded_at[parent]
                folded_at[group] = above if above is not None else (
                    group if self._groups[group].collapsed else None)

        for group_id in self._groups:
            resolve(group_id)
        del depth[None], folded_at[None]
        return depth, folded_at  # type: ignore[return-value]

    def position(self, group_id: str) -> int:
        """Where a group stands in the table's order (the file's order of `groups`)."""
        self.get(group_id)
        return list(self._groups).index(group_id)

    def _members(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        index = self._index
        if index is None or index[0] != self._graph.membership_revision:
            direct: dict[str, list[str]] = {g: [] for g in self._groups}
            deep: dict[str, list[str]] = {g: [] for g in self._groups}
            for node in self._graph:
                if node.group in direct:
                    direct[node.group].append(node.id)
                    for group_id in self.ancestors(node.id):
                        deep[group_id].append(node.id)
            for group in self._groups.values():
                if group.parent in direct:
                    direct[group.parent].append(group.id)
            index = self._index = (self._graph.membership_revision, direct, deep)
        return index[1], index[2]

    def children(self, group_id: str) -> list[str]:
        """The direct members of a group: its nodes in graph order, then its groups."""
        self.get(group_id)
        return list(self._members()[0][group_id])

    def nodes(self, group_id: str) -> list[str]:
        """Every node inside a group, nested ones too, in graph order."""
        self.get(group_id)
        return list(self._members()[1][group_id])

    def is_empty(self, group_id: str) -> bool:
        return not self._members()[1].get(group_id)

    def shown_as(self, node_id: str) -> str:
        """What the canvas draws for `node_id`: the outermost folded group holding it, or
        the node itself."""
        return next((g for g in self.ancestors(node_id) if self._groups[g].collapsed), node_id)

    def new_id(self, base: str = "block") -> str:
        i = 1
        while f"{base}{i}" in self._groups or f"{base}{i}" in self._graph:
            i += 1
        return f"{base}{i}"

    # ---- editing ------------------------------------------------------------------------

    def add(self, members: list[str], name: str, *, id: str | None = None,
            collapsed: bool = False, position: int | None = None) -> Group:
        """Group `members` (node and group ids with one common parent, which the new group
        takes their place in), last in the table or at `position` (an undone ungroup goes
        back where it was). Raises GraphError when they are none, unknown, lie in different
        groups or would nest deeper than MAX_DEPTH, and InvalidIdError/DuplicateIdError for
        a bad `id`."""
        name = check_name(name)
        members = list(dict.fromkeys(members))
        if not members:
            raise GraphError("select at least one node to group")
        parents = {self.parent_of(m) for m in members}  # raises for an unknown id
        if len(parents) > 1:
            raise GraphError("these nodes lie in different groups; group within one group")
        group_id = self.new_id() if id is None else check_id(id)
        if group_id in self._groups or group_id in self._graph:
            raise DuplicateIdError(f"id {group_id!r} is already used", node=group_id)
        parent = parents.pop()
        depth = len(self.ancestors(parent)) + 2 if parent is not None else 1
        depth += max((self._height(m) for m in members if m in self._groups), default=0)
        if depth > MAX_DEPTH:
            raise GraphError(f"blocks nest at most {MAX_DEPTH} deep")
        group = Group(group_id, name, parent, bool(collapsed))
        items = list(self._groups.items())
        items.insert(len(items) if position is None else position, (group_id, group))
        self._groups = dict(items)
        for member in members:
            if member in self._groups:
                self._groups[member].parent = group_id
            else:
                self._graph.node(member).group = group_id
        self._graph._emit("group_added", group=group_id)
        return group

    def _height(self, group_id: str) -> int:
        """How many levels of groups `group_id` holds, itself included."""
        children = [g for g in self._groups.values() if g.parent == group_id]
        return 1 + max((self._height(g.id) for g in children), default=0)

    def remove(self, group_id: str) -> tuple[Group, list[str]]:
        """Ungroup: the group's members move to its parent. Returns the group and its
        direct members, so an undo can `add` it back."""
        group = self.get(group_id)
        members = self.children(group_id)
        for member in members:
            if member in self._groups:
                self._groups[member].parent = group.parent
            else:
                self._graph.node(member).group = group.parent
        del self._groups[group_id]
        self._graph._emit("group_removed", group=group_id)
        return group, members

    def set_collapsed(self, group_id: str, collapsed: bool, fold_shift: float = 0.0) -> None:
        """Fold or unfold a group (`core.folding` says what moves and `fold_shift`)."""
        group = self.get(group_id)
        if (group.collapsed, group.fold_shift) != (bool(collapsed), float(fold_shift)):
            group.collapsed, group.fold_shift = bool(collapsed), float(fold_shift)
            self._graph._emit("group_changed", group=group_id)

    def rename(self, group_id: str, name: str) -> None:
        group = self.get(group_id)
        name = check_name(name)
        if group.name != name:
            group.name = name
            self._graph._emit("group_changed", group=group_id)

    # ---- copying and files --------------------------------------------------------------

    def replace(self, other: GroupTable) -> None:
        """Take `other`'s groups (no event: the caller announces the whole change)."""
        self._groups = {g.id: copy.deepcopy(g) for g in other}
        self._index = None

    def to_list(self) -> list[dict[str, Any]]:
        """The file form; empty groups are left out (and so are references to them)."""
        kept = {g for g in self._groups if not self.is_empty(g)}
        out = []
        for group in self._groups.values():
            if group.id not in kept:
                continue
            entry: dict[str, Any] = {
                "id": group.id, "name": group.name,
                "nodes": [m for m in self.children(group.id) if m not in self._groups or m in kept],
                "collapsed": group.collapsed}
            if group.collapsed and group.fold_shift:
                entry["fold_shift"] = group.fold_shift
            entry.update(copy.deepcopy(group.extra))
            out.append(entry)
        return out

    def load(self, raw: Any) -> None:
        """Read the file form into this (empty) table; raise FormatError with the path at
        fault relative to `groups`."""
        if not isinstance(raw, list):
            raise FormatError("groups", "must be a list")
        if len(raw) > MAX_NODES:
            raise FormatError("groups", f"{len(raw):,} groups; at most {MAX_NODES:,}")
        members_of: dict[str, list[str]] = {}
        for i, entry in enumerate(raw):
            where = f"groups[{i}]"
            if not isinstance(entry, dict):
                raise FormatError(where, "must be an object")
            try:
                group_id = check_id(entry.get("id"))
            except InvalidIdError as err:
                raise FormatError(f"{where}.id", err.message) from None
            if group_id in self._groups:
                raise FormatError(f"{where}.id", f"duplicate group id {group_id!r}")
            if group_id in self._graph:
                raise FormatError(f"{where}.id", f"{group_id!r} is already a node id")
            try:
                name = check_name(entry.get("name", group_id))
            except GraphError as err:
                raise FormatError(f"{where}.name", err.message) from None
            collapsed = entry.get("collapsed", False)
            if not isinstance(collapsed, bool):
                raise FormatError(f"{where}.collapsed", "must be true or false")
            shift = entry.get("fold_shift", 0.0)
            if (not isinstance(shift, (int, float)) or isinstance(shift, bool)
                    or not 0 <= shift < 1e9):
                raise FormatError(f"{where}.fold_shift", "must be a number ≥ 0")
            nodes = entry.get("nodes")
            if not isinstance(nodes, list) or not nodes:
                raise FormatError(f"{where}.nodes", "must be a non-empty list of ids")
            if not all(isinstance(m, str) for m in nodes):
                raise FormatError(f"{where}.nodes", "must be a list of node or group ids")
            extra = copy.deepcopy({k: v for k, v in entry.items() if k not in GROUP_KEYS})
            self._groups[group_id] = Group(group_id, name, None, collapsed, extra,
                                           float(shift) if collapsed else 0.0)
            members_of[group_id] = nodes
        owner: dict[str, str] = {}
        for i, (group_id, nodes) in enumerate(members_of.items()):
            for j, member in enumerate(nodes):
                where = f"groups[{i}].nodes[{j}]"
                if member not in self._groups and member not in self._graph:
                    raise FormatError(where, f"no node or group with id {member!r}")
                if member == group_id:
                    raise FormatError(where, "a group cannot hold itself")
                if member in owner:
                    raise FormatError(where, f"{member!r} is already in group {owner[member]!r}")
                owner[member] = group_id
        for member, group_id in owner.items():
            if member in self._groups:
                self._groups[member].parent = group_id
            else:
                self._graph.node(member).group = group_id
        self._index = None
        depths: dict[str, int] = {}
        for i, group_id in enumerate(members_of):  # nesting must end: no group inside itself
            chain, seen, parent = [group_id], {group_id}, self._groups[group_id].parent
            while parent is not None and parent not in depths:
                if parent in seen:
                    raise FormatError(f"groups[{i}]", f"group {group_id!r} ends up inside itself")
                chain.append(parent)
                seen.add(parent)
                parent = self._groups[parent].parent
            depth = depths[parent] if parent is not None else 0
            for group in reversed(chain):  # outermost first: each one deeper than its parent
                depth += 1
                depths[group] = depth
                if depth > MAX_DEPTH:
                    raise FormatError(f"groups[{i}]", f"blocks nest at most {MAX_DEPTH} deep")
