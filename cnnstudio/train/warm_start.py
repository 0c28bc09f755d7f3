"""A warm start from weights that fit the graph only in part: after the class-count fix
replaced an imported model's head, the body keeps its imported weights and only the
changed layers start from new ones (fine-tuning's usual start). Only imported weights are
loaded in part: a project's own runs start afresh from weights that do not fit, as the
window's run history draws them."""

from __future__ import annotations

from torch import nn

from cnnstudio.nn import WeightsError, load_weights
from cnnstudio.nn.weights import read_weights


def load_fitting(module: nn.Module, data: bytes, partial: bool = True) -> list[str]:
    """Load the safetensors `data` into `module`: all of it when it fits; else (with
    `partial`) node by node, each node whose every tensor is in the file with the model's
    shape, the others keeping the module's own (freshly initialised) weights. Returns the
    ids of the nodes left with new weights ([] when everything fit). Raises WeightsError
    (one line) when the data is unreadable, does not fit and `partial` is False, or no
    node with parameters fits; the module is unchanged then."""
    try:
        load_weights(module, data)
        return []
    except WeightsError as err:
        if not partial:
            raise
        refused = err
    found = read_weights(data)
    own = module.state_dict()
    keys_of: dict[str, list[str]] = {}
    for key in own:
        keys_of.setdefault(key.split(".", 1)[0], []).append(key)
    fits = {node for node, keys in keys_of.items()
            if all(k in found and tuple(found[k].shape) == tuple(own[k].shape) for k in keys)}
    with_params = {name.split(".", 1)[0] for name, _ in module.named_parameters()}
    if not fits & with_params:  # nothing worth keeping: the weights of another network
        raise refused
    module.load_state_dict({k: found[k] for node in fits for k in keys_of[node]}, strict=False)
    return [node for node in keys_of if node not in fits]
