"""What a layer's filters respond to, over a dataset and for one image: the record the
`explain` command and the Explain view show.

`explain_layer` loads nothing itself: the caller passes the trained model and the loaded
dataset (duck-typed here — `cnnstudio.train.model_io.TrainedModel` and
`cnnstudio.data.Dataset`, which this layer may not import).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from cnnstudio.nn.explain.occlusion import occlusion_map
from cnnstudio.nn.explain.responses import Cancelled, FilterTop, top_activations

SPLITS = ("val", "train", "all")
StageProgress = Callable[[str, int, int], None]
TOP_STAGE = "finding the samples that excite each filter"
OCCLUSION_STAGE = "occlusion map"
GRAD_CAM_STAGE = "Grad-CAM"


class _Preprocessing(Protocol):
    class_names: list[str]

    def to_float(self, x: Any) -> torch.Tensor: ...


class _Model(Protocol):
    """What `explain_layer` uses of a TrainedModel."""

    graph: Any
    prep: _Preprocessing
    task: str

    def module(self) -> Any: ...
    def probabilities(self, x: np.ndarray) -> np.ndarray: ...
    def grad_cam(self, x: np.ndarray, class_index: int,
                 node: str | None) -> tuple[np.ndarray, str]: ...


class _Dataset(Protocol):
    """What `explain_layer` uses of a Dataset (`files` too when it has them)."""

    x: torch.Tensor
    splits: dict[str, torch.Tensor]
    class_names: list[str]


@dataclass
class LayerReport:
    """The filters of `layer` and the samples that excite them most, over `split`
    ("val", "train" or "all"; "all" also when the validation split was empty).

    `files` has one entry per dataset sample (its file path, None when it came from no
    file); `samples` maps each dataset index that appears in a hit to its raw sample
    (C, …) as the dataset holds it (uint8 images, float signals). `image`, when one was
    given: {"file", "class_index", "class", "probability", "occlusion" (H, W) float32 (the
    score drop, unscaled: display with `scale_cam`), "grad_cam" (H, W) in 0…1 or None
    (no 2-D convolution), "grad_cam_layer" (id or None), "input" the raw image (C, H, W)}.
    """

    layer: str
    split: str
    filters: list[FilterTop]
    files: list[str | None]
    samples: dict[int, np.ndarray]
    image: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The `explain --json` object: {"layer", "split", "filters": [{"filter", "top":
        [{"sample", "file", "activation", "box"}]}]} plus, with an image, "image": {"file",
        "class", "grad_cam_layer"}. A non-finite activation becomes null (valid JSON)."""
        doc: dict[str, Any] = {"layer": self.layer, "split": self.split, "filters": [
            {"filter": top.filter, "top": [
                {"sample": hit.sample,
                 "file": self.files[hit.sample] if hit.sample < len(self.files) else None,
                 "activation": hit.activation if math.isfinite(hit.activation) else None,
                 "box": None if hit.box is None else [int(v) for v in hit.box]}
                for hit in top.hits]}
            for top in self.filters]}
        if self.image is not None:
            doc["image"] = {key: self.image.get(key)
                            for key in ("file", "class", "grad_cam_layer")}
        return doc


