"""Inspecting a trained model on the GUI thread: which weights, which samples, how prepared.

`InspectionSource` names a graph, its weights and how its inputs are prepared; the
controller picks the freshest one (the running model's last epoch, else the project's
saved weights). The module is built once per source and cached. torch is imported only
when something is inspected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnstudio.core.graph import Graph
from cnnstudio.project.weights import stored_normalization


@dataclass
class InspectionSource:
    """A model to inspect: `weights` are safetensors bytes or a NumPy state dict."""

    graph: Graph
    weights: bytes | dict[str, np.ndarray]
    mean: list[float]
    std: list[float]
    normalize: bool
    class_names: list[str]
    task: str = "classification"
    label: str = ""  # e.g. "epoch 3 of the running training" or "saved weights"
    _module: Any = field(default=None, repr=False)

    def module(self) -> Any:
        """The GraphModule with these weights (eval mode), built on first use.
        Raises BuildError / WeightsError with a one-line message."""
        if self._module is None:
            import torch

            from cnnstudio.nn import build_module, load_weights

            module = build_module(self.graph)
            if isinstance(self.weights, bytes):
                load_weights(module, self.weights)
            else:
                module.load_state_dict({k: torch.from_numpy(np.array(v))
                                        for k, v in self.weights.items()})
            module.eval()
            self._module = module
        return self._module

    def to_float(self, x: np.ndarray) -> Any:
        """A batch of samples (N, C, …; uint8 or float) as the model's float input."""
        import torch

        from cnnstudio.data import Dataset

        t = torch.from_numpy(np.require(x, requirements=["C", "W"]))  # torch wants writable
        prep = Dataset(x=t[:0], y=torch.empty(0, dtype=torch.int64), class_names=[],
                       task=self.task, splits={}, skipped=[], mean=list(self.mean),
                       std=list(self.std))
        return prep.batch_to_float(t, self.normalize)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K) for samples `x`."""
        from cnnstudio.nn.inspect import class_probabilities

        return class_probabilities(self.module(), self.to_float(x))

    def grad_cam(self, x: np.ndarray, class_index: int, node: str | None) -> tuple[np.ndarray, str]:
        """(heat map H×W in 0…1, the layer used) for one sample `x` (C, H, W). `node` is
        used when it is a convolution with a spatial output, else the last convolution.
        Raises ValueError when the model has no such layer."""
        from cnnstudio.nn.inspect import grad_cam, last_conv_node, layer_filters

        module = self.module()
        layer = node if node in getattr(module, "node_ids", ()) else None
        if layer is None or layer_filters(module, layer) is None:
            layer = last_conv_node(module)
        if layer is None:
            raise ValueError("Grad-CAM needs a 2-D convolution in the network")
        layer = feature_map_node(self.graph, layer)
        return grad_cam(module, layer, self.to_float(x[None]), class_index), layer


_FOLLOW = {"BatchNorm2d", "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU"}
_ACTIVATIONS = _FOLLOW - {"BatchNorm2d"}


def feature_map_node(graph: Graph, node_id: str) -> str:
    """The node whose output is `node_id`'s feature maps: past a BatchNorm and the
    activation that follow a convolution alone (Grad-CAM weighs rectified maps; the raw
    convolution output's negative parts would cancel the evidence)."""
    current = node_id
    while current in graph:
        consumers = graph.consumers(current)
        if len(consumers) != 1 or graph.node(consumers[0]).type not in _FOLLOW:
            break
        current = consumers[0]
        if graph.node(current).type in _ACTIVATIONS:
            break
    return current


def saved_source(project: Any) -> InspectionSource | None:
    """The project's saved weights with the preprocessing of the run that made them;
    None when there are none."""
    if project.weights is None:
        return None
    norm = stored_normalization(project.weights)
    names: list[str] = []
    for record in reversed(project.runs):
        if isinstance(record, dict) and record.get("class_names"):
            names = [str(n) for n in record["class_names"]]
            norm = norm or record.get("normalization")
            break
    if not isinstance(norm, dict) or "mean" not in norm:
        return None  # weights from elsewhere: we cannot tell how inputs were prepared
    return InspectionSource(project.graph.copy(), project.weights, list(norm["mean"]),
                            list(norm["std"]), bool(norm.get("normalize", True)), names,
                            project.task, "the saved weights")


def read_image(graph: Graph, path: str | Path) -> np.ndarray:
    """An image file as the network's Input wants it: (C, H, W) uint8, converted and
    resized as training data is. Raises ValueError with a one-line reason."""
    from cnnstudio.data.convert import pil_mode
    from cnnstudio.data.errors import DataError, SkipFile
    from cnnstudio.data.sources.base import Target
    from cnnstudio.data.sources.images import decode_image

    inputs = [n for n in graph if n.type == "Input"]
    if not inputs:
        raise ValueError("the network has no Input node")
    try:
        target = Target.parse(inputs[0].resolved_params()["shape"])
        target.require_image("the image")
        mode = pil_mode(target, "the Input")
        return decode_image(Path(path), mode, target.pil_size)
    except (DataError, SkipFile, OSError) as err:
        raise ValueError(f"{Path(path).name}: {err}") from None
