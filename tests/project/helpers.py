"""Graphs, documents and files shared by the project tests."""

from __future__ import annotations

import copy
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save

from cnnstudio.core.graph import Graph
from cnnstudio.project import Project


def chain_graph() -> Graph:
    """Input → Conv2d → ReLU → Flatten → Linear, built through the editing API."""
    g = Graph()
    g.add_node("Input", {"shape": [1, 8, 8]}, id="input")
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}, id="conv1",
               inputs=["input"], pos=(0, 120))
    g.add_node("ReLU", {}, id="relu1", inputs=["conv1"])
    g.add_node("Flatten", {}, id="flat", inputs=["relu1"])
    g.add_node("Linear", {"out_features": 10}, id="fc", inputs=["flat"])
    return g


def dag_graph() -> Graph:
    """A residual Add and a Concat: two branches from the input meet twice."""
    g = Graph()
    g.add_node("Input", {"shape": [3, 8, 8]}, id="input")
    g.add_node("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": "same"}, id="conv_a",
               inputs=["input"])
    g.add_node("ReLU", {}, id="relu_a", inputs=["conv_a"])
    g.add_node("Conv2d", {"out_channels": 8, "kernel_size": 1}, id="conv_b", inputs=["input"],
               extra={"comment": "shortcut", "color": [1, 2, 3]})
    g.add_node("Add", {}, id="add", inputs=["relu_a", "conv_b"])
    g.add_node("Concat", {}, id="cat", inputs=["conv_b", "add"])
    g.add_node("AdaptiveAvgPool2d", {"output_size": 1}, id="gap", inputs=["cat"])
    g.add_node("Flatten", {}, id="flat", inputs=["gap"])
    g.add_node("Linear", {"out_features": 3}, id="fc", inputs=["flat"])
    return g


def weights_bytes() -> bytes:
    """A small valid state_dict for chain_graph(), as safetensors bytes."""
    rng = np.random.default_rng(0)
    return save({
        "conv1.weight": rng.standard_normal((4, 1, 3, 3)).astype(np.float32),
        "conv1.bias": np.zeros(4, np.float32),
        "fc.weight": rng.standard_normal((10, 256)).astype(np.float32),
        "fc.bias": np.arange(10, dtype=np.float64),
    }, metadata={"framework": "test"})


def full_project(graph: Graph | None = None) -> Project:
    """A project with every section filled and unknown keys at every level we own."""
    return Project(
        name="Digits LeNet ✓",
        task="classification",
        graph=chain_graph() if graph is None else graph,
        data={"source": {"kind": "folder", "path": "images", "future_option": 1},
              "val_fraction": 0.1, "unknown_data_key": [1, 2]},
        training={"epochs": 3, "optimizer": {"name": "SGD", "lr": 0.05, "new_knob": True},
                  "future": {"x": None}},
        runs=[{"id": "run1", "epochs": [{"epoch": 1, "train_loss": 0.5}]}],
        extra={"app": {"window": [800, 600]}, "notes": "ünïcode"},
    )


def minimal_doc(**changes: Any) -> dict[str, Any]:
    """The SPEC §2.1 example document, with top-level keys replaced by `changes`
    (a value of ... removes the key)."""
    doc: dict[str, Any] = {
        "format": "cnnstudio.project",
        "version": 1,
        "name": "Digits LeNet",
        "task": "classification",
        "graph": {"nodes": [
            {"id": "input", "type": "Input", "params": {"shape": [1, 8, 8]}, "inputs": []},
            {"id": "conv1", "type": "Conv2d",
             "params": {"out_channels": 16, "kernel_size": 3, "padding": 1},
             "inputs": ["input"], "pos": [0, 120]},
            {"id": "relu1", "type": "ReLU", "params": {}, "inputs": ["conv1"]},
            {"id": "flat", "type": "Flatten", "params": {}, "inputs": ["relu1"]},
            {"id": "fc", "type": "Linear", "params": {"out_features": 10}, "inputs": ["flat"]},
        ]},
        "data": {"source": {"kind": "builtin", "name": "digits"}, "val_fraction": 0.2},
        "training": {"epochs": 10, "batch_size": 64, "optimizer": {"name": "Adam", "lr": 0.001}},
    }
    doc = copy.deepcopy(doc)
    for key, value in changes.items():
        if value is ...:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def zip_bytes(members: dict[str, bytes | str], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive holding `members` (str values are UTF-8 encoded)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def write_zip(path: Path, members: dict[str, bytes | str], **kwargs: Any) -> Path:
    path.write_bytes(zip_bytes(members, **kwargs))
    return path
