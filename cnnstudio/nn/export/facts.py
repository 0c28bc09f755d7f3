"""What every export format needs to know about a project, gathered once.

`gather(project)` checks the graph, builds the module in eval mode with the trained
weights (or, for an untrained project, seeded random weights that leave torch's global
random state alone) and collects the class names, normalization and run history that
the file formats write next to the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from cnnstudio.core.errors import FormatError, with_more
from cnnstudio.core.graph import Graph
from cnnstudio.core.layer_type import Shape
from cnnstudio.core.shapes import Inference, infer_shapes
from cnnstudio.nn.builder import BuildError, GraphModule, build_module
from cnnstudio.nn.weights import WeightsError, load_weights, weights_metadata
from cnnstudio.project import Project, fill_data, fill_training
from cnnstudio.project.settings import training_seed
from cnnstudio.project.weights import trained_class_names, trained_normalization

COMPLETED = "completed"


class ExportError(Exception):
    """An export failed; `str()` is one line for the user. Base of the kinds below."""


class ProjectProblem(ExportError):
    """The project cannot be exported as asked (graph errors, weights that don't fit,
    a layer the format cannot express): the CLI's exit status 1."""


class DestinationError(ExportError):
    """The file cannot be written where asked: the CLI's exit status 2."""


class MissingDependency(ExportError):
    """An optional package the format needs is not installed: the CLI's exit status 2."""


@dataclass
class ExportFacts:
    """A project ready to export: its module (eval mode, CPU) and what describes it."""

    name: str
    task: str
    graph: Graph
    inference: Inference
    module: GraphModule
    trained: bool
    seed: int
    class_names: list[str] = field(default_factory=list)
    # {"normalize": bool, "mean": [...], "std": [...]} of the training split; None if unknown.
    normalization: dict[str, Any] | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    weights_meta: dict[str, str] = field(default_factory=dict)

    @property
    def input_shape(self) -> Shape:
        return self.module.input_shape

    @property
    def output_shape(self) -> Shape:
        shape = self.inference.nodes[self.module.output_id].shape
        assert shape is not None  # gather() refused graphs with errors
        return shape

    @property
    def channels(self) -> int:
        return self.input_shape[0]

    def mean_std(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std the inputs are normalized with (0 and 1 when training
        did not normalize, or when it is unknown because the project is untrained)."""
        norm = self.normalization
        if norm is None or not norm.get("normalize", True):
            return [0.0] * self.channels, [1.0] * self.channels
        return list(norm["mean"]), list(norm["std"])

    def latest_result(self) -> dict[str, Any] | None:
        """The latest completed run, else the latest run with metrics, else None."""
        runs = [r for r in self.runs if isinstance(r, dict)]
        for record in reversed(runs):
            if record.get("status") == COMPLETED:
                return record
        for record in reversed(runs):
            if record.get("best"):
                return record
        return None


def _settings(fill: Any, raw: Any) -> dict[str, Any]:
    """Settings with defaults filled; as written when invalid (an export needs no data)."""
    try:
        return fill(raw)
    except FormatError:
        return dict(raw) if isinstance(raw, dict) else {}


def gather(project: Project) -> ExportFacts:
    """Everything an export needs from `project`.

    Raises ProjectProblem (one line: the first problem) when the graph has errors, when
    torch refuses it, or when the project's weights do not fit the graph.
    """
    graph = project.graph.copy()
    inference = infer_shapes(graph, task=project.task)
    if inference.errors:
        raise ProjectProblem(with_more(inference.errors))
    training = _settings(fill_training, project.training)
    seed = training_seed(project.training)
    try:
        # An untrained model starts from the same weights training would start from, and
        # the caller's random state (the GUI's, a test's) is left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = build_module(graph)
    except BuildError as err:
        raise ProjectProblem(str(err)) from None
    meta: dict[str, str] = {}
    if project.weights is not None:
        try:
            meta = weights_metadata(project.weights)
            load_weights(module, project.weights)
        except WeightsError as err:
            raise ProjectProblem(f"{err}; train the project again to export it") from None
    module.eval()
    runs = [r for r in project.runs if isinstance(r, dict)]
    return ExportFacts(
        name=project.name or "Untitled", task=project.task, graph=graph, inference=inference,
        module=module, trained=project.weights is not None, seed=seed,
        class_names=trained_class_names(runs),
        normalization=trained_normalization(project.weights, runs, module.input_shape[0]),
        runs=runs, data=_settings(fill_data, project.data), training=training,
        weights_meta=meta,
    )
