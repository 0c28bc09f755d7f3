"""project.json, format version 1 (docs/PROJECT_FORMAT.md): document ⇄ `Project`, with migrations.

`project_from_dict` checks a parsed document and raises `FormatError` with the JSON path
at fault; `project_to_dict` writes it back in a stable key order, keeping every unknown
key the document had at the levels we own (top level, `data`, `training`, graph nodes).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from cnnstudio.core.data_sources import TASKS
from cnnstudio.core.errors import FormatError, show_value
from cnnstudio.core.graph import GRAPH_KEYS, Graph
from cnnstudio.project.model import Project
from cnnstudio.project.settings import canonical_data, canonical_training

FORMAT = "cnnstudio.project"
CURRENT_VERSION = 1
TOP_KEYS = ("format", "version", "name", "task", "graph", "data", "training", "runs")

# MIGRATIONS[n] turns a version-n document into a version-(n+1) one. It gets a private
# copy it may change, and returns the new document (its `version` is set by the caller).
# It should raise FormatError for documents it cannot read.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class NewerVersionError(FormatError):
    """The document was written by a newer CNN Studio; its str is the whole sentence."""

    def __init__(self, version: int) -> None:
        super().__init__(
            "version",
            f"this project was saved by a newer CNN Studio (format version {version});"
            f" this version reads up to {CURRENT_VERSION}",
        )
        self.version = version

    def __str__(self) -> str:
        return self.message  # the path would only add noise in front of a full sentence


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring a document to CURRENT_VERSION; return it (a copy if it was migrated).

    Raises FormatError for a bad `version`, NewerVersionError for a newer one.
    """
    version = doc.get("version")
    if "version" not in doc:
        raise FormatError("version", "missing")
    if not isinstance(version, int) or isinstance(version, bool):
        raise FormatError("version", f"must be an integer, got {show_value(version)}")
    if version > CURRENT_VERSION:
        raise NewerVersionError(version)
    while version < CURRENT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            oldest = min(MIGRATIONS, default=CURRENT_VERSION)
            raise FormatError("version", f"format version {version} is unknown; this version "
                                         f"reads format versions {oldest} to {CURRENT_VERSION}")
        try:
            doc = step(copy.deepcopy(doc))
        except FormatError:
            raise
        except Exception as err:  # a migration must not crash the program on odd input
            raise FormatError("", f"cannot update this project from format version {version}: "
                                  f"{type(err).__name__}: {err}") from None
        if not isinstance(doc, dict):
            raise FormatError("", f"migration from format version {version} gave no document")
        version += 1
        doc["version"] = version
    return doc


def project_from_dict(doc: Any) -> Project:
    """Build a Project from a parsed project.json document (migrated if older).

    `data` and `training` are validated but stored as given. Returns a Project with no
    weights, attachments or path. Raises FormatError (path = the JSON path at fault) or
    its subclass NewerVersionError.
    """
    if not isinstance(doc, dict):
        raise FormatError("", "project.json must hold a JSON object")
    if "format" not in doc:
        raise FormatError("format", f"missing; not a CNN Studio project (expected {FORMAT!r})")
    if doc["format"] != FORMAT:
        raise FormatError("format", f"expected {show_value(FORMAT)},"
                                    f" got {show_value(doc['format'])} (not a CNN Studio project)")
    doc = migrate(doc)

    name = doc.get("name", "Untitled")
    if not isinstance(name, str):
        raise FormatError("name", f"must be a string, got {show_value(name)}")
    task = doc.get("task", "classification")
    if task not in TASKS:
        raise FormatError("task", f"must be one of {', '.join(TASKS)}; got {show_value(task)}")
    if "graph" not in doc:
        raise FormatError("graph", "missing; a project needs a graph with a 'nodes' list")
    try:
        graph = Graph.from_dict(doc["graph"])
    except FormatError as err:
        raise FormatError(f"graph.{err.path}" if err.path else "graph", err.message) from None

    # Validated; kept in the file's own form (no defaults added), names spelled canonically.
    data = canonical_data(doc.get("data", {}))
    training = canonical_training(doc.get("training", {}))
    runs = doc.get("runs", [])
    if not isinstance(runs, list):
        raise FormatError("runs", f"must be a list, got {show_value(runs)}")
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            raise FormatError(f"runs[{i}]", f"must be an object, got {show_value(run)}")

    # Graph keeps the unknown keys of nodes only; those of the graph object live here.
    graph_extra = {k: v for k, v in doc["graph"].items() if k not in GRAPH_KEYS}
    extra = {k: v for k, v in doc.items() if k not in TOP_KEYS}
    return Project(name=name, task=task, graph=graph, data=copy.deepcopy(data),
                   training=copy.deepcopy(training), runs=copy.deepcopy(runs),
                   extra=copy.deepcopy(extra), graph_extra=copy.deepcopy(graph_extra))


def project_to_dict(project: Project) -> dict[str, Any]:
    """The project.json document of `project` (a new dict; JSON types only if the project
    holds only JSON types). Keys: format, version, name, task, graph, data, training, runs,
    then the unknown top-level keys."""
    graph = project.graph.to_dict()
    for key, value in project.graph_extra.items():
        graph.setdefault(key, copy.deepcopy(value))
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": CURRENT_VERSION,
        "name": project.name,
        "task": project.task,
        "graph": graph,
        "data": copy.deepcopy(project.data),
        "training": copy.deepcopy(project.training),
        "runs": copy.deepcopy(project.runs),
    }
    for key, value in project.extra.items():
        if key not in doc:  # an extra named like a known key must not override it
            doc[key] = copy.deepcopy(value)
    return doc
