"""Frozen layers (a node's `"trainable": false`): parameters without gradients, left out
of the optimizer, and BatchNorm that keeps its running statistics.

`freeze_nodes` marks a built module once; the Trainer then reads the module alone
(`trainable_parameters`, `train_mode`), so a module frozen by hand in plain PyTorch
(`requires_grad_(False)` on a BatchNorm) trains the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from cnnstudio.core.graph import Graph

# Set on the submodule of a frozen node: a BatchNorm without affine parameters has no
# requires_grad to tell by.
FROZEN_MARK = "cnnstudio_frozen"


def freeze_nodes(module: nn.Module, graph: Graph) -> list[str]:
    """Freeze the submodules of `graph`'s non-trainable nodes in `module` (a GraphModule
    built from `graph`): requires_grad False on their parameters, and the mark that keeps
    their BatchNorm in eval mode. Unmarks and unfreezes the others. Returns the frozen
    node ids. Nodes without a submodule (Input) are skipped."""
    frozen = []
    for node in graph:
        if node.id not in module.node_ids:  # type: ignore[operator]
            continue
        sub = module.module_for(node.id)  # type: ignore[operator]
        sub.requires_grad_(node.trainable)
        for part in sub.modules():
            setattr(part, FROZEN_MARK, not node.trainable)
        if not node.trainable:
            frozen.append(node.id)
    return frozen


def is_frozen(module: nn.Module) -> bool:
    """Marked frozen, or (frozen by hand) having parameters none of which needs a gradient."""
    if getattr(module, FROZEN_MARK, False):
        return True
    own = list(module.parameters(recurse=False))
    return bool(own) and not any(p.requires_grad for p in own)


def frozen_norms(module: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers of `module` that are frozen: they stay in eval mode in training."""
    return [m for m in module.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and is_frozen(m)]


def train_mode(module: nn.Module, norms: Iterable[nn.Module]) -> None:
    """`module.train()`, then `norms` (from `frozen_norms`) back to eval: in train mode a
    BatchNorm normalises with the batch's statistics and updates its running ones."""
    module.train()
    for norm in norms:
        norm.eval()


def trainable_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters the optimizer gets: those that need a gradient. Raises ValueError
    (worded for the user) when there are none."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params and any(True for _ in module.parameters()):
        raise ValueError("every layer with parameters is frozen: there is nothing to train"
                         " (unfreeze some layers)")
    if not params:
        raise ValueError("the network has no parameters to train")
    return params


def frozen_parameter_names(module: nn.Module) -> list[str]:
    """Names of the parameters that need no gradient: a resume state records them, since
    the optimizer's state only fits the same trainable set."""
    return [name for name, p in module.named_parameters() if not p.requires_grad]


def resume_extra(module: nn.Module) -> dict[str, list[str]]:
    """What a resume state records of the freezing: `{"frozen": names}`, or nothing when
    every parameter trains (a state without the key reads as nothing frozen)."""
    names = frozen_parameter_names(module)
    return {"frozen": names} if names else {}
