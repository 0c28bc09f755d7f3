"""The data sources a project's `data.source` can name, in one table: each kind's path
keys, the tasks it serves, how the data form shows it, and the built-in datasets with
their classes. The settings schema, the loader (which keeps the reading itself in
`cnnstudio.data`), the data form, the templates and the class-count checks read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TASKS = ("classification", "segmentation")
DEFAULT_SOURCE = {"kind": "builtin", "name": "digits"}  # when a project names none
_IDX = "IDX files (*-ubyte *.idx *.idx1-ubyte *.idx3-ubyte *.gz);;All files (*)"


@dataclass(frozen=True)
class PathKey:
    key: str  # in `data.source`; its value is a file or folder path
    label: str  # the data form's label for it
    browse: str  # "dir" (choose a folder) or the file dialog's filter


@dataclass(frozen=True)
class SourceKind:
    title: str  # as the data form lists it
    paths: tuple[PathKey, ...] = ()
    tasks: tuple[str, ...] = ("classification",)  # the first is what it gives
    hint: str = ""  # what the paths must hold, shown under them


def _one(label: str, browse: str) -> tuple[PathKey, ...]:
    return (PathKey("path", label, browse),)


SOURCE_KINDS: dict[str, SourceKind] = {
    "builtin": SourceKind("Built-in", tasks=TASKS),
    "folder": SourceKind("Image folder", _one("Folder", "dir"),
                         hint="one subfolder per class (optional train/ val/ test/)"),
    "segmentation_folder": SourceKind(
        "Segmentation folder", (PathKey("images", "Images", "dir"),
                                PathKey("masks", "Masks", "dir")),
        ("segmentation",), "images/ and masks/ with matching names"),
    "npz": SourceKind("NumPy .npz", _one("File", "NumPy arrays (*.npz);;All files (*)"),
                      TASKS, "arrays x and y"),
    "csv": SourceKind("CSV", _one("File", "CSV files (*.csv *.txt);;All files (*)"),
                      hint="label, then pixel or signal columns"),
    "idx": SourceKind("MNIST IDX", (PathKey("images", "Images", _IDX),
                                    PathKey("labels", "Labels", _IDX)),
                      hint="MNIST images and labels files"),
    "cifar10": SourceKind("CIFAR-10 batches", _one("Folder", "dir"),
                          hint="folder of data_batch_*.bin"),
}


@dataclass(frozen=True)
class Builtin:
    title: str  # as the data form lists it
    classes: tuple[str, ...]  # class names, by label index
    samples: int = 0  # default sample count of a generated set (0: a fixed set)
    task: str = "classification"


_SHAPES = ("circle", "square", "triangle")
BUILTINS: dict[str, Builtin] = {
    "digits": Builtin("digits: handwritten 8×8 (UCI)", tuple("0123456789")),
    "xo": Builtin("xo: X vs O, 9×9", ("O", "X"), 1000),
    "shapes": Builtin("shapes: circle, square, triangle", _SHAPES, 1500),
    "shapes-seg": Builtin("shapes-seg: shapes with masks", ("background", *_SHAPES), 600,
                          "segmentation"),
    "signals": Builtin("signals: 1-D waveforms", ("sine", "square", "sawtooth", "noise"), 1000),
}


def path_keys(kind: Any) -> tuple[str, ...]:
    """The path keys of a source kind, matched without regard to case (as `fill_data`
    matches it); () for a built-in, an unknown kind or a non-string."""
    # The kinds are spelled in lower case, so a casefolded name finds its entry.
    found = SOURCE_KINDS.get(kind.casefold()) if isinstance(kind, str) else None
    return tuple(p.key for p in found.paths) if found else ()


def builtin_classes(data: Any) -> int | None:
    """The class count a project's `data` section is known to have without loading it:
    a built-in dataset's (the default source is one); None for a file source."""
    source = (data.get("source") if isinstance(data, dict) else None) or DEFAULT_SOURCE
    if isinstance(source, dict) and source.get("kind") == "builtin":
        found = BUILTINS.get(source.get("name"))
        return len(found.classes) if found else None
    return None
