"""A full disk (ENOSPC, simulated) while saving: one clear message, the old file intact,
no temp file left, and nothing of the work in memory lost — through `write_project`, the
CLI's `train`, the window's Save and the autosave timer."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cnnstudio.cli import main
from cnnstudio.project import ProjectError, atomic, read_project, write_project

from .helpers import assert_one_line, template_project

FULL = "No space left on device"


class _FillingFile(io.RawIOBase):
    """A file that takes `room` bytes and then raises ENOSPC, as a full disk does."""

    def __init__(self, real: io.BufferedWriter, room: int) -> None:
        self.real, self.room = real, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # noqa: ANN001
        if len(data) > self.room:
            self.real.write(bytes(data[:self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, FULL)
        self.room -= len(data)
        return self.real.write(data)

    def fileno(self) -> int:
        return self.real.fileno()

    def flush(self) -> None:
        self.real.flush()

    def close(self) -> None:
        if not self.closed:
            super().close()  # flushes through us first
            self.real.close()


def fill_disk(monkeypatch: pytest.MonkeyPatch, where: str, room: int = 1000) -> None:
    """Make saves fail with ENOSPC: mid-write (`write`) or at the final `fsync`."""
    if where == "write":
        real_fdopen = os.fdopen

        def fdopen(fd: int, mode: str = "r", *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            return _FillingFile(real_fdopen(fd, mode, *args, **kwargs), room)

        monkeypatch.setattr(atomic.os, "fdopen", fdopen)
    else:
        def fsync(fd: int) -> None:
            raise OSError(errno.ENOSPC, FULL)

        monkeypatch.setattr(atomic.os, "fsync", fsync)


def saved(tmp_path: Path, name: str = "p.cnnproj") -> tuple[Path, bytes]:
    path = tmp_path / name
    write_project(template_project("xo", weights=True), path)
    return path, path.read_bytes()


def no_temp_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [], leftovers


@pytest.mark.parametrize("where", ["write", "fsync"])
@pytest.mark.parametrize("suffix", [".cnnproj", ".json"])
def test_write_project_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      where: str, suffix: str) -> None:
    path, before = saved(tmp_path, f"p{suffix}")
    project = read_project(path)
    project.name = "changed"
    fill_disk(monkeypatch, where)
    with pytest.raises(ProjectError) as info:
        write_project(project, path)
    assert str(info.value) == f"cannot save p{suffix}: {FULL}"
    assert path.read_bytes() == before
    no_temp_files(tmp_path)


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_cli_train_on_a_full_disk_keeps_the_old_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        where: str) -> None:
    project = template_project("xo", weights=True)
    project.training = {"epochs": 1}
    path = tmp_path / "p.cnnproj"
    write_project(project, path)
    before = path.read_bytes()
    fill_disk(monkeypatch, where, room=500)
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert_one_line(err)
    assert err.strip() == f"cnnstudio: cannot save {path}: {FULL}"  # the path as given
    assert path.read_bytes() == before
    no_temp_files(tmp_path)


def test_window_save_on_a_full_disk(window, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path, before = saved(tmp_path)
    assert window.open_project(path)
    window.view.select_all()
    window.view.delete_selection()  # an edit worth keeping
    assert not window.undo_stack.isClean()
    with monkeypatch.context() as patch:
        fill_disk(patch, "write")
        assert window.save_project() is False
    assert window.last_error == f"cannot save p.cnnproj: {FULL}"
    assert path.read_bytes() == before
    assert not window.undo_stack.isClean()  # still unsaved: nothing is pretended
    assert len(window.project.graph) == 0  # and the edit is still there
    no_temp_files(tmp_path)
    assert window.save_project() is True  # room again: the same work saves
    assert len(read_project(path).graph) == 0


def test_autosave_on_a_full_disk_reports_and_retries(window, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnstudio.ui import autosave

    reasons: list[str] = []
    window.autosaver.failed.connect(reasons.append)
    window.view.select_all()
    window.view.delete_selection()
    with monkeypatch.context() as patch:
        fill_disk(patch, "fsync")
        assert window.autosaver.save_now() is None
    assert reasons == [FULL]
    assert "Autosave failed" in window.statusBar().currentMessage()
    assert autosave.recovery_files() == []
    assert window.autosaver.save_now() is not None  # the next tick succeeds
    assert len(autosave.recovery_files()) == 1


@pytest.mark.parametrize("make_folder_fail", [True, False])
def test_autosave_where_the_recovery_folder_cannot_be_made(
        window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        make_folder_fail: bool) -> None:
    """The recovery folder's parent is a file (or read-only): a status message, never an
    exception out of the timer's slot."""
    from cnnstudio.ui import autosave

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    target = blocker / "recovery" if make_folder_fail else tmp_path / "ok"
    monkeypatch.setattr(autosave, "recovery_dir", lambda: target)
    reasons: list[str] = []
    window.autosaver.failed.connect(reasons.append)
    window.view.select_all()
    window.view.delete_selection()
    result: Callable[[], object] = window.autosaver.save_now
    if make_folder_fail:
        assert result() is None
        assert len(reasons) == 1
        assert_one_line(reasons[0])
    else:
        assert result() is not None and reasons == []
