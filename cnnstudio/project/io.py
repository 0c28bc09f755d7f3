"""Reading and writing project files: `NAME.cnnproj` archives and bare `*.json` documents.

A `.cnnproj` file is a zip archive holding `project.json`, `weights.safetensors` once
trained, and attachments such as `resume.safetensors`. Any `*.json` path holds the bare
project.json; writing a project with weights or attachments to such a path keeps the JSON
only (by design: a bare project has no weights), and nothing is returned or logged.

Safety: nothing is ever unpickled or extracted to disk; only members with known,
plain names are read, into memory, after their declared sizes were checked against the
limits below, and reading stops at the declared size so a lying header cannot exhaust
memory. Saves are atomic: a temp file in the target's folder, fsync, then `os.replace`,
with the previous version kept as `NAME.bak`; the target always exists, old or new.
Every failure is a `ProjectError` whose str is one line naming the file and the fault.
"""

from __future__ import annotations

import json
import os
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from cnnstudio.core.errors import FormatError
from cnnstudio.project.atomic import atomic_write
from cnnstudio.project.model import Project
from cnnstudio.project.schema import project_from_dict, project_to_dict
from cnnstudio.project.weights import WeightsError, weights_header

PROJECT_JSON = "project.json"
WEIGHTS = "weights.safetensors"
# Limits, read at call time so tests (or a deployment) can change them.
MAX_JSON_BYTES = 64 * 1024**2
MAX_WEIGHTS_BYTES = 8 * 1024**3
MAX_ATTACHMENT_BYTES = 16 * 1024**3  # resume state holds optimizer moments: ~2× the weights
MAX_MEMBERS = 64
MAX_REASON = 400  # characters of a ProjectError's reason
# A deflated member may unpack to at most this many times its stored size, once it is over
# the floor: a few kilobytes must not make us allocate gigabytes (a zip bomb). Our own saves
# store tensors uncompressed and keep project.json under MAX_JSON_BYTES, far below the floor.
MAX_RATIO = 100
RATIO_FLOOR = 64 * 1024**2
# Attachment names: flat and plain, so a member name can never point outside the archive.
_ATTACHMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# Decompressors zipfile bounds by the declared size; bzip2/lzma it would run unbounded.
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
                  NotImplementedError, ValueError, struct.error)


class ProjectError(Exception):
    """A project file cannot be read or written. str is one line: `NAME: fault`, or
    `cannot save NAME: fault` / `cannot read NAME: fault` for system errors (NAME the
    file's name; `full()` says the path as given instead, as the command line does).

    `path` is the file, `reason` the fault alone, `cause` the FormatError if any.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, *, action: str | None = None,
                 cause: FormatError | None = None) -> None:
        self.path = Path(path)
        self.given = os.fspath(path)  # shown as the user gave it, folders included
        reason = " ".join(reason.split())  # one line, whatever the source said
        # A hostile file can make a message quote megabytes (a 60 MB string as a layer
        # type); the path at fault and the fault come first, so the head is enough.
        self.reason = reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 1] + "…"
        self.action = action
        self.cause = cause
        super().__init__(str(self))

    def __str__(self) -> str:
        return self._line(self.path.name or str(self.path))

    def full(self) -> str:
        """The line with the path as the caller gave it, folders included (what the
        command line shows: the user typed it), not only the file's name."""
        return self._line(self.given or str(self.path))

    def _line(self, name: str) -> str:
        # A file name may hold a newline or a NUL: the message stays one printable line.
        name = "".join(c if c.isprintable() else "?" for c in name)
        where = f"cannot {self.action} {name}" if self.action else name
        return f"{where}: {self.reason}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuildable from its words (e.g. across a process pool); the cause stays behind.
        return (type(self), (self.given, self.reason), {"action": self.action, "cause": None})


def is_attachment_name(name: str) -> bool:
    """True if `name` can be an attachment member: flat, plain, not a file we own."""
    return (bool(_ATTACHMENT_NAME.match(name)) and ".." not in name
            and name not in (PROJECT_JSON, WEIGHTS))


# ---- reading --------------------------------------------------------------------------


def read_project(path: str | os.PathLike[str]) -> Project:
    """Read a `.cnnproj` archive or a bare project.json, recognised by content.

    Returns the Project with `path` set. Raises ProjectError (one line) for a file that
    cannot be opened, is not a project, is malformed, too large, or holds weights that are
    not a plain safetensors file.
    """
    path = Path(path)
    _check_path(path, "read")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            f.seek(0)
            if head[:2] == b"PK":
                project = _read_archive(f, path)
            elif path.suffix.lower() == ".json" or _looks_like_json(head):
                if os.fstat(f.fileno()).st_size > MAX_JSON_BYTES:
                    raise ProjectError(path, f"the file is larger than {_size(MAX_JSON_BYTES)}")
                project = _parse_document(f.read(MAX_JSON_BYTES + 1), path, None)
            elif not head:
                raise ProjectError(path, "the file is empty")
            else:
                raise ProjectError(path, "not a CNN Studio project"
                                         " (not a zip archive or JSON file)")
    except OSError as err:
        raise ProjectError(path, _os_reason(err), action="read") from None
    project.path = path
    return project


