"""Blocks: connected groups of nodes that recur in CNNs (VGG, residual, inception, U-Net).

Each block function adds its nodes to a graph after `source` and returns the id of
the block's last node, so blocks chain like layers. The palette inserts them and
the templates are built from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cnnstudio.core.graph import Graph


def add(graph: Graph, type_name: str, source: str | list[str] | None,
        params: dict[str, Any] | None = None, id: str | None = None) -> str:
    """Add one node fed by `source` (an id, a list of ids, or None); return its id."""
    inputs = [] if source is None else ([source] if isinstance(source, str) else list(source))
    return graph.add_node(type_name, params or {}, id=id, inputs=inputs).id


@contextmanager
def group(graph: Graph, name: str) -> Iterator[None]:
    """Make the nodes (and top-level groups) added inside the `with` one group `name`.

    Groups made inside nest in it, so `with group(g, "Stage 1"):` around residual blocks
    each built `with group(g, "Residual block 1"):` gives a stage holding its blocks.
    """
    before = graph.taken_ids()
    yield
    members = [n.id for n in graph if n.id not in before and n.group is None]
    members += [g.id for g in graph.groups if g.id not in before and g.parent is None]
    if members:
        graph.groups.add(members, name)


def conv_bn_relu(graph: Graph, source: str, channels: int, kernel: int = 3, stride: int = 1,
                 batch_norm: bool = True, activation: bool = True,
                 eps: float | None = None) -> str:
    """Conv2d (padding keeps the size at stride 1) → BatchNorm2d → ReLU.

    `eps` sets the BatchNorm's epsilon when it differs from torch's 1e-5 (GoogLeNet: 0.001).
    """
    x = add(graph, "Conv2d", source, {"out_channels": channels, "kernel_size": kernel,
                                      "stride": stride, "padding": kernel // 2,
                                      "bias": not batch_norm})
    if batch_norm:
        x = add(graph, "BatchNorm2d", x, {} if eps is None else {"eps": eps})
    return add(graph, "ReLU", x) if activation else x


def vgg_block(graph: Graph, source: str, channels: int = 64, convs: int = 2,
              batch_norm: bool = False) -> str:
    """`convs` 3×3 convolutions with ReLU, then 2×2 max pooling (halves the size)."""
    x = source
    for _ in range(convs):
        x = conv_bn_relu(graph, x, channels, batch_norm=batch_norm)
    return add(graph, "MaxPool2d", x, {"kernel_size": 2, "stride": 2})


def residual_block(graph: Graph, source: str, channels: int, in_channels: int,
                   stride: int = 1) -> str:
    """Two 3×3 conv-BN layers plus a skip connection (Add), then ReLU (He et al., 2016).

    When the size or channel count changes, the skip goes through a 1×1 strided conv.
    """
    x = conv_bn_relu(graph, source, channels, stride=stride)
    x = conv_bn_relu(graph, x, channels, activation=False)
    return _join_skip(graph, source, x, channels, in_channels, stride)


def _join_skip(graph: Graph, source: str, x: str, channels: int, in_channels: int,
               stride: int) -> str:
    """Add the block's input to its main path `x` (through a 1×1 strided conv-BN when the
    size or channel count changes), then ReLU."""
    skip = source
    if stride != 1 or channels != in_channels:
        skip = add(graph, "Conv2d", source, {"out_channels": channels, "kernel_size": 1,
                                             "stride": stride, "bias": False})
        skip = add(graph, "BatchNorm2d", skip)
    x = add(graph, "Add", [x, skip])
    return add(graph, "ReLU", x)


def bottleneck_block(graph: Graph, source: str, width: int, in_channels: int,
                     stride: int = 1, expansion: int = 4) -> str:
    """ResNet's bottleneck (He et al., 2016): 1×1 conv-BN-ReLU down to `width` channels,
    3×3 conv-BN-ReLU (carrying the stride, as torchvision's ResNet v1.5), 1×1 conv-BN up to
    `width · expansion`, plus the skip (Add), then ReLU.

    When the size or channel count changes, the skip goes through a 1×1 strided conv-BN.
    """
    out = width * expansion
    x = conv_bn_relu(graph, source, width, kernel=1)
    x = conv_bn_relu(graph, x, width, kernel=3, stride=stride)
    x = conv_bn_relu(graph, x, out, kernel=1, activation=False)
    return _join_skip(graph, source, x, out, in_channels, stride)


def inception_branches(graph: Graph, source: str, c1: int, c3_reduce: int, c3: int,
                       c5_reduce: int, c5: int, pool_proj: int, *, c5_kernel: int = 5,
                       batch_norm: bool = False, eps: float | None = None,
                       ceil_mode: bool = False) -> str:
    """The inception module with every width given: 1×1 | 1×1→3×3 | 1×1→`c5_kernel`² |
    3×3 max-pool→1×1, joined by Concat. GoogLeNet as torchvision builds it uses
    batch_norm=True, eps=0.001, c5_kernel=3 and ceil_mode=True."""
    def unit(x: str, channels: int, kernel: int) -> str:
        return conv_bn_relu(graph, x, channels, kernel=kernel, batch_norm=batch_norm, eps=eps)

    b1 = unit(source, c1, 1)
    b3 = unit(unit(source, c3_reduce, 1), c3, 3)
    b5 = unit(unit(source, c5_reduce, 1), c5, c5_kernel)
    pool = {"kernel_size": 3, "stride": 1, "padding": 1}
    if ceil_mode:
        pool["ceil_mode"] = True
    bp = unit(add(graph, "MaxPool2d", source, pool), pool_proj, 1)
    return add(graph, "Concat", [b1, b3, b5, bp])


def inception_block(graph: Graph, source: str, c1: int = 16, c3: int = 24, c5: int = 8,
                    pool_proj: int = 8) -> str:
    """Four parallel branches — 1×1, 1×1→3×3, 1×1→5×5, 3×3 max-pool→1×1 — joined by
    Concat (Szegedy et al., 2015), each reduction half its branch's width.
    Output channels: c1 + c3 + c5 + pool_proj."""
    return inception_branches(graph, source, c1, max(c3 // 2, 1), c3, max(c5 // 2, 1), c5,
                              pool_proj)


def double_conv(graph: Graph, source: str, channels: int) -> str:
    """The U-Net stage: two 3×3 conv-BN-ReLU layers at one resolution."""
    return conv_bn_relu(graph, conv_bn_relu(graph, source, channels), channels)


def unet_up(graph: Graph, source: str, skip: str, channels: int, learned: bool = True) -> str:
    """A U-Net decoder stage: upsample ×2 (ConvTranspose2d, or Upsample + 1×1 conv),
    concatenate the encoder's skip, then double_conv."""
    if learned:
        x = add(graph, "ConvTranspose2d", source, {"out_channels": channels, "kernel_size": 2,
                                                   "stride": 2})
    else:
        x = add(graph, "Upsample", source, {"scale_factor": 2, "mode": "nearest"})
        x = add(graph, "Conv2d", x, {"out_channels": channels, "kernel_size": 1})
    x = add(graph, "Concat", [x, skip])
    return double_conv(graph, x, channels)


# Palette entries: name → (help, function(graph, source id, source channels) → last id).
BLOCKS: dict[str, tuple[str, Any]] = {
    "VGG block": ("Two 3×3 conv + ReLU, then 2×2 max-pool.",
                  lambda g, s, c: vgg_block(g, s, 64, 2)),
    "Residual block": ("Two 3×3 conv-BN with a skip connection (Add); keeps the channels.",
                       lambda g, s, c: residual_block(g, s, c, c)),
    "Bottleneck block": ("ResNet-50's block: 1×1 down to a quarter of the channels, 3×3, "
                         "1×1 back up, with a skip connection (Add).",
                         lambda g, s, c: bottleneck_block(g, s, max(c // 4, 1), c)),
    "Inception block": ("Parallel 1×1, 3×3, 5×5 and pool branches joined by Concat.",
                        lambda g, s, c: inception_block(g, s)),
    "U-Net stage": ("Two 3×3 conv-BN-ReLU at one resolution.",
                    lambda g, s, c: double_conv(g, s, 64)),
}
