"""Run the user's own model code, by their request, and keep what it does contained.

Importing `FILE.py:CLASS` executes FILE.py and the class's constructor and `forward`: the
user asked for that, as they would when running their own script. What we contain is the
consequences for CNN Studio: the file's folder is on `sys.path` only while we work, the
modules it imported from that folder are forgotten afterwards, its prints go to stderr
(never into `--json` output), and any exception — `SystemExit` included — becomes one
line naming its type and message, never a traceback.

Weights come only from safetensors files; pickle-based files are refused unread.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from cnnstudio.core.errors import first_line
from cnnstudio.nn.importing.common import (
    MAX_MODEL_BYTES,
    MAX_TENSOR_BYTES,
    PICKLE_SUFFIXES,
    ModelImportError,
    starts_like_pickle,
)

_counter = itertools.count()


def pickle_refusal(name: str) -> ModelImportError:
    """The one refusal for .pt/.pth/.pt2/TorchScript/pickle files."""
    return ModelImportError(
        f"{name} is a pickle-based file, which CNN Studio never reads: export the model to"
        " ONNX, or give its class and a safetensors file")


def parse_spec(spec: str) -> tuple[Path, str]:
    """`FILE.py:CLASS` → (path, class name); raises ModelImportError for anything else."""
    text = str(spec)
    path_text, sep, class_name = text.rpartition(":")
    if Path(text).suffix.lower() in PICKLE_SUFFIXES:
        raise pickle_refusal(Path(text).name)
    if not sep or not path_text or not class_name.isidentifier():
        raise ModelImportError(f"{text!r}: give a PyTorch model as FILE.py:CLASS (the class"
                               " of an nn.Module in your own file)")
    path = Path(path_text)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise pickle_refusal(path.name)
    if path.suffix.lower() != ".py":
        raise ModelImportError(f"{path.name} is not a Python file (FILE.py:CLASS)")
    if not path.is_file():
        raise ModelImportError(f"{path.name}: no such file")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ModelImportError(f"{path.name} is larger than 2 GiB")
    return path, class_name


@contextlib.contextmanager
def running(what: str) -> Iterator[None]:
    """Turn whatever the user's code raises while doing `what` into one line."""
    try:
        yield
    except ModelImportError:
        raise
    except SystemExit as err:
        raise ModelImportError(f"{what} called exit({'' if err.code is None else err.code})"
                               ) from None
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # the user's code may raise anything at all
        message = first_line(err)
        raise ModelImportError(f"{what} raised {type(err).__name__}"
                               + (f": {message}" if message else "")) from None


@contextlib.contextmanager
def user_code_context(folder: Path) -> Iterator[None]:
    """While inside: the folder on sys.path, prints sent to stderr. After: sys.path as it
    was, and the modules loaded from the folder forgotten (an edited helper file is read
    afresh by the next import)."""
    saved_path = list(sys.path)
    before = set(sys.modules)
    folder = folder.resolve()
    sys.path.insert(0, str(folder))
    sink = sys.stderr if sys.stderr is not None else io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - before:
            origin = getattr(sys.modules.get(name), "__file__", None)
            if origin and _inside(Path(origin), folder):
                sys.modules.pop(name, None)


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder)
    except (OSError, ValueError):
        return False


def load_module(path: Path) -> ModuleType:
    """Execute FILE.py as a fresh module with a unique name (inside user_code_context)."""
    name = f"cnnstudio_user_model_{os.getpid()}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelImportError(f"{path.name} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing look their module up while it runs
    try:
        with running(f"running {path.name}"):
            spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def instantiate(module: ModuleType, class_name: str, file_name: str) -> Any:
    """CLASS() from the loaded module; raises ModelImportError when it is missing, not an
    nn.Module class, needs arguments, or its constructor raises."""
    from torch import nn

    cls = getattr(module, class_name, None)
    if cls is None:
        classes = sorted(n for n, v in vars(module).items()
                         if isinstance(v, type) and issubclass(v, nn.Module)
                         and v.__module__ == module.__name__)
        hint = f" (its nn.Module classes: {', '.join(classes)})" if classes else ""
        raise ModelImportError(f"{file_name} has no class {class_name}{hint}")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ModelImportError(f"{class_name} in {file_name} is not an nn.Module class")
    try:
        inspect.signature(cls).bind()
    except TypeError:
        raise ModelImportError(f"{class_name} needs constructor arguments; give it defaults"
                               ) from None
    except ValueError:
        pass  # no signature to read: let the call tell
    with running(f"{class_name}()"):
        return cls()


def _check_weights_file(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise pickle_refusal(path.name)
    if not path.is_file():
        raise ModelImportError(f"{path.name}: no such file")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ModelImportError(f"{path.name} is larger than 2 GiB")
    with path.open("rb") as handle:
        head = handle.read(4)
    if starts_like_pickle(head):
        raise pickle_refusal(path.name)


def _listed(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_safetensors(model: Any, path: Path) -> None:
    """Load a safetensors state_dict into `model`, strictly; ModelImportError otherwise."""
    from safetensors import SafetensorError, safe_open

    _check_weights_file(path)
    found: dict[str, Any] = {}
    try:
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is no mapping
                piece = handle.get_slice(key)
                shape = piece.get_shape()
                count = 1
                for size in shape:
                    count *= size
                if count * 4 > MAX_TENSOR_BYTES:  # as float32, the way our layers hold it
                    raise ModelImportError(f"{path.name}: tensor {key} is larger than 1 GiB")
                found[key] = handle.get_tensor(key)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelImportError(f"{path.name} is not a readable safetensors file"
                               f" ({first_line(err)})") from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        parts = ([f"missing {_listed(missing)}"] if missing else []) + (
            [f"unexpected {_listed(unexpected)}"] if unexpected else [])
        raise ModelImportError(f"{path.name} does not fit the model: {'; '.join(parts)}")
    wrong = [f"{k} is {'×'.join(map(str, found[k].shape))} but the model has"
             f" {'×'.join(map(str, expected[k].shape))}"
             for k in expected if tuple(found[k].shape) != tuple(expected[k].shape)]
    if wrong:
        raise ModelImportError(f"{path.name} does not fit the model: {_listed(wrong, 2)}")
    with running("loading the weights"):
        model.load_state_dict(found, strict=True)
