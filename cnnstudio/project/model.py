"""A project in memory: the graph, the data and training settings, run history, weights."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnstudio.core.graph import Graph
from cnnstudio.project.settings import fill_data, fill_training


# eq=False: Graph has no value equality, so a generated __eq__ would compare graphs by
# identity and mislead; compare `project_to_dict(a) == project_to_dict(b)` instead.
@dataclass(eq=False)
class Project:
    """Everything one project file holds.

    `data` and `training` are kept exactly as the file gave them (unknown keys included),
    so saving never adds defaults the user did not write; read them through
    `data_settings()` / `training_settings()`, which fill the defaults.
    """

    name: str = "Untitled"
    task: str = "classification"  # one of core.data_sources.TASKS
    graph: Graph = field(default_factory=Graph)
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)  # run history, oldest first
    extra: dict[str, Any] = field(default_factory=dict)  # unknown top-level keys, kept on save
    graph_extra: dict[str, Any] = field(default_factory=dict)  # unknown keys of `graph`, kept
    # Raw bytes of weights.safetensors: the model's state_dict, keys `<node id>.<param>`.
    weights: bytes | None = None
    # Other archive members we own, by member name (e.g. "resume.safetensors"); never pickle.
    attachments: dict[str, bytes] = field(default_factory=dict)
    path: Path | None = None  # where it was read from; write_project does not change it

    def copy(self) -> Project:
        """A copy sharing nothing mutable with this one (weights and attachments are bytes,
        shared): what a run trains on, what autosave writes on its worker thread."""
        return Project(name=self.name, task=self.task, graph=self.graph.copy(),
                       data=copy.deepcopy(self.data), training=copy.deepcopy(self.training),
                       runs=copy.deepcopy(self.runs), extra=copy.deepcopy(self.extra),
                       graph_extra=copy.deepcopy(self.graph_extra), weights=self.weights,
                       attachments=dict(self.attachments), path=self.path)

    def data_settings(self) -> dict[str, Any]:
        """The `data` section with every default filled; raises FormatError if invalid."""
        return fill_data(self.data)

    def training_settings(self) -> dict[str, Any]:
        """The `training` section with every default filled; raises FormatError if invalid."""
        return fill_training(self.training)

    def resolve_path(self, value: str | os.PathLike[str]) -> Path:
        """A data path from the settings as an absolute-or-cwd path: `~` is expanded and a
        relative path is taken relative to the project file's folder (docs/PROJECT_FORMAT.md)."""
        path = Path(value).expanduser()
        if path.is_absolute() or self.path is None:
            return path
        return Path(self.path).parent / path
