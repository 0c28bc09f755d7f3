"""cnnstudio.nn: network graphs as torch modules, and their weights as safetensors."""

from cnnstudio.nn.builder import BuildError, GraphModule, build_module, make_layer
from cnnstudio.nn.weights import (
    WeightsError,
    load_weights,
    read_weights,
    weights_metadata,
    weights_to_bytes,
)

__all__ = [
    "BuildError",
    "GraphModule",
    "WeightsError",
    "build_module",
    "load_weights",
    "make_layer",
    "read_weights",
    "weights_metadata",
    "weights_to_bytes",
]
