"""Which dataset samples excite each filter of a layer most (Zeiler & Fergus's "top 9").

For every filter (output channel) of a layer, the k samples whose feature map has the
largest maximum, where that maximum lies, and the input region that position sees (the
filter's own receptive field, cropped to the input: `fields.FilterFields`), found in one
pass over the samples in batches small enough for a fixed memory budget.
Pure torch and NumPy, no Qt; the module is left as found (mode, gradients) and no random
number is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cnnstudio.core.graph import Graph
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.nn.builder import forward_to, node_inputs
from cnnstudio.nn.explain.fields import Box, FilterFields
from cnnstudio.nn.internals import _device, _eval_mode

# The activations of one batch (the largest layer's output with its inputs) stay under
# this; `batch_size` is only the upper bound.
BATCH_BYTES = 256 * 2**20


class Cancelled(Exception):
    """The caller's `cancelled()` turned True: the work stopped, nothing is returned."""


@dataclass
class TopHit:
    """One sample that excites a filter: its dataset index, the largest value of the
    filter's map for it, the map position of that value (() for a vector's unit), and
    the input region that position sees as [y0, x0, y1, x1], end-exclusive and clipped to
    the input ([0, x0, 1, x1] for 1-D inputs): the field of that filter (after a Concat,
    of the branch the filter comes from). `box` is None when the layer has no exact
    field: a unit of a Linear layer (it sees the whole input), a layer after a Flatten,
    adaptive pool, upsampling or transposed convolution, or a 3-D input; and when the
    position sees only padding (no input pixel)."""

    sample: int
    activation: float
    position: tuple[int, ...]
    box: Box | None


@dataclass
class FilterTop:
    """The samples that excite filter `filter` most, best first (at most k)."""

    filter: int
    hits: list[TopHit]


def layer_output(module: Any, node_id: str, x: torch.Tensor) -> torch.Tensor:
    """The output of `node_id` for the model input batch `x`, running only the nodes it
    depends on (`builder.forward_to`). Raises ValueError for an unknown node."""
    if node_id not in module.node_ids:
        raise ValueError(f"the network has no layer {node_id!r}")
    return forward_to(module, x, node_id)


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    return torch.from_numpy(np.require(x, requirements=["C", "W"]))


def needed_nodes(module: Any, node_id: str) -> set[str]:
    """`node_id` and every node it depends on (what `forward_to` runs). Raises KeyError
    for an unknown node."""
    needed, stack = set(), [node_id]
    while stack:
        current = stack.pop()
        if current not in needed:
            needed.add(current)
            stack.extend(node_inputs(module, current))
    return needed


def sample_bytes(graph: Graph, module: Any, node_id: str) -> int:
    """About the most bytes one sample takes at once on the way to `node_id`: the largest
    node's output three times (torch's convolutions hold about twice their output again
    while they run: measured) with its inputs (float32; 0 when shapes are unknown)."""
    nodes = infer_shapes(graph).nodes
    itemsize = next((p.element_size() for p in module.parameters()), 4)

    def size(shape: Sequence[int] | None) -> int:
        return int(np.prod(shape)) * itemsize if shape else 0

    largest = 0
    for current in needed_nodes(module, node_id):
        info = nodes.get(current)
        if info is not None:
            largest = max(largest, 3 * size(info.shape) + sum(size(s) for s in info.input_shapes))
    return largest