def _looks_like_json(head: bytes) -> bool:
    return head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")[:1] in (b"{", b"[")


def _parse_document(raw: bytes, path: Path, member: str | None) -> Project:
    where = f" in {member}" if member else ""
    if len(raw) > MAX_JSON_BYTES:
        raise ProjectError(path, f"{member or 'the file'} is larger than {_size(MAX_JSON_BYTES)}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ProjectError(path, f"invalid JSON{where}: not UTF-8 text (byte {err.start})"
                           ) from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise ProjectError(path, f"invalid JSON{where} at line {err.lineno}, column {err.colno}:"
                                 f" {err.msg}") from None
    except _ConstantError as err:
        raise ProjectError(path, f"invalid JSON{where}: {err} (JSON has no NaN or Infinity)"
                           ) from None
    except (ValueError, RecursionError) as err:  # 5000-digit numbers, 10000-deep nesting
        raise ProjectError(path, f"invalid JSON{where}: {err or 'nested too deeply'}") from None
    except MemoryError:  # e.g. 64 MiB of `{},` is ~20 million objects
        raise ProjectError(path, f"{member or 'the file'} holds too much to load into memory"
                           ) from None
    try:
        return project_from_dict(doc)
    except FormatError as err:
        raise ProjectError(path, str(err), cause=err) from None
    except RecursionError:
        raise ProjectError(path, f"{member or 'the file'} is nested too deeply") from None
    except MemoryError:
        raise ProjectError(path, f"{member or 'the file'} holds too much to load into memory"
                           ) from None


class _ConstantError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _ConstantError(f"{name} is not allowed")


def _read_archive(f: IO[bytes], path: Path) -> Project:
    _check_entry_count(f, path)
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError,
            struct.error) as err:
        raise ProjectError(path, f"not a CNN Studio project (a damaged zip archive: {err})"
                           ) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ProjectError(path, f"the archive has {len(infos)} members;"
                                     f" a project has at most {MAX_MEMBERS}")
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if name not in (PROJECT_JSON, WEIGHTS) and not is_attachment_name(name):
                continue  # not ours (or a path like ../x): never read, never extracted
            if name in members:
                raise ProjectError(path, f"{name} appears twice in the archive")
            members[name] = info
        if PROJECT_JSON not in members:
            raise ProjectError(path, f"{PROJECT_JSON} is missing from the archive")
        raw = _read_member(archive, members.pop(PROJECT_JSON), MAX_JSON_BYTES, path)
        project = _parse_document(raw, path, PROJECT_JSON)
        for name, info in members.items():
            limit = MAX_WEIGHTS_BYTES if name == WEIGHTS else MAX_ATTACHMENT_BYTES
            data = _read_member(archive, info, limit, path)
            if name.endswith(".safetensors"):
                _check_safetensors(data, name, path, action=None)
            if name == WEIGHTS:
                project.weights = data
            else:
                project.attachments[name] = data
    return project


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int,
                 path: Path) -> bytes:
    """A member's bytes, refused before reading if its declared size is over `limit`."""
    name = info.filename
    if info.file_size > limit:
        raise ProjectError(path, f"{name} is {_size(info.file_size)};"
                                 f" at most {_size(limit)} allowed")
    if info.flag_bits & 0x1:
        raise ProjectError(path, f"{name} is encrypted in the archive")
    if info.compress_type not in _COMPRESSIONS:
        raise ProjectError(path, f"{name} uses an unsupported compression method"
                                 f" ({info.compress_type}); only stored and deflate are read")
    if (info.compress_type != zipfile.ZIP_STORED and info.file_size > RATIO_FLOOR
            and info.file_size > MAX_RATIO * max(info.compress_size, 1)):
        raise ProjectError(path, f"{name} would unpack from {_size(info.compress_size)} to"
                                 f" {_size(info.file_size)} (a zip bomb?); at most"
                                 f" {MAX_RATIO}× is read")
    try:
        with archive.open(info) as member:
            # zipfile never yields more than the declared size and checks the CRC at its end.
            data = member.read(info.file_size)
            if len(data) != info.file_size or member.read(1):
                raise zipfile.BadZipFile("its size does not match the archive's directory")
    except _MEMBER_ERRORS as err:
        raise ProjectError(path, f"{name} is damaged in the archive ({err})") from None
    except MemoryError:
        raise ProjectError(path, f"{name} ({_size(info.file_size)}) does not fit in memory"
                           ) from None
    return data


