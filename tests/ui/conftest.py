"""GUI tests run offscreen (see tests/conftest.py) with pytest-qt's qapp/qtbot.

Every test gets its own settings and recovery folders (CNNSTUDIO_SETTINGS_DIR and
CNNSTUDIO_DATA_DIR), so no test reads or writes the user's real settings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/ui creates Qt widgets: mark it `gui`."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.gui)


@pytest.fixture(autouse=True)
def empty_undo_stacks(monkeypatch: pytest.MonkeyPatch):
    """Empty the undo stacks of the documents a test made while they still live. A
    document left to the garbage collector with commands on its stack crashes Qt (the
    stack deletes commands whose Python side the same collection already freed): a
    segfault in whichever later test the collection happens to run."""
    import weakref

    from cnnstudio.ui.document import Document

    made: weakref.WeakSet[Document] = weakref.WeakSet()
    original = Document.__init__

    def init(self: Document, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        made.add(self)
    monkeypatch.setattr(Document, "__init__", init)
    yield
    for document in list(made):
        try:
            document.undo_stack.clear()
        except RuntimeError:  # its C++ side is gone already (a window deleted it)
            pass


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary QSettings and recovery folders for one test."""
    root = tmp_path_factory.mktemp("cnnstudio-user")
    monkeypatch.setenv("CNNSTUDIO_SETTINGS_DIR", str(root / "settings"))
    monkeypatch.setenv("CNNSTUDIO_DATA_DIR", str(root / "data"))
    return root


@pytest.fixture
def errors() -> list[str]:
    """Messages the window showed with `show_error` (filled by the `window` fixture)."""
    return []


@pytest.fixture
def window(qtbot, errors: list[str], monkeypatch: pytest.MonkeyPatch):
    """A MainWindow on the digits-lenet template; errors are recorded, never shown."""
    from cnnstudio.ui import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    monkeypatch.setattr(win, "show_error", errors.append)
    win.confirm_unsaved = False
    win.new_project("digits-lenet")
    return win


def _drag_event(cls, point, *args):
    """Drag events take a QPointF from PySide6 6.12 on, only a QPoint before."""
    import warnings

    try:
        return cls(point, *args)
    except TypeError:
        with warnings.catch_warnings():  # Qt marks the QPoint constructors deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            return cls(point.toPoint(), *args)


@pytest.fixture
def drop_on():
    """Drop `mime` data on a widget at `pos` (its centre by default) with synthesized
    drag-enter, drag-move and drop events, as a real drag would; return the drop's
    acceptance."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    def drop(widget, mime, pos: QPointF | None = None) -> bool:
        point = QPointF(widget.rect().center()) if pos is None else pos
        action, button = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton
        mods = Qt.KeyboardModifier.NoModifier
        QApplication.sendEvent(widget, _drag_event(QDragEnterEvent, point, action, mime, button,
                                                   mods))
        QApplication.sendEvent(widget, _drag_event(QDragMoveEvent, point, action, mime, button,
                                                   mods))
        event = QDropEvent(point, action, mime, button, mods)
        QApplication.sendEvent(widget, event)
        return event.isAccepted()

    return drop
