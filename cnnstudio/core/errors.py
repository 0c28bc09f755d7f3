"""Errors raised by the network model. Each names the node (and parameter) at fault."""

from __future__ import annotations

import json
from typing import Any


class GraphError(Exception):
    """Base of every error about a network graph; `node` is the id at fault, if any."""

    def __init__(self, message: str, node: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.node = node

    def __str__(self) -> str:
        return f"{self.node}: {self.message}" if self.node else self.message


class UnknownTypeError(GraphError):
    """A node's `type` is not a layer type in the registry."""


class ParameterError(GraphError):
    """A layer parameter is missing, of the wrong type, or out of bounds."""

    def __init__(self, message: str, node: str | None = None, param: str | None = None) -> None:
        super().__init__(message, node)
        self.param = param

    def __str__(self) -> str:
        where = ".".join(p for p in (self.node, self.param) if p)
        return f"{where}: {self.message}" if where else self.message


class CycleError(GraphError):
    """A connection would make (or a loaded graph has) a cycle."""


class ArityError(GraphError):
    """A node would get more inputs than its layer type takes."""


class DuplicateIdError(GraphError):
    """A node id is already used."""


class InvalidIdError(GraphError):
    """A node id cannot be used as a module name."""


class MissingNodeError(GraphError):
    """An operation names a node id that is not in the graph."""


class ShapeError(Exception):
    """Raised by a layer's shape rule; the message is for a student, without the node id.

    `formulas`: the arithmetic that failed, with the student's numbers (shown where the
    result would be). `fixes`: repairs to offer, as (label, parameter, new value); shape
    inference keeps only those that really make the layer fit.
    """

    def __init__(self, message: str, formulas: list[str] | None = None,
                 fixes: list[tuple[str, str, object]] | None = None) -> None:
        super().__init__(message)
        self.formulas = list(formulas or [])
        self.fixes = list(fixes or [])


class FormatError(Exception):
    """A graph or project document is malformed; `path` is the JSON path of the fault."""

    def __init__(self, path: str, message: str) -> None:
        # Keys in the path come from the file and may hold a newline: escape what is not
        # printable, so the message stays one line.
        path = "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def first_line(err: BaseException) -> str:
    """The first line of `err`'s message, or its type's name when it says nothing."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def with_more(problems: list[Any] | tuple[Any, ...]) -> str:
    """The first problem in one line, with how many more there are: "x (and 2 more problems)"."""
    more = len(problems) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    return str(problems[0]) + suffix


def show_value(value: Any, *, python: bool = False) -> str:
    """A value as the user wrote it in JSON (`true`, `"ten"`), or as Python writes it
    (`python`: `'ten'`), cut short for a one-line message."""
    try:
        text = repr(value) if python else json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        try:
            text = repr(value)
        except ValueError:  # an integer too long to print
            text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
