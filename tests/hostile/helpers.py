"""Seed files, mutations, raw zip building and the checks every hostile test shares.

Seeds are real project files: every template, as a `.cnnproj` archive and as bare JSON,
some with real weights from `build_module`. Mutations and hand-built archives start from
those bytes, so the fuzzers explore the neighbourhood of what users actually have.
"""

from __future__ import annotations

import functools
import io
import json
import os
import random
import resource
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

from cnnstudio.core.templates import TEMPLATES
from cnnstudio.project import project_from_dict, write_project

ROOT = Path(__file__).resolve().parents[2]

# Hypothesis budgets: a fast default-suite run and a `slow` volume run. Registered as
# profiles, so a whole run can also pick one with --hypothesis-profile.
_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
          HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("hostile-fast", max_examples=100, deadline=None,
                          suppress_health_check=_QUIET)
settings.register_profile("hostile-slow", max_examples=2500, deadline=None,
                          suppress_health_check=_QUIET)
FAST = settings.get_profile("hostile-fast")
SLOW = settings.get_profile("hostile-slow")
# Templates whose seed archives carry real weights (small nets: a weights member of a few
# hundred KiB, so every mutation of it still runs in microseconds).
WITH_WEIGHTS = ("xo", "digits-lenet", "cnn1d")


@dataclass(frozen=True)
class Seed:
    name: str  # e.g. "lenet5.cnnproj"
    data: bytes


def template_project(name: str, *, weights: bool = False):
    """A Project from template `name`, optionally with freshly initialized weights."""
    project = project_from_dict(TEMPLATES[name].project_dict())
    if weights:
        import torch

        from cnnstudio.nn import build_module, weights_to_bytes

        torch.manual_seed(0)
        project.weights = weights_to_bytes(build_module(project.graph))
    return project


@functools.cache
def seeds() -> tuple[Seed, ...]:
    """Every template saved as .cnnproj and .json (the bytes, built once per session)."""
    import tempfile

    out: list[Seed] = []
    with tempfile.TemporaryDirectory() as folder:
        for name in TEMPLATES:
            project = template_project(name, weights=name in WITH_WEIGHTS)
            for suffix in (".cnnproj", ".json"):
                path = Path(folder) / f"{name}{suffix}"
                write_project(project, path)
                out.append(Seed(path.name, path.read_bytes()))
    return tuple(out)


def template_docs() -> list[dict[str, Any]]:
    """Every template's project.json document (fresh copies)."""
    return [t.project_dict() for t in TEMPLATES.values()]


# ---- mutations of raw bytes -------------------------------------------------------------

_JSON_BYTES = b'{}[]",:0123456789-+eE.tfnul \\\n'


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random edits: bit flips, truncation, overwrites, JSON-ish bytes,
    duplicated spans, or a zeroed span (sizes and offsets in zip headers)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if not out:
            break
        op, at = rng.randrange(7), rng.randrange(len(out))
        if op == 0:
            out[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            del out[at:]
        elif op == 2:
            out[at:at + rng.randint(1, 16)] = rng.randbytes(rng.randint(0, 16))
        elif op == 3:
            out[at] = rng.choice(_JSON_BYTES)
        elif op == 4:
            start = rng.randrange(len(out))
            out[at:at] = out[start:start + rng.randint(1, 64)]
        elif op == 5:
            out[at:at + 4] = struct.pack("<I", rng.choice([0, 0xFFFFFFFF, 2**31, 1, 2**24]))
        else:
            out[at:at + rng.randint(1, 512)] = b""
    return bytes(out)


# ---- hand-built zip archives --------------------------------------------------------------


@dataclass
class Member:
    """One member of a hand-built archive; sizes and CRC default to the true ones."""

    name: str
    data: bytes
    method: int = zipfile.ZIP_STORED
    declared_size: int | None = None  # the uncompressed size the directory claims
    crc: int | None = None
    flags: int = 0
    payload: bytes | None = None  # the stored bytes as given (e.g. a prepared deflate bomb)


def raw_zip(members: Sequence[Member]) -> bytes:
    """A zip archive written byte by byte, so tests can make it lie (sizes, CRCs, names)
    in ways `zipfile` refuses to write."""
    out, directory = io.BytesIO(), io.BytesIO()
    for m in members:
        if m.payload is not None:
            payload = m.payload
        elif m.method == zipfile.ZIP_DEFLATED:
            packer = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = packer.compress(m.data) + packer.flush()
        else:
            payload = m.data
        name = m.name.encode("utf-8")
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        size = len(m.data) if m.declared_size is None else m.declared_size
        offset = out.tell()
        fields = (20, m.flags | 0x800, m.method, 0, 0x21, crc, len(payload), size)
        out.write(struct.pack("<4s5H3I2H", b"PK\x03\x04", *fields, len(name), 0) + name)
        out.write(payload)
        directory.write(struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, *fields, len(name),
                                    0, 0, 0, 0, 0o644 << 16, offset) + name)
    start, cd = out.tell(), directory.getvalue()
    out.write(cd)
    out.write(struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(members), len(members),
                          len(cd), start, 0))
    return out.getvalue()


def deflate_bomb(size: int) -> tuple[bytes, int]:
    """(raw deflate stream of `size` zero bytes, its CRC-32), made in 1 MiB steps so
    building a gigabyte bomb costs a megabyte of memory."""
    packer, crc, chunk = zlib.compressobj(9, zlib.DEFLATED, -15), 0, bytes(1024**2)
    parts, left = [], size
    while left > 0:
        piece = chunk[:min(left, len(chunk))]
        parts.append(packer.compress(piece))
        crc = zlib.crc32(piece, crc)
        left -= len(piece)
    parts.append(packer.flush())
    return b"".join(parts), crc


def project_json(doc: dict[str, Any] | None = None) -> bytes:
    return json.dumps(doc or TEMPLATES["xo"].project_dict()).encode("utf-8")


# ---- checks -------------------------------------------------------------------------------


def assert_one_line(text: str, *, where: str = "") -> None:
    """A message for a person: non-empty, one line, no traceback, not a wall of text."""
    text = text.strip()
    assert text, f"empty message {where}"
    assert "\n" not in text, f"more than one line {where}: {text!r}"
    assert "Traceback" not in text and "internal error" not in text, f"{where}: {text}"
    assert len(text) < 1000, f"{where}: {len(text)} characters"


def tree_snapshot(*folders: Path) -> set[str]:
    """Every path under `folders` (to prove a read wrote nothing anywhere)."""
    found: set[str] = set()
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            found.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return found


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen",
           "OMP_NUM_THREADS": "1", **extra}
    env.pop("CNNSTUDIO_DEBUG", None)  # a debug run would re-raise: not what users get
    return env


def run_cli(*args: str, memory_mb: int | None = None, timeout: float = 60,
            env: dict[str, str] | None = None,
            script: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m cnnstudio ARGS` (or `python SCRIPT ARGS`) in a fresh process, optionally
    with its address space capped (RLIMIT_AS) so unbounded allocation fails visibly."""

    def cap() -> None:
        if memory_mb is not None:
            limit = memory_mb * 1024**2
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    command = [str(script)] if script is not None else ["-m", "cnnstudio"]
    return subprocess.run([sys.executable, *command, *args], capture_output=True,
                          text=True, timeout=timeout, env=env or cli_env(), preexec_fn=cap,
                          cwd=ROOT)


def assert_clean_exit(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The CLI failed as promised: exit `code`, one stderr line, no traceback."""
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert_one_line(result.stderr, where="on stderr")
    assert result.stderr.startswith("cnnstudio: "), result.stderr
    return result.stderr.strip()
