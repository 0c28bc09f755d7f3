"""The export formats, and `export_project`: check the destination, build, write atomically.

The destination is checked before the model is built (an ONNX export takes seconds, and
a missing folder should not cost them), and every file is written with
`project.atomic.atomic_write`: a failed export never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cnnstudio import __version__
from cnnstudio.nn.export.card import model_card
from cnnstudio.nn.export.compiled import onnx_bytes, require_onnx, torchscript_bytes
from cnnstudio.nn.export.facts import (
    DestinationError,
    ExportError,
    ExportFacts,
    gather,
)
from cnnstudio.nn.export.source import python_source
from cnnstudio.nn.weights import weights_to_bytes
from cnnstudio.project import Project
from cnnstudio.project.atomic import atomic_write, destination_problem
from cnnstudio.project.weights import NORMALIZATION_KEY


def safetensors_bytes(facts: ExportFacts) -> bytes:
    """The weights (`<node id>.<param>` keys) with a self-describing header: class names,
    normalization (under the trainer's key, where `predict` looks), input shape, task, the
    graph JSON and the cnnstudio version. Metadata the trainer stored is kept."""
    meta = dict(facts.weights_meta)
    meta.update({
        "format": "pt",  # what Hugging Face loaders expect of torch safetensors
        "cnnstudio.version": __version__,
        "cnnstudio.name": facts.name,
        "cnnstudio.task": facts.task,
        "cnnstudio.trained": json.dumps(facts.trained),
        "cnnstudio.class_names": json.dumps(facts.class_names, ensure_ascii=False),
        "cnnstudio.input_shape": json.dumps(list(facts.input_shape)),
        "cnnstudio.graph": json.dumps(facts.graph.to_dict(), ensure_ascii=False),
    })
    if facts.normalization is not None:
        meta[NORMALIZATION_KEY] = json.dumps(facts.normalization)
    else:
        meta.pop(NORMALIZATION_KEY, None)
    if not facts.trained:
        meta["cnnstudio.seed"] = str(facts.seed)
    return weights_to_bytes(facts.module, meta)


def _text(build: Callable[[ExportFacts], str]) -> Callable[[ExportFacts], bytes]:
    return lambda facts: build(facts).encode("utf-8")


@dataclass(frozen=True)
class Format:
    """One export format: its name on the command line, its title, file suffixes and
    what an untrained project's export means for it."""

    name: str
    title: str
    suffixes: tuple[str, ...]
    build: Callable[[ExportFacts], bytes]
    untrained: str


_RANDOM = "the exported weights are the random initial ones (seed {seed})"
FORMATS: dict[str, Format] = {f.name: f for f in [
    Format("python", "Python source", (".py",), _text(python_source),
           "its header says so; weights exported with it are random (seed {seed})"),
    Format("torchscript", "TorchScript", (".pt", ".pth"), torchscript_bytes, _RANDOM),
    Format("onnx", "ONNX", (".onnx",), onnx_bytes, _RANDOM),
    Format("safetensors", "safetensors weights", (".safetensors",), safetensors_bytes, _RANDOM),
    Format("card", "Model card", (".md", ".markdown"), _text(model_card),
           "the card says so and has no results"),
]}


def format_for_path(path: str | os.PathLike[str]) -> str | None:
    """The format a file name's suffix stands for (`model.onnx` → "onnx"), or None."""
    suffix = Path(path).suffix.lower()
    return next((f.name for f in FORMATS.values() if suffix in f.suffixes), None)


def check_destination(path: str | os.PathLike[str]) -> Path:
    """`path` as a Path if a file can be created there; raises DestinationError (one line)
    when it is a folder or its folder does not exist or cannot be written."""
    problem = destination_problem(path)
    if problem is not None:
        raise DestinationError(f"cannot write {path}: {problem}")
    return Path(path)


def write_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically; raises DestinationError when the system refuses."""
    try:
        atomic_write(path, lambda f: f.write(data), backup=False)
    except OSError as err:
        raise DestinationError(f"cannot write {path}: {err.strerror or err}") from None


@dataclass
class ExportResult:
    """What `export_project` did: the file, the format, and warnings for the user."""

    path: Path
    format: str
    trained: bool
    size: int
    warnings: list[str] = field(default_factory=list)


class ExportCancelled(ExportError):
    """`export_project`'s `cancelled()` answered True: nothing was written."""


def export_project(project: Project, format_name: str, path: str | os.PathLike[str],
                   cancelled: Callable[[], bool] = lambda: False) -> ExportResult:
    """Export `project`'s model as `format_name` (a key of FORMATS) to the file `path`.

    Raises ExportError subclasses, each one line: DestinationError (the file cannot be
    written there), MissingDependency (ONNX without its extra), ProjectProblem (graph
    errors, weights that do not fit, a layer the format cannot express). An untrained
    project is exported with its seeded initial weights and a warning. `cancelled` (the
    window's Cancel) is asked before the model is built and before the file is written:
    True raises ExportCancelled.
    """
    fmt = FORMATS.get(format_name)
    if fmt is None:
        raise ExportError(f"unknown export format {format_name!r} (formats: "
                          f"{', '.join(FORMATS)})")
    target = check_destination(path)
    if project.path is not None and target.resolve() == Path(project.path).resolve():
        raise DestinationError(f"cannot write {target}: it is the project file itself;"
                               " choose another name")
    if fmt.name == "onnx":
        require_onnx()  # before the model is built: say what to install at once
    stop = ExportCancelled(f"the export to {target.name} was cancelled")
    if cancelled():
        raise stop
    facts = gather(project)
    data = fmt.build(facts)
    if cancelled():
        raise stop
    write_file(target, data)
    warnings = []
    if not facts.trained:
        warnings.append(f"{facts.name} is untrained: "
                        + fmt.untrained.format(seed=facts.seed))
    return ExportResult(target, fmt.name, facts.trained, len(data), warnings)
