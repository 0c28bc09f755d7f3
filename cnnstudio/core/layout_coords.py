"""Coordinates across the flow for the layered engine (`core.layout_order`), step 4.

Chains (a node and the neighbour it stays in line with) stay straight; everything else sits
at the mean of its neighbours in the layer just placed, packed without overlap by an
isotonic regression per layer; down and up sweeps alternate until nothing moves.

Speed: a 1,000-layer network takes 8 sweeps of 2,000 layer placements. What a layer's
placement reads (which neighbour each node follows, its weight, the gaps) never changes
between sweeps, so it is worked out once per layer and direction (a plan); a layer of one
or two nodes, nearly every layer of a residual chain, is placed without the general
regression, by the same arithmetic (so the same floats).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import sub

CHAIN_WEIGHT = 1e4  # a chain node's pull: far above an ordinary node's 1, so chains stay put
COORD_SWEEPS = 8
SETTLED = 0.01  # a sweep that moves nothing further than this ends the sweeps

# A node's source: an int u ≥ 0 is the node whose coordinate it takes as it stands (its
# chain neighbour, or itself); ~u (< 0) the one neighbour whose mean it goes to (0 + that
# coordinate, as sum() has it); a tuple the neighbours whose mean it goes to.
Source = int | tuple[int, ...]
# One layer's placement: its nodes, their sources and weights, the running sums of the
# gaps between neighbours (0.0 first), and whether every source is a node as it stands.
Plan = tuple[list[int], list[Source], list[float], list[float], bool]


def plan_layer(row: list[int], row_gaps: list[float], toward: list[list[int]],
               link: list[int], anchored: list[int] | None = None) -> Plan:
    """How to place `row` from its neighbours in the layer just placed (`toward`). A chain
    follows its top: going down, a chain's top moves with its neighbours above and the rest
    of the chain follows it (`link`); going up (`anchored`: links the other way), a chain's
    bottom keeps its place, so the chain stays one straight line."""
    sources: list[Source] = []
    weights: list[float] = []
    for v in row:
        if link[v] >= 0:
            sources.append(link[v])
            weights.append(CHAIN_WEIGHT)
        elif anchored is not None and anchored[v] >= 0:
            sources.append(v)
            weights.append(CHAIN_WEIGHT)
        elif toward[v]:
            sources.append(~toward[v][0] if len(toward[v]) == 1 else tuple(toward[v]))
            weights.append(1.0)
        else:
            sources.append(v)
            weights.append(0.01)
    offsets = [0.0]
    for gap in row_gaps:
        offsets.append(offsets[-1] + gap)
    simple = all(s.__class__ is int and s >= 0 for s in sources)
    return row, sources, weights, offsets, simple


def _desired(source: Source, x: list[float]) -> float:
    """The mean of the neighbours exactly as sum()/len() computes it: 0 + the first
    coordinate, then the rest in order."""
    if source.__class__ is int:
        return x[source] if source >= 0 else 0.0 + x[~source]  # type: ignore[operator]
    return sum([x[u] for u in source]) / len(source)  # type: ignore[union-attr]


def sweep(plans: Sequence[Plan], x: list[float]) -> None:
    """Place the layers of `plans` in order, each from the coordinates `x` as they stand
    (the layer before it just placed)."""
    for row, sources, weights, offsets, simple in plans:
        count = len(row)
        if count == 1:
            x[row[0]] = x[sources[0]] if simple else _desired(sources[0], x)
        elif count == 2:
            # pack() for two: pool the pair when the second would come too close.
            if simple:
                low = x[sources[0]] - 0.0
                high = x[sources[1]] - offsets[1]
            else:
                low = _desired(sources[0], x) - 0.0
                high = _desired(sources[1], x) - offsets[1]
            if low > high:
                w_low, w_high = weights
                low = high = (low * w_low + high * w_high) / (w_low + w_high)
            x[row[0]] = low + 0.0
            x[row[1]] = high + offsets[1]
        else:
            desired = [_desired(s, x) for s in sources]
            for v, value in zip(row, pack(desired, weights, offsets), strict=True):
                x[v] = value


def settle(down: Sequence[Plan], up: Sequence[Plan], x: list[float]) -> None:
    """Sweep down then up (`down`, `up`: the plans in sweep order) until no coordinate of
    `x` moves by SETTLED or more, at most COORD_SWEEPS times."""
    for _ in range(COORD_SWEEPS):
        before = list(x)
        sweep(down, x)
        sweep(up, x)
        if max(map(abs, map(sub, before, x)), default=0.0) < SETTLED:
            break


def pack(desired: list[float], weights: list[float], offsets: list[float]) -> list[float]:
    """Positions closest to `desired` (weighted least squares) keeping each neighbour at
    least its gap further on (`offsets`: the gaps' running sum, 0.0 first): an isotonic
    regression (pool adjacent violators) on the desired positions minus the offsets."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for d, w, o in zip(desired, weights, offsets, strict=True):
        blocks.append([d - o, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks[-1]
            blocks[-1] = [(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2]
    out: list[float] = []
    for mean, _, count in blocks:
        out.extend([mean] * int(count))
    return [y + o for y, o in zip(out, offsets, strict=True)]
