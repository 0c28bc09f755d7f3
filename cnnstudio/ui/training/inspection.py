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

UNTRAINED = "untrained, random initialisation"


@dataclass
class InspectionSource:
    """A model to inspect: `weights` are safetensors bytes or a NumPy state dict; None is
    the untrained network as a run with training seed `seed` starts it."""

    graph: Graph
    weights: bytes | dict[str, np.ndarray] | None
    mean: list[float]
    std: list[float]
    normalize: bool
    class_names: list[str]
    task: str = "classification"
    label: str = ""  # e.g. "epoch 3 of the running training" or "saved weights"
    seed: int = 0
    _module: Any = field(default=None, repr=False)

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

            if self.weights is None:
                from cnnstudio.train.snapshots import initial_module

                self._module = initial_module(self.graph, self.seed).eval()
                return self._module
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


def training_seed(training: Any) -> int:
    """The seed a run of these training settings starts from (0 when they are invalid:
    the views then show some initialisation, and Train says what is wrong). Without
    torch: this runs on the GUI thread, before the views' worker builds anything."""
    from cnnstudio.core.errors import FormatError
    from cnnstudio.project import fill_training

    try:
        return int(fill_training(training)["seed"])
    except FormatError:
        return 0


def untrained_source(project: Any, context: dict[str, Any] | None) -> InspectionSource:
    """The project's network before any training: the seeded initialisation a run would
    start from, with the loaded samples' preprocessing (when `context` has them)."""
    ctx = context or {}  # without samples only the filters are shown: any mean/std do
    return InspectionSource(project.graph.copy(), None, list(ctx.get("mean") or [0.0]),
                            list(ctx.get("std") or [1.0]),
                            bool(ctx.get("normalize", True)), list(ctx.get("class_names") or []),
                            project.task, UNTRAINED, seed=training_seed(project.training))


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


ORIGINAL_SIDE = 512  # the original is shown beside the network's view, not analysed


def read_original(path: str | Path) -> np.ndarray:
    """An image file as the user sees it: (H, W, 3) uint8, at most ORIGINAL_SIDE pixels a
    side. Raises ValueError with a one-line reason."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.draft("RGB", (ORIGINAL_SIDE, ORIGINAL_SIDE))
            rgb = img.convert("RGB")
            rgb.thumbnail((ORIGINAL_SIDE, ORIGINAL_SIDE))
            return np.asarray(rgb, np.uint8).copy()
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise ValueError(f"{Path(path).name}: {err}") from None


def _border(images: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels of (N, C, H, W) images, per image (N, ring)."""
    n = images.shape[0]
    ring = [images[:, :, 0, :], images[:, :, -1, :], images[:, :, :, 0], images[:, :, :, -1]]
    return np.concatenate([r.reshape(n, -1) for r in ring], axis=1)


Z_LIMIT = 3.0  # an image mean this many standard deviations from the training ones: warn


def input_warning(image: np.ndarray, mean: list[float], std: list[float],
                  samples: np.ndarray | None = None) -> str | None:
    """One line when `image` (C, H, W uint8, as the network's Input wants it) lies far
    outside the training data, else None: its background brightness on the other side
    of the training images' (a dark digit on white for a network trained on white digits
    on black), or its mean brightness more than Z_LIMIT standard deviations off.

    `samples` (N, C, H, W; uint8, or floats used unscaled; training or validation
    images) give the training data's per-image statistics; without them the stored
    normalisation (`mean`, `std`, per channel on a 0…1 scale) stands in for them."""
    x = np.asarray(image, np.float64) / 255.0
    if x.ndim != 3 or not x.size:
        return None
    level = float(x.mean())
    edge = float(np.median(_border(x[None])))
    if samples is not None and len(samples) and np.ndim(samples) == 4:
        s = np.asarray(samples, np.float64)
        if np.asarray(samples).dtype == np.uint8:  # float data is used unscaled (0…1): as it is
            s /= 255.0
        means = s.mean(axis=(1, 2, 3))
        train_level, spread = float(means.mean()), max(float(means.std()), 0.02)
        train_edge = float(np.median(np.median(_border(s), axis=1)))
    else:
        train_level = float(np.mean(mean)) if mean else 0.5
        spread = max(float(np.mean(std)) if std else 0.25, 0.02)
        # Mostly-dark training data has a dark background (and mostly-light a light one).
        train_edge = 0.0 if train_level < 0.35 else 1.0 if train_level > 0.65 else edge
    if abs(edge - train_edge) > 0.5:
        mine, theirs = ("light", "dark") if edge > train_edge else ("dark", "light")
        return (f"This image has a {mine} background, the training images a {theirs} one:"
                " the answer means little; try the image inverted.")
    z = (level - train_level) / spread
    if abs(z) > Z_LIMIT:
        word = "brighter" if z > 0 else "darker"
        return (f"This image is much {word} than the training images (mean {level:.2f} vs"
                f" {train_level:.2f}, z = {z:+.1f}): the answer may mean little.")
    return None
