"""Weights as safetensors bytes: the project file's `weights.safetensors`, never pickle.

Keys are the module's `state_dict()` keys, `<node id>.<torch param name>`. Loading is
strict: a file that does not fit the graph is refused with one line naming the node,
so a user who edited the network after training knows what happened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load as _load_bytes
from safetensors.torch import save as _save_bytes
from torch import nn

from cnnstudio.core.errors import first_line
from cnnstudio.core.layer_type import fmt_shape

_PREFIX = "weights don't fit the graph: "


class WeightsError(Exception):
    """Weights that cannot be read, or do not fit the model; `str()` is one line."""


def weights_to_bytes(module: nn.Module, metadata: Mapping[str, str] | None = None) -> bytes:
    """The module's `state_dict()` as safetensors bytes (contiguous CPU tensors).

    `metadata` (string to string) is stored in the file's header.
    """
    tensors = {key: value.detach().to("cpu").contiguous()
               for key, value in module.state_dict().items()}
    return _save_bytes(tensors, metadata=dict(metadata) if metadata else None)


def read_weights(data: bytes) -> dict[str, torch.Tensor]:
    """Decode safetensors bytes into CPU tensors; raises WeightsError when unreadable."""
    try:
        return _load_bytes(data)
    except (SafetensorError, ValueError, TypeError, RuntimeError) as err:
        raise WeightsError(f"the weights file is unreadable ({first_line(err)})") from None


def weights_metadata(data: bytes) -> dict[str, str]:
    """The string metadata stored with `weights_to_bytes` (empty when there is none).

    Reads only the header, not the tensors. Raises WeightsError when it is unreadable.
    """
    try:
        length = int.from_bytes(data[:8], "little")
        if len(data) < 8 or length > len(data) - 8:
            raise ValueError("the header is cut short")
        header = json.loads(data[8:8 + length])
        metadata = header.get("__metadata__") or {}
        if not isinstance(metadata, dict):
            raise ValueError("the metadata is not an object")
    except (ValueError, AttributeError) as err:  # JSONDecodeError and UnicodeError included
        raise WeightsError(f"the weights file is unreadable ({err})") from None
    return {str(k): str(v) for k, v in metadata.items()}


def _node(key: str) -> str:
    return key.split(".", 1)[0]


def _mismatches(expected: Mapping[str, torch.Tensor],
                found: Mapping[str, torch.Tensor]) -> list[str]:
    """One message per key that is missing, unexpected or of another shape."""
    problems = []
    for key, tensor in expected.items():
        if key not in found:
            problems.append(f"the file has no {key} (was {_node(key)} added or changed"
                            " after training?)")
        elif tuple(found[key].shape) != tuple(tensor.shape):
            problems.append(
                f"{key} has shape {fmt_shape(tuple(found[key].shape))} in the file but"
                f" {fmt_shape(tuple(tensor.shape))} in the model (was {_node(key)} edited"
                " after training?)"
            )
    for key in found:
        if key not in expected:
            problems.append(f"the file has {key}, which the model lacks (was {_node(key)}"
                            " removed or renamed after training?)")
    return problems


def load_weights(module: nn.Module, data: bytes) -> None:
    """Load safetensors bytes into `module`, strictly.

    Raises WeightsError (one line) when the bytes are unreadable, or when a key is
    missing or unexpected or a tensor's shape differs from the model's; the module is
    left unchanged then. Values are converted to the model's dtype and device.
    """
    found = read_weights(data)
    problems = _mismatches(module.state_dict(), found)
    if problems:
        more = len(problems) - 1
        suffix = f" (and {more} more mismatch{'es' if more > 1 else ''})" if more else ""
        raise WeightsError(_PREFIX + problems[0] + suffix)
    module.load_state_dict(found, strict=True)
