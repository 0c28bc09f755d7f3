"""The network as a directed acyclic graph of layer nodes.

`Graph` is the single source of truth the editor, the shape inference, the builder and the
project file all work on. Every mutation validates first, then stores, then tells the
listeners (`subscribe`), so views mirror the model without owning state. Errors are
specific and name the node at fault."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cnnstudio.core import registry
from cnnstudio.core.errors import (
    ArityError,
    CycleError,
    DuplicateIdError,
    FormatError,
    GraphError,
    InvalidIdError,
    MissingNodeError,
    ParameterError,
    show_value,
)
from cnnstudio.core.groups import GroupTable
from cnnstudio.core.ids import MAX_NODES, MAX_POS, RESERVED_IDS, check_id

NODE_KEYS = ("id", "type", "params", "inputs", "pos", "trainable")
# Which way data flows on the canvas (file key `graph.direction`, written when not "down").
DIRECTIONS = ("down", "right")
GRAPH_KEYS = ("nodes", "groups", "direction")  # the keys of `graph` that Graph reads
_MEMBERSHIP_EVENTS = frozenset({"node_added", "node_removed", "node_renamed", "group_added",
                                "group_removed", "reset"})

Listener = Callable[..., None]


def _copied(value: Any) -> Any:
    """`value` copied: lists item by item, anything else but numbers and strings deeply."""
    if value is None or isinstance(value, (int, float, str)):
        return value
    if type(value) is list:
        return [_copied(v) for v in value]
    return copy.deepcopy(value)


@dataclass
class Node:
    """One layer: its id, type, user-given params (as in the file), ordered inputs."""

    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    pos: tuple[float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept on save
    group: str | None = None  # the innermost group holding this node (see core.groups)
    # False: training leaves this node's parameters (and BatchNorm statistics) as they are.
    trainable: bool = True

    @property
    def layer(self):
        return registry.get(self.type)

    def resolved_params(self) -> dict[str, Any]:
        """Params in canonical form with torch's defaults filled; raises ParameterError."""
        return self.layer.resolve(self.params, node=self.id)

    def copy(self) -> Node:
        """A copy sharing nothing mutable with this node; 5× faster than deepcopy (the
        window copies a 1,000-layer graph for every run, explanation and export)."""
        return Node(self.id, self.type, {k: _copied(v) for k, v in self.params.items()},
                    list(self.inputs), self.pos, copy.deepcopy(self.extra) if self.extra
                    else {}, self.group, self.trainable)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type,
                               "params": copy.deepcopy(self.params), "inputs": list(self.inputs)}
        if self.pos is not None:
            out["pos"] = [self.pos[0], self.pos[1]]
        if not self.trainable:  # written only when False: older readers lose nothing else
            out["trainable"] = False
        out.update(copy.deepcopy(self.extra))
        return out


