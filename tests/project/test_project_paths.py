"""Relative data paths when a project moves to another folder: `rebase_data_paths` and
`absolute_data_paths` keep every source naming the same files."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from cnnstudio.core.data_sources import SOURCE_KINDS, path_keys
from cnnstudio.project import Project, absolute_data_paths, rebase_data_paths

PATH_KINDS = [kind for kind in SOURCE_KINDS if path_keys(kind)]


def _where(value: str, project_dir: Path) -> Path:
    """The file a data path names for a project saved in `project_dir`, as the loader
    resolves it (links followed)."""
    return Project(path=project_dir / "p.cnnproj").resolve_path(value).resolve()


def _folder_data(path: object) -> dict:
    return {"source": {"kind": "folder", "path": path}, "val_fraction": 0.1}


def test_a_relative_path_names_the_same_folder_from_the_new_folder(tmp_path):
    old, new = tmp_path / "a", tmp_path / "b" / "c"
    data = _folder_data("pictures/train")
    moved = rebase_data_paths(data, old, new)
    assert moved == _folder_data("../../a/pictures/train")
    assert _where(moved["source"]["path"], new) == (old / "pictures" / "train").resolve()
    assert data == _folder_data("pictures/train")  # the input is not changed


def test_a_path_reaching_up_with_dotdot_and_a_move_into_a_subfolder(tmp_path):
    old = tmp_path / "projects" / "one"
    moved = rebase_data_paths(_folder_data("../../shared/images"), old, tmp_path / "projects")
    assert moved["source"]["path"] == "../shared/images"
    assert _where("../shared/images", tmp_path / "projects") == tmp_path / "shared" / "images"
    deeper = rebase_data_paths(_folder_data("data"), tmp_path, tmp_path / "x" / "y")
    assert deeper["source"]["path"] == "../../data"


def test_the_same_folder_leaves_the_text_as_the_user_wrote_it(tmp_path):
    data = _folder_data("./data/../images")
    assert rebase_data_paths(data, tmp_path, tmp_path / ".") == data
    assert rebase_data_paths(data, str(tmp_path), str(tmp_path)) == data


def test_absolute_and_home_paths_are_left_alone(tmp_path):
    absolute = str(tmp_path / "elsewhere" / "images")
    for value in (absolute, "~/datasets/cats", "~"):
        assert rebase_data_paths(_folder_data(value), tmp_path, tmp_path / "b") == \
            _folder_data(value)


def test_an_unsaved_project_resolves_against_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    moved = rebase_data_paths(_folder_data("data"), None, tmp_path / "saved")
    assert moved["source"]["path"] == "../work/data"
    assert absolute_data_paths(_folder_data("data"), None) == \
        _folder_data(str((tmp_path / "work" / "data").resolve()))


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_every_path_key_of_every_source_kind_is_rebased(tmp_path, kind):
    keys = path_keys(kind)
    source = {"kind": kind, **{key: f"{key}-data/file" for key in keys},
              "note": "not/a/path", "seed": 3}
    moved = rebase_data_paths({"source": source}, tmp_path / "old", tmp_path / "new")
    expected = {**source, **{key: f"../old/{key}-data/file" for key in keys}}
    assert moved == {"source": expected}
    absolute = absolute_data_paths({"source": source}, tmp_path / "old")["source"]
    assert {key: absolute[key] for key in keys} == {
        key: str((tmp_path / "old" / f"{key}-data" / "file").resolve()) for key in keys}
    assert absolute["note"] == "not/a/path"


def test_the_kind_matches_without_regard_to_case_as_the_settings_do(tmp_path):
    data = {"source": {"kind": "IDX", "images": "x.idx", "labels": "y.idx"}}
    moved = rebase_data_paths(data, tmp_path / "a", tmp_path / "b")
    assert moved["source"] == {"kind": "IDX", "images": "../a/x.idx", "labels": "../a/y.idx"}


@pytest.mark.parametrize("data", [
    {"source": {"kind": "builtin", "name": "digits", "path": "not-a-source-key"}},
    {"source": {"kind": "folder", "path": None}},
    {"source": {"kind": "folder", "path": 7}},
    {"source": {"kind": "folder", "path": ["images"]}},
    {"source": {"kind": "folder", "path": ""}},
    {"source": {"kind": "folder", "path": "nul\x00here"}},
    {"source": {"kind": "someday", "path": "images"}},  # an unknown kind: keys unknown
    {"source": {"kind": 3, "path": "images"}},
    {"source": {"path": "images"}},
    {"source": "images"},
    {"val_fraction": 0.3},
    {},
    [],
])
def test_values_that_are_not_relative_source_paths_are_untouched(tmp_path, data):
    before = copy.deepcopy(data)
    moved = rebase_data_paths(data, tmp_path / "a", tmp_path / "b")
    assert moved == before and data == before
    assert absolute_data_paths(data, tmp_path / "a") == before


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_dotdot_through_a_linked_folder_still_lands_on_the_data(tmp_path):
    # The new project folder is a link into another tree: a plain `../x` from it would
    # climb out of the link's target, not out of the folder the link sits in.
    (tmp_path / "deep" / "real").mkdir(parents=True)
    try:
        (tmp_path / "link").symlink_to(tmp_path / "deep" / "real", target_is_directory=True)
    except OSError:
        pytest.skip("symbolic links are not allowed here")
    (tmp_path / "old" / "pictures").mkdir(parents=True)
    moved = rebase_data_paths(_folder_data("pictures"), tmp_path / "old", tmp_path / "link")
    path = moved["source"]["path"]
    assert not os.path.isabs(path)
    assert _where(path, tmp_path / "link") == (tmp_path / "old" / "pictures").resolve()


def test_no_relative_path_gives_an_absolute_one(tmp_path, monkeypatch):
    def other_drive(path, start=None):
        raise ValueError("path is on mount 'D:', start on mount 'C:'")

    monkeypatch.setattr(os.path, "relpath", other_drive)  # as on Windows across drives
    moved = rebase_data_paths(_folder_data("pictures"), tmp_path / "a", tmp_path / "b")
    assert moved == _folder_data(str((tmp_path / "a" / "pictures").resolve()))
