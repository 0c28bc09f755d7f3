"""The work behind the "What the filters respond to" page, run on the Explain worker
thread: load the project's data (kept between jobs while the data request is the same),
find each filter's top-k samples, synthesise images for a page of filters, and make the
occlusion and Grad-CAM maps of one image.

Every function here runs off the GUI thread and returns plain NumPy results; torch is
imported inside them only (the window imports this module at start).
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnstudio.train.model_io import DataRequest, Preprocessing, TrainedModel

Report = Callable[[str, int, int], None]
Check = Callable[[], bool]
SPLITS = {"val": "validation", "train": "training", "all": "all"}
MEAN_SAMPLES = 512  # the samples' mean activation is estimated on at most this many
NOT_A_CLASSIFIER = ("Occlusion and Grad-CAM need an image classifier (one class per image);"
                    " this network is not one")


@contextlib.contextmanager
def worker_threads(training: bool = False) -> Iterator[None]:
    """Every core but one for this thread's torch work, as training uses (a second thread
    fighting the GUI thread and other processes for two cores made top-k 3× slower).
    torch's thread count is process-wide: while a `training` runs it is left as the run
    set it."""
    import torch

    from cnnstudio.train.device import default_cpu_threads

    if training:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(default_cpu_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


class DataCache:
    """The Dataset of the last request, kept while the request stays equal (loading even a
    disk-cached dataset takes a while; a page switching split or layer must not pay it)."""

    def __init__(self) -> None:
        self.request: DataRequest | None = None
        self.dataset: Any = None

    def get(self, request: DataRequest, report: Report | None = None) -> Any:
        """The Dataset for `request`. Raises DataError (one line) when it cannot load."""
        if self.dataset is None or self.request != request:
            self.dataset = None  # the old one goes before the new one loads (memory)
            self.dataset = request.load(report)
            self.request = request
        return self.dataset


def split_rows(dataset: Any, split: str) -> tuple[np.ndarray, str]:
    """The dataset indices of `split` ("val", "train" or "all") and the split really used:
    an empty split falls back to all the samples (said in the name, e.g. "all")."""
    n = len(dataset.x)
    if split in ("val", "train"):
        rows = dataset.splits.get(split)
        if rows is not None and len(rows):
            return np.asarray(rows, np.int64), split
    return np.arange(n, dtype=np.int64), "all"


def model_for(source: TrainedModel, dataset: Any) -> TrainedModel:
    """`source` as its inputs are prepared: trained weights keep the preprocessing their
    run used; an untrained network gets the dataset's statistics (as a run will). The
    built module is shared, not rebuilt."""
    if not source.untrained:
        return source
    prep = Preprocessing(list(dataset.mean), list(dataset.std), True, list(dataset.class_names))
    return dataclasses.replace(source, prep=prep)


def raw(sample: Any) -> np.ndarray:
    """A sample of the dataset (a torch tensor, maybe memory-mapped) as its own array."""
    return sample.numpy().copy() if hasattr(sample, "numpy") else np.array(sample)


def sample_label(dataset: Any, index: int) -> str:
    """The class name of sample `index` ("" for segmentation or unknown classes)."""
    y = dataset.y[index]
    if getattr(y, "ndim", 0) != 0:
        return ""
    c = int(y)
    names = dataset.class_names
    return str(names[c]) if 0 <= c < len(names) else str(c)


@dataclass
class TopK:
    """The top-k samples of every filter of `node` over a split, and what the page needs
    to draw them without the dataset: the raw samples the hits refer to, their classes."""

    node: str
    split: str  # the split used ("all" when the validation split was empty)
    k: int
    count: int  # samples looked at
    total: int  # samples in the dataset
    filters: list[Any]  # FilterTop per filter
    samples: dict[int, np.ndarray] = field(default_factory=dict)  # index → raw (C, …)
    labels: dict[int, str] = field(default_factory=dict)
    state: str = ""  # whose weights (e.g. "untrained, …")


def top_k(source: TrainedModel, cache: DataCache, request: DataRequest, node: str, split: str,
          k: int, report: Report, cancelled: Check) -> TopK:
    """Each filter's top-k samples of `split`. Raises ValueError/DataError (one line) or
    Cancelled."""
    from cnnstudio.nn.explain.responses import Cancelled, top_activations

    dataset = cache.get(request, lambda stage, done, total: report(
        f"loading the data: {stage}", done, total))
    if cancelled():
        raise Cancelled("cancelled")
    rows, used = split_rows(dataset, split)
    model = model_for(source, dataset)
    report("building the model", 0, 0)
    module = model.module()
    x = dataset.x[rows] if len(rows) < len(dataset.x) else dataset.x
    name = SPLITS[used]
    tops = top_activations(module, model.graph, node, x, model.prep.to_float, k,
                           sample_ids=rows.tolist(), cancelled=cancelled,
                           progress=lambda done, total: report(f"{name} samples", done, total))
    used_ids = sorted({h.sample for f in tops for h in f.hits})
    return TopK(node, used, k, len(rows), len(dataset.x), tops,
                {i: raw(dataset.x[i]) for i in used_ids},
                {i: sample_label(dataset, i) for i in used_ids}, source.state)


def top_summary(top: TopK, asked_split: str) -> str:
    """What the page says about `top` (the split asked for: `asked_split`)."""
    fallback = " (the validation split is empty)" if top.split == "all" and \
        asked_split == "val" else ""
    hits = [h for f in top.filters for h in f.hits]
    if hits and not hits[0].position:
        how = (f"{top.node} has no channel maps: each unit's {top.k} strongest of"
               f" {top.count} {SPLITS[top.split]} samples{fallback}, whole (a unit"
               " sees all of its input)")
    else:
        how = (f"{top.node}: each filter's {top.k} strongest of {top.count}"
               f" {SPLITS[top.split]} samples{fallback}, ")
        how += ("cropped to the input region the strongest position sees"
                if any(h.box is not None for h in hits) else
                "whole (this layer has no exact receptive field)")
    return f"{how}. Weights: {top.state}."


@dataclass
class Synthesised:
    node: str
    filters: list[int]
    images: np.ndarray  # (F, C, …) the optimised images, 0…1
    reached: list[float]  # each filter's largest map value for its image
    start: list[float]
    means: list[float]  # each filter's mean activation over the split's samples


def filter_means(model: TrainedModel, dataset: Any, rows: np.ndarray, node: str,
                 filters: list[int], cancelled: Check, batch_size: int = 256) -> list[float]:
    """The mean over the samples `rows` (at most `MEAN_SAMPLES` of them, evenly spread) of
    each filter's largest map value (the number the top-k ranks by). Raises Cancelled."""
    from cnnstudio.nn.explain.responses import Cancelled
    from cnnstudio.nn.internals import node_activation

    module = model.module()
    if len(rows) > MEAN_SAMPLES:
        rows = rows[np.linspace(0, len(rows) - 1, MEAN_SAMPLES).astype(np.int64)]
    total = np.zeros(len(filters), np.float64)
    for start in range(0, len(rows), batch_size):
        if cancelled():
            raise Cancelled("cancelled")
        xb = model.prep.to_float(dataset.x[rows[start:start + batch_size]])
        out = node_activation(module, node, xb).numpy()
        out = out[:, filters].reshape(len(out), len(filters), -1)
        total += out.max(axis=2).sum(axis=0)
    return (total / max(len(rows), 1)).tolist()


