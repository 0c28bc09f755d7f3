"""Where the window keeps what outlives a session: QSettings, recent files, recovery data.

Tests (and portable installs) redirect both places with environment variables, read at
call time so one process can switch between temporary folders:

- `CNNSTUDIO_SETTINGS_DIR`: QSettings go to an INI file in this folder instead of the
  user's registry / ~/.config entry.
- `CNNSTUDIO_DATA_DIR`: autosave recovery files go under this folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

ORGANIZATION = "CNN Studio"
APPLICATION = "cnnstudio"
SETTINGS_DIR_ENV = "CNNSTUDIO_SETTINGS_DIR"
DATA_DIR_ENV = "CNNSTUDIO_DATA_DIR"
MAX_RECENT = 10
RECENT_KEY = "files/recent"


def app_settings() -> QSettings:
    """The application's QSettings (organization "CNN Studio", application "cnnstudio")."""
    folder = os.environ.get(SETTINGS_DIR_ENV)
    if folder:
        fmt = QSettings.Format.IniFormat
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder)
        return QSettings(fmt, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)
    return QSettings(ORGANIZATION, APPLICATION)


def data_dir() -> Path:
    """The per-user folder for data the program writes on its own (recovery files)."""
    folder = os.environ.get(DATA_DIR_ENV)
    if folder:
        return Path(folder)
    # GenericDataLocation + our name: the same folder whatever QCoreApplication's name is.
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return Path(base or Path.home() / ".local" / "share") / APPLICATION


def _as_list(value: object) -> list[str]:
    # QSettings returns a str for a one-item list in INI files, None when unset.
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]  # type: ignore[union-attr]


def recent_files() -> list[str]:
    """Recently opened or saved project paths, newest first (missing files left out)."""
    paths = _as_list(app_settings().value(RECENT_KEY))
    return [p for p in paths if Path(p).exists()][:MAX_RECENT]


def add_recent_file(path: str | os.PathLike[str]) -> list[str]:
    """Put `path` first in the recent files; return the new list."""
    text = str(Path(path).resolve())
    paths = [text] + [p for p in _as_list(app_settings().value(RECENT_KEY)) if p != text]
    paths = paths[:MAX_RECENT]
    settings = app_settings()
    settings.setValue(RECENT_KEY, paths)
    settings.sync()
    return [p for p in paths if Path(p).exists()]


def clear_recent_files() -> None:
    """Forget every recent file."""
    settings = app_settings()
    settings.remove(RECENT_KEY)
    settings.sync()