def split_indices(dataset: _Dataset, split: str) -> tuple[str, torch.Tensor | None]:
    """(the split's name as reported, its sample indices; None for every sample).
    An empty validation split falls back to every sample. Raises ValueError for an
    unknown split name."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    if split == "all":
        return "all", None
    index = dataset.splits.get(split)
    if index is None or len(index) == 0:
        if split == "train":
            raise ValueError("the dataset has no training samples")
        return "all", None
    return split, torch.as_tensor(index, dtype=torch.int64)


def explain_layer(model: _Model, dataset: _Dataset, node_id: str, *, k: int = 9,
                  split: str = "val", image: np.ndarray | None = None,
                  image_file: str | None = None, progress: StageProgress | None = None,
                  cancelled: Callable[[], bool] | None = None) -> LayerReport:
    """What every filter of layer `node_id` responds to: the `k` samples of `split` that
    excite it most (`top_activations`, run with the model's preprocessing) and, with an
    `image` (C, H, W raw, as `read_image` gives it), its occlusion map and Grad-CAM for
    the class the model predicts.

    `progress(stage, done, total)` reports each stage; `cancelled()` is checked between
    batches and stages. Raises ValueError (one line) for an unknown layer or split, a
    layer without channels, samples or an image that do not fit the network, or an image
    for a model that does not classify; Cancelled when cancelled.
    """
    module = model.module()
    if node_id not in module.node_ids:
        raise ValueError(f"the network has no layer {node_id!r}")
    if image is not None:  # refused before minutes of search, not after
        image = check_image(model.task, module.input_shape, image)
    name, index = split_indices(dataset, split)
    x = dataset.x if index is None else dataset.x[index]
    ids = None if index is None else index.tolist()
    if len(x) == 0:
        raise ValueError("the dataset has no samples")

    def step(done: int, total: int) -> None:
        if progress is not None:
            progress(TOP_STAGE, done, total)

    filters = top_activations(module, model.graph, node_id, x, model.prep.to_float, k,
                              sample_ids=ids, progress=step, cancelled=cancelled)
    files = getattr(dataset, "files", None)
    files = list(files) if files is not None else [None] * len(dataset.x)
    samples = {hit.sample: dataset.x[hit.sample].detach().cpu().numpy().copy()
               for top in filters for hit in top.hits}
    report = LayerReport(node_id, name, filters, files, samples)
    if image is not None:
        report.image = _image_maps(model, module, node_id, image, image_file, dataset,
                                   progress, cancelled)
    return report


def check_image(task: str, input_shape: Any, image: Any = None) -> np.ndarray | None:
    """`image` as an array when occlusion and Grad-CAM can be computed for it: a
    classification model (`task`) whose Input (`input_shape`) takes images of the image's
    shape. Without `image`, checks the model only. Raises ValueError (one line) otherwise."""
    if task != "classification":
        raise ValueError("occlusion and Grad-CAM need a classification model")
    if len(input_shape) != 3:
        raise ValueError("occlusion and Grad-CAM need a network that takes images")
    if image is None:
        return None
    image = np.asarray(image)
    if tuple(image.shape) != tuple(input_shape):
        raise ValueError(f"the image is {tuple(image.shape)}, the network takes"
                         f" {tuple(input_shape)} images")
    return image


def _image_maps(model: _Model, module: Any, node_id: str, image: np.ndarray,
                image_file: str | None, dataset: _Dataset, progress: StageProgress | None,
                cancelled: Callable[[], bool] | None) -> dict[str, Any]:
    """The occlusion map and Grad-CAM of the predicted class for one raw image."""
    image = check_image(model.task, module.input_shape, image)
    probabilities = model.probabilities(image[None])[0]
    class_index = int(np.argmax(probabilities))
    names = list(model.prep.class_names) or list(dataset.class_names)
    label = names[class_index] if class_index < len(names) else str(class_index)
    if progress is not None:
        progress(OCCLUSION_STAGE, 0, 1)
    if cancelled is not None and cancelled():
        raise Cancelled("cancelled")
    occlusion = occlusion_map(module, model.prep.to_float(image[None]), class_index)
    if progress is not None:
        progress(GRAD_CAM_STAGE, 0, 1)
    if cancelled is not None and cancelled():
        raise Cancelled("cancelled")
    try:
        cam, cam_layer = model.grad_cam(image, class_index, node_id)
    except ValueError:  # no 2-D convolution: the occlusion map still says where
        cam, cam_layer = None, None
    if progress is not None:
        progress(GRAD_CAM_STAGE, 1, 1)
    return {"file": image_file, "class_index": class_index, "class": label,
            "probability": float(probabilities[class_index]), "occlusion": occlusion,
            "grad_cam": cam, "grad_cam_layer": cam_layer, "input": image}
