"""What every importer shares: the error it raises, the model it returns, and the last
steps that turn a mapped graph into one a student can open (inference checked, laid out,
grouped) with weights that fit it exactly."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from cnnstudio.core.errors import InvalidIdError, with_more
from cnnstudio.core.graph import Graph
from cnnstudio.core.grouping import auto_group
from cnnstudio.core.ids import MAX_ID_LENGTH, check_id
from cnnstudio.core.import_spec import PICKLE_SUFFIXES
from cnnstudio.core.layout import auto_layout
from cnnstudio.core.shapes import infer_shapes

__all__ = ["PICKLE_SUFFIXES", "ImportedModel", "ModelImportError", "starts_like_pickle",
           "valid_node_id", "finish_graph", "check_weights", "MAX_MODEL_BYTES",
           "MAX_GRAPH_NODES", "MAX_TENSOR_BYTES"]

# Size limits every importer enforces (before or while parsing).
MAX_MODEL_BYTES = 2 * 1024**3
MAX_GRAPH_NODES = 10_000
MAX_TENSOR_BYTES = 1024**3


_PICKLE_MAGIC = b"\x80"  # protocol 2+ pickles start with it
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format: a zip around a pickle


def starts_like_pickle(head: bytes) -> bool:
    """Whether a file's first bytes are a pickle's or a torch.save zip's (no ONNX file and
    no safetensors file starts so): such a file is refused unread whatever its name."""
    return head[:1] == _PICKLE_MAGIC or head[:4] == _ZIP_MAGIC


class ModelImportError(Exception):
    """One line for the user; the command line exits 2 with it."""


@dataclass
class ImportedModel:
    """A model read from a foreign format, ready to become a project."""

    graph: Graph  # valid: ids, params, inputs, laid out (pos set), groups detected
    weights: dict[str, np.ndarray]  # exactly build_module(graph).state_dict() keys → arrays
    source: str  # the file name the user gave (no directories)
    kind: str  # "onnx" | "pytorch"
    notes: list[str] = field(default_factory=list)  # e.g. "Pad folded into conv3"


def valid_node_id(name: str, taken: set[str]) -> str:
    """A node id made from a foreign name (an ONNX node name like `/layer1/0/conv1/Conv`,
    a module path like `layer1.0.conv1`): characters an id cannot hold become `_`, a
    leading digit or `_` gets a letter in front, reserved names get a suffix, and a
    number is appended until the id is not in `taken`. The id is added to `taken`.
    Never raises: an empty or unusable name becomes `node`."""
    text = re.sub(r"[^\w-]+", "_", str(name)).strip("_-")
    text = re.sub(r"_{2,}", "_", text)
    if not text:
        text = "node"
    if not re.match(r"[^\W\d]", text):
        text = "n" + text
    base = text[:MAX_ID_LENGTH - 6]
    try:
        check_id(base)
    except InvalidIdError:  # a reserved name (forward, state_dict, …)
        base = f"{base}_layer"
    candidate, i = base, 2
    while candidate in taken:
        candidate = f"{base}_{i}"
        i += 1
    check_id(candidate)
    taken.add(candidate)
    return candidate


def finish_graph(graph: Graph) -> None:
    """Check the mapped graph with our shape inference, then group its repeated structure
    (core.grouping.auto_group) and lay it out (core.layout.auto_layout) in place.

    Raises ModelImportError naming the node when our inference finds an error (the
    first, and how many more)."""
    inference = infer_shapes(graph)
    if inference.errors:
        raise ModelImportError("the imported network does not check: "
                               + with_more(inference.errors))
    auto_group(graph)
    shapes = {nid: info.shape for nid, info in inference.nodes.items()}
    auto_layout(graph, shapes)


def check_weights(graph: Graph, weights: dict[str, np.ndarray]) -> None:
    """Raise ModelImportError unless `weights` has exactly the keys of
    `build_module(graph).state_dict()`, each with that tensor's shape."""
    from cnnstudio.nn.builder import BuildError, build_module

    try:
        expected = build_module(graph).state_dict()
    except BuildError as err:
        raise ModelImportError(f"the imported network cannot be built: {err}") from None
    missing = [k for k in expected if k not in weights]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ModelImportError(f"no weights for {missing[0]}{more}")
    extra = [k for k in weights if k not in expected]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise ModelImportError(f"weights {extra[0]}{more} belong to no layer of the network")
    for key, tensor in expected.items():
        got = tuple(np.shape(weights[key]))
        if got != tuple(tensor.shape):
            want = "×".join(map(str, tensor.shape)) or "scalar"
            have = "×".join(map(str, got)) or "scalar"
            raise ModelImportError(f"weights {key} are {have}, the layer needs {want}")
