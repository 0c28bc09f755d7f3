"""What every command of the command line shares: the exit statuses, the usage error, the
one-line failure on stderr and reading the project. `cli` and the commands that import
torch (`cli_train`, `cli_export`) import it, never each other's module."""

from __future__ import annotations

import sys
from pathlib import Path

EXIT_OK, EXIT_PROBLEMS, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """The command line is wrong or the input cannot be read: exit status 2."""


def fail(message: str) -> None:
    print(f"cnnstudio: {message}", file=sys.stderr)


def failure(err: Exception) -> str:
    """What a command that raised `err` says on its one line."""
    return str(err) if isinstance(err, UsageError) else \
        f"internal error: {type(err).__name__}: {err}"


def load_project(path: str):
    """Read a project; an unreadable one is a UsageError (exit 2) with one line."""
    from cnnstudio.project import ProjectError, read_project

    if not path.strip():  # Path("") is the current folder: say what is wrong instead
        raise UsageError("the project path is empty: give a .cnnproj or .json file")
    try:
        return read_project(Path(path))
    except ProjectError as err:
        raise UsageError(err.full()) from None