def _check_entry_count(f: IO[bytes], path: Path) -> None:
    """Refuse an archive whose directory lists more than MAX_MEMBERS entries before
    zipfile builds an object for every one of them (millions fit in a small file)."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    tail_size = min(size, 22 + 65535)  # end record plus the longest possible comment
    f.seek(size - tail_size)
    tail = f.read(tail_size)
    f.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return  # not found: zipfile reports the damage in its own words
    count = struct.unpack_from("<H", tail, at + 10)[0]
    if count == 0xFFFF and at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":
        # Zip64: the real count sits in the zip64 end record the locator points at.
        f.seek(struct.unpack_from("<Q", tail, at - 20 + 8)[0])
        record = f.read(56)
        f.seek(0)
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            count = struct.unpack_from("<Q", record, 32)[0]
    if count > MAX_MEMBERS:
        raise ProjectError(path, f"the archive has {count} members;"
                                 f" a project has at most {MAX_MEMBERS}")


def _check_safetensors(data: bytes, name: str, path: Path, action: str | None) -> None:
    try:
        weights_header(data, name)
    except WeightsError as err:
        raise ProjectError(path, str(err), action=action) from None


# ---- writing --------------------------------------------------------------------------


def write_project(project: Project, path: str | os.PathLike[str], *, backup: bool = True) -> None:
    """Save `project` atomically to `path`: a `.cnnproj` archive, or bare JSON for `*.json`
    (weights and attachments are then left out).

    With `backup`, an existing file is kept as `NAME.bak` first. `project.path` is not
    changed. Raises ProjectError (`cannot save NAME: …`) if the project holds values JSON
    cannot store (NaN, non-JSON types), weights that are not safetensors, a bad attachment
    name, or if the system refuses (permission denied, disk full); the old file is then
    untouched and no temp file is left.
    """
    path = Path(path)
    _check_path(path, "save")
    try:
        text = json.dumps(project_to_dict(project), ensure_ascii=False, indent=2,
                          allow_nan=False) + "\n"
    except (TypeError, ValueError, RecursionError) as err:
        raise ProjectError(path, f"the project holds a value JSON cannot store ({err})",
                           action="save") from None
    payload = text.encode("utf-8")
    if len(payload) > MAX_JSON_BYTES:
        raise ProjectError(path, f"project.json would be larger than {_size(MAX_JSON_BYTES)}",
                           action="save")
    if path.suffix.lower() == ".json":
        _save(path, lambda f: f.write(payload), backup)
        return
    members = _archive_members(project, path)
    members.insert(0, (PROJECT_JSON, payload, zipfile.ZIP_DEFLATED))
    _save(path, lambda f: _write_archive(f, members), backup)


def _save(path: Path, write: Callable[[IO[bytes]], Any], backup: bool) -> None:
    try:
        atomic_write(path, write, backup=backup)
    except OSError as err:
        raise ProjectError(path, _os_reason(err), action="save") from None


def _archive_members(project: Project, path: Path) -> list[tuple[str, bytes, int]]:
    """Weights and attachments, checked so that nothing is written that we would not read."""
    members: list[tuple[str, bytes, int]] = []
    if project.weights is not None:
        members.append((WEIGHTS, project.weights, MAX_WEIGHTS_BYTES))
    for name in sorted(project.attachments):
        if not isinstance(name, str) or not is_attachment_name(name):
            raise ProjectError(path, f"attachment name {name!r} is not a plain file name",
                               action="save")
        members.append((name, project.attachments[name], MAX_ATTACHMENT_BYTES))
    if len(members) + 1 > MAX_MEMBERS:  # + project.json
        raise ProjectError(path, f"too many attachments: {len(project.attachments)}"
                                 f" (an archive holds at most {MAX_MEMBERS} members)",
                           action="save")
    out = []
    for name, data, limit in members:
        if not isinstance(data, bytes | bytearray):
            raise ProjectError(path, f"{name} must be bytes, got {type(data).__name__}",
                               action="save")
        if len(data) > limit:
            raise ProjectError(path, f"{name} is larger than {_size(limit)}", action="save")
        if name.endswith(".safetensors"):
            _check_safetensors(data, name, path, action="save")
        # Tensors hardly compress; storing them keeps saves fast.
        compression = zipfile.ZIP_STORED if name.endswith(".safetensors") else zipfile.ZIP_DEFLATED
        out.append((name, data, compression))
    return out


def _write_archive(f: IO[bytes], members: list[tuple[str, bytes, int]]) -> None:
    stamp = max(time.localtime()[:6], (1980, 1, 1, 0, 0, 0))  # zip cannot date before 1980
    with zipfile.ZipFile(f, "w") as archive:
        for name, data, compression in members:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = compression
            info.external_attr = 0o644 << 16  # a plain readable file if someone unzips it
            archive.writestr(info, data)


def _check_path(path: Path, action: str) -> None:
    # The OS refuses such names with a ValueError, not an OSError (e.g. a path that came
    # from a recovery file's JSON): one more way to fail, said in the same words.
    if "\x00" in str(path):
        raise ProjectError(path, "the file name contains a NUL character", action=action)


def _os_reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"