def budget_batch_size(per_sample: int, limit: int = 256, budget: int = BATCH_BYTES) -> int:
    """How many samples a batch holds when each takes `per_sample` bytes: `budget` ÷
    `per_sample`, at least 1 and at most `limit`."""
    if per_sample <= 0:
        return max(1, limit)
    return max(1, min(limit, budget // per_sample))


def top_activations(module: Any, graph: Graph, node_id: str, x: Any,
                    to_float: Callable[[Any], torch.Tensor], k: int = 9, *,
                    sample_ids: Sequence[int] | None = None, batch_size: int = 256,
                    progress: Callable[[int, int], None] | None = None,
                    cancelled: Callable[[], bool] | None = None) -> list[FilterTop]:
    """For every filter of layer `node_id`, the `k` samples of `x` whose feature map has
    the largest maximum (best first; equal values: the earlier sample first).

    `module` is the GraphModule built from `graph`; `x` the raw samples (N, C, …; uint8
    or float, torch or NumPy) as the dataset holds them, `to_float` turns a batch of them
    into the model's input (`Preprocessing.to_float`, `Dataset.batch_to_float`), and
    `sample_ids` gives each row's dataset index (default 0…N−1). A map layer's filters are
    its channels; a vector layer's (Linear) are its units, with position () and no box.
    Runs only the nodes the layer needs, in eval mode without gradients, in batches of
    at most `batch_size` samples — fewer when the activations of that many would pass
    BATCH_BYTES — calling `progress(done, total)` after each batch.

    Raises ValueError for an unknown layer, a layer without channels or samples of the
    wrong shape, and Cancelled when `cancelled()` turns True (checked before each batch).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    samples = _as_tensor(x)
    total = len(samples)
    ids = torch.arange(total) if sample_ids is None else torch.as_tensor(list(sample_ids))
    if len(ids) != total:
        raise ValueError(f"{len(ids)} sample ids for {total} samples")
    if tuple(samples.shape[1:]) != tuple(module.input_shape):
        raise ValueError(f"the samples are {tuple(samples.shape[1:])}, the network takes"
                         f" {tuple(module.input_shape)}")
    if node_id not in module.node_ids:
        raise ValueError(f"the network has no layer {node_id!r}")
    batch_size = budget_batch_size(sample_bytes(graph, module, node_id), batch_size)
    best_values: torch.Tensor | None = None  # (filters, ≤ k), best first
    best_rows = best_flat = torch.zeros(0, dtype=torch.int64)
    map_shape: tuple[int, ...] = ()
    device = _device(module)
    with torch.no_grad(), _eval_mode(module):
        for start in range(0, total, batch_size):
            if cancelled is not None and cancelled():
                raise Cancelled("cancelled")
            rows = torch.arange(start, min(start + batch_size, total))
            inputs = to_float(samples[start:start + batch_size]).to(device)
            out = layer_output(module, node_id, inputs).float().cpu()
            if out.dim() < 2:
                raise ValueError(f"layer {node_id!r} has no channels to show")
            map_shape = tuple(out.shape[2:])
            flat = out.reshape(out.shape[0], out.shape[1], -1)
            values, where = flat.max(dim=2)  # the first maximum, as NumPy's argmax
            values, where = values.T, where.T  # (filters, batch)
            batch_rows = rows.expand(values.shape[0], -1)
            if best_values is not None:
                values = torch.cat([best_values, values], dim=1)
                where = torch.cat([best_flat, where], dim=1)
                batch_rows = torch.cat([best_rows, batch_rows], dim=1)
            # A stable sort keeps earlier samples first among equal values.
            order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
            best_values = values.gather(1, order)
            best_flat = where.gather(1, order)
            best_rows = batch_rows.gather(1, order)
            if progress is not None:
                progress(int(rows[-1]) + 1, total)
    if best_values is None:
        return []
    return _collect(graph, node_id, best_values, best_rows, best_flat, ids, map_shape,
                    tuple(module.input_shape[1:]))


def _collect(graph: Graph, node_id: str, values: torch.Tensor, rows: torch.Tensor,
             flat: torch.Tensor, ids: torch.Tensor, map_shape: tuple[int, ...],
             spatial: tuple[int, ...]) -> list[FilterTop]:
    """The merged top-k tensors as FilterTop records (boxes looked up once per filter
    and position)."""
    fields = FilterFields(graph)
    result = []
    for f in range(values.shape[0]):
        hits = []
        for value, row, index in zip(values[f].tolist(), rows[f].tolist(), flat[f].tolist(),
                                     strict=True):
            position = tuple(int(i) for i in np.unravel_index(index, map_shape)) \
                if map_shape else ()
            box = fields.box(node_id, f, position, spatial) if position else None
            hits.append(TopHit(int(ids[row]), float(value), position, box))
        result.append(FilterTop(f, hits))
    return result
