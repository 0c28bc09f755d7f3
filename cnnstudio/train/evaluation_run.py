"""Evaluate a project's trained model on a test set: choose the samples, run the model,
compute the metrics (`cnnstudio.train.evaluation`).

The samples: the project's data's `test` split by default (its `val` split, said in
`Evaluation.note`, when there is no test split), `split="val"` the validation split, or
`data=PATH` all samples of another folder with the same classes (for segmentation, PATH
holds `images/` and `masks/`). Raises EvaluationError (one line) for everything a user
can fix; NotTrainedError when the project has no trained weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnstudio.train.evaluation import (
    ClassificationResult,
    SegmentationResult,
    classification_metrics,
    segmentation_metrics,
)
from cnnstudio.train.model_io import DataRequest, Preprocessing, TrainedModel

ProgressFn = Callable[[str, int, int], None]
WORST_SHOWN = 6


class EvaluationError(ValueError):
    """Why the evaluation cannot run, in one line."""


class NotTrainedError(EvaluationError):
    """The project has no trained weights."""


class ModelRunError(EvaluationError):
    """The model cannot run on the data, or its outputs do not fit it."""


@dataclass
class Evaluation:
    task: str
    samples_from: str                    # e.g. "the test split of /data/roads"
    result: ClassificationResult | SegmentationResult
    class_names: list[str]
    note: str = ""                       # e.g. the fallback to the val split
    # For the report's pictures: classification keeps y (N,) and probabilities (N, K);
    # segmentation the worst images (input, true mask, predicted mask, their indices).
    y: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    worst: list[dict[str, Any]] = field(default_factory=list)
    files: list[str | None] = field(default_factory=list)  # of the evaluated samples

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json()


def _request(project: Any, data: str | None) -> DataRequest:
    try:
        request = DataRequest.of(project)
    except Exception as err:  # FormatError / GraphError: both one line
        raise EvaluationError(f"cannot read the project's data settings: {err}") from None
    if data is None:
        return request
    path = Path(data).expanduser().resolve()
    if not path.is_dir():
        raise EvaluationError(f"--data {data}: not a folder")
    if project.task == "segmentation":
        source = {"kind": "segmentation_folder", "images": str(path / "images"),
                  "masks": str(path / "masks")}
    else:
        source = {"kind": "folder", "path": str(path)}
    return replace(request, source=source)


def _model(project: Any, dataset: Any, normalize: bool) -> TrainedModel:
    if project.weights is None:
        raise NotTrainedError("the project has no trained weights; train it first"
                              " (cnnstudio train PROJECT)")
    model = TrainedModel.saved(project)
    if model is None:  # weights whose run recorded no preprocessing: the data's
        prep = Preprocessing(list(dataset.mean), list(dataset.std), normalize,
                             list(dataset.class_names))
        model = TrainedModel(project.graph.copy(), project.weights, prep, project.task,
                             "the saved weights")
    return model


def _outputs(model: TrainedModel, x: Any, batch_size: int = 64,
             progress: ProgressFn | None = None) -> np.ndarray:
    """The model's probabilities over axis 1: (N, K) or (N, K, H, W); softmax of the logits
    (taken before a final Softmax/Sigmoid node), a sigmoid for a single output channel."""
    import torch

    from cnnstudio.nn.internals import _logits

    module = model.module()
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    out = []
    with torch.no_grad(), _logits(module):
        for start in range(0, len(x), batch_size):
            logits = module(model.prep.to_float(x[start:start + batch_size]).to(device))
            logits = logits.float()
            if logits.shape[1] == 1:
                probs = torch.cat([1 - torch.sigmoid(logits), torch.sigmoid(logits)], dim=1)
            else:
                probs = torch.softmax(logits, dim=1)
            out.append(probs.cpu().numpy())
            if progress:
                progress("evaluating", min(start + batch_size, len(x)), len(x))
    return np.concatenate(out)


def evaluate_project(project: Any, *, data: str | None = None, split: str | None = None,
                     progress: ProgressFn | None = None) -> Evaluation:
    """Evaluate `project`'s saved model (see the module's docstring). `split`: "test"
    (default) or "val"; ignored with `data` (all its samples). Raises NotTrainedError,
    EvaluationError (one line)."""
    from cnnstudio.data import DataError
    from cnnstudio.nn import BuildError, WeightsError
    from cnnstudio.project import fill_data

    if split not in (None, "test", "val"):
        raise EvaluationError(f"unknown split {split!r}: test or val")
    if project.weights is None:
        _model(project, None, True)
    request = _request(project, data)
    try:
        dataset = request.load(progress)
    except DataError as err:
        raise EvaluationError(f"cannot load the data: {err}") from None
    model = _model(project, dataset, bool(fill_data(project.data)["normalize"]))
    note = ""
    if data is not None:
        index = np.arange(len(dataset.x))
        samples_from = f"all samples of {Path(data).expanduser().resolve()}"
        expected = model.prep.class_names or _project_classes(project, progress)
        if project.task == "classification" and list(dataset.class_names) != list(expected):
            raise EvaluationError(f"--data {data}: its classes ({', '.join(dataset.class_names)})"
                                  f" are not the model's ({', '.join(expected)})")
    else:
        chosen = split or "test"
        index = _split(dataset, chosen)
        if len(index) == 0 and split is None:
            chosen, index = "val", _split(dataset, "val")
            note = "the data has no test split: evaluated the val split"
        if len(index) == 0:
            raise EvaluationError(f"the {chosen} split is empty" + (
                "; give another folder with --data" if chosen == "test" else ""))
        samples_from = f"the {chosen} split"
    x, y = dataset.x[index], dataset.y[index].numpy()
    files = [dataset.files[i] for i in index] if dataset.files else [None] * len(index)
    try:
        probs = _outputs(model, x, progress=progress)
    except (BuildError, WeightsError, RuntimeError) as err:
        raise ModelRunError(f"the model cannot run on this data: {str(err).splitlines()[0]}"
                              ) from None
    if not np.isfinite(probs).all():  # NaN weights: numbers that look real would mislead
        raise ModelRunError("the model's outputs are not finite (NaN or infinity): its"
                            " weights are broken; train it again")
    names = list(model.prep.class_names or dataset.class_names)
    if project.task == "classification":
        if probs.ndim != 2 or probs.shape[1] != len(dataset.class_names):
            raise ModelRunError(f"the model gives {probs.shape[1:]} outputs for"
                                  f" {len(dataset.class_names)} classes")
        result = classification_metrics(y, probs, names)
        return Evaluation("classification", samples_from, result, names, note, y=y,
                          probabilities=probs, files=files)
    if probs.ndim != 4 or probs.shape[2:] != y.shape[1:]:
        raise ModelRunError(f"the model's output {probs.shape[1:]} does not match the"
                              f" masks {y.shape[1:]}")
    foreground = 1.0 - probs[:, 0]
    predicted = np.argmax(probs, axis=1) > 0
    seg = segmentation_metrics(y, foreground, predicted, files)
    worst = [{"index": i, "file": files[i], "image": np.asarray(x[i]), "truth": y[i] > 0,
              "predicted": predicted[i], "iou": seg.images[i]["iou"]}
             for i in seg.worst(WORST_SHOWN)]
    return Evaluation("segmentation", samples_from, seg, names, note, worst=worst,
                      files=files)


def _split(dataset: Any, name: str) -> np.ndarray:
    found = dataset.splits.get(name)
    return np.zeros(0, np.int64) if found is None else np.asarray(found, np.int64)


def _project_classes(project: Any, progress: ProgressFn | None) -> list[str]:
    """The class names of the project's own data (when the weights do not record them)."""
    from cnnstudio.data import DataError

    try:
        return list(DataRequest.of(project).load(progress).class_names)
    except DataError as err:
        raise EvaluationError(f"cannot load the project's data to compare classes: {err}"
                              ) from None
