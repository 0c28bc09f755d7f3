"""A project's data and trained model, as training made them: the one home of that recipe.

`DataRequest.of(project)` is what a project trains on (its Input's shape, the split seed,
where relative paths start); the same request gives the same dataset and split, so the
window shows only samples training used. `Preprocessing` is how a model's inputs are
prepared (normalisation, class names), read from the weights' metadata or run records.
`TrainedModel` is a graph with its weights (or the seeded initialisation a run starts
from) and its preprocessing: `predict`, the window's views and its prediction dialog use
it. Importing this module imports no torch (the window does at start): functions do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnstudio.core.errors import GraphError
from cnnstudio.core.graph import Graph
from cnnstudio.project.settings import fill_data, training_seed
from cnnstudio.project.weights import trained_class_names, trained_normalization

ProgressFn = Callable[[str, int, int], None]
UNTRAINED = "untrained, random initialisation"


@dataclass(frozen=True)
class DataRequest:
    """What to load: the filled `data.source` plus what the loader needs besides."""

    source: dict[str, Any]
    input_shape: tuple[int, ...]
    task: str
    base_dir: Path
    val_fraction: float
    seed: int = 0  # the split's own: runs with other training seeds share a validation set

    @classmethod
    def of(cls, project: Any) -> DataRequest:
        """What `project` trains on. Raises FormatError (invalid data settings) or
        GraphError (no Input node, or a ParameterError: its shape) with a one-line message."""
        data = fill_data(project.data)
        node = project.graph.input_node()
        if node is None:
            raise GraphError("the network has no Input node")
        shape = tuple(node.resolved_params()["shape"])
        base = Path(project.path).parent if project.path is not None else Path.cwd()
        return cls(data["source"], shape, project.task, base, data["val_fraction"], data["seed"])

    def load(self, progress: ProgressFn | None = None) -> Any:
        """The Dataset (decoded into the disk cache the first time). Raises DataError."""
        from cnnstudio.data import load_dataset

        return load_dataset(self.source, input_shape=list(self.input_shape), task=self.task,
                            base_dir=self.base_dir, val_fraction=self.val_fraction,
                            seed=self.seed, progress=progress)


@dataclass(frozen=True)
class Preprocessing:
    """How a model's inputs are prepared: per-channel `mean`/`std` (of 0…1 values) used
    when `normalize`; `class_names` name its outputs."""

    mean: list[float]
    std: list[float]
    normalize: bool = True
    class_names: list[str] = field(default_factory=list)

    @classmethod
    def saved(cls, project: Any) -> Preprocessing | None:
        """That of the run that made `project`'s weights; None when nothing says."""
        norm = trained_normalization(project.weights, project.runs)
        return None if norm is None else cls(norm["mean"], norm["std"], norm["normalize"],
                                             trained_class_names(project.runs))

    @classmethod
    def of_samples(cls, context: dict[str, Any] | None) -> Preprocessing:
        """That of loaded samples (a bridge's context); without samples only filters are
        shown: any mean/std do."""
        ctx = context or {}
        return cls(list(ctx.get("mean") or [0.0]), list(ctx.get("std") or [1.0]),
                   bool(ctx.get("normalize", True)), list(ctx.get("class_names") or []))

    def to_float(self, x: Any) -> Any:
        """A batch of samples (N, C, …; uint8 or float; NumPy or torch) as the model's
        float input."""
        import torch

        from cnnstudio.data.dataset import to_float

        if not isinstance(x, torch.Tensor):
            x = torch.from_numpy(np.require(x, requirements=["C", "W"]))  # torch wants writable
        return to_float(x, self.mean, self.std, self.normalize)


def image_input(graph: Graph, what: str) -> tuple[str, tuple[int, int]]:
    """(Pillow mode, size) of the images the network's Input takes; `what` names them in
    errors. Raises ValueError (no Input node) or DataError with a one-line message."""
    from cnnstudio.data.convert import pil_mode
    from cnnstudio.data.sources.base import Target

    node = graph.input_node()
    if node is None:
        raise ValueError("the network has no Input node")
    target = Target.parse(node.resolved_params()["shape"])
    target.require_image(what)
    return pil_mode(target, "the Input"), target.pil_size


