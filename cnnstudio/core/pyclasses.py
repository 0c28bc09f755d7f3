"""The `nn.Module` classes a Python file defines, found by reading it, never by running it.

Importing `FILE.py:CLASS` runs the user's file; choosing the class must not. The file is
parsed with `ast` only: a class counts when one of its bases is named like a module
(`nn.Module`, `torch.nn.Module`, `LightningModule`, anything ending in `Module`), or is
another class of the same file that counts (a `Net(Base)` where `Base(nn.Module)`).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

MAX_SOURCE_BYTES = 4 * 1024 * 1024  # a model's source file, not a generated monster


def _base_name(node: ast.expr) -> str:
    """The last name of a base expression: `nn.Module` → Module, `Generic[T]` → Generic."""
    if isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def module_classes(source: str | bytes, filename: str = "<source>") -> list[str]:
    """Names of the top-level classes of `source` that derive from a `*Module`, in the
    order they are defined. Raises ValueError (one line, with the line number) when the
    source is not valid Python."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        where = f" (line {err.lineno})" if err.lineno else ""
        raise ValueError(f"{Path(filename).name} is not valid Python{where}: {err.msg}"
                         ) from None
    except ValueError as err:  # e.g. a NUL byte in the source
        raise ValueError(f"{Path(filename).name} is not valid Python: {err}") from None
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    found: set[str] = set()  # a set: a generated file may define thousands of classes
    bases = {id(node): [_base_name(base) for base in node.bases] for node in classes}
    changed = True
    while changed:  # a class may derive from one defined further down
        changed = False
        for node in classes:
            if node.name in found:
                continue
            if any(b.endswith("Module") or b in found for b in bases[id(node)]):
                found.add(node.name)
                changed = True
    # In the order they are defined, each name once.
    return list(dict.fromkeys(node.name for node in classes if node.name in found))


def module_classes_in_file(path: str | os.PathLike[str]) -> list[str]:
    """`module_classes` of the file at `path`. Raises ValueError (one line) when the file
    cannot be read, is larger than 4 MiB or is not valid Python."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise ValueError(f"{path.name} is larger than {MAX_SOURCE_BYTES // 1024**2} MiB;"
                             " type the class name")
        source = path.read_bytes()
    except OSError as err:
        raise ValueError(f"cannot read {path.name}: {err.strerror or err}") from None
    return module_classes(source, str(path))


def main(argv: list[str]) -> int:
    """`python -m cnnstudio.core.pyclasses FILE`: one JSON line, `{"classes": [...]}` or
    `{"error": one line}`. The window reads a large file this way, in a process of its
    own: `ast.parse` holds the GIL for as long as it parses (seconds for megabytes)."""
    import json

    try:
        answer: dict[str, object] = {"classes": module_classes_in_file(argv[0])}
    except (ValueError, IndexError, RecursionError, MemoryError) as err:
        answer = {"error": " ".join(str(err).split()) or type(err).__name__}
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
