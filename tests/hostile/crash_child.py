"""Processes for test_crash_safety to kill (run as scripts, never imported by pytest).

`save-server`: imports everything once, then for each `go FOLDER` line on stdin forks a
child that saves a project to FOLDER/p.cnnproj over and over — version 0 first (before
the fork, so the file exists), then 1, 2, 3… each named `save N`, with weights of a few
MB alternating between two contents — appending N to FOLDER/progress after each save
returns. The server answers with the child's pid; the test SIGKILLs it at a random
moment. Forking from a warm, single-threaded server makes a case cost milliseconds.

`autosave FOLDER`: opens the window offscreen on FOLDER/p.cnnproj, makes unsaved edits,
writes the autosave recovery file, prints `autosaved PATH`, and waits to be killed.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

WEIGHT_FLOATS = 1_000_000  # 4 MB of float32: a save takes a few ms (write + fsync)


def weights(version: int) -> bytes:
    import numpy as np
    from safetensors.numpy import save

    return save({"fc.weight": np.full(WEIGHT_FLOATS, version % 2, np.float32)})


def version_project(version: int, blobs: list[bytes]):
    from cnnstudio.core.templates import TEMPLATES
    from cnnstudio.project import project_from_dict

    project = project_from_dict(TEMPLATES["xo"].project_dict(f"save {version}"))
    project.weights = blobs[version % 2]
    return project


def save_loop(folder: Path, blobs: list[bytes]) -> None:
    from cnnstudio.project import write_project

    target, progress = folder / "p.cnnproj", os.open(folder / "progress",
                                                     os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    version = 1
    while True:
        write_project(version_project(version, blobs), target)
        os.write(progress, f"{version}\n".encode())  # a write(2): survives SIGKILL
        version += 1


def save_server() -> None:
    from cnnstudio.project import write_project

    blobs = [weights(0), weights(1)]
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves
    print("ready", flush=True)
    for line in sys.stdin:
        folder = Path(line.split(" ", 1)[1].strip())
        write_project(version_project(0, blobs), folder / "p.cnnproj")
        pid = os.fork()
        if pid == 0:
            try:
                save_loop(folder, blobs)
            finally:
                os._exit(1)
        print(pid, flush=True)


def autosave(folder: Path) -> None:
    from PySide6.QtWidgets import QApplication

    from cnnstudio.ui import MainWindow
    from cnnstudio.ui.commands import AddNodeCommand, SetParamsCommand

    app = QApplication([])
    window = MainWindow()
    window.confirm_unsaved = False
    assert window.open_project(folder / "p.cnnproj")
    doc = window.document
    doc.undo_stack.push(AddNodeCommand(doc, "Dropout", {"p": 0.25}, pos=(10.0, 20.0),
                                       node_id="unsaved_dropout"))
    conv = next(n for n in doc.graph if n.type == "Conv2d")
    doc.undo_stack.push(SetParamsCommand(doc, conv.id, {**conv.params, "out_channels": 7}))
    path = window.autosaver.save_now()
    print(f"autosaved {path}", flush=True)
    app.processEvents()
    signal.pause()  # until SIGKILL


if __name__ == "__main__":
    if sys.argv[1] == "save-server":
        save_server()
    else:
        autosave(Path(sys.argv[2]))