def read_image(graph: Graph, path: str | Path) -> np.ndarray:
    """An image file as the network's Input wants it: (C, H, W) uint8, converted and
    resized as training data is. Raises ValueError with a one-line reason."""
    from cnnstudio.data.errors import DataError, SkipFile
    from cnnstudio.data.sources.images import decode_image

    try:
        return decode_image(Path(path), *image_input(graph, "the image"))
    except (DataError, SkipFile, OSError) as err:
        raise ValueError(f"{Path(path).name}: {err}") from None


@dataclass
class TrainedModel:
    """A model: `weights` are safetensors bytes or a NumPy state dict; None is the
    untrained network as a run with training seed `seed` starts it."""

    graph: Graph
    weights: bytes | dict[str, np.ndarray] | None
    prep: Preprocessing
    task: str = "classification"
    label: str = ""  # e.g. "epoch 3 of the running training" or "the saved weights"
    seed: int = 0
    _module: Any = field(default=None, repr=False)

    @classmethod
    def saved(cls, project: Any) -> TrainedModel | None:
        """The project's saved weights with the preprocessing of the run that made them;
        None when there are none, or nothing says how their inputs were prepared."""
        prep = Preprocessing.saved(project) if project.weights is not None else None
        return None if prep is None else cls(project.graph.copy(), project.weights, prep,
                                             project.task, "the saved weights")

    @classmethod
    def initial(cls, project: Any, context: dict[str, Any] | None) -> TrainedModel:
        """The project's network before any training: the seeded initialisation a run would
        start from, with the loaded samples' preprocessing (when `context` has them)."""
        return cls(project.graph.copy(), None, Preprocessing.of_samples(context),
                   project.task, UNTRAINED, seed=training_seed(project.training))

    @property
    def untrained(self) -> bool:
        return self.weights is None

    @property
    def state(self) -> str:
        """Whose weights these are, as the views' caption says it."""
        if self.untrained:
            return f"{UNTRAINED} (seed {self.seed}, as training will start)"
        return self.label

    def module(self) -> Any:
        """The GraphModule with these weights (eval mode), built on first use.
        Raises BuildError / WeightsError with a one-line message."""
        if self._module is None:
            import torch

            from cnnstudio.nn import build_module, load_weights
            from cnnstudio.train.snapshots import initial_module

            if self.weights is None:
                self._module = initial_module(self.graph, self.seed).eval()
                return self._module
            module = build_module(self.graph)
            if isinstance(self.weights, bytes):
                load_weights(module, self.weights)
            else:
                module.load_state_dict({k: torch.from_numpy(np.array(v))
                                        for k, v in self.weights.items()})
            self._module = module.eval()
        return self._module

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K) for samples `x`."""
        from cnnstudio.nn.internals import class_probabilities

        return class_probabilities(self.module(), self.prep.to_float(x))

    def grad_cam(self, x: np.ndarray, class_index: int, node: str | None) -> tuple[np.ndarray, str]:
        """(heat map H×W in 0…1, the layer used) for one sample `x` (C, H, W). `node` is
        used when it is a convolution with a spatial output, else the last convolution.
        Raises ValueError when the model has no such layer."""
        from cnnstudio.core.shapes import feature_map_node
        from cnnstudio.nn.internals import grad_cam, last_conv_node, layer_filters

        module = self.module()
        layer = node if node in getattr(module, "node_ids", ()) else None
        if layer is None or layer_filters(module, layer) is None:
            layer = last_conv_node(module)
        if layer is None:
            raise ValueError("Grad-CAM needs a 2-D convolution in the network")
        layer = feature_map_node(self.graph, layer)
        return grad_cam(module, layer, self.prep.to_float(x[None]), class_index), layer

    def snapshot(self, filter_node: str | None, activation_node: str | None,
                 x: np.ndarray | None) -> dict[str, Any]:
        """The filters of `filter_node` (None: the network has no convolution) and the
        feature maps of `activation_node` for the one sample in `x` (1, C, …), as NumPy
        arrays, with whose weights they are (`state`); nodes the module lacks are left out."""
        from cnnstudio.nn.internals import layer_filters, node_activation

        module = self.module()
        snap: dict[str, Any] = {"state": self.state}
        if filter_node is None or filter_node in module.node_ids:
            snap["filter_node"] = filter_node
            snap["filters"] = layer_filters(module, filter_node) if filter_node else None
        if x is not None and activation_node in module.node_ids:
            snap["activation_node"] = activation_node
            xb = self.prep.to_float(x)
            snap["activation"] = node_activation(module, activation_node, xb)[0].numpy()
        return snap
