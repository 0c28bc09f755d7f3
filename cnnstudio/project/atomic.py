"""Atomic file replacement: a crash during a save never loses the previous file."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any], *,
                 backup: bool = True) -> None:
    """Replace the file at `path` with what `write(f)` writes to a binary file object.

    The bytes go to a temp file in the same folder, are fsynced, the old file is kept as
    `NAME.bak` (with `backup`; best effort), then `os.replace` puts the new file in place
    and the folder is fsynced. The target always exists, old or new. On any failure the
    temp file is removed and the exception (OSError for system faults) propagates.
    """
    target = Path(path)
    if target.is_symlink():
        target = Path(os.path.realpath(target))  # save through the link, keep the link
    folder = target.parent
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _set_mode(tmp, target)
        if backup and target.is_file():
            _keep_backup(target)
        os.replace(tmp, target)
    except BaseException:  # KeyboardInterrupt too: never leave a temp file behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(folder)


def destination_problem(path: str | os.PathLike[str]) -> str | None:
    """Why `atomic_write` could not create a file at `path`, as a phrase (e.g. "the folder
    /x does not exist"), or None when it can. Checked before long work (training, an
    export) so that its result is never lost to a failed save at the end."""
    target = Path(path)
    if target.is_dir():
        return "it is a folder; give a file name"
    folder = target.parent
    if not folder.exists():
        return f"the folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:  # the one reliable test (ACLs, read-only mounts, root): create a file there
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        return f"cannot write in the folder {folder} ({err.strerror or err})"
    return None


def _keep_backup(target: Path) -> None:
    """Make `NAME.bak` the current file, never leaving the target missing. A hard link
    costs nothing; where links are refused, copy. Best effort: a failed backup must not
    cost the user the save itself."""
    backup = target.with_name(target.name + ".bak")
    scratch = target.with_name(f".{target.name}.{secrets.token_hex(4)}.bak.tmp")
    try:
        try:
            os.link(target, scratch)
        except OSError:
            shutil.copy2(target, scratch)
        os.replace(scratch, backup)
    except OSError:
        with contextlib.suppress(OSError):
            scratch.unlink()


def _set_mode(tmp: Path, target: Path) -> None:
    """mkstemp creates 0600 files: give the new file the old one's mode, or the usual."""
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    with contextlib.suppress(OSError):  # e.g. filesystems without modes
        os.chmod(tmp, mode)


def _umask() -> int:
    # os.umask can only be read by setting it, which races with other threads; Linux tells.
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable, where the platform can (not on Windows)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
