"""The layered (Sugiyama) engine behind `core.layout`: layers, lanes, order, coordinates.

It works on plain ids and input lists, in abstract units: a node's layer (along the flow)
and its coordinate across the flow. `core.layout` turns those into canvas positions for
either direction.

1. Layers: the longest path from the inputs. Edges that close a cycle are left out.
2. Lanes: an edge spanning several layers (a skip connection) gets a virtual point in
   every layer it crosses, so the ordering gives it its own lane beside the cards.
3. Order: down and up barycentre sweeps, each followed by adjacent swaps (transposition),
   from two starts (branches in the order they were built, and mirrored); the ordering
   with the fewest crossings wins. Within a layer, the members of a group (nested too)
   stay side by side, so a group's frame holds no foreign card.
4. Coordinates: chains (a node and its unique heaviest neighbour, heaviest = most real
   nodes on the path through it) stay straight, as a ResNet's main path; everything else
   sits at the mean of its neighbours, packed without overlap by an isotonic regression
   per layer. Branches of equal weight (an inception block's) centre under their fork.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cnnstudio.core.layout_coords import plan_layer, settle

ORDER_SWEEPS = 6  # down+up barycentre sweep pairs
TRANSPOSE_PASSES = 4


@dataclass(frozen=True)
class Spacing:
    """Minimum distances across the flow between neighbours in a layer: two cards, a card
    and an edge's lane, two lanes. Two neighbours in different groups keep the groups'
    frames apart: half a card (`card_half`) and its `bounds` (ports), then per frame
    level a margin on the low side (`frame_low`, toward smaller coordinates) or the high
    side (`frame_high`), and `frame_gap` between the frames."""

    cards: float
    card_lane: float
    lanes: float
    card_half: float = 0.0
    bounds: float = 0.0
    frame_gap: float = 0.0
    frame_low: float = 0.0
    frame_high: float = 0.0

    def reach(self, real: bool, frames: int, high: bool) -> float:
        """How far a node's frames (`frames` levels around it, none around its
        neighbour) reach from its centre on its high (or low) side. A lane draws no
        frame: it only keeps out of its neighbour's."""
        if not real:
            return 0.0
        if not frames:
            return self.card_half
        return self.card_half + self.bounds + frames * (self.frame_high if high else self.frame_low)


@dataclass
class LayeredResult:
    layer: dict[str, int]  # real nodes
    across: dict[str, float]  # real nodes, across the flow
    # (source, target) → the (layer, across) points of its lane, ends excluded; edges that
    # span one layer have none; edges left out (cycles) are missing.
    lanes: dict[tuple[str, str], list[tuple[int, float]]]
    forward: list[tuple[str, str]]  # the edges laid out along the flow (each pair once)


def _acyclic_order(ids: Sequence[str], inputs: dict[str, list[str]]) -> list[str]:
    """A topological order of `ids`; where a cycle blocks, the first blocked node (in
    `ids` order) goes next regardless, so every node gets placed."""
    known = set(ids)
    pending = {n: len({s for s in inputs[n] if s in known and s != n}) for n in ids}
    users: dict[str, list[str]] = {n: [] for n in ids}
    for n in ids:
        for s in dict.fromkeys(inputs[n]):
            if s in known and s != n:
                users[s].append(n)
    order: list[str] = []
    done: set[str] = set()
    ready = [n for n in ids if pending[n] == 0]
    cursor = 0
    position = {n: i for i, n in enumerate(ids)}
    while len(order) < len(ids):
        if cursor >= len(ready):  # a cycle: take the first node still waiting
            ready.append(min((n for n in ids if n not in done), key=position.__getitem__))
            pending[ready[-1]] = 0
        nid = ready[cursor]
        cursor += 1
        if nid in done:
            continue
        done.add(nid)
        order.append(nid)
        for user in users[nid]:
            if user not in done:
                pending[user] -= 1
                if pending[user] == 0:
                    ready.append(user)
    return order


