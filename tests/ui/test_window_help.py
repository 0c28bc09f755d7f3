"""Issue 12 point 9: Train and Stop in the toolbar, Train raises the Training tab, and the
Help menu (Getting Started, Keyboard Shortcuts from the live actions, About)."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QPushButton,
    QTabBar,
    QTableWidget,
    QToolBar,
    QWidget,
)

from cnnstudio.train import Callback
from cnnstudio.ui.help import shortcut_rows

RUN_TIMEOUT_MS = 60_000


class _Hold(Callback):
    """Holds the training thread after its first batch until `go` is set."""

    def __init__(self) -> None:
        self.reached, self.go = threading.Event(), threading.Event()

    def on_batch_end(self, trainer, info) -> None:
        if not self.reached.is_set():
            self.reached.set()
            self.go.wait(20)


def _toolbar_action(window, name: str) -> QAction:
    toolbar = window.findChild(QToolBar, "mainToolbar")
    [action] = [a for a in toolbar.actions() if a.objectName() == name]
    return action


def _front_bottom_tab(window) -> str:
    """The title of the bottom dock tab in front (the tab group holding Training)."""
    for bar in window.findChildren(QTabBar):
        titles = [bar.tabText(i) for i in range(bar.count())]
        if bar.parent() is window and "Training" in titles:
            return titles[bar.currentIndex()]
    raise AssertionError("the Training dock is not tabbed")


def _menu(window, title: str):
    for action in window.menuBar().actions():
        if action.menu() is not None and action.text().replace("&", "") == title:
            return action.menu()
    raise AssertionError(f"no {title} menu")


def test_toolbar_train_and_stop_follow_the_panel_buttons(window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    window.project.training.update({"epochs": 2, "max_batches_per_epoch": 5, "batch_size": 32})
    window.training.settings.reload()
    window.resize(1280, 800)
    window.show()
    train, stop = (_toolbar_action(window, "actionTrainToolbar"),
                   _toolbar_action(window, "actionStopToolbar"))
    panel_train = window.findChild(QPushButton, "trainButton")
    panel_stop = window.findChild(QPushButton, "stopButton")
    assert (train.isEnabled(), stop.isEnabled()) == (True, False)
    assert train.text() == panel_train.text() == "Train"
    qtbot.waitUntil(lambda: _front_bottom_tab(window) == "Model Summary")  # Training behind

    hold = _Hold()
    window.training.controller.extra_callbacks = [hold]
    train.trigger()  # the toolbar's Train: the same as the panel's
    assert _front_bottom_tab(window) == "Training"  # the Training tab came to the front
    qtbot.waitUntil(hold.reached.is_set, timeout=RUN_TIMEOUT_MS)
    assert (train.isEnabled(), stop.isEnabled()) == (panel_train.isEnabled(),
                                                     panel_stop.isEnabled()) == (False, True)
    stop.trigger()
    hold.go.set()
    qtbot.waitUntil(lambda: not window.training.controller.running, timeout=RUN_TIMEOUT_MS)
    assert window.project.runs[-1]["status"] == "stopped"
    assert (train.isEnabled(), stop.isEnabled()) == (True, False)
    assert train.text() == panel_train.text()  # "Resume" for the stopped run


def test_panel_train_raises_the_training_tab(window, qtbot, monkeypatch):
    window.show()
    monkeypatch.setattr(window.training.controller, "start", lambda **_options: None)
    assert _front_bottom_tab(window) == "Model Summary"
    qtbot.mouseClick(window.findChild(QPushButton, "trainButton"), Qt.MouseButton.LeftButton)
    assert _front_bottom_tab(window) == "Training"


def test_help_menu_has_its_three_entries(window):
    texts = [a.text().replace("&", "") for a in _menu(window, "Help").actions()
             if not a.isSeparator()]
    assert texts == ["Getting Started", "Keyboard Shortcuts", "About CNN Studio"]
    assert window.menuBar().actions()[-1].menu() is _menu(window, "Help")  # the last menu


def _open(window, qtbot, action_name: str, dialog_name: str) -> QDialog:
    window.findChild(QAction, action_name).trigger()
    dialog = window.findChild(QDialog, dialog_name)
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    qtbot.addWidget(dialog)
    return dialog


def test_getting_started_walks_data_build_train_inspect(window, qtbot):
    dialog = _open(window, qtbot, "actionGettingStarted", "gettingStartedDialog")
    text = dialog.findChild(QLabel, "gettingStartedText").text()
    steps = [text.index(word) for word in ("Data.", "Build.", "Train.", "Inspect.")]
    assert steps == sorted(steps)
    assert 4 <= text.count("<li>") <= 6
    dialog.close()
    qtbot.waitUntil(lambda: window.findChild(QDialog, "gettingStartedDialog") is None)


def test_shortcut_table_is_read_from_the_actions(window, qtbot):
    dialog = _open(window, qtbot, "actionShortcuts", "shortcutsDialog")
    table = dialog.findChild(QTableWidget, "shortcutTable")
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    native = QKeySequence.SequenceFormat.NativeText
    assert QKeySequence("Ctrl+Z").toString(native) in rows["Undo"]
    assert rows["Train"] == QKeySequence("Ctrl+T").toString(native)
    assert rows["Auto Layout"] == QKeySequence("Ctrl+L").toString(native)
    dialog.close()
    # A shortcut added later shows the next time: the table is never stale.
    window.actions_.auto_layout.setShortcut(QKeySequence("Ctrl+Shift+K"))
    assert ("Auto Layout", QKeySequence("Ctrl+Shift+K").toString(native), "View") in \
        shortcut_rows(window)


def test_about_names_version_licence_and_data(window, qtbot):
    import cnnstudio

    dialog = _open(window, qtbot, "actionAbout", "aboutDialog")
    text = dialog.findChild(QLabel, "aboutText").text()
    for needle in (cnnstudio.__version__, "Qt ", "PyTorch", "MIT", "Alpaydin", "CC BY 4.0"):
        assert needle in text
    dialog.close()


@pytest.mark.parametrize("name", ["actionGettingStarted", "actionShortcuts", "actionAbout"])
def test_opening_a_help_dialog_twice_keeps_one(window, qtbot, name):
    window.findChild(QAction, name).trigger()
    window.findChild(QAction, name).trigger()
    qtbot.wait(10)  # the first is deleted later
    shown = [d for d in window.findChildren(QDialog) if d.isVisible()]
    assert len(shown) == 1
    shown[0].close()


def test_help_dialog_does_not_block_the_window(window, qtbot):
    window.show()
    dialog = _open(window, qtbot, "actionAbout", "aboutDialog")
    assert QWidget.isEnabled(window) and dialog.windowModality() == Qt.WindowModality.NonModal
    dialog.close()


def test_no_two_actions_share_a_shortcut(window):
    # An ambiguous shortcut fires neither action (Qt's X11 Delete binding once held
    # Ctrl+D, Duplicate's key).
    owners: dict[str, list[str]] = {}
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            if not key.isEmpty():
                owners.setdefault(key.toString(), []).append(action.text())
    clashes = {key: names for key, names in owners.items() if len(set(names)) > 1}
    assert not clashes
