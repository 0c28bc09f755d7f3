"""Small helpers that write Python text: literals, names and lines that pass `ruff check`.

Every line stays within ruff's default 88 columns, however long a node id, project name
or class name is (long strings are split into implicitly concatenated literals, long
expressions into parenthesized lines), so the file needs no `noqa` comment: a `# noqa:
E501` would itself be an error (RUF100, unused noqa) under ruff's default rules, which
do not check the line length.
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

LINE = 88
INDENT = "    "
NAME_MAX = 20  # columns of a local variable name made from a node id


def width(text: str) -> int:
    """Columns `text` takes, as ruff counts them (wide East Asian characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def py_str(text: str) -> str:
    """A string literal for `text`, double-quoted where that needs no escapes."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return repr(text)


def literal(value: Any) -> str:
    """Python source for a parameter value: None, bools, numbers, strings, tuples, lists."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return py_str(value)
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(literal(v) for v in value)}]"
    raise TypeError(f"no Python literal for {type(value).__name__}")


def _doc_char(ch: str) -> str:
    if ch == '"':
        return '\\"'
    if ch == "\\" or not ch.isprintable():
        return repr(ch)[1:-1]
    return ch


def doc_text(text: str, limit: int = 60) -> str:
    """`text` made safe inside a triple-quoted docstring, cut to `limit` characters."""
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return "".join(_doc_char(ch) for ch in text)


def doc_lines(text: str, columns: int) -> list[str]:
    """`text` wrapped at spaces into docstring lines of at most `columns` columns each,
    escaped as `doc_text` does; a word too long for a line is cut.

    Wrapping comes before escaping, so no line ends inside an escape sequence (a line
    ending in a lone backslash would join the next line and could end the docstring).
    """
    lines: list[str] = []
    line, used = "", 0
    for word in text.split(" "):
        if not word:
            continue  # runs of spaces: wrapping collapses them, as textwrap does
        escaped = [_doc_char(ch) for ch in word]
        cost = sum(width(e) for e in escaped)
        if line and used + 1 + cost <= columns:
            line, used = f"{line} {''.join(escaped)}", used + 1 + cost
            continue
        if line:
            lines.append(line)
        line, used = "", 0
        for piece in escaped:  # a word longer than a line is cut between characters
            if used + width(piece) > columns and line:
                lines.append(line)
                line, used = "", 0
            line, used = line + piece, used + width(piece)
    return [*lines, line] if line else lines or [""]


def fit(text: str, columns: int) -> str:
    """`text` cut to at most `columns` columns, ending in "…" when cut."""
    if width(text) <= columns:
        return text
    out, used = "", 0
    for ch in text:
        if used + width(ch) > columns - 1:
            break
        out, used = out + ch, used + width(ch)
    return out + "…"


def _literal_cost(ch: str) -> int:
    """Columns `ch` can take inside a string literal made by `py_str` (at most)."""
    if ch in "\\'\"":
        return 2
    return width(ch) if ch.isprintable() else len(repr(ch)) - 2


def str_chunks(text: str, columns: int) -> list[str]:
    """`text` as string literals of at most `columns` columns each: written one after the
    other (implicit concatenation) they read back as `text` exactly. Pieces end after a
    space, `_` or `-` where one is in their second half, to keep words whole."""
    if width(py_str(text)) <= columns:
        return [py_str(text)]
    chunks: list[str] = []
    current, used = "", 2  # the two quotes
    for ch in text:
        cost = _literal_cost(ch)
        if current and used + cost > columns:
            cut = max(current.rfind(sep) for sep in " _-") + 1
            if cut <= len(current) // 2:
                cut = len(current)
            chunks.append(py_str(current[:cut]))
            current = current[cut:]
            used = 2 + sum(_literal_cost(c) for c in current)
        current, used = current + ch, used + cost
    return [*chunks, py_str(current)]


def is_plain_attribute(name: str) -> bool:
    """True when `self.<name>` reaches a submodule registered under `name` exactly.

    Python NFKC-normalizes identifiers (`ﬁlter` is read as `filter`), so an id that
    normalization changes is no plain attribute: the state_dict key would differ.
    """
    return (name.isidentifier() and not keyword.iskeyword(name)
            and unicodedata.normalize("NFKC", name) == name)


