"""Small helpers that write Python text: literals, names and lines that pass `ruff check`.

Lines are kept within ruff's default 88 columns where the content allows; a line that
cannot be shortened (an enormous node id) gets `# noqa: E501` so the file stays clean.
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


def doc_text(text: str, limit: int = 60) -> str:
    """`text` made safe inside a triple-quoted docstring, cut to `limit` characters."""
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\" or not ch.isprintable():
            out.append(repr(ch)[1:-1])
        else:
            out.append(ch)
    return "".join(out)


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
        base = re.sub(r"\W", "_", ascii_id) or "value"
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


def nested_call(head: str, first: str, inner_head: str, args: Sequence[str], tail: str,
                indent: str) -> list[str]:
    """`head` + `first, ` + `inner_head` + args + `)` + `tail`, i.e. a call whose last
    argument is another call, split as ruff format would."""
    inner = f"{inner_head}{', '.join(args)})"
    one = f"{indent}{head}{first}, {inner}{tail}"
    if width(one) <= LINE:
        return [one]
    deeper = indent + INDENT
    if width(f"{deeper}{first}, {inner}") <= LINE:
        return [f"{indent}{head}", f"{deeper}{first}, {inner}", f"{indent}{tail}"]
    return [f"{indent}{head}", f"{deeper}{first},", *call(inner_head, args, "),", deeper),
            f"{indent}{tail}"]


def with_comment(code: str, comment: str) -> list[str]:
    """`code  # comment`, or the comment on its own line above when that is too long."""
    line = f"{code}  # {comment}"
    if width(line) <= LINE:
        return [line]
    indent = code[:len(code) - len(code.lstrip())]
    return [f"{indent}# {comment}", code]


def noqa_long_lines(lines: list[str], docstring_lines: set[int]) -> list[str]:
    """Mark lines that are still too long (outside docstrings) with `# noqa: E501`."""
    out = []
    for i, line in enumerate(lines):
        if width(line) > LINE and i not in docstring_lines and "noqa" not in line:
            line += "  # noqa: E501"
        out.append(line)
    return out
