"""Bring your own model: import ONNX files and PyTorch classes as projects.

`import_model` tells what the user gave — an `.onnx` file, or `FILE.py:CLASS` (a class in
their own code, which is run: they asked for it) — and hands it to that importer;
pickle-based files are refused before anything reads them. `imported_project` turns the
result into a normal, unsaved project: the graph, the weights as safetensors bytes in our
key layout, and `"imported": {"from", "kind"}` at the top level of the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from cnnstudio.core.import_spec import parse_input_shape as _parse_shape
from cnnstudio.core.import_spec import split_model_spec
from cnnstudio.core.pyclasses import module_classes_in_file
from cnnstudio.nn.importing.common import (
    PICKLE_SUFFIXES,
    ImportedModel,
    ModelImportError,
    starts_like_pickle,
)
from cnnstudio.project.model import Project

__all__ = ["ImportedModel", "ModelImportError", "import_model", "imported_project",
           "import_summary", "parse_input_shape", "IMPORTED_KEY"]

Progress = Callable[[str, int, int], None]  # (stage, done, total)
IMPORTED_KEY = "imported"  # the project file's top-level key: {"from": file, "kind": kind}

_REFUSAL = ("is a pickle-based PyTorch file ({kinds}), which CNN Studio does not read:"
            " loading one can run any code. Export the model to ONNX (torch.onnx.export)"
            " and import the .onnx file, or give its class and a safetensors state_dict"
            " (FILE.py:CLASS --weights FILE.safetensors)")
_KINDS = ".pt, .pth, .pt2, TorchScript, checkpoints"


def _refuse_pickle(path: Path) -> ModelImportError:
    return ModelImportError(f"{path.name} " + _REFUSAL.format(kinds=_KINDS))


def _looks_pickled(path: Path) -> bool:
    """True when the file starts like a pickle or a torch.save zip (read: 4 bytes)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return starts_like_pickle(head)


def _existing_file(path: Path, what: str) -> None:
    if not path.exists():
        raise ModelImportError(f"{path}: no such {what}")
    if not path.is_file():
        raise ModelImportError(f"{path} is a folder, not a {what}")