def submodule_ref(name: str) -> str:
    """How `forward` reaches the submodule registered under `name`."""
    if is_plain_attribute(name):
        return f"self.{name}"
    if name.isidentifier() and not keyword.iskeyword(name):
        # An identifier NFKC would rename: `getattr` with it reads as a plain attribute to
        # linters (ruff B009), so ask for the submodule by name.
        return f"self.get_submodule({py_str(name)})"
    return f"getattr(self, {py_str(name)})"


_BUILTINS = frozenset(dir(builtins))


class Names:
    """Hands out unique local variable names made from node ids."""

    def __init__(self, taken: Sequence[str]) -> None:
        self._taken = set(taken) | _BUILTINS | set(keyword.kwlist) | set(keyword.softkwlist)

    def take(self, node_id: str) -> str:
        ascii_id = unicodedata.normalize("NFKD", node_id).encode("ascii", "ignore").decode()
        # Capped, so that a line using a few of them still fits in LINE columns.
        base = re.sub(r"\W", "_", ascii_id)[:NAME_MAX].rstrip("_") or "value"
        if base[0].isdigit():
            base = f"v_{base}"
        name = base if base not in self._taken else f"{base}_"
        n = 2
        while name in self._taken:
            name = f"{base}_{n}"
            n += 1
        self._taken.add(name)
        return name


def class_name(project_name: str, taken: Sequence[str] = ()) -> str:
    """The project's name in CamelCase as a class name: "Digits LeNet" → "DigitsLeNet"."""
    ascii_name = unicodedata.normalize("NFKD", project_name).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z0-9]+", ascii_name)
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    if name[0].isdigit():
        name = f"Net{name}"
    if keyword.iskeyword(name) or name in taken or name in _BUILTINS:
        name = f"{name}Model"
    return name


def call(head: str, args: Sequence[str], tail: str, indent: str) -> list[str]:
    """`head` + comma-separated `args` + `tail`, split the way ruff format would when it
    does not fit: all arguments on one indented line, else one argument per line."""
    joined = ", ".join(args)
    one = f"{indent}{head}{joined}{tail}"
    if width(one) <= LINE or not args:
        return [one]
    inner = indent + INDENT
    if width(inner + joined) <= LINE:
        return [f"{indent}{head}", inner + joined, f"{indent}{tail}"]
    return [f"{indent}{head}", *(f"{inner}{a}," for a in args), f"{indent}{tail}"]


def nested_call(head: str, name: str, inner_head: str, args: Sequence[str], tail: str,
                indent: str) -> list[str]:
    """`head` + the string literal of `name` + `, ` + `inner_head` + args + `)` + `tail`,
    i.e. a call whose first argument is a string and whose last is another call, split as
    ruff format would (a string too long for a line is split into implicitly concatenated
    pieces)."""
    first = py_str(name)
    inner = f"{inner_head}{', '.join(args)})"
    one = f"{indent}{head}{first}, {inner}{tail}"
    if width(one) <= LINE:
        return [one]
    deeper = indent + INDENT
    if width(f"{deeper}{first}, {inner}") <= LINE:
        return [f"{indent}{head}", f"{deeper}{first}, {inner}", f"{indent}{tail}"]
    return [f"{indent}{head}", *string_lines(name, deeper, ","),
            *call(inner_head, args, "),", deeper), f"{indent}{tail}"]


def string_lines(text: str, indent: str, tail: str = "") -> list[str]:
    """A string literal of `text` + `tail` at `indent`: one line when it fits, else
    implicitly concatenated pieces, one per line (`tail` after the last)."""
    chunks = str_chunks(text, LINE - width(indent) - width(tail))
    return [f"{indent}{c}" for c in chunks[:-1]] + [f"{indent}{chunks[-1]}{tail}"]


def with_comment(code: str | list[str], comment: str) -> list[str]:
    """`code  # comment` (after its last line), or the comment on its own line above
    when that is too long."""
    lines = [code] if isinstance(code, str) else list(code)
    if width(f"{lines[-1]}  # {comment}") <= LINE:
        return [*lines[:-1], f"{lines[-1]}  # {comment}"]
    indent = lines[0][:len(lines[0]) - len(lines[0].lstrip())]
    return [f"{indent}# {comment}", *lines]