def synthesise(source: TrainedModel, cache: DataCache, request: DataRequest, node: str,
               split: str, filters: list[int], report: Report, cancelled: Check) -> Synthesised:
    """Images made to excite `filters` of `node`, with the activations they reached and
    the split's mean activations to compare with. Raises ValueError or Cancelled."""
    from cnnstudio.nn.explain.synthesis import input_range, synthesize
    from cnnstudio.ui.torch_loading import prepare_torch

    report("preparing the optimiser", 0, 0)
    prepare_torch()  # the first optimiser step's ~800 imports, without GC stalls
    dataset = cache.get(request, lambda stage, done, total: report(
        f"loading the data: {stage}", done, total))
    model = model_for(source, dataset)
    rows, _ = split_rows(dataset, split)
    report("the samples' mean activations", 0, 0)
    means = filter_means(model, dataset, rows, node, filters, cancelled)
    # The data's own value range (float signals are not 0…1 pixels), from the training split.
    value_range = input_range(dataset.x, split_rows(dataset, "train")[0])
    made = synthesize(model.module(), node, filters, to_float=model.prep.to_float,
                      value_range=value_range, cancelled=cancelled,
                      progress=lambda done, total: report("optimising", done, total))
    return Synthesised(node, list(filters), np.asarray(made.images),
                       [float(v) for v in made.activations],
                       [float(v) for v in made.start_activations], means)


