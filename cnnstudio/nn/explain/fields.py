"""The input region one filter's value sees: receptive fields that follow the channels.

`nn.internals.receptive_field_box` gives one field per node: after a Concat, the union of
all its branches. A filter of a Concat (or of a ReLU, BatchNorm or pooling after one)
comes from one branch only, so its field is that branch's. `FilterFields` follows a
filter's channels back through the graph — a Concat to the input and channel it took
them from, per-channel layers (activations, BatchNorm, Dropout, pooling) to the same
channels, an Add to the same channels of every input, a grouped convolution to its
group's input channels, anything else to all its input channels — and builds the field
from those sources only.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnstudio.core.graph import Graph
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.nn.internals import _Chain, _chain

Box = tuple[int, int, int, int]
Channels = tuple[int, int]  # [first, stop) along the channel axis
_Key = tuple[str, int, int]

# Element-wise layers whose channel c comes from input channel c alone (Softmax may mix
# the channels: all of them).
_PER_CHANNEL_ROLES = ("elementwise", "window")


class FilterFields:
    """Boxes of one layer's filters, for many (filter, position) look-ups: shape inference
    runs once, and each node's field per channel range is built once."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph
        try:
            self._inference = infer_shapes(graph)
        except Exception:  # a graph shape inference cannot order (cycles): no boxes
            self._inference = None
        self._chains: dict[_Key, _Chain | None] = {}

    def box(self, node_id: str, channel: int, position: Sequence[int],
            spatial: Sequence[int]) -> Box | None:
        """The input region [y0, x0, y1, x1] (end-exclusive, clipped to an input of
        `spatial` size; 1-D: [0, x0, 1, x1]) that value (`channel`, *`position`) of node
        `node_id` sees. None when there is no exact region (after a Flatten, Linear,
        adaptive pool, upsampling or transposed convolution; a 3-D input; an unknown node)
        and when the region lies wholly in the padding (the value sees no input pixel)."""
        if not position or len(spatial) not in (1, 2) or len(position) != len(spatial):
            return None
        chain = self.chain(node_id, (channel, channel + 1))
        if chain is None or len(chain.size) != len(position):
            return None
        ranges = []
        for i, index in enumerate(position):
            start = int(round(chain.start[i] + index * chain.jump[i]))
            stop = start + int(round(chain.size[i]))
            first, last = max(0, start), min(int(spatial[i]), stop)
            if first >= last:  # only padding under the window
                return None
            ranges.append((first, last))
        if len(ranges) == 1:
            (x0, x1), = ranges
            return (0, x0, 1, x1)
        (y0, y1), (x0, x1) = ranges
        return (y0, x0, y1, x1)

    def chain(self, node_id: str, channels: Channels) -> _Chain | None:
        """The field chain of channels [first, stop) of `node_id` (None: no exact field)."""
        if self._inference is None or node_id not in self._inference.nodes:
            return None
        # Depth-first without recursion: a deep network must not reach Python's limit.
        stack: list[_Key] = [(node_id, *channels)]
        while stack:
            key = stack[-1]
            if key in self._chains:
                stack.pop()
                continue
            sources = self._sources(key)
            missing = [s for s in sources if s not in self._chains]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            node = self._graph.node(key[0])
            self._chains[key] = _chain(node, self._inference.nodes.get(key[0]),
                                       [self._chains[s] for s in sources])
        return self._chains[(node_id, *channels)]

    def _sources(self, key: _Key) -> list[_Key]:
        """The (input node, channel range) pairs the channels of `key` are computed from."""
        node_id, first, stop = key
        node = self._graph.node(node_id)
        info = self._inference.nodes.get(node_id) if self._inference is not None else None
        if info is None or info.shape is None or not node.inputs:
            return []
        widths = [shape[0] if shape else 1 for shape in info.input_shapes]
        role = node.layer.spatial_role
        if node.type == "Concat":
            sources, offset = [], 0
            for source, width in zip(node.inputs, widths, strict=False):
                low, high = max(first - offset, 0), min(stop - offset, width)
                if low < high:
                    sources.append((source, low, high))
                offset += width
            return sources
        if node.type == "Add":
            return [(source, first, stop) for source in node.inputs]
        params = node.resolved_params()
        if "out_channels" in params and role == "window":  # a convolution: by its groups
            groups = int(params.get("groups", 1) or 1)
            per_out, per_in = info.shape[0] // groups, widths[0] // groups
            if per_out and per_in:
                low, high = first // per_out, (stop - 1) // per_out + 1
                return [(node.inputs[0], low * per_in, high * per_in)]
        elif role in _PER_CHANNEL_ROLES and node.type != "Softmax" \
                and len(info.shape) == len(info.input_shapes[0]):
            return [(node.inputs[0], first, stop)]
        return [(source, 0, width) for source, width in zip(node.inputs, widths, strict=False)]
