"""Crash safety: SIGKILL during saves never loses the file, and autosave survives a kill.

A warm server process forks one saver per case (see crash_child.py); the saver writes
versions 1, 2, 3… of a project with a few MB of weights back to back, and the test kills
it at a random moment. Then the file on disk must be a complete project, exactly the last
version the saver finished or the one it was writing, and `NAME.bak` the version before.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnstudio.project import project_to_dict, read_project

from .helpers import cli_env

CHILD = Path(__file__).with_name("crash_child.py")


class SaveServer:
    """The crash_child save server: `start(folder)` forks a saver and returns its pid."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(CHILD), "save-server"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=cli_env())
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "ready\n"

    def start(self, folder: Path) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"go {folder}\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def wait_gone(pid: int, timeout: float = 10) -> None:
    """Until the killed process no longer exists: a syscall it was in (a rename, an fsync)
    finishes before it dies, and the file must be judged after that."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} survived SIGKILL")


def finished(folder: Path) -> list[int]:
    text = (folder / "progress").read_text() if (folder / "progress").exists() else ""
    return [int(n) for n in text.split()]


def expected(version: int) -> tuple[str, bytes]:
    sys.path.insert(0, str(CHILD.parent))
    try:
        from crash_child import weights
    finally:
        sys.path.pop(0)
    return f"save {version}", weights(version)


def check_version(path: Path, allowed: set[int], blobs: dict[int, bytes]) -> int:
    """The project at `path` reads and is exactly one of the `allowed` versions."""
    project = read_project(path)  # a torn file would raise ProjectError here
    version = int(project.name.split()[1])
    assert version in allowed, (path.name, version, allowed)
    assert project.weights == blobs[version % 2], f"{path.name}: weights of another version"
    from cnnstudio.core.templates import TEMPLATES
    from cnnstudio.project import project_from_dict

    reference = project_from_dict(TEMPLATES["xo"].project_dict(f"save {version}"))
    assert project_to_dict(project) == project_to_dict(reference)
    return version


def kill_saves(tmp_path: Path, cases: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    blobs = {0: expected(0)[1], 1: expected(1)[1]}
    server = SaveServer()
    stats = {"mid-save": 0, "new": 0, "old": 0}
    try:
        for case in range(cases):
            folder = tmp_path / f"case{case}"
            folder.mkdir()
            pid = server.start(folder)
            while not finished(folder):  # the first save is done: the loop is running
                time.sleep(0.0005)
            time.sleep(rng.uniform(0, 0.04))  # a few saves' worth: any phase of one
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid)
            done = finished(folder)[-1]
            # The saver finished `done`; it may have finished done+1 and died before
            # recording it, or died writing done+1.
            on_disk = check_version(folder / "p.cnnproj", {done, done + 1}, blobs)
            backup = check_version(folder / "p.cnnproj.bak", {done - 1, done}, blobs)
            # The backup is the version before the file's, or (killed between making the
            # backup and the rename) a copy of the file itself.
            assert backup in (on_disk - 1, on_disk), (on_disk, backup)
            stats["new" if on_disk > done else "old"] += 1
            leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
            stats["mid-save"] += bool(leftovers)
            assert all(n.startswith(".p.cnnproj.") for n in leftovers), leftovers
    finally:
        server.close()
    return stats


@pytest.mark.timeout(120)
def test_sigkill_during_saves_keeps_a_complete_file_100_times(tmp_path: Path) -> None:
    stats = kill_saves(tmp_path, 100, seed=1)
    # The kills must land inside saves, not only between them, for the test to mean much.
    assert stats["mid-save"] >= 20, stats


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_during_saves_volume(tmp_path: Path) -> None:
    stats = kill_saves(tmp_path, 500, seed=2)
    assert stats["mid-save"] >= 100, stats


# ---- autosave after a kill ------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_autosave_recovers_unsaved_edits_after_sigkill(tmp_path: Path, qtbot,
                                                      isolated_user_dirs: Path) -> None:
    from cnnstudio.project import write_project
    from cnnstudio.ui import MainWindow, autosave

    from .helpers import template_project

    original = tmp_path / "p.cnnproj"
    write_project(template_project("xo"), original)
    saved_bytes = original.read_bytes()
    env = cli_env(CNNSTUDIO_SETTINGS_DIR=str(isolated_user_dirs / "settings"),
                  CNNSTUDIO_DATA_DIR=str(isolated_user_dirs / "data"))
    child = subprocess.Popen([sys.executable, str(CHILD), "autosave", str(tmp_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("autosaved "), (line, child.stderr and child.stderr.read())
    finally:
        child.kill()
        child.wait(timeout=30)
    assert original.read_bytes() == saved_bytes  # the edits were never saved there

    window = MainWindow()
    qtbot.addWidget(window)
    window.confirm_unsaved = False
    files = autosave.recovery_files()
    assert [str(p) for p in files] == [line.split(" ", 1)[1].strip()]
    assert "autosaved" in autosave.describe(files[0])
    assert window.recover(files[0]) is True
    graph = window.project.graph
    assert graph.node("unsaved_dropout").params == {"p": 0.25}
    assert next(n for n in graph if n.type == "Conv2d").params["out_channels"] == 7
    assert window.project.path == original  # recovered work saves back where it belongs
    assert not window.undo_stack.isClean()  # and is shown as unsaved
    assert window.save_project() is True
    assert "unsaved_dropout" in read_project(original).graph
    assert autosave.recovery_files() == []  # saved: the recovery file is gone
