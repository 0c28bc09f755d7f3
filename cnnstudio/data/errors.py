"""Errors and skip records shared by every data source."""

from __future__ import annotations

from dataclasses import dataclass


class DataError(Exception):
    """A dataset cannot be loaded.

    ``str(error)`` is one clear line meant for the user (no traceback is shown), e.g.
    ``no usable image in /x/y: 3 files skipped``.
    """


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
