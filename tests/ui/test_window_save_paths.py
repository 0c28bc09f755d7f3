"""Saving loses nothing (SPEC §2.1, §3): Save As into another folder keeps relative data
paths pointing at the same data (undo and redo included), and saving a trained project
as a bare `.json` asks before the weights are left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save

from cnnstudio.project import project_to_dict, read_project
from cnnstudio.ui.commands import SetSettingsCommand
from cnnstudio.ui.main_window import DISCARD


@pytest.fixture(autouse=True)
def dataset_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Decoded datasets go to this test's own cache."""
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _class_folder(root: Path, classes: dict[str, int]) -> Path:
    """root/<class>/<i>.png, `classes[name]` pictures each."""
    for c, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = np.full((8, 8), 60 * c + i, np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


def _use_folder(window, path: str) -> None:
    """Point the data source at `path`, as the Data form does (one undoable command)."""
    data = {**window.project.data, "source": {"kind": "folder", "path": path}}
    window.undo_stack.push(SetSettingsCommand(window.document, "data", data, "Data: folder"))


def _source_path(window) -> str:
    return window.project.data["source"]["path"]


def _resolved(project, value: str) -> Path:
    return project.resolve_path(value).resolve()


def test_save_as_into_another_folder_keeps_the_data_reachable(window, tmp_path):
    old_dir, new_dir = tmp_path / "a", tmp_path / "b" / "c"
    new_dir.mkdir(parents=True)
    _class_folder(old_dir / "pictures", {"cat": 3, "dog": 3})
    _class_folder(old_dir / "more", {"x": 2, "y": 2, "z": 2})
    assert window.save_project(old_dir / "p.cnnproj")
    _use_folder(window, "pictures")
    _use_folder(window, "more")
    assert window.save_project(new_dir / "q.cnnproj")  # Save As

    assert window.project.path == new_dir / "q.cnnproj"
    assert _source_path(window) == "../../a/more"
    assert window.data_view.form.paths[0].edit.text() == "../../a/more"
    assert not window.isWindowModified()
    saved = read_project(new_dir / "q.cnnproj")
    assert saved.data == window.project.data
    assert _resolved(saved, saved.data["source"]["path"]) == (old_dir / "more").resolve()

    from cnnstudio.train.api import load_project_data

    assert load_project_data(saved).class_names == ["x", "y", "z"]
    # Undo and redo put back sections that name the same folders from the new place.
    window.undo_stack.undo()
    assert _source_path(window) == "../../a/pictures"
    assert _resolved(window.project, _source_path(window)) == (old_dir / "pictures").resolve()
    window.undo_stack.undo()
    assert window.project.data["source"]["kind"] == "builtin"
    window.undo_stack.redo()
    window.undo_stack.redo()
    assert _source_path(window) == "../../a/more"


def test_data_edits_inside_a_macro_are_rebased_too(window, tmp_path):
    (tmp_path / "a").mkdir()
    assert window.save_project(tmp_path / "a" / "p.cnnproj")
    window.undo_stack.beginMacro("Several edits")
    _use_folder(window, "pictures")
    window.undo_stack.endMacro()
    (tmp_path / "b").mkdir()
    assert window.save_project(tmp_path / "b" / "q.cnnproj")
    window.undo_stack.undo()
    window.undo_stack.redo()
    assert _source_path(window) == "../a/pictures"


def test_history_is_rebased_while_the_current_source_is_built_in(window, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert window.save_project(tmp_path / "a" / "p.cnnproj")
    _use_folder(window, "pictures")
    builtin = {**window.project.data, "source": {"kind": "builtin", "name": "digits"}}
    window.undo_stack.push(SetSettingsCommand(window.document, "data", builtin))
    assert window.save_project(tmp_path / "b" / "q.cnnproj")
    window.undo_stack.undo()
    assert _source_path(window) == "../a/pictures"


def test_the_first_save_of_a_new_project_rebases_from_the_working_directory(
        window, tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    (tmp_path / "saved").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # training reads an unsaved project's paths here
    _use_folder(window, "data/train")
    assert window.project.path is None
    assert window.save_project(tmp_path / "saved" / "new.cnnproj")
    saved = read_project(tmp_path / "saved" / "new.cnnproj")
    assert saved.data["source"]["path"] == "../work/data/train"
    assert _resolved(saved, "../work/data/train") == (tmp_path / "work" / "data" / "train")


def test_saving_in_the_same_folder_keeps_the_paths_as_written(window, tmp_path):
    assert window.save_project(tmp_path / "one.cnnproj")
    _use_folder(window, "./images/../pictures")
    assert window.save_project(tmp_path / "two.cnnproj")
    assert read_project(tmp_path / "two.cnnproj").data["source"]["path"] == \
        "./images/../pictures"
    assert window.undo_stack.count() == 1  # saving never adds an edit


def test_a_failed_save_as_changes_nothing(window, tmp_path, errors):
    _use_folder(window, "pictures")
    assert window.save_project(tmp_path / "p.cnnproj")
    before = project_to_dict(window.project)
    assert not window.save_project(tmp_path / "missing" / "folder" / "q.cnnproj")
    assert errors and project_to_dict(window.project) == before
    assert window.project.path == tmp_path / "p.cnnproj"


# ---- a bare .json cannot hold weights: ask first ----------------------------------------


def _trained(window) -> bytes:
    weights = save({"fc.weight": np.ones((2, 3), np.float32)})
    window.project.weights = weights
    window.undo_stack.resetClean()  # as a finished run leaves the window
    return weights


class Questions:
    """Answers `ask_save_without_weights` with `answer` and records what was asked."""

    def __init__(self) -> None:
        self.answer = True
        self.asked: list[str] = []

    def __call__(self, target: Path) -> bool:
        self.asked.append(target.name)
        return self.answer


@pytest.fixture
def questions(window, monkeypatch) -> Questions:
    """The window asks, as on a desktop, and the test answers without a modal dialog."""
    answers = Questions()
    window.confirm_unsaved = True
    monkeypatch.setattr(window, "ask_save_without_weights", answers)
    # pytest-qt closes the window before fixtures are torn down: answer that question too.
    monkeypatch.setattr(window, "ask_unsaved_changes", lambda: DISCARD)
    return answers


def test_no_keeps_the_save_from_happening(window, tmp_path, questions):
    weights = _trained(window)
    before = project_to_dict(window.project)
    questions.answer = False
    assert not window.save_project(tmp_path / "net.json")
    assert questions.asked == ["net.json"]
    assert not (tmp_path / "net.json").exists()
    assert project_to_dict(window.project) == before and window.project.weights == weights
    assert window.project.path is None and window.project.name == before["name"]
    assert window.isWindowModified()


def test_yes_saves_the_json_without_the_weights(window, tmp_path, questions):
    weights = _trained(window)
    window.project.attachments["resume.safetensors"] = weights
    assert window.save_project(tmp_path / "net.json")
    assert questions.asked == ["net.json"]
    saved = read_project(tmp_path / "net.json")
    assert saved.weights is None and saved.attachments == {}
    assert saved.name == window.project.name and window.project.path == tmp_path / "net.json"
    assert "without the trained weights" in window.statusBar().currentMessage()
    # Memory still holds what the file lacks: the window says so, and closing would ask.
    assert window.project.weights == weights
    assert window.isWindowModified() and not window.undo_stack.isClean()
    assert window.windowTitle() == "net.json[*] — CNN Studio"
    # Save (no new path) asks again; a .cnnproj keeps everything, without a question.
    assert window.save_project()
    assert questions.asked == ["net.json", "net.json"]
    assert window.save_project(tmp_path / "net.cnnproj")
    assert questions.asked == ["net.json", "net.json"]
    kept = read_project(tmp_path / "net.cnnproj")
    assert kept.weights == weights and kept.attachments == {"resume.safetensors": weights}
    assert not window.isWindowModified()


def test_a_resume_state_alone_is_asked_about_too(window, tmp_path, questions):
    window.project.attachments["resume.safetensors"] = save({"step": np.zeros(1, np.int64)})
    questions.answer = False
    assert not window.save_project(tmp_path / "net.json")
    assert questions.asked == ["net.json"] and not (tmp_path / "net.json").exists()


def test_nothing_to_lose_means_no_question(window, tmp_path, questions):
    assert window.save_project(tmp_path / "design.json")
    assert questions.asked == []
    assert not window.isWindowModified()


def test_without_anyone_to_answer_the_json_is_saved(window, tmp_path, questions):
    window.confirm_unsaved = False  # offscreen: a modal question would wait forever
    _trained(window)
    assert window.save_project(tmp_path / "net.json")
    assert questions.asked == [] and read_project(tmp_path / "net.json").weights is None