class Graph:
    """A DAG of nodes. Mutations validate, store, then notify listeners."""

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._listeners: list[Listener] = []
        self.revision = 0  # bumped on every change, so derived data can be cached
        self.membership_revision = 0  # bumped when nodes or groups come, go or change id
        # Caches of derived data, by owner (e.g. shape inference's resolved params); each
        # owner validates its entries itself, since node params are plain dicts.
        self.caches: dict[str, dict[str, Any]] = {}
        self.groups = GroupTable(self)
        self.direction = "down"

    # ---- reading -----------------------------------------------------------------------

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes.values()))

    def __len__(self) -> int:
        return len(self._nodes)

    def node(self, node_id: str) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise MissingNodeError(f"no node with id {node_id!r}", node=node_id) from None

    def input_node(self) -> Node | None:
        """The network's (first) Input node, or None when it has none."""
        return next((n for n in self._nodes.values() if n.type == "Input"), None)

    @property
    def ids(self) -> list[str]:
        return list(self._nodes)

    def consumers(self, node_id: str) -> list[str]:
        """Ids of the nodes that take `node_id` as an input (each once, in graph order)."""
        return [n.id for n in self._nodes.values() if node_id in n.inputs]

    def edges(self) -> list[tuple[str, str, int]]:
        """Every connection as (source, target, input index)."""
        return [(src, n.id, i) for n in self._nodes.values() for i, src in enumerate(n.inputs)]

    def sinks(self) -> list[str]:
        """Nodes no other node consumes, in graph order (a valid model has exactly one)."""
        used = {src for n in self._nodes.values() for src in n.inputs}
        return [nid for nid in self._nodes if nid not in used]

    def topological_order(self) -> list[str]:
        """Node ids, every node after its inputs; ties keep graph order. Raises CycleError."""
        pending = {nid: len(set(n.inputs)) for nid, n in self._nodes.items()}
        users: dict[str, list[str]] = {nid: [] for nid in self._nodes}
        for n in self._nodes.values():
            for src in set(n.inputs):
                if src in users:
                    users[src].append(n.id)
                else:
                    pending[n.id] -= 1  # a dangling reference is reported elsewhere
        ready = [nid for nid, count in pending.items() if count == 0]
        order: list[str] = []
        while ready:
            nid = ready.pop(0)
            order.append(nid)
            for user in users[nid]:
                pending[user] -= 1
                if pending[user] == 0:
                    ready.append(user)
        if len(order) < len(self._nodes):
            stuck = [nid for nid in self._nodes if nid not in set(order)]
            cycle = self._find_cycle(stuck)
            raise CycleError("cycle: " + " → ".join(cycle), node=cycle[0])
        return order

    def _find_cycle(self, candidates: list[str]) -> list[str]:
        """A concrete cycle among `candidates`, for the message."""
        inside = set(candidates)
        start = candidates[0]
        path, seen = [start], {start: 0}
        current = start
        while True:
            nxt = next((s for s in self._nodes[current].inputs if s in inside), None)
            if nxt is None:
                return candidates
            if nxt in seen:
                loop = path[seen[nxt]:] + [nxt]
                return list(reversed(loop))
            seen[nxt] = len(path)
            path.append(nxt)
            current = nxt

    def reaches(self, source: str, target: str) -> bool:
        """True if `target` can be reached from `source` following data flow."""
        users: dict[str, list[str]] = {}
        for n in self._nodes.values():
            for src in n.inputs:
                users.setdefault(src, []).append(n.id)
        stack, seen = [source], {source}
        while stack:
            nid = stack.pop()
            if nid == target:
                return True
            for user in users.get(nid, ()):
                if user not in seen:
                    seen.add(user)
                    stack.append(user)
        return False

    def new_id(self, prefix: str) -> str:
        """A fresh id like 'conv3' from a type name like 'Conv2d'."""
        base = re.sub(r"\dd$", "", prefix).lower() or "node"
        base = re.sub(r"[^\w-]", "", base) or "node"
        if base in RESERVED_IDS or base.startswith("_"):
            base = f"{base.lstrip('_')}_layer"
        i = 1
        while f"{base}{i}" in self._nodes or f"{base}{i}" in self.groups:
            i += 1
        return f"{base}{i}"

    def taken_ids(self) -> set[str]:
        """Ids a new node cannot have: every node's and every group's."""
        return set(self._nodes) | set(self.groups.ids)

    # ---- listening ---------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(event, **details)` after every change.

        Events: node_added(node), node_removed(node), edge_added(source, target, index),
        edge_removed(source, target, index), params_changed(node), node_moved(node),
        nodes_moved(nodes), trainable_changed(nodes), node_renamed(old, new), group_added(group),
        group_removed(group), group_changed(group), reset().
        """
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def _emit(self, event: str, **details: Any) -> None:
        self.revision += 1
        if event in _MEMBERSHIP_EVENTS:
            self.membership_revision += 1
        for listener in list(self._listeners):
            listener(event, **details)

    # ---- editing -----------------------------------------------------------------------

    def add_node(self, type_name: str, params: dict[str, Any] | None = None, *,
                 id: str | None = None, inputs: Iterable[str] = (),
                 pos: tuple[float, float] | None = None,
                 extra: dict[str, Any] | None = None, trainable: bool = True) -> Node:
        """Add a node; raises UnknownTypeError, ParameterError, InvalidIdError,
        DuplicateIdError, MissingNodeError (unknown input) or ArityError."""
        layer = registry.get(type_name)
        node_id = check_id(id) if id is not None else self.new_id(type_name)
        if node_id in self._nodes or node_id in self.groups:
            raise DuplicateIdError(f"node id {node_id!r} is already used", node=node_id)
        params = copy.deepcopy(layer.initial_params() if params is None else params)
        layer.resolve(params, node=node_id)
        inputs = list(inputs)
        for src in inputs:
            self.node(src)
        if layer.max_inputs is not None and len(inputs) > layer.max_inputs:
            raise ArityError(f"{layer.name} takes at most {layer.max_inputs} input(s)", node=node_id)
        node = Node(node_id, layer.name, params, inputs,
                    None if pos is None else _clamp_pos(pos), dict(extra or {}),
                    trainable=bool(trainable))
        self._nodes[node_id] = node
        self._emit("node_added", node=node_id)
        return node

    def insert_node(self, node: Node, index: int | None = None) -> None:
        """Put back a node removed earlier (undo), at its old place in the order."""
        if node.id in self._nodes or node.id in self.groups:
            raise DuplicateIdError(f"node id {node.id!r} is already used", node=node.id)
        items = list(self._nodes.items())
        index = len(items) if index is None else index
        items.insert(index, (node.id, node))
        self._nodes = dict(items)
        self._emit("node_added", node=node.id)

    def remove_node(self, node_id: str) -> list[tuple[str, int]]:
        """Remove a node and every connection from it; return the (consumer, index) pairs
        that were cut, so an undo can restore them."""
        self.node(node_id)
        cut: list[tuple[str, int]] = []  # graph order, ascending index: undo reconnects in order
        for n in self._nodes.values():
            indices = [i for i, src in enumerate(n.inputs) if src == node_id]
            for i in reversed(indices):
                del n.inputs[i]
                self._emit("edge_removed", source=node_id, target=n.id, index=i)
            cut.extend((n.id, i) for i in indices)
        del self._nodes[node_id]
        self._emit("node_removed", node=node_id)
        return cut

    def index_of(self, node_id: str) -> int:
        return list(self._nodes).index(node_id)

    def check_connect(self, source: str, target: str) -> None:
        """Raise MissingNodeError, ArityError (the target takes no more inputs) or
        CycleError (the target already feeds the source) unless `source` → `target` can
        be connected. The messages are for a student dragging a wire (the canvas shows them).
        """
        self.node(source)
        node = self.node(target)
        layer = node.layer
        if source == target:
            raise CycleError("a layer cannot feed itself", node=target)
        if layer.max_inputs == 0:
            raise ArityError(f"{target} is an {layer.name}: it takes no inputs", node=target)
        if layer.max_inputs is not None and len(node.inputs) >= layer.max_inputs:
            raise ArityError(f"{target} ({layer.name}) already has its input"
                             " — drag that connection away first", node=target)
        if self.reaches(target, source):
            raise CycleError(f"{target} already feeds {source}: connecting would make a cycle",
                             node=target)

    def connect(self, source: str, target: str, index: int | None = None) -> None:
        """Feed `source`'s output into `target` (appended, or at input position `index`);
        raises what `check_connect` raises."""
        self.check_connect(source, target)
        node = self.node(target)
        index = len(node.inputs) if index is None else max(0, min(index, len(node.inputs)))
        node.inputs.insert(index, source)
        self._emit("edge_added", source=source, target=target, index=index)

    def disconnect(self, source: str, target: str, index: int | None = None) -> int:
        """Remove one connection source → target; return the input index it had."""
        node = self.node(target)
        if index is None:
            if source not in node.inputs:
                raise GraphError(f"{source} is not an input of {target}", node=target)
            index = node.inputs.index(source)
        elif not (0 <= index < len(node.inputs)) or node.inputs[index] != source:
            raise GraphError(f"{source} is not input {index} of {target}", node=target)
        del node.inputs[index]
        self._emit("edge_removed", source=source, target=target, index=index)
        return index

    def set_params(self, node_id: str, params: dict[str, Any]) -> None:
        """Replace a node's params after validating them; raises ParameterError."""
        node = self.node(node_id)
        node.layer.resolve(params, node=node_id)
        node.params = copy.deepcopy(params)
        self._emit("params_changed", node=node_id)

    def set_param(self, node_id: str, name: str, value: Any) -> None:
        """Set (or, with value None for a param whose default is not None, reset) one param."""
        params = dict(self.node(node_id).params)
        params[name] = value
        self.set_params(node_id, params)

    def move_node(self, node_id: str, pos: tuple[float, float]) -> None:
        node = self.node(node_id)
        node.pos = _clamp_pos(pos)
        self._emit("node_moved", node=node_id)

    def move_nodes(self, moves: dict[str, tuple[float, float]]) -> None:
        """Move many nodes in one event (`nodes_moved`), so a view re-routes once: folding a
        block shifts hundreds of nodes below it."""
        nodes = [self.node(node_id) for node_id in moves]
        for node in nodes:
            node.pos = _clamp_pos(moves[node.id])
        if nodes:
            self._emit("nodes_moved", nodes=[node.id for node in nodes])

    def set_trainable(self, node_ids: Iterable[str], trainable: bool) -> list[str]:
        """Freeze (False) or unfreeze (True) many nodes in one event (`trainable_changed`,
        with the ids that changed); return those ids. Raises MissingNodeError first."""
        nodes = [self.node(node_id) for node_id in dict.fromkeys(node_ids)]
        changed = [node.id for node in nodes if node.trainable != bool(trainable)]
        for node_id in changed:
            self._nodes[node_id].trainable = bool(trainable)
        if changed:
            self._emit("trainable_changed", nodes=changed)
        return changed

    def rename_node(self, old: str, new: str) -> None:
        """Change a node's id, updating every reference to it."""
        self.node(old)
        check_id(new)
        if (new in self._nodes or new in self.groups) and new != old:
            raise DuplicateIdError(f"node id {new!r} is already used", node=new)
        items = []
        for nid, n in self._nodes.items():
            n.inputs = [new if s == old else s for s in n.inputs]
            if nid == old:
                n.id = new
                nid = new
            items.append((nid, n))
        self._nodes = dict(items)
        self._emit("node_renamed", old=old, new=new)

    def replace_with(self, other: Graph) -> None:
        """Take `other`'s nodes (undo of whole-graph edits such as auto layout)."""
        self._nodes = {n.id: n.copy() for n in other}
        self.groups.replace(other.groups)
        self.direction = other.direction
        self._emit("reset")

    # ---- copying and files -------------------------------------------------------------

    def copy(self) -> Graph:
        clone = Graph()
        clone._nodes = {nid: n.copy() for nid, n in self._nodes.items()}
        clone.groups.replace(self.groups)
        clone.direction = self.direction
        return clone

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"nodes": [n.to_dict() for n in self._nodes.values()]}
        groups = self.groups.to_list()
        if groups:
            out["groups"] = groups
        if self.direction != "down":
            out["direction"] = self.direction
        return out

    @classmethod
    def from_dict(cls, data: Any, *, allow_cycles: bool = False) -> Graph:
        """Build a graph from its file form; raise FormatError with the JSON path at fault
        (e.g. `nodes[3].params.kernel_size: must be ≥ 1`)."""
        if not isinstance(data, dict):
            raise FormatError("", "must be an object with a 'nodes' list")
        nodes = data.get("nodes")
        if not isinstance(nodes, list):
            raise FormatError("nodes", "must be a list")
        if len(nodes) > MAX_NODES:
            raise FormatError("nodes", f"{len(nodes):,} nodes; a network has at most"
                                       f" {MAX_NODES:,}")
        graph = cls()
        positions: dict[str, int] = {}
        for i, raw in enumerate(nodes):
            try:
                node = _node_from_dict(raw, f"nodes[{i}]")
            except RecursionError:  # deeply nested params (a hostile paste): say so
                raise FormatError(f"nodes[{i}]", "nested too deeply") from None
            if node.id in graph._nodes:
                raise FormatError(f"nodes[{i}].id", f"duplicate id {node.id!r}")
            graph._nodes[node.id] = node
            positions[node.id] = i
        for node in graph._nodes.values():
            where = f"nodes[{positions[node.id]}]"
            for j, src in enumerate(node.inputs):
                if src not in graph._nodes:
                    raise FormatError(f"{where}.inputs[{j}]", f"no node with id {src!r}")
            layer = node.layer
            if layer.max_inputs is not None and len(node.inputs) > layer.max_inputs:
                raise FormatError(f"{where}.inputs",
                                  f"{layer.name} takes at most {layer.max_inputs} input(s)")
        if not allow_cycles:
            try:
                graph.topological_order()
            except CycleError as err:
                raise FormatError("nodes", err.message) from None
        if data.get("groups") is not None:
            graph.groups.load(data["groups"])
        direction = data.get("direction", "down")
        if direction not in DIRECTIONS:
            raise FormatError("direction", f"must be one of {', '.join(DIRECTIONS)};"
                                           f" got {show_value(direction)}")
        graph.direction = direction
        return graph


