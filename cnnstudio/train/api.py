"""Training and prediction on a whole project: what the CLI and the GUI call.

`train_project` reads the project's settings, loads its data, builds its model, trains,
and writes the outcome back into the Project object (weights, run record, resume
attachment); the caller saves the file atomically. `predict` classifies image files the
way the training data was prepared.

Normalization for prediction: the mean/std of the training split that produced the
weights are stored in the weights' safetensors metadata (key `cnnstudio.normalization`,
JSON) and in the run record (`normalization`). `predict` reads them as
`Preprocessing.saved` does (see `model_io`), and only then recomputes them from the data.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cnnstudio.core.errors import FormatError, first_line, with_more
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.data import DataError, Dataset
from cnnstudio.nn import (
    BuildError,
    WeightsError,
    build_module,
    weights_to_bytes,
)
from cnnstudio.project import Project, fill_data, fill_training
from cnnstudio.project.origin import starting_point, weights_digest
from cnnstudio.project.weights import NORMALIZATION_KEY, RESUME_MEMBER, trained_class_names
from cnnstudio.train.callbacks import Callback
from cnnstudio.train.freezing import freeze_nodes
from cnnstudio.train.model_io import (
    DataRequest,
    Preprocessing,
    ProgressFn,
    TrainedModel,
    image_input,
)
from cnnstudio.train.record import FAILED, STOPPED, RunResult, now_iso, run_record
from cnnstudio.train.resume import ResumeError, ResumeState
from cnnstudio.train.steps import debug_traceback
from cnnstudio.train.trainer import Trainer
from cnnstudio.train.warm_start import load_fitting

if TYPE_CHECKING:
    from cnnstudio.train.distributed import DistContext


class PredictError(ValueError):
    """Prediction is impossible for this project (no weights, not a classifier…); one line."""


def load_project_data(project: Project, progress: ProgressFn | None = None) -> Dataset:
    """The project's dataset, as training reads it (decoded into the disk cache the first
    time). Raises DataError, GraphError or FormatError with a one-line message."""
    return DataRequest.of(project).load(progress)


def _load(project: Project, seed: int, progress: ProgressFn | None) -> tuple[Dataset, Any]:
    """The project's dataset and model, checked against each other; raises DataError,
    BuildError or FormatError with a one-line message."""
    dataset = load_project_data(project, progress)
    inference = infer_shapes(project.graph, task=project.task, num_classes=dataset.num_classes)
    if inference.errors:
        raise BuildError(with_more(inference.errors), inference.errors)
    torch.manual_seed(seed)  # the initial weights follow the seed too
    module = build_module(project.graph)
    freeze_nodes(module, project.graph)  # nodes marked "trainable": false
    return dataset, module


def _next_run_id(runs: list[dict[str, Any]]) -> str:
    numbers = [int(m.group(1)) for r in runs if isinstance(r, dict)
               and (m := re.fullmatch(r"run-(\d+)", str(r.get("id", ""))))]
    return f"run-{max(numbers, default=0) + 1}"


def _stored_resume(project: Project) -> ResumeState | None:
    last = project.runs[-1] if project.runs else None
    data = project.attachments.get(RESUME_MEMBER)
    if not isinstance(last, dict) or last.get("status") != STOPPED or data is None:
        return None
    try:
        return ResumeState.from_bytes(data)
    except ResumeError:
        return None  # unreadable: train afresh rather than fail


def train_project(project: Project, *, epochs: int | None = None, device: str | None = None,
                  callbacks: Iterable[Callback] = (), progress: ProgressFn | None = None,
                  resume: bool = True, dist: DistContext | None = None,
                  fresh: bool = False) -> RunResult:
    """Train `project`'s model on its data; return the RunResult (never raises for bad
    settings, data, graphs or training faults: those give status "failed").

    `epochs` and `device` override the settings. The project's weights are the starting
    point when they fit the graph. With `resume`, a run whose last record is "stopped"
    continues from the `resume.safetensors` attachment (replacing that record) when the
    settings and data are unchanged. With `fresh` the model starts from new weights
    (initialised with training.seed) whatever the project holds, and a stopped run's
    resume state is ignored: a new run starts. The run record says where its weights
    started in `init` ("fresh" or {"from_run": RUN_ID or None}, see `starting_point`;
    a resumed run keeps its record's) and, when it left weights, their `weights_sha256`.
    The Trainer's `init` attribute holds the same before `fit()` (for callbacks to show
    it in `on_fit_start`). Afterwards the project holds the checkpoint weights,
    the run record (in `runs`) and, only if this run was stopped, the resume attachment.
    Failures before training starts leave the project untouched. The file is not saved.

    With `dist` this process is one rank of a distributed run (see
    `cnnstudio.train.distributed`): every rank calls this with the same project, and only
    rank 0 should save it. The run record then also holds `distributed` (world size,
    backend, per-process and global batch size).
    """
    started = now_iso()
    notes: list[str] = []
    try:
        settings = fill_training(project.training)
        if epochs is not None:
            settings["epochs"] = fill_training({"epochs": epochs})["epochs"]
        if device is not None:
            settings["device"] = fill_training({"device": device})["device"]
        dataset, module = _load(project, settings["seed"], progress)
        data = fill_data(project.data)
    except Exception as err:  # bad settings, data or graph: one line, project untouched
        debug_traceback(err)
        return RunResult(FAILED, first_line(err), started=started, finished=now_iso())
    init = starting_point(project, fresh)
    if init != "fresh":
        try:
            # Imported weights load in part: after the class-count fix, all but the head.
            changed = load_fitting(module, project.weights, partial="imported" in init)
        except WeightsError:
            init = "fresh"
            notes.append("the saved weights do not fit the graph; training started from new"
                         " weights")
        else:
            if changed:  # e.g. a head replaced by the class-count fix: the rest is kept
                named = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more"
                                                  if len(changed) > 3 else "")
                notes.append(f"the saved weights do not fit the graph at {named} (changed"
                             " since): those layers started from new weights, the others"
                             " from the saved ones")
    state = _stored_resume(project) if resume and not fresh else None
    trainer_kwargs: dict[str, Any] = {
        "augmentation": data["augmentation"], "task": project.task, "callbacks": callbacks,
        "normalize": data["normalize"], "dist": dist}
    extra: dict[str, Any] = {"skipped_files": len(dataset.skipped)}
    if dist is not None:
        extra["distributed"] = dist.describe(settings["batch_size"])
    try:
        trainer = Trainer(module, dataset, settings, resume=state, **trainer_kwargs)
    except ResumeError as err:  # only with a resume state
        notes.append(f"{err}; a new run was started")
        state = None
        trainer = Trainer(module, dataset, settings, **trainer_kwargs)
    last = project.runs[-1] if project.runs else None
    if state is not None and isinstance(last, dict):
        # Older records have no init: a resumed one keeps "unknown" rather than guess.
        init = last.get("init", {"from_run": None})
    trainer.init, trainer.had_weights = init, project.weights is not None
    result = trainer.fit()
    result.skipped = [(f.path, f.reason) for f in dataset.skipped]
    if notes:
        result.message = "; ".join(filter(None, [result.message, *notes]))
    _write_back(project, module, result, resumed=state is not None, started=started,
                extra={"init": init, **extra,
                       # Kept so runs can be compared later (SPEC 2.1: the graph it trained).
                       "graph": project.graph.to_dict(), "data": dict(project.data)})
    return result


def _write_back(project: Project, module: torch.nn.Module, result: RunResult, *,
                resumed: bool, started: str, extra: dict[str, Any]) -> None:
    if result.state_dict is not None:
        module.load_state_dict(result.state_dict)
        meta = {NORMALIZATION_KEY: json.dumps(result.normalization)}
        project.weights = weights_to_bytes(module, meta)
        extra = {**extra, "weights_sha256": weights_digest(project.weights)}
    else:
        # Says "this run left no weights" (older records lack the key altogether).
        extra = {**extra, "weights_sha256": None}
    last = project.runs[-1] if project.runs else None
    if resumed and isinstance(last, dict):
        record = run_record(result, str(last.get("id")), started=last.get("started", started),
                            extra=extra)
        project.runs[-1] = record
    else:
        project.runs.append(run_record(result, _next_run_id(project.runs), started=started,
                                       extra=extra))
    if result.status == STOPPED and result.resume_state is not None:
        project.attachments[RESUME_MEMBER] = result.resume_state.to_bytes()
    else:
        project.attachments.pop(RESUME_MEMBER, None)


# ---- prediction ------------------------------------------------------------------------


def _preprocessing(project: Project) -> Preprocessing:
    """How the run that made the weights prepared its inputs, else how the data would."""
    prep = Preprocessing.saved(project)
    if prep is None or not prep.class_names:
        try:
            dataset = load_project_data(project)
        except DataError as err:
            raise PredictError(f"cannot tell how to prepare images: {err}") from None
        prep = prep or Preprocessing(dataset.mean, dataset.std, fill_data(project.data)["normalize"])
        names = trained_class_names(project.runs) or list(dataset.class_names)
        prep = dataclasses.replace(prep, class_names=names)
    return prep


def predict(project: Project, images: Sequence[str | Path], top: int = 5) -> list[dict[str, Any]]:
    """Classify image files with the project's trained weights.

    Each image is converted to the Input's channels and size as training data is, then
    normalized with the training mean/std. Returns, per image in order,
    `{"image": path, "top": [{"class": name, "probability": p}, ...]}` with the `top`
    most probable classes (softmax of the logits; a final Softmax node gives the same
    values), or `{"image": path, "top": [], "error": reason}` for an unreadable file.
    Raises PredictError when the project has no weights, is not a classifier, or its
    weights or graph are unusable.
    """
    from cnnstudio.data.errors import SkipFile
    from cnnstudio.data.sources.images import decode_image

    if project.task != "classification":
        raise PredictError("predict gives classes; this project does segmentation")
    node = project.graph.input_node()
    shape = list(node.resolved_params()["shape"]) if node is not None else None
    if shape is not None and len(shape) != 3:
        raise PredictError(f"predict classifies image files, for networks whose Input is"
                           f" [channels, height, width]; this network's Input is {shape}")
    if project.weights is None:
        raise PredictError("the project has no trained weights; train it first")
    model = TrainedModel(project.graph.copy(), project.weights, Preprocessing([0.0], [1.0]))
    try:
        mode, size = image_input(project.graph, "prediction")
        model.module()
    except (BuildError, WeightsError, ValueError, DataError, FormatError) as err:
        raise PredictError(str(err)) from None
    model.prep = _preprocessing(project)
    names = model.prep.class_names
    out: list[dict[str, Any]] = []
    for path in images:
        try:
            array = decode_image(Path(path), mode, size)
        except (SkipFile, OSError) as err:
            out.append({"image": str(path), "top": [], "error": str(err) or "unreadable"})
            continue
        probs = torch.from_numpy(model.probabilities(array[None])[0])
        values, indices = probs.topk(min(top, len(probs)))
        out.append({"image": str(path), "top": [
            {"class": names[i] if i < len(names) else str(i), "probability": float(p)}
            for p, i in zip(values.tolist(), indices.tolist(), strict=True)]})
    return out
