"""Small torch modules for the layer types of our own (registry entries without a torch class).

Each is the `own_class` of its layer type and takes that type's resolved params as its
arguments. They hold no parameters; they are registered in the `GraphModule` like every other
node so forward hooks (activation maps, Grad-CAM) and `module_for` work on them too.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnstudio.core.layer_type import Shape


class InputLayer(nn.Module):
    """The network's input: passes the batch through unchanged."""

    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Add(nn.Module):
    """Element-wise sum of two or more tensors of equal shape (shape inference checked them)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        # Out of place: the inputs are other nodes' outputs, which other branches may still read.
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out = out + x
        return out


class Concat(nn.Module):
    """Joins tensors along the channels (dimension 1 of the batch)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class Maxout(nn.Module):
    """Maximum over groups of `pieces` consecutive channels: C channels become C / pieces."""

    def __init__(self, pieces: int) -> None:
        super().__init__()
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        # reshape, not view: it stays a view when it can, and copies for odd memory layouts.
        return x.reshape(n, c // self.pieces, self.pieces, *x.shape[2:]).amax(2)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"

