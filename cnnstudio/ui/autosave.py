"""Autosave: unsaved work is written to a recovery file every minute, atomically.

A recovery file is an ordinary project archive in `<data dir>/recovery/`, named after a
hash of the project's path (or `untitled`). It also records, under one extra key, which
file it recovers, so a recovered project saves back to where it came from. The file is
deleted after a clean save or when the user closes without saving.

The timer and the end of a run write on a worker thread (a project with tens of MB of
weights takes 40–80 ms to write and fsync): the GUI thread only takes a copy (under 1 ms).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from cnnstudio.core.errors import first_line
from cnnstudio.project import Project, ProjectError, read_project, write_project
from cnnstudio.ui.document import Document
from cnnstudio.ui.settings import data_dir
from cnnstudio.ui.training.background import Background

INTERVAL_MS = 60_000
RECOVERY_KEY = "cnnstudio_recovery"  # top-level key in recovery files only; never saved


def recovery_dir() -> Path:
    """The folder holding recovery files."""
    return data_dir() / "recovery"


def recovery_path(project_path: str | Path | None) -> Path:
    """The recovery file for a project saved at `project_path` (None: untitled)."""
    if project_path is None:
        stem = "untitled"
    else:
        try:
            key = str(Path(project_path).expanduser().resolve())
        except (OSError, ValueError, RuntimeError):  # a NUL, a link loop: hash it as given
            key = str(project_path)
        stem = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return recovery_dir() / f"{stem}.cnnproj"


def recovery_files() -> list[Path]:
    """Recovery files left by earlier sessions, newest first."""
    folder = recovery_dir()
    if not folder.is_dir():
        return []
    dated = []
    for path in folder.glob("*.cnnproj"):
        try:  # another session may delete its file while we look
            if path.is_file():
                dated.append((path.stat().st_mtime, path))
        except OSError:
            continue
    return [path for _, path in sorted(dated, reverse=True)]


def write_recovery(project: Project, target: Path) -> None:
    """Write `project` to recovery file `target` atomically; raises ProjectError."""
    info = {"path": str(project.path) if project.path else None, "saved": time.time()}
    copy = dataclasses.replace(project, extra={**project.extra, RECOVERY_KEY: info})
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # e.g. a file where the folder should be: the timer must go on
        raise ProjectError(target, err.strerror or str(err), action="save") from None
    write_project(copy, target, backup=False)


def read_recovery(path: str | Path) -> Project:
    """Read a recovery file: the project, with `path` set to the file it recovers (or None
    for untitled work). Raises ProjectError."""
    project = read_project(path)
    info = project.extra.pop(RECOVERY_KEY, None)
    original = info.get("path") if isinstance(info, dict) else None
    usable = isinstance(original, str) and original and "\x00" not in original
    project.path = Path(original) if usable else None  # junk: recovered as untitled work
    return project


def describe(path: Path) -> str:
    """A line for the recovery prompt: the project name and when it was saved."""
    try:
        project = read_recovery(path)
    except ProjectError as err:
        return f"{path.name} (unreadable: {err.reason})"
    where = project.path.name if project.path else "untitled"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    return f"{project.name} ({where}, autosaved {when})"


def discard_recovery(path: str | Path) -> None:
    """Delete a recovery file (missing or undeletable is fine: this runs on save and on
    close, which must not fail over a leftover recovery file)."""
    with contextlib.suppress(OSError):
        Path(path).unlink()


class Autosaver(QObject):
    """Writes the document's project to its recovery file while it has unsaved changes."""

    saved = Signal(str)  # the recovery file written
    failed = Signal(str)  # one-line reason

    def __init__(self, document: Document, interval_ms: int = INTERVAL_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self._written: Path | None = None  # the recovery file this session wrote last
        self._state: tuple[int, int, int] | None = None  # what the last write held
        self._submitted: tuple[tuple[int, int, int], Path] | None = None  # on the worker
        self._writer = Background(self, needs_torch=False)  # one write at a time, in order
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.save_soon())
        self.timer.start()

    @property
    def target(self) -> Path:
        """The recovery file for the open project."""
        return recovery_path(self.doc.path)

    def _current_state(self) -> tuple[int, int, int]:
        return (id(self.doc.project), self.doc.undo_stack.index(), self.doc.graph.revision)

    def _due(self, changed: bool) -> tuple[tuple[int, int, int], Path] | None:
        """(state, target) when there is unsaved work not yet written (`changed`: the
        project changed without an undo step, as a run's write-back does), else None."""
        if self.doc.undo_stack.isClean():
            return None
        state, target = self._current_state(), self.target
        if not changed and state == self._state and target == self._written and target.exists():
            return None
        return state, target

    def save_now(self) -> Path | None:
        """Write the recovery file if there are unsaved changes not yet written; return it."""
        due = self._due(False)
        if due is None:
            return None
        self._settle()  # a write still going on the worker must not land after this one
        try:
            write_recovery(self.doc.project, due[1])
        except ProjectError as err:
            self.failed.emit(err.reason)
            return None
        return self._wrote(due)

    def save_soon(self, changed: bool = False) -> None:
        """`save_now` on the worker thread (the timer; the end of a run with `changed`);
        `saved` or `failed` says how it went."""
        due = self._due(changed)
        if due is None or (not changed and due == self._submitted
                           and self._writer.pending("write")):
            return  # nothing new, or the same work is being written
        self._submitted = due
        project = self.doc.project.copy()  # the worker's own: editing goes on meanwhile
        self._writer.submit("write", lambda: write_recovery(project, due[1]),
                            lambda _none: self._wrote(due),
                            lambda err: self.failed.emit(
                                err.reason if isinstance(err, ProjectError) else first_line(err)))

    def _wrote(self, due: tuple[tuple[int, int, int], Path]) -> Path:
        state, target = due
        if self._written is not None and self._written != target:
            discard_recovery(self._written)  # saved under another name since
        self._written, self._state = target, state
        self.saved.emit(str(target))
        return target

    def _settle(self) -> None:
        """Drop the writes not begun, and wait for the one going on (at most one file)."""
        self._writer.forget()
        self._writer.wait()

    def discard(self) -> None:
        """Forget the unsaved work: delete this session's recovery file(s)."""
        self._settle()  # a write finishing later would bring the file back
        submitted = self._submitted[1] if self._submitted is not None else None
        for path in {self._written, self.target, submitted} - {None}:
            discard_recovery(path)  # type: ignore[arg-type]
        self._written, self._state, self._submitted = None, None, None