def parse_input_shape(text: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """A per-sample input shape from `"3,32,32"` or ints (None when not given); raises
    ModelImportError for anything but 1 to 4 positive integers."""
    try:
        return _parse_shape(text)
    except ValueError as err:
        raise ModelImportError(str(err)) from None


def _name_the_class(path: Path) -> ModelImportError:
    try:
        found = module_classes_in_file(path)
    except ValueError as err:
        return ModelImportError(str(err))
    if not found:
        return ModelImportError(f"{path.name} defines no class deriving from nn.Module;"
                                " give FILE.py:CLASS naming an nn.Module class")
    listing = ", ".join(found[:12]) + (", …" if len(found) > 12 else "")
    return ModelImportError(f"name the class to import: {path.name}:{found[-1]}"
                            f" (nn.Module classes in {path.name}: {listing})")


def import_model(model: str, *, input_shape: str | Sequence[int] | None = None,
                 weights: str | os.PathLike[str] | None = None,
                 progress: Progress | None = None) -> ImportedModel:
    """Import `model`: an `.onnx` file (its weights are inside it), or `FILE.py:CLASS`, an
    nn.Module class in the user's own file that is instantiated with no arguments and
    traced (this runs that file's code), with `weights` a safetensors state_dict.

    `input_shape` (per sample, channels first) is needed where the model does not say it.
    `progress(stage, done, total)` is called as the importer goes. Raises ModelImportError
    (one line) for anything that cannot be imported: a missing file, a pickle-based file
    (`.pt`, `.pth`, `.pt2`, TorchScript: never read), an unknown kind of file, a bad input
    shape, an operator or module without a mapping (all of them named, with counts)."""
    model = str(model).strip()
    if not model:
        raise ModelImportError("no model given: an .onnx file or FILE.py:CLASS")
    shape = parse_input_shape(input_shape)
    weights_path = Path(weights) if weights not in (None, "") else None
    path, class_name = split_model_spec(model)
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise _refuse_pickle(path)
    if class_name is not None or suffix == ".py":
        _existing_file(path, "Python file")
        if not class_name:
            raise _name_the_class(path)
        if not class_name.isidentifier():
            raise ModelImportError(f"{class_name!r} is not a Python class name"
                                   f" (give {path.name}:CLASS)")
        if weights_path is not None:
            if weights_path.suffix.lower() in PICKLE_SUFFIXES:
                raise _refuse_pickle(weights_path)
            _existing_file(weights_path, "weights file")
            if _looks_pickled(weights_path):
                raise _refuse_pickle(weights_path)
        from cnnstudio.nn.importing.torch_import import import_pytorch

        with _naming(f"{path.name}:{class_name}"):
            return import_pytorch(f"{path}:{class_name}", input_shape=shape,
                                  weights=weights_path, progress=progress)
    if suffix == ".safetensors":
        raise ModelImportError(f"{path.name} holds weights only, not a network: give the"
                               " class too (FILE.py:CLASS, with this file as its weights)")
    _existing_file(path, "model file")
    # Before any parse, whatever the name says: a torch.save file renamed .onnx is a
    # pickle (refused as one), not a damaged ONNX file. No ONNX file starts like these.
    if _looks_pickled(path):
        raise _refuse_pickle(path)
    if suffix != ".onnx":
        raise ModelImportError(f"{path.name}: not a model CNN Studio imports; give an ONNX"
                               " file (.onnx) or a PyTorch class (FILE.py:CLASS)")
    if weights_path is not None:
        raise ModelImportError(f"{path.name} carries its own weights; a separate weights"
                               " file goes with a PyTorch class (FILE.py:CLASS) only")
    from cnnstudio.nn.importing.onnx_import import import_onnx

    with _naming(path.name):
        return import_onnx(path, input_shape=shape, progress=progress)


@contextlib.contextmanager
def _naming(source: str) -> Iterator[None]:
    """An importer's error becomes `cannot import SOURCE: MESSAGE` (one line): the one
    place the prefix is added, for both importers and every caller (CLI, window)."""
    try:
        yield
    except ModelImportError as err:
        line = " ".join(str(err).split()) or "the model cannot be imported"
        raise ModelImportError(f"cannot import {source}: {line}") from None


def _default_name(model: ImportedModel) -> str:
    source = model.source
    if model.kind == "pytorch" and ":" in source:
        source = source.rpartition(":")[0]
    return Path(source).stem.strip() or "Imported model"


def imported_project(model: ImportedModel, name: str | None = None) -> Project:
    """A new project holding `model`: its graph, its weights (safetensors bytes, keys
    `<node id>.<torch name>`), task classification, default data settings (the user
    chooses the data), no runs, and `"imported": {"from": source, "kind": kind}` kept at
    the top level of the file. Named `name`, else after the model file's stem; unsaved
    (no path). Raises ModelImportError when the weights cannot be stored (a dtype
    safetensors does not know)."""
    import numpy as np
    from safetensors.numpy import save as save_arrays

    # np.require, not np.ascontiguousarray: that makes a 0-d array (num_batches_tracked) 1-d.
    arrays = {key: np.require(value, requirements="C") for key, value in model.weights.items()}
    try:
        weights = save_arrays(arrays) if arrays else None
    except (ValueError, TypeError) as err:
        raise ModelImportError(f"the weights cannot be stored: {err}") from None
    title = (name or "").strip() or _default_name(model)
    return Project(name=title, task="classification", graph=model.graph, weights=weights,
                   extra={IMPORTED_KEY: {"from": model.source, "kind": model.kind}})


def import_summary(model: ImportedModel) -> str:
    """`12 layers, 61,706 parameters` (the Input not counted; parameters as `cnnstudio
    summary` counts them)."""
    from cnnstudio.core.shapes import infer_shapes

    layers = sum(1 for node in model.graph if node.type != "Input")
    params = infer_shapes(model.graph).total_params
    return f"{layers} layer{'s' * (layers != 1)}, {params:,} parameters"
