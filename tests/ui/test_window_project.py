"""Projects in the window: save/open, errors, unsaved changes, templates, recent files,
file drops, autosave and recovery, persisted window state."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtWidgets import QDockWidget, QWidget

from cnnstudio.core.templates import TEMPLATES
from cnnstudio.project import project_to_dict, read_project
from cnnstudio.ui import autosave
from cnnstudio.ui.main_window import CANCEL, DISCARD, SAVE
from cnnstudio.ui.settings import app_settings
from cnnstudio.ui.template_dialog import BLANK, TemplateDialog


def _edit(window) -> None:
    """One undoable edit: insert a Dropout after relu1."""
    window.document.set_selection(["relu1"])
    window.palette_tree.itemDoubleClicked.emit(window.palette_tree.entry("GELU"), 0)


@pytest.mark.parametrize("suffix", [".cnnproj", ".json"])
def test_save_and_reopen_gives_the_same_project(window, tmp_path, suffix, qtbot):
    _edit(window)
    path = tmp_path / f"net{suffix}"
    assert window.save_project(path)
    assert not window.isWindowModified() and window.undo_stack.isClean()
    saved = project_to_dict(window.project)
    window.new_project(BLANK)
    assert window.open_project(path)
    assert project_to_dict(window.project) == saved
    assert project_to_dict(read_project(path)) == saved
    assert window.windowTitle() == f"net{suffix}[*] — CNN Studio"


def test_file_open_reads_on_a_worker_and_the_window_keeps_answering(
        window, tmp_path, qtbot, errors, monkeypatch):
    import threading

    from PySide6.QtCore import QTimer

    import cnnstudio.ui.opening as opening

    path = tmp_path / "net.cnnproj"
    window.save_project(path)
    window.new_project(BLANK)
    readers, release = [], threading.Event()

    def slow_read(p):  # a large file: as long as the test wants
        readers.append(threading.current_thread())
        release.wait(30)
        return read_project(p)

    monkeypatch.setattr(opening, "read_project", slow_read)
    monkeypatch.setattr(window, "ask_open_path", lambda: str(path))
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    window.actions_.open.trigger()  # returns at once
    assert window.open_busy.running and window.statusBar().currentMessage() == \
        "Opening net.cnnproj…"
    qtbot.wait(200)
    assert len(ticks) >= 5 and readers[0] is not threading.main_thread()
    assert window.project.path is None  # not yet
    with qtbot.waitSignal(window.project_loaded) as loaded:
        release.set()
    assert loaded.args == [True] and window.project.path == path and errors == []
    assert not window.open_busy.running and window.recent_files()[0] == str(path.resolve())
    timer.stop()
    # Cancel: the project stays; a bad file: one line, the project stays.
    release.clear()
    window.new_project("xo")
    with qtbot.waitSignal(window.project_loaded) as loaded:
        window.load_project(path)
        window.open_busy.cancel_button.click()
    release.set()
    qtbot.wait(100)
    assert loaded.args == [False] and window.project.name == "X vs O"
    bad = tmp_path / "bad.cnnproj"
    bad.write_bytes(b"PK not a zip")
    with qtbot.waitSignal(window.project_loaded) as loaded:
        assert window.open_with_prompt(bad)
    assert loaded.args == [False] and window.project.name == "X vs O"
    assert len(errors) == 1 and errors[0].startswith("bad.cnnproj:") and "\n" not in errors[0]


def test_save_without_a_path_asks_for_one(window, tmp_path, monkeypatch):
    monkeypatch.setattr(window, "ask_save_path", lambda: str(tmp_path / "chosen"))
    assert window.save_project()
    assert window.project.path == tmp_path / "chosen.cnnproj"
    assert (tmp_path / "chosen.cnnproj").is_file()
    monkeypatch.setattr(window, "ask_save_path", lambda: None)
    window.new_project(BLANK)
    assert not window.save_project()  # cancelled


def test_read_and_write_errors_are_one_line_messages(window, tmp_path, errors):
    bad = tmp_path / "bad.cnnproj"
    bad.write_bytes(b"this is not a project")
    before = project_to_dict(window.project)
    assert not window.open_project(bad)
    assert errors and errors[-1].startswith("bad.cnnproj:") and "\n" not in errors[-1]
    assert project_to_dict(window.project) == before
    assert not window.open_project(tmp_path / "missing.cnnproj")
    assert "missing.cnnproj" in errors[-1]
    assert not window.save_project(tmp_path / "no" / "such" / "folder" / "x.cnnproj")
    assert errors[-1].startswith("cannot save x.cnnproj")


def test_unsaved_changes_are_asked_about(window, tmp_path, monkeypatch, qtbot):
    other = tmp_path / "other.cnnproj"
    window.save_project(other)
    window.confirm_unsaved = True
    answers: list[str] = []
    monkeypatch.setattr(window, "ask_unsaved_changes", lambda: answers.pop(0))
    monkeypatch.setattr(window, "ask_save_path", lambda: str(tmp_path / "mine.cnnproj"))
    window.new_project("xo")
    _edit(window)
    answers.append(CANCEL)
    assert not window.open_with_prompt(other)
    assert window.project.name == "X vs O" and window.isWindowModified()
    answers.append(SAVE)
    with qtbot.waitSignal(window.project_loaded) as loaded:
        assert window.open_with_prompt(other)  # read on a worker thread
    assert loaded.args == [True]
    assert (tmp_path / "mine.cnnproj").is_file() and window.project.path == other
    _edit(window)
    answers.append(DISCARD)
    monkeypatch.setattr(window, "ask_template", lambda: "lenet5")
    window.new_from_template()
    assert window.project.name == "LeNet-5" and not window.isWindowModified()
    _edit(window)
    answers.append(CANCEL)
    window.show()
    assert not window.close()  # cancelled: the window stays
    assert window.isVisible()
    answers.append(DISCARD)
    assert window.close()


def test_new_from_template_replaces_the_document(window, monkeypatch):
    _edit(window)
    monkeypatch.setattr(window, "ask_template", lambda: "resnet")
    window.new_from_template()
    assert window.project.name == "ResNet-style"
    assert window.undo_stack.count() == 0 and window.undo_stack.isClean()
    assert len(window.project.graph) == len(TEMPLATES["resnet"].graph())
    monkeypatch.setattr(window, "ask_template", lambda: BLANK)
    window.new_from_template()
    assert [n.type for n in window.project.graph] == ["Input"]
    monkeypatch.setattr(window, "ask_template", lambda: None)
    window.new_from_template()  # cancelled: nothing changes
    assert [n.type for n in window.project.graph] == ["Input"]


def test_template_dialog_previews_each_template(qtbot):
    dialog = TemplateDialog()
    qtbot.addWidget(dialog)
    names = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    assert names == ["Blank canvas", *(t.title for t in TEMPLATES.values())]
    dialog.select("vgg")
    assert dialog.selected() == "vgg"
    assert dialog.table.topLevelItemCount() == len(TEMPLATES["vgg"].graph())
    facts = dialog.findChild(QWidget, "templateFacts").text()
    assert "shapes" in facts and "params" in facts
    dialog.select(BLANK)
    assert dialog.selected() == BLANK and dialog.table.topLevelItemCount() == 0


def test_recent_files_remember_opened_and_saved_projects(window, tmp_path, qtbot):
    first, second = tmp_path / "a.cnnproj", tmp_path / "b.json"
    window.save_project(first)
    window.save_project(second)
    assert window.recent_files()[:2] == [str(second.resolve()), str(first.resolve())]
    window.open_project(first)
    assert window.recent_files()[0] == str(first.resolve())
    window.actions_._fill_recent()
    labels = [a.text() for a in window.actions_.recent_menu.actions()]
    assert labels[:2] == ["&1 a.cnnproj", "&2 b.json"]
    window.new_project(BLANK)
    with qtbot.waitSignal(window.project_loaded):
        window.actions_.recent_menu.actions()[1].trigger()
    assert window.project.path == second.resolve()


def test_dropping_a_project_file_on_the_window_opens_it(window, tmp_path, qtbot, drop_on):
    path = tmp_path / "dropped.cnnproj"
    window.save_project(path)
    window.new_project(BLANK)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    view = window.findChild(QWidget, "graphView")
    assert drop_on(view.viewport(), mime)  # the canvas passes files on to the window
    qtbot.waitUntil(lambda: window.project.path == path)
    assert "conv1" in window.project.graph


def test_autosave_writes_and_recovers_unsaved_work(window, qtbot, tmp_path):
    assert window.autosaver.timer.interval() == 60_000
    assert window.autosaver.save_now() is None  # nothing unsaved yet
    _edit(window)
    written = window.autosaver.save_now()
    assert written is not None and written.is_file()
    assert autosave.recovery_files() == [written]
    assert written.parent == autosave.recovery_dir()
    unsaved = project_to_dict(window.project)

    from cnnstudio.ui import MainWindow

    after_crash = MainWindow()
    qtbot.addWidget(after_crash)
    after_crash.confirm_unsaved = False
    assert after_crash.recover(written)
    assert project_to_dict(after_crash.project) == unsaved
    assert after_crash.isWindowModified() and after_crash.project.path is None
    saved = tmp_path / "rescued.cnnproj"
    assert after_crash.save_project(saved)
    assert autosave.recovery_files() == []  # a clean save removes the recovery file
    assert autosave.RECOVERY_KEY not in read_project(saved).extra


def test_recovery_remembers_the_original_file_and_close_discards(window, tmp_path):
    path = tmp_path / "work.cnnproj"
    window.save_project(path)
    _edit(window)
    written = window.autosaver.save_now()
    assert written == autosave.recovery_path(path)
    assert autosave.read_recovery(written).path == path
    assert "Digits LeNet" in autosave.describe(written)
    window.close()  # closing without saving (answer: discard) deletes it
    assert not written.exists()


def test_window_state_persists_in_the_temporary_settings(window, qtbot, isolated_settings):
    from cnnstudio.ui import MainWindow

    window.show()
    window.findChild(QDockWidget, "problemsDock").hide()
    window.findChild(QDockWidget, "inspectorDock").hide()
    window.close()
    settings = app_settings()
    assert settings.value("window/state") is not None
    assert Path(settings.fileName()).is_relative_to(isolated_settings)
    again = MainWindow()
    qtbot.addWidget(again)
    again.show()
    assert again.findChild(QDockWidget, "inspectorDock").isHidden()
    assert not again.findChild(QDockWidget, "paletteDock").isHidden()


def test_autosave_in_the_background_is_the_same_file_and_discard_waits(window, qtbot):
    _edit(window)
    saver, target = window.autosaver, window.autosaver.target
    saved: list[str] = []
    saver.saved.connect(saved.append)
    saver.save_soon()  # the timer's way: a copy written on the worker
    window.project.name = "edited while it is written"  # the copy is not touched
    qtbot.waitUntil(lambda: saved == [str(target)])
    assert autosave.read_recovery(target).name != window.project.name
    saver.save_soon(changed=True)  # a run's write-back: written though no undo step
    saver.discard()  # waits for that write: no recovery file comes back after it
    qtbot.wait(50)
    assert not target.exists() and autosave.recovery_files() == []


def test_autosave_timer_writes_only_while_modified(window, qtbot):
    window.autosaver.timer.setInterval(20)  # the 60 s timer, sped up
    qtbot.wait(80)
    assert autosave.recovery_files() == []  # nothing unsaved: nothing written
    _edit(window)
    qtbot.waitUntil(lambda: autosave.recovery_files() != [], timeout=2000)
    window.undo_stack.undo()  # back to the saved state: the next save_now writes nothing
    assert window.autosaver.save_now() is None
