"""What a user gives an import, read without torch (the command line checks it before
loading torch; the window's dialog as the user types): `FILE.py:CLASS` or a model file,
and an input shape such as `3,32,32`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

MAX_DIMENSION = 1_000_000

# Files that torch.save / torch.jit.save / torch.export.save write (pickles, or zips
# holding one): loading them can run any code, so no importer opens them. The one list,
# for the importers (`cnnstudio.nn.importing.common`) and the window's dialog alike.
PICKLE_SUFFIXES = (".pt", ".pth", ".pt2", ".ptl", ".ckpt", ".pkl", ".pickle", ".bin",
                   ".tar", ".jit", ".mar", ".zip")


def split_model_spec(model: str) -> tuple[Path, str | None]:
    """(the file, the class) for `FILE.py:CLASS`, else (the file, None). The class is
    whatever follows the last colon after a `.py` (a drive letter's colon is no
    separator); it may be empty (`FILE.py:`)."""
    head, colon, tail = model.rpartition(":")
    if colon and head.lower().endswith(".py") and "/" not in tail and "\\" not in tail:
        return Path(head), tail.strip()
    return Path(model), None


def parse_input_shape(text: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """A per-sample input shape, channels first, from `"3,32,32"` (spaces, `x` and `×`
    separate too) or a sequence of ints; None for None or a blank string. Raises
    ValueError (one line) for anything but 1 to 4 positive integers."""
    if text is None:
        return None
    if isinstance(text, str):
        parts = [p for p in re.split(r"[\s,×]+|(?<=\d)x(?=\d)", text.strip().strip("()[]")) if p]
        if not parts:
            return None
        try:
            values = tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"input shape {text.strip()!r}: give the per-sample shape as"
                             " positive integers, channels first, e.g. 3,32,32") from None
    else:
        values = tuple(text)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ValueError(f"input shape {list(values)}: integers only, e.g. 3,32,32")
    if not 1 <= len(values) <= 4 or any(v < 1 or v > MAX_DIMENSION for v in values):
        raise ValueError(f"input shape {','.join(map(str, values))}: give 1 to 4 positive"
                         " integers, channels first (C,H,W; C,L for a 1-D signal),"
                         " e.g. 3,32,32")
    return values
