"""Atomic saves: a failure at any step leaves the old file whole and no temp file behind."""

from __future__ import annotations

import errno
import math
import os
import stat
import zipfile
from pathlib import Path

import pytest

from cnnstudio.project import Project, ProjectError, read_project, write_project
from cnnstudio.project import atomic as project_atomic

from .helpers import full_project, weights_bytes


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A project saved once as x.cnnproj (name "first")."""
    project = full_project()
    project.name = "first"
    write_project(project, tmp_path / "x.cnnproj")
    return tmp_path / "x.cnnproj"


def _second() -> Project:
    project = full_project()
    project.name = "second"
    project.weights = weights_bytes()
    return project


def test_first_save_makes_no_backup_and_the_second_keeps_the_first(saved: Path):
    assert _names(saved.parent) == ["x.cnnproj"]
    first = saved.read_bytes()
    write_project(_second(), saved)
    assert _names(saved.parent) == ["x.cnnproj", "x.cnnproj.bak"]
    assert (saved.parent / "x.cnnproj.bak").read_bytes() == first
    assert read_project(saved).name == "second"
    assert read_project(saved.parent / "x.cnnproj.bak").name == "first"
    write_project(Project(name="third"), saved)
    assert read_project(saved.parent / "x.cnnproj.bak").name == "second"


def test_backup_can_be_turned_off(saved: Path):
    write_project(_second(), saved, backup=False)
    assert _names(saved.parent) == ["x.cnnproj"]


def test_backup_falls_back_to_a_copy_where_links_are_refused(saved: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    first = saved.read_bytes()
    monkeypatch.setattr(os, "link", _raiser(errno.EPERM))
    write_project(_second(), saved)
    assert (saved.parent / "x.cnnproj.bak").read_bytes() == first


def test_a_failed_backup_does_not_cost_the_save(saved: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(os, "link", _raiser(errno.EPERM))
    monkeypatch.setattr(project_atomic.shutil, "copy2", _raiser(errno.ENOSPC))
    write_project(_second(), saved)
    assert read_project(saved).name == "second"
    assert _names(saved.parent) == ["x.cnnproj"]


def _raiser(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


@pytest.mark.parametrize(("target", "obj", "attr"), [
    ("replace", os, "replace"),
    ("fsync", os, "fsync"),
    ("writestr", zipfile.ZipFile, "writestr"),
])
def test_failure_mid_save_keeps_the_old_file_and_removes_the_temp(
        saved: Path, monkeypatch: pytest.MonkeyPatch, target: str, obj, attr: str):
    before = saved.read_bytes()
    monkeypatch.setattr(obj, attr, _raiser(errno.ENOSPC))
    with pytest.raises(ProjectError) as info:
        write_project(_second(), saved)
    monkeypatch.undo()
    assert str(info.value) == "cannot save x.cnnproj: No space left on device"
    assert saved.read_bytes() == before
    assert [n for n in _names(saved.parent) if n.endswith(".tmp")] == []


def test_an_interrupt_mid_save_removes_the_temp_and_propagates(saved: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    before = saved.read_bytes()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(zipfile.ZipFile, "writestr", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_project(_second(), saved)
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert _names(saved.parent) == ["x.cnnproj"]


def test_saving_where_the_system_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ProjectError) as info:
        write_project(Project(), tmp_path / "nowhere" / "x.cnnproj")
    assert str(info.value) == "cannot save x.cnnproj: No such file or directory"
    monkeypatch.setattr(project_atomic.tempfile, "mkstemp", _raiser(errno.EACCES))
    with pytest.raises(ProjectError) as info:
        write_project(Project(), tmp_path / "x.json")
    assert str(info.value) == "cannot save x.json: Permission denied"
    assert _names(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="needs a POSIX user that file modes restrict (not root)")
def test_saving_into_a_read_only_folder(tmp_path: Path):
    folder = tmp_path / "ro"
    folder.mkdir()
    write_project(Project(name="old"), folder / "x.cnnproj")
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(ProjectError, match=r"^cannot save x\.cnnproj: Permission denied$"):
            write_project(Project(name="new"), folder / "x.cnnproj")
        assert read_project(folder / "x.cnnproj").name == "old"
    finally:
        folder.chmod(stat.S_IRWXU)


def test_saving_onto_a_folder_fails_cleanly(tmp_path: Path):
    (tmp_path / "x.cnnproj").mkdir()
    with pytest.raises(ProjectError, match=r"^cannot save x\.cnnproj: "):
        write_project(Project(), tmp_path / "x.cnnproj")
    assert _names(tmp_path) == ["x.cnnproj"]


def test_values_json_cannot_hold_are_refused_before_touching_disk(saved: Path):
    before = saved.read_bytes()
    for bad in (Project(training={"optimizer": {"lr": math.nan}}), Project(extra={"x": {1, 2}})):
        with pytest.raises(ProjectError, match="^cannot save x.cnnproj: the project holds a"):
            write_project(bad, saved)
    assert saved.read_bytes() == before
    assert _names(saved.parent) == ["x.cnnproj"]


@pytest.mark.parametrize(("change", "words"), [
    ({"weights": b"\x80\x04junk"}, "weights.safetensors is not a safetensors file"),
    ({"weights": weights_bytes()[:-1]}, "weights.safetensors is truncated"),
    ({"attachments": {"resume.safetensors": b"nope"}}, "resume.safetensors is truncated"),
    ({"attachments": {"../evil": b""}}, "attachment name '../evil' is not a plain file name"),
    ({"attachments": {"project.json": b""}}, "'project.json' is not a plain file name"),
    ({"attachments": {f"a{i}": b"" for i in range(64)}}, "too many attachments: 64"),
    ({"attachments": {"notes.txt": "text"}}, "notes.txt must be bytes, got str"),
])
def test_contents_we_would_refuse_to_read_are_never_written(saved: Path, change: dict,
                                                            words: str):
    before = saved.read_bytes()
    project = full_project()
    for key, value in change.items():
        setattr(project, key, value)
    with pytest.raises(ProjectError) as info:
        write_project(project, saved)
    assert str(info.value).startswith("cannot save x.cnnproj: ")
    assert words in str(info.value)
    assert saved.read_bytes() == before


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_the_new_file_keeps_the_old_files_mode(saved: Path):
    saved.chmod(0o640)
    write_project(_second(), saved)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o640
    write_project(Project(), saved.parent / "new.cnnproj")
    assert stat.S_IMODE((saved.parent / "new.cnnproj").stat().st_mode) & 0o600 == 0o600


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_saving_through_a_symlink_keeps_the_link(saved: Path):
    link = saved.parent / "link.cnnproj"
    link.symlink_to(saved.name)
    write_project(_second(), link)
    assert link.is_symlink()
    assert read_project(saved).name == "second"
