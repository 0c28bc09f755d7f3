"""The layered engine's fast paths give exactly what the plain algorithm gives: the
coordinate sweeps (worked out once per layer, one- and two-node layers without the general
regression) and the group-keeping sort of a layer (rows of one or two, rows in one group).
The references below are the straightforward versions, written out per node and per call."""

from __future__ import annotations

import random

import pytest

from cnnstudio.core import architectures
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout_coords import CHAIN_WEIGHT, COORD_SWEEPS, SETTLED, pack
from cnnstudio.core.layout_order import _Engine
from cnnstudio.core.layout_rows import SPACING, group_paths


def _random_graph(seed: int) -> Graph:
    """A DAG of ReLUs and Adds (skips of every length) with nested groups of runs."""
    rng = random.Random(seed)
    graph = Graph()
    ids = [graph.add_node("Input", {"shape": [3, 8, 8]}).id]
    for _ in range(rng.randint(5, 120)):
        sources = rng.sample(ids, min(rng.choice([1, 1, 2, 3]), len(ids)))
        ids.append(graph.add_node("ReLU" if len(sources) == 1 else "Add", inputs=sources).id)
    for _ in range(rng.randint(0, 12)):
        start = rng.randrange(1, len(ids))
        members = ids[start:start + rng.randint(1, 20)]
        groups = graph.groups
        parents = {groups.parent_of(m) for m in members}
        if len(parents) == 1:  # runs across group borders are skipped, not forced
            graph.groups.add(members, f"G{start}")
    return graph


def _engine(graph: Graph, direction: str = "down") -> _Engine:
    ids = graph.ids
    engine = _Engine(ids, {n: graph.node(n).inputs for n in ids}, group_paths(graph),
                     SPACING[direction])
    engine.order()
    return engine


def _reference_pack(desired, weights, gaps):
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    blocks = []
    for d, w, o in zip(desired, weights, offsets, strict=True):
        blocks.append([d - o, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks[-1]
            blocks[-1] = [(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2]
    out = []
    for mean, _, count in blocks:
        out.extend([mean] * int(count))
    return [y + o for y, o in zip(out, offsets, strict=True)]


def _reference_place(row, row_gaps, x, toward, link, anchored=None):
    desired, weights = [], []
    for v in row:
        if link[v] >= 0:
            desired.append(x[link[v]])
            weights.append(CHAIN_WEIGHT)
        elif anchored is not None and anchored[v] >= 0:
            desired.append(x[v])
            weights.append(CHAIN_WEIGHT)
        elif toward[v]:
            desired.append(sum(x[u] for u in toward[v]) / len(toward[v]))
            weights.append(1.0)
        else:
            desired.append(x[v])
            weights.append(0.01)
    if len(row) == 1:
        x[row[0]] = desired[0]
        return
    for v, value in zip(row, _reference_pack(desired, weights, row_gaps), strict=True):
        x[v] = value


def _reference_coordinates(engine: _Engine) -> list[float]:
    x = [0.0] * engine.size
    gaps = [engine._gaps(row) for row in engine.layers]
    for row, row_gaps in zip(engine.layers, gaps, strict=True):
        at = -sum(row_gaps) / 2
        for k, v in enumerate(row):
            x[v] = at
            if k < len(row_gaps):
                at += row_gaps[k]
    link_up, link_down = engine._chain_links()
    depth = len(engine.layers)
    for _ in range(COORD_SWEEPS):
        before = list(x)
        for i in range(1, depth):
            _reference_place(engine.layers[i], gaps[i], x, engine.up, link_up)
        for i in range(depth - 2, -1, -1):
            _reference_place(engine.layers[i], gaps[i], x, engine.down, link_down, link_up)
        if max((abs(a - b) for a, b in zip(before, x, strict=True)), default=0.0) < SETTLED:
            break
    for row in engine.layers:
        for v in row:
            if link_up[v] >= 0 and abs(x[v] - x[link_up[v]]) < 0.5:
                x[v] = x[link_up[v]]
    return x


@pytest.mark.parametrize("seed", range(40))
def test_coordinates_equal_the_plain_sweeps_on_random_grouped_graphs(seed):
    engine = _engine(_random_graph(seed), "right" if seed % 3 == 0 else "down")
    assert engine.coordinates() == _reference_coordinates(engine)


@pytest.mark.parametrize("build", [architectures.resnet50, architectures.googlenet,
                                   lambda: architectures.block_chain(200)])
def test_coordinates_equal_the_plain_sweeps_on_real_networks(build):
    engine = _engine(build())
    layers = [len(row) for row in engine.layers]
    assert 1 in layers and max(layers) >= 2  # a fast path and a packed layer
    assert engine.coordinates() == _reference_coordinates(engine)


def test_pack_keeps_the_gaps_and_pools_what_would_come_too_close():
    # Two wanting the same place with a gap of 10 meet halfway, weighted.
    assert pack([0.0, 0.0], [1.0, 1.0], [0.0, 10.0]) == [-5.0, 5.0]
    assert pack([0.0, 0.0], [3.0, 1.0], [0.0, 10.0]) == [-2.5, 7.5]
    assert pack([0.0, 50.0], [1.0, 1.0], [0.0, 10.0]) == [0.0, 50.0]  # far enough apart


def _reference_group_sort(path, row, key):
    def arrange(members, depth):
        items, slots = [], {}
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


def test_the_group_keeping_sort_equals_the_plain_recursion():
    engine = _engine(_random_graph(1))
    rng = random.Random(7)
    choices = [(), ("a",), ("a", "b"), ("a", "c"), ("d",), ("a", "b", "e")]
    for trial in range(3000):
        size = rng.randint(1, 7)
        row = list(range(size))
        uniform = trial % 4 == 0
        engine.path = [choices[2]] * size if uniform else [rng.choice(choices) for _ in row]
        key = {v: float(rng.randint(0, 3)) for v in row}  # ties on purpose
        rng.shuffle(row)
        assert engine._group_sort(row, key) == _reference_group_sort(engine.path, row, key)
