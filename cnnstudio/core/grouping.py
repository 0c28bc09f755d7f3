"""Automatic grouping: find the blocks and stages of a network that nobody grouped.

An imported or hand-built ResNet is 176 loose nodes; its structure is still in the wiring.
A block is a merge (Add or Concat) together with everything between it and the one node
all its inputs fork from (the merge's immediate dominator), when nothing outside uses a
value from inside:

* an Add makes a residual block (a "Bottleneck" when its longest branch has 3 convolutions),
  with the activation right after it when that is the Add's only consumer;
* a Concat whose branches are disjoint and none of them the bare fork makes an inception
  block (a U-Net's skip Concat, whose one input is the fork itself, is not one).

Blocks may nest (an inception block inside a residual branch). Then stages: maximal runs of
blocks, each fed straight by the one before, where only the first changes the spatial size
(a ResNet stage is its blocks between two downsamplings); and, in the chains outside blocks,
VGG-style stages: runs of convolution, normalisation and activation closed by a pooling
layer, when there are at least two. Nodes already in a group are never touched, so running
it again adds nothing. Ids may be anything: only the wiring and the shapes are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cnnstudio.core.errors import CycleError
from cnnstudio.core.graph import Graph
from cnnstudio.core.layer_type import Shape
from cnnstudio.core.shapes import infer_shapes

# A "block" bigger than this is no block a reader wants folded, and the cap keeps a
# long-range skip (input to output) from costing a walk over the whole graph per merge.
MAX_BLOCK_NODES = 200
MIN_STAGE_BLOCKS = 2
MIN_CONV_STAGES = 2
CHAIN_CATEGORIES = frozenset({"Convolution", "Normalization", "Activation"})
BLOCK_NAMES = {"residual": "Residual block", "bottleneck": "Bottleneck",
               "inception": "Inception block"}
# "Residual block 3", "Stage 2 (4 blocks)": a name and its number.
_NUMBERED = re.compile(r"^(.*\S) (\d+)(?: \(.*\))?$")


@dataclass(frozen=True)
class Proposal:
    """One group auto_group would make: its name, kind ("residual", "bottleneck",
    "inception", "stage" or "conv stage"), every node inside (graph order) and the indices
    (into the proposal list, always earlier) of the proposals directly nested in it."""

    name: str
    kind: str
    nodes: tuple[str, ...]
    children: tuple[int, ...] = ()


@dataclass
class _Block:
    kind: str
    fork: str
    exit: str
    nodes: set[str]
    children: list[int]


class _Wiring:
    """The graph's wiring read once: inputs, consumers, order, dominators."""

    def __init__(self, graph: Graph, order: list[str]) -> None:
        self.graph = graph
        self.order = order
        self.position = {nid: i for i, nid in enumerate(order)}
        self.inputs = {nid: list(dict.fromkeys(s for s in graph.node(nid).inputs
                                               if s in self.position)) for nid in order}
        self.consumers: dict[str, list[str]] = {nid: [] for nid in order}
        for nid in order:
            for src in self.inputs[nid]:
                self.consumers[src].append(nid)
        self.free = {nid for nid in order if graph.node(nid).group is None}
        self.idom = self._dominators()

    def _dominators(self) -> dict[str, str | None]:
        """Immediate dominator of each node (None: only the virtual root above the inputs
        dominates it). In topological order a node's dominator is the meet of its inputs'."""
        idom: dict[str, str | None] = {}
        depth: dict[str | None, int] = {None: 0}

        def meet(a: str | None, b: str | None) -> str | None:
            while a != b:
                if a is None or b is None:
                    return None
                if depth[a] >= depth[b]:
                    a = idom[a]
                else:
                    b = idom[b]
            return a

        for nid in self.order:
            preds = self.inputs[nid]
            dom: str | None = preds[0] if preds else None
            for p in preds[1:]:
                dom = meet(dom, p)
            idom[nid] = dom
            depth[nid] = depth[dom] + 1
        return idom

    def category(self, nid: str) -> str:
        return self.graph.node(nid).layer.category

    def back_from(self, start: str, fork: str, limit: int) -> set[str] | None:
        """Every node on a path from `fork` (exclusive) to `start`, or None when one is in
        a group already, the set outgrows `limit` or a path does not come from `fork`."""
        seen: set[str] = set()
        stack = [start]
        while stack:
            nid = stack.pop()
            if nid in seen or nid == fork:
                continue
            if nid not in self.free or len(seen) >= limit or not self.inputs[nid]:
                return None
            seen.add(nid)
            stack.extend(self.inputs[nid])
        return seen


