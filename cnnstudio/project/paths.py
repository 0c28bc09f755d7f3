"""Data paths of a project when the project moves: relative paths in `data.source` are
taken against the project file's folder (docs/PROJECT_FORMAT.md), or against the current working
directory while the project is unsaved (as training reads them), so a project written
to another folder must have them re-expressed, or it points at data that is not there.

Which keys are paths comes from `core.data_sources.path_keys` (the kind matched without
regard to case, as `fill_data` does). Absolute paths and `~` paths (the loader expands
`~` first), empty or non-string values, unknown kinds and every other key are left
exactly as they are.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from cnnstudio.core.data_sources import path_keys

Folder = str | os.PathLike[str]


def rebase_data_paths(data: dict[str, Any], old_dir: Folder | None,
                      new_dir: Folder) -> dict[str, Any]:
    """A copy of the `data` section whose relative source paths name the same files when
    taken against `new_dir` as they did against `old_dir` (None: the current working
    directory, an unsaved project's base). They stay relative where a relative path
    exists (written with `/`), and become absolute where none does (another drive on
    Windows). Same folder: an unchanged copy. Never raises for odd values: a `data` that
    is not a dict comes back as a copy."""
    old = _folder(old_dir)
    new = _folder(new_dir)
    if _same_place(old, new):
        return copy.deepcopy(data)
    return _map_relative(data, lambda value: _rebased(os.path.join(old, value), new))


def absolute_data_paths(data: dict[str, Any], base_dir: Folder | None) -> dict[str, Any]:
    """A copy of the `data` section with its relative source paths made absolute against
    `base_dir` (None: the current working directory), symbolic links resolved: for a copy
    of the project saved where its folder is unknown (a temporary file)."""
    base = _folder(base_dir)
    return _map_relative(data, lambda value: os.path.realpath(os.path.join(base, value)))


def _folder(folder: Folder | None) -> str:
    # The loader expands `~` in its base folder too (`load_dataset`).
    return os.getcwd() if folder is None else os.path.expanduser(os.fspath(folder))


def _map_relative(data: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    source = out.get("source") if isinstance(out, dict) else None
    if not isinstance(source, dict):
        return out
    for key in path_keys(source.get("kind")):
        value = source.get(key)
        # NUL: os.path raises ValueError on it; the loader reports it, we leave it be.
        if (isinstance(value, str) and value and "\x00" not in value
                and not os.path.isabs(os.path.expanduser(value))):
            source[key] = change(value)
    return out


def _same_place(a: str, b: str) -> bool:
    """Whether two paths name one place, as the system resolves them (links followed)."""
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _rebased(target: str, new_dir: str) -> str:
    # The plain relative path reads best, but `..` after a symbolic link climbs out of
    # the link's target, not its folder: keep it only if it lands where the data is, else
    # go by the resolved paths, which have no links left to climb out of.
    for start, end in ((os.path.abspath(new_dir), os.path.abspath(target)),
                       (os.path.realpath(new_dir), os.path.realpath(target))):
        try:
            relative = os.path.relpath(end, start)
        except ValueError:  # another drive (Windows): no relative path exists
            break
        if _same_place(os.path.join(new_dir, relative), target):
            return PurePath(relative).as_posix()
    return os.path.realpath(target)
