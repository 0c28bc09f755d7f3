"""Errors and skip records shared by every data source."""

from __future__ import annotations

from dataclasses import dataclass

MAX_MESSAGE = 500  # characters: a project file can name a path megabytes long


class DataError(Exception):
    """A dataset cannot be loaded.

    ``str(error)`` is one clear line meant for the user (no traceback is shown), e.g.
    ``no usable image in /x/y: 3 files skipped``; cut at MAX_MESSAGE characters.
    """

    def __init__(self, message: object = "") -> None:
        text = " ".join(str(message).split())  # one line, whatever a path or a library said
        if len(text) > MAX_MESSAGE:
            text = text[:MAX_MESSAGE - 1] + "…"
        super().__init__(text)


@dataclass
class SkippedFile:
    """A file (or an empty class folder) left out of a dataset, and why.

    ``reason`` is short and human-readable: ``empty file``, ``not an image (cannot identify
    image file)``, ``corrupt or truncated image: ...``, ``empty class: no usable image``, ...
    """

    path: str
    reason: str


class SkipFile(Exception):
    """Raised by per-file decoders: the file is skipped with ``str(exc)`` as the reason."""