def _clamp_pos(pos: tuple[float, float]) -> tuple[float, float]:
    """`pos` as floats strictly inside ±MAX_POS (NaN goes to the edge too)."""
    edge = MAX_POS - 1
    return (max(-edge, min(edge, float(pos[0]))), max(-edge, min(edge, float(pos[1]))))


def _node_from_dict(raw: Any, where: str) -> Node:
    if not isinstance(raw, dict):
        raise FormatError(where, "must be an object")
    try:
        node_id = check_id(raw.get("id"))
    except InvalidIdError as err:
        raise FormatError(f"{where}.id", err.message) from None
    type_name = raw.get("type")
    if not isinstance(type_name, str) or not registry.exists(type_name):
        raise FormatError(f"{where}.type",
                          f"unknown layer type {show_value(type_name, python=True)}")
    layer = registry.get(type_name)
    params = raw.get("params", {})
    if not isinstance(params, dict):
        raise FormatError(f"{where}.params", "must be an object")
    try:
        layer.resolve(params, node=node_id)
    except ParameterError as err:
        path = f"{where}.params" + (f".{err.param}" if err.param else "")
        raise FormatError(path, err.message) from None
    inputs = raw.get("inputs", [])
    if not isinstance(inputs, list) or not all(isinstance(s, str) for s in inputs):
        raise FormatError(f"{where}.inputs", "must be a list of node ids")
    pos = raw.get("pos")
    if pos is not None:
        if (not isinstance(pos, list) or len(pos) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and abs(v) < MAX_POS for v in pos)):
            raise FormatError(f"{where}.pos", "must be a list of two numbers")
        pos = (float(pos[0]), float(pos[1]))
    trainable = raw.get("trainable", True)
    if not isinstance(trainable, bool):
        raise FormatError(f"{where}.trainable", f"must be true or false, got {show_value(trainable)}")
    extra = {k: v for k, v in raw.items() if k not in NODE_KEYS}
    return Node(node_id, layer.name, copy.deepcopy(params), list(inputs), pos,
                copy.deepcopy(extra), trainable=trainable)