def _block_at(wiring: _Wiring, merge: str) -> _Block | None:
    """The residual or inception block ending at `merge`, if it is one."""
    fork = wiring.idom[merge]
    kind = wiring.graph.node(merge).type
    inputs = wiring.inputs[merge]
    if fork is None or len(inputs) < 2 or kind not in ("Add", "Concat"):
        return None
    branches = []
    for src in inputs:
        if src == fork:
            if kind == "Concat":
                return None  # a skip Concat (U-Net, DenseNet), not parallel branches
            continue
        branch = wiring.back_from(src, fork, MAX_BLOCK_NODES)
        if branch is None:
            return None
        branches.append(branch)
    nodes = set().union(*branches) if branches else set()
    if not nodes:
        return None
    if kind == "Concat" and sum(map(len, branches)) != len(nodes):
        return None  # branches share nodes: not parallel paths
    if any(c not in nodes and c != merge for n in nodes for c in wiring.consumers[n]):
        return None  # something outside uses a value from inside
    nodes.add(merge)
    exit = merge
    after = wiring.consumers[merge]
    if kind == "Add" and len(after) == 1 and after[0] in wiring.free:
        layer = wiring.graph.node(after[0]).layer
        if layer.category == "Activation" and layer.spatial_role == "elementwise":
            exit = after[0]
            nodes.add(exit)
    if kind == "Concat":
        name = "inception"
    else:
        convs = max(sum(wiring.category(n) == "Convolution" for n in b) for b in branches)
        name = "bottleneck" if convs == 3 else "residual"
    return _Block(name, fork, exit, nodes, [])


def _blocks(wiring: _Wiring) -> list[_Block]:
    """Every block, in the order of their exits; a block holding earlier ones lists them
    as children, one overlapping an earlier one only in part is dropped."""
    blocks: list[_Block] = []
    outermost: dict[str, int] = {}  # node → the outermost block holding it so far
    for nid in wiring.order:
        if nid not in wiring.free or wiring.graph.node(nid).type not in ("Add", "Concat"):
            continue
        block = _block_at(wiring, nid)
        if block is None:
            continue
        touched = sorted({outermost[n] for n in block.nodes if n in outermost})
        if any(not blocks[t].nodes <= block.nodes for t in touched):
            continue
        block.children = touched
        for n in block.nodes:
            outermost[n] = len(blocks)
        blocks.append(block)
    return blocks


def _spatial(shapes: dict[str, Shape | None], nid: str) -> Shape | None:
    shape = shapes.get(nid)
    return None if shape is None else shape[1:]


def _block_stages(wiring: _Wiring, blocks: list[_Block]) -> list[list[int]]:
    """Runs of top-level blocks, each fed by the one before, only the first of which
    changes the spatial size."""
    nested = {c for b in blocks for c in b.children}
    top = [i for i in range(len(blocks)) if i not in nested]
    if len(top) < MIN_STAGE_BLOCKS:
        return []
    inference = infer_shapes(wiring.graph)
    shapes = {nid: info.shape for nid, info in inference.nodes.items()}
    runs: list[list[int]] = []
    for i in top:
        block = blocks[i]
        size = _spatial(shapes, block.exit)
        keeps = size is not None and size == _spatial(shapes, block.fork)
        if runs and keeps and block.fork == blocks[runs[-1][-1]].exit:
            runs[-1].append(i)
        else:
            runs.append([i])
    return [run for run in runs if len(run) >= MIN_STAGE_BLOCKS]