@dataclass
class ImageMaps:
    """Occlusion sensitivity and Grad-CAM of one image for its predicted class."""

    what: str  # "sample 12 (class 3)" or the file's name
    image: np.ndarray  # raw (C, H, W)
    class_index: int
    class_name: str
    probability: float
    occlusion: np.ndarray  # (H, W): drop of the class score, model units
    grad_cam: np.ndarray  # (H, W) 0…1
    grad_cam_layer: str


class OcclusionCache:
    """The last image's prediction and occlusion map: they depend on the model and the
    image only, so choosing another layer (which changes only Grad-CAM) reuses them.
    Used on the worker only; holds the model weakly."""

    def __init__(self) -> None:
        self._model: weakref.ref | None = None
        self.key: tuple[Any, ...] | None = None
        self.value: tuple[np.ndarray, np.ndarray] | None = None  # (probabilities, occlusion)

    def get(self, source: TrainedModel, key: tuple[Any, ...]
            ) -> tuple[np.ndarray, np.ndarray] | None:
        model = self._model() if self._model is not None else None
        return self.value if model is source and key == self.key else None

    def put(self, source: TrainedModel, key: tuple[Any, ...],
            value: tuple[np.ndarray, np.ndarray]) -> None:
        self._model, self.key, self.value = weakref.ref(source), key, value


OCCLUSION_BATCH = 8  # placements per forward pass: Cancel is heard between batches


def image_maps(source: TrainedModel, cache: DataCache, request: DataRequest, node: str | None,
               sample: int | None, path: str | None, report: Report,
               cancelled: Check | None = None,
               occlusions: OcclusionCache | None = None) -> ImageMaps:
    """The maps for dataset sample `sample` or the image file `path`; the prediction and
    occlusion map come from `occlusions` when they were made for the same model and
    image. Raises ValueError (one line: an unreadable file, a network that is not an
    image classifier) or Cancelled."""
    from cnnstudio.nn.explain.occlusion import occlusion_map
    from cnnstudio.nn.explain.responses import Cancelled
    from cnnstudio.train.model_io import read_image

    cancelled = cancelled or (lambda: False)
    if source.task != "classification":
        raise ValueError(NOT_A_CLASSIFIER)
    dataset = cache.get(request, lambda stage, done, total: report(
        f"loading the data: {stage}", done, total))
    model = model_for(source, dataset)
    if path is not None:
        from pathlib import Path

        image, what, index = read_image(model.graph, path), Path(path).name, None
    else:
        index = min(max(int(sample or 0), 0), len(dataset.x) - 1)
        image = raw(dataset.x[index])
        label = sample_label(dataset, index)
        what = f"sample {index}" + (f" (class {label})" if label else "")
    if image.ndim != 3:
        raise ValueError(NOT_A_CLASSIFIER)
    key = (request, path, None if path is not None else index)
    known = occlusions.get(source, key) if occlusions is not None else None
    if known is None:
        if cancelled():
            raise Cancelled("cancelled")
        report("predicting", 0, 0)
        probs = model.probabilities(image[None])[0]
        report("occlusion", 0, 0)
        occlusion = occlusion_map(model.module(), model.prep.to_float(image[None]),
                                  int(np.argmax(probs)), batch_size=OCCLUSION_BATCH,
                                  cancelled=cancelled)
        if occlusions is not None:
            occlusions.put(source, key, (probs, occlusion))
    else:
        probs, occlusion = known
    cls = int(np.argmax(probs))
    names = model.prep.class_names or list(dataset.class_names)
    name = str(names[cls]) if cls < len(names) else str(cls)
    if cancelled():
        raise Cancelled("cancelled")
    report("Grad-CAM", 0, 0)
    cam, layer = model.grad_cam(image, cls, node)
    return ImageMaps(what, image, cls, name, float(probs[cls]), np.asarray(occlusion),
                     np.asarray(cam), layer)
