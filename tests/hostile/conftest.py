"""Fixtures of the hostile suite: isolated user folders, an unpickling tripwire, a window."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Hostile tests that open a window are `gui` tests too (as everything in tests/ui)."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents and {
                "window", "qtbot"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.gui)


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings, recovery files and the dataset cache of one test, away from the user's."""
    root = tmp_path_factory.mktemp("hostile-user")
    monkeypatch.setenv("CNNSTUDIO_SETTINGS_DIR", str(root / "settings"))
    monkeypatch.setenv("CNNSTUDIO_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(root / "cache"))
    return root


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail the test if anything unpickles: pickle's entry points and torch.load are
    replaced by tripwires (recorded even if some caller swallowed the error)."""
    calls: list[str] = []

    def tripwire(name: str):
        def called(*_args: object, **_kwargs: object) -> None:
            calls.append(name)
            raise AssertionError(f"{name} was called: something tried to unpickle")
        return called

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, tripwire(f"pickle.{name}"))
    import torch
    import torch.serialization

    monkeypatch.setattr(torch, "load", tripwire("torch.load"))
    monkeypatch.setattr(torch.serialization, "load", tripwire("torch.serialization.load"))
    yield calls
    assert calls == [], f"unpickling was attempted: {calls}"


@pytest.fixture
def window(qtbot):
    """A MainWindow on the digits-lenet template with its real `show_error` (which sets
    `last_error`); message boxes it opened are closed after the test."""
    from PySide6.QtWidgets import QMessageBox

    from cnnstudio.ui import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.confirm_unsaved = False
    win.new_project("digits-lenet")
    yield win
    for box in win.findChildren(QMessageBox):
        box.close()