def _conv_stages(wiring: _Wiring, taken: set[str]) -> list[list[str]]:
    """VGG-style runs outside blocks: chained convolution / normalisation / activation
    layers (at least one convolution) closed by a (not adaptive) pooling layer."""
    def eligible(nid: str) -> bool:
        return nid in wiring.free and nid not in taken

    def pooling(nid: str) -> bool:
        node = wiring.graph.node(nid)
        return node.layer.category == "Pooling" and not node.type.startswith("Adaptive")

    runs: list[list[str]] = []
    visited: set[str] = set()
    for start in wiring.order:
        if start in visited or not eligible(start) \
                or wiring.category(start) not in CHAIN_CATEGORIES:
            continue
        run, closed = [start], False
        visited.add(start)
        while not closed:
            nxt = [c for c in wiring.consumers[run[-1]] if eligible(c) and c not in visited
                   and wiring.inputs[c] == [run[-1]]
                   and (wiring.category(c) in CHAIN_CATEGORIES or pooling(c))]
            if len(nxt) != 1:
                break
            run.append(nxt[0])
            visited.add(nxt[0])
            closed = pooling(nxt[0])
        if closed and any(wiring.category(n) == "Convolution" for n in run):
            runs.append(run)
    return runs if len(runs) >= MIN_CONV_STAGES else []


class _Names:
    """Numbers per name ("Residual block 3"), after the numbers the graph already uses, so
    grouping more later never repeats a name."""

    def __init__(self, graph: Graph) -> None:
        self.last: dict[str, int] = {}
        for group in graph.groups:
            match = _NUMBERED.match(group.name)
            if match:
                base, number = match.group(1), int(match.group(2))
                self.last[base] = max(self.last.get(base, 0), number)

    def next(self, base: str) -> str:
        self.last[base] = self.last.get(base, 0) + 1
        return f"{base} {self.last[base]}"


def detect_groups(graph: Graph) -> list[Proposal]:
    """The groups `auto_group` would make, inner ones before the ones holding them.
    The graph is not changed; a graph with a cycle gets no proposals."""
    try:
        order = graph.topological_order()
    except CycleError:
        return []
    wiring = _Wiring(graph, order)
    names = _Names(graph)
    blocks = _blocks(wiring)
    graph_order = {nid: i for i, nid in enumerate(graph.ids)}

    def ordered(nodes: set[str] | list[str]) -> tuple[str, ...]:
        return tuple(sorted(nodes, key=graph_order.__getitem__))

    proposals = [Proposal(names.next(BLOCK_NAMES[b.kind]), b.kind, ordered(b.nodes),
                          tuple(b.children)) for b in blocks]
    # Stages of both kinds, numbered together from the input down.
    stages: list[tuple[int, str, tuple[str, ...], tuple[int, ...]]] = []
    for run in _block_stages(wiring, blocks):
        nodes = set().union(*(blocks[i].nodes for i in run))
        first = min(wiring.position[n] for n in nodes)
        stages.append((first, f" ({len(run)} blocks)", ordered(nodes), tuple(run)))
    in_blocks = {n for b in blocks for n in b.nodes}
    for run in _conv_stages(wiring, in_blocks):
        stages.append((wiring.position[run[0]], "", ordered(run), ()))
    for _, suffix, nodes, children in sorted(stages):
        kind = "stage" if children else "conv stage"
        proposals.append(Proposal(names.next("Stage") + suffix, kind, nodes, children))
    return proposals


def auto_group(graph: Graph) -> list[str]:
    """Group what `detect_groups` finds; return the new group ids, inner ones first
    (outermost last)."""
    ids: list[str] = []
    for proposal in detect_groups(graph):
        nested = {n for c in proposal.children for n in graph.groups.nodes(ids[c])}
        members = [ids[c] for c in proposal.children]
        members += [n for n in proposal.nodes if n not in nested]
        ids.append(graph.groups.add(members, proposal.name).id)
    return ids