class _Engine:
    """One layout run on an expanded graph of real and virtual nodes (ints)."""

    def __init__(self, ids: Sequence[str], inputs: dict[str, list[str]],
                 paths: dict[str, tuple[str, ...]], spacing: Spacing) -> None:
        self.ids = list(ids)
        self.spacing = spacing
        order = _acyclic_order(self.ids, inputs)
        rank = {n: i for i, n in enumerate(order)}
        layer: dict[str, int] = {}
        self.forward: list[tuple[str, str]] = []
        for nid in order:
            sources = [s for s in dict.fromkeys(inputs[nid]) if s in rank and rank[s] < rank[nid]]
            layer[nid] = 1 + max([layer[s] for s in sources], default=-1)
            self.forward += [(s, nid) for s in sources]
        self.layer_of = layer
        # Expanded graph: 0..R-1 the real nodes (in `ids` order), then the virtual points.
        self.index = {n: i for i, n in enumerate(self.ids)}
        real_count = len(self.ids)
        self.real = [True] * real_count
        self.lay = [layer[n] for n in self.ids]
        self.path: list[tuple[str, ...]] = [paths.get(n, ()) for n in self.ids]
        self.up: list[list[int]] = [[] for _ in range(real_count)]
        self.down: list[list[int]] = [[] for _ in range(real_count)]
        self.chain_of_edge: dict[tuple[str, str], list[int]] = {}
        for src, dst in self.forward:
            a, b = self.index[src], self.index[dst]
            span = self.lay[b] - self.lay[a]
            common = _common_prefix(self.path[a], self.path[b])
            points: list[int] = []
            previous = a
            for step in range(1, span):
                v = len(self.real)
                self.real.append(False)
                self.lay.append(self.lay[a] + step)
                self.path.append(common)
                self.up.append([previous])
                self.down.append([])
                self.down[previous].append(v)
                points.append(v)
                previous = v
            self.down[previous].append(b)
            self.up[b].append(previous)
            self.chain_of_edge[(src, dst)] = points
        self.size = len(self.real)
        depth = max(self.lay, default=-1) + 1
        self.layers: list[list[int]] = [[] for _ in range(depth)]
        self.grouped = any(self.path)

    # ---- order --------------------------------------------------------------------------

    def initial_order(self, reverse: bool = False) -> None:
        """Depth-first from the inputs, children in graph order (or the reverse): branches
        start out in the order they were built, which is usually how people drew them."""
        self.layers = [[] for _ in self.layers]
        seen = [False] * self.size
        for root in range(len(self.ids)):
            if seen[root] or self.up[root]:
                continue
            stack = [root]
            while stack:
                v = stack.pop()
                if seen[v]:
                    continue
                seen[v] = True
                self.layers[self.lay[v]].append(v)
                children = [c for c in self.down[v] if not seen[c]]
                stack.extend(children if reverse else reversed(children))
        for v in range(self.size):  # unreachable ones (should not happen): keep them anyway
            if not seen[v]:
                self.layers[self.lay[v]].append(v)
        if self.grouped:
            for i, row in enumerate(self.layers):
                self.layers[i] = self._group_sort(row, {v: float(k) for k, v in enumerate(row)})
        self._reindex()

    def _reindex(self) -> None:
        self.pos = [0] * self.size
        for row in self.layers:
            for k, v in enumerate(row):
                self.pos[v] = k

    def _group_sort(self, row: list[int], key: dict[int, float]) -> list[int]:
        """`row` sorted by `key`, the members of every group kept side by side: a group
        sorts as one item at the mean key of its members, recursively."""
        if len(row) <= 2:  # each its own item, whatever their groups: a stable sort
            return list(row) if len(row) < 2 or not key[row[1]] < key[row[0]] else row[::-1]
        path = self.path
        first = path[row[0]]
        if all(path[v] == first for v in row):  # one item holding them all: a stable sort
            return sorted(row, key=key.__getitem__)

        def arrange(members: list[int], depth: int) -> list[int]:
            items: list[tuple[float, int, list[int]]] = []
            slots: dict[str, list[int]] = {}
            for v in members:
                if len(path[v]) > depth:
                    group = path[v][depth]
                    if group not in slots:
                        slots[group] = []
                        items.append((0.0, len(items), slots[group]))
                    slots[group].append(v)
                else:
                    items.append((key[v], len(items), [v]))
            ranked = []
            for k, i, vs in items:
                if len(vs) > 1 or len(path[vs[0]]) > depth:
                    inner = arrange(vs, depth + 1)
                    k = sum(key[v] for v in vs) / len(vs)
                    vs = inner
                ranked.append((k, i, vs))
            ranked.sort(key=lambda item: (item[0], item[1]))
            return [v for _, _, vs in ranked for v in vs]

        return arrange(row, 0)

    def _sort_layer(self, i: int, toward: list[list[int]]) -> None:
        row = self.layers[i]
        pos = self.pos
        key: dict[int, float] = {}
        for v in row:
            neighbours = toward[v]
            key[v] = (sum(pos[u] for u in neighbours) / len(neighbours) if neighbours
                      else float(pos[v]))
        if self.grouped:
            row = self._group_sort(row, key)
        else:
            row = sorted(row, key=lambda v: (key[v], pos[v]))
        self.layers[i] = row
        for k, v in enumerate(row):
            pos[v] = k

    def _crossings_between(self, i: int) -> int:
        """Crossings of the edges between layer i and i+1 (inversions of their ends)."""
        upper = self.layers[i]
        if len(upper) < 2 or len(self.layers[i + 1]) < 2:
            return 0
        pos = self.pos
        ends = sorted((pos[u], pos[w]) for u in upper for w in self.down[u])
        lows = [w for _, w in ends]
        count = 0
        width = len(self.layers[i + 1])
        tree = [0] * (width + 1)
        for seen, w in enumerate(lows):  # Fenwick tree: how many earlier ends lie right of w
            j, below = w + 1, 0
            while j > 0:
                below += tree[j]
                j -= j & -j
            count += seen - below
            j = w + 1
            while j <= width:
                tree[j] += 1
                j += j & -j
        return count

    def crossings(self) -> int:
        return sum(self._crossings_between(i) for i in range(len(self.layers) - 1))

    def order(self) -> None:
        """Sweeps and swaps from two starts (branches as built, and mirrored); the
        ordering with the fewest crossings wins, the first one on a tie."""
        best, best_layers = -1, self.layers
        for reverse in (False, True):
            self.initial_order(reverse)
            count = self.crossings()
            if best < 0 or count < best:
                best, best_layers = count, [list(r) for r in self.layers]
            depth = len(self.layers)
            for sweeps in range(ORDER_SWEEPS):
                if best == 0:
                    break
                for sweep in (range(1, depth), range(depth - 2, -1, -1)):
                    toward = self.up if sweep.step == 1 else self.down
                    for i in sweep:
                        self._sort_layer(i, toward)
                    # Every other time swaps that gain nothing are made too: that walks
                    # out of orders no single swap improves.
                    self._transpose(ties=sweeps % 2 == 1)
                    count = self.crossings()
                    if count < best:
                        best, best_layers = count, [list(r) for r in self.layers]
            if best == 0:
                break
        self.layers = best_layers
        self._reindex()

    def _pair_crossings(self, u: int, w: int) -> int:
        """Crossings between the edges of u and those of w when u stands left of w."""
        pos = self.pos
        count = 0
        for side in (self.up, self.down):
            for a in side[u]:
                for b in side[w]:
                    if pos[a] > pos[b]:
                        count += 1
        return count

    def _transpose(self, ties: bool = False) -> None:
        path = self.path
        for attempt in range(TRANSPOSE_PASSES):
            ties = ties and attempt == 0
            improved = False
            for row in self.layers:
                for k in range(len(row) - 1):
                    u, w = row[k], row[k + 1]
                    if path[u] != path[w]:
                        continue  # a swap across groups could split one
                    now, swapped = self._pair_crossings(u, w), self._pair_crossings(w, u)
                    if swapped < now or (ties and swapped == now and now > 0):
                        row[k], row[k + 1] = w, u
                        self.pos[u], self.pos[w] = k + 1, k
                        improved = True
            if not improved:
                break

    # ---- coordinates --------------------------------------------------------------------

    def _chain_links(self) -> tuple[list[int], list[int]]:
        """(link up, link down) per node, -1 for none: the neighbour it stays in line with."""
        real = self.real
        heavy_up = [0] * self.size
        heavy_down = [0] * self.size
        for row in self.layers:
            for v in row:
                heavy_up[v] = real[v] + max([heavy_up[u] for u in self.up[v]], default=0)
        for row in reversed(self.layers):
            for v in row:
                heavy_down[v] = real[v] + max([heavy_down[w] for w in self.down[v]], default=0)

        def unique_best(options: list[int], weight: list[int]) -> int:
            if len(options) < 2:
                return options[0] if options else -1
            ranked = sorted(options, key=lambda o: -weight[o])
            if len(ranked) > 1 and weight[ranked[0]] == weight[ranked[1]]:
                return -1
            return ranked[0]

        link_up, link_down = [-1] * self.size, [-1] * self.size
        for v in range(self.size):
            w = unique_best(self.down[v], heavy_down)
            if w >= 0 and unique_best(self.up[w], heavy_up) == v:
                link_down[v], link_up[w] = w, v
        pos = self.pos
        for row in self.layers:  # links must not cross: a chain blocks the other's way
            last = -1
            for v in row:
                w = link_down[v]
                if w < 0:
                    continue
                if pos[w] > last:
                    last = pos[w]
                else:
                    link_down[v], link_up[w] = -1, -1
        return link_up, link_down

    def _gaps(self, row: list[int]) -> list[float]:
        s, real, path = self.spacing, self.real, self.path
        gaps = []
        for a, b in zip(row, row[1:], strict=False):
            gap = s.cards if real[a] and real[b] else s.card_lane if real[a] or real[b] else s.lanes
            if path[a] != path[b]:  # frames between them: each side's own, then a gap
                common = len(_common_prefix(path[a], path[b]))
                room = (s.reach(real[a], len(path[a]) - common, high=True)
                        + s.reach(real[b], len(path[b]) - common, high=False) + s.frame_gap)
                gap = max(gap, room)
            gaps.append(gap)
        return gaps

    def coordinates(self) -> list[float]:
        x = [0.0] * self.size
        gaps = [self._gaps(row) for row in self.layers]
        for row, row_gaps in zip(self.layers, gaps, strict=True):
            at = -sum(row_gaps) / 2
            for k, v in enumerate(row):
                x[v] = at
                if k < len(row_gaps):
                    at += row_gaps[k]
        link_up, link_down = self._chain_links()
        depth = len(self.layers)
        down = [plan_layer(self.layers[i], gaps[i], self.up, link_up) for i in range(1, depth)]
        up = [plan_layer(self.layers[i], gaps[i], self.down, link_down, link_up)
              for i in range(depth - 2, -1, -1)]
        settle(down, up, x)
        for row in self.layers:  # chains exactly straight where they are within a pixel
            for v in row:
                if link_up[v] >= 0 and abs(x[v] - x[link_up[v]]) < 0.5:
                    x[v] = x[link_up[v]]
        return x

    def run(self) -> LayeredResult:
        self.order()
        x = self.coordinates()
        n = len(self.ids)
        lanes = {edge: [(self.lay[v], x[v]) for v in points]
                 for edge, points in self.chain_of_edge.items()}
        return LayeredResult({self.ids[i]: self.lay[i] for i in range(n)},
                             {self.ids[i]: x[i] for i in range(n)}, lanes, self.forward)


def _common_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    if a == b:
        return a
    k = 0
    while k < len(a) and k < len(b) and a[k] == b[k]:
        k += 1
    return a[:k]


def layered(ids: Sequence[str], inputs: dict[str, list[str]],
            paths: dict[str, tuple[str, ...]], spacing: Spacing) -> LayeredResult:
    """Lay out the graph given by `ids` and their `inputs` (ids outside `ids` are ignored);
    `paths` gives a node's groups, outermost first."""
    return _Engine(ids, inputs, paths, spacing).run()
