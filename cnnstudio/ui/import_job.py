"""What File → Import Model… asks for, and the import itself in a child process.

Runs on a worker thread (never the GUI thread): it starts `cnnstudio.nn.importing.child`,
relays its progress, kills it on Cancel, and reads the project it wrote (no torch in this
process: the window stays as light as it was). See that module for why a process.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cnnstudio.core.import_spec import split_model_spec
from cnnstudio.project import Project, ProjectError, read_project

POLL_S = 0.05  # how often the worker looks at Cancel while the child works
CHILD_MODULE = "cnnstudio.nn.importing.child"


@dataclass(frozen=True)
class ImportRequest:
    """One import: `model` an .onnx path or `FILE.py:CLASS`; the rest optional."""

    model: str
    input_shape: tuple[int, ...] | None = None
    weights: str | None = None
    name: str | None = None

    @property
    def runs_code(self) -> bool:
        """True for a PyTorch class: importing it runs the user's file."""
        path, class_name = split_model_spec(self.model)
        return class_name is not None or path.suffix.lower() == ".py"

    @property
    def file_name(self) -> str:
        """The model file's name, for messages."""
        return split_model_spec(self.model)[0].name


@dataclass
class ImportOutcome:
    """The imported project (unsaved: no path) and what to tell the user."""

    project: Project
    summary: str  # "12 layers, 61,706 parameters"
    notes: list[str] = field(default_factory=list)
    source: str = ""
    kind: str = ""


class ImportFailed(Exception):
    """The model cannot be imported; str is the one line to show."""


class ImportCancelled(Exception):
    """Cancel was pressed before the import ended; nothing was kept."""


def _options(request: ImportRequest, output: Path) -> str:
    def absolute(path: str) -> str:
        return os.path.abspath(os.path.expanduser(path))

    path, class_name = split_model_spec(request.model)
    model = absolute(str(path)) if request.model.strip() else ""
    if class_name is not None:
        model += f":{class_name}"
    return json.dumps({"model": model, "output": str(output),
                       "input_shape": list(request.input_shape) if request.input_shape
                       else None,
                       "weights": absolute(request.weights) if request.weights else None,
                       "name": request.name or None})


def _pump(stream, lines: queue.Queue) -> None:  # noqa: ANN001 (a text pipe)
    """Move the child's answer lines into `lines` (None at the end)."""
    try:
        for line in stream:
            lines.put(line)
    finally:
        lines.put(None)


def import_in_child(request: ImportRequest, cancelled: Callable[[], bool] = lambda: False,
                    progress: Callable[[str, int, int], None] | None = None
                    ) -> ImportOutcome:
    """Import `request` in a child process and read the project it made.

    Raises ImportFailed (one line) when the model cannot be imported or the child dies,
    ImportCancelled when `cancelled()` turned True first (the child is killed)."""
    with tempfile.TemporaryDirectory(prefix="cnnstudio-import-") as folder:
        output = Path(folder) / "imported.cnnproj"
        log = Path(folder) / "child.log"
        command = [sys.executable, "-m", CHILD_MODULE, _options(request, output)]
        with open(log, "wb") as errors:
            # Started in the temporary folder: `-m` puts the working folder first on
            # sys.path, and a folder holding another `cnnstudio` must not answer for it.
            # A session (process group) of its own: the user's code may start processes,
            # and Cancel ends them with the child.
            child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors,
                                     stdin=subprocess.DEVNULL, text=True,
                                     encoding="utf-8", errors="replace", cwd=folder,
                                     start_new_session=os.name == "posix")
            try:
                lines: queue.Queue[str | None] = queue.Queue()
                threading.Thread(target=_pump, args=(child.stdout, lines), daemon=True,
                                 name="cnnstudio-import-pipe").start()
                answer = _follow(child, lines, cancelled, progress)
            finally:
                _kill(child)  # whatever happened: nothing of the import outlives it
        if answer is None:
            tail = log.read_text("utf-8", "replace").strip().splitlines()
            last = tail[-1] if tail else f"exit status {child.returncode}"
            raise ImportFailed(f"the import of {request.file_name} stopped: {last}")
        if "error" in answer:
            raise ImportFailed(str(answer["error"]))
        try:
            project = read_project(output)
        except ProjectError as err:
            raise ImportFailed(f"the imported project cannot be read: {err}") from None
    project.path = None  # a new, unsaved project: Save asks where
    return ImportOutcome(project, str(answer.get("summary", "")),
                         [str(n) for n in answer.get("notes", [])],
                         str(answer.get("source", "")), str(answer.get("kind", "")))


def _kill(child: subprocess.Popen) -> None:
    """End the child and every process it started (its process group, on POSIX), unless
    the whole group has ended already; then reap the child."""
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # The group outlives a child that exited while its own children still run.
            os.killpg(child.pid, signal.SIGKILL)
    elif child.poll() is None:
        child.kill()
    child.wait()


def _follow(child: subprocess.Popen, lines: queue.Queue, cancelled: Callable[[], bool],
            progress: Callable[[str, int, int], None] | None) -> dict | None:
    """Relay the child's progress until it ends; its last answer (None when it gave
    none: it crashed). Kills it and raises ImportCancelled on Cancel."""
    answer: dict | None = None
    while True:
        if cancelled():
            _kill(child)
            raise ImportCancelled()
        try:
            line = lines.get(timeout=POLL_S)
        except queue.Empty:
            continue
        if line is None:
            break
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if not isinstance(message, dict):
                continue
            if "progress" in message and progress is not None:
                stage, done, total = message["progress"]
                progress(str(stage), int(done), int(total))
            elif "progress" not in message:
                answer = message
    child.wait()
    return answer
