"""Starting the desktop application: `cnnstudio [PROJECT]` ends up in `run_app`.

torch is not imported on the way: the window appears first, and training code loads
torch when it is first needed.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

import cnnstudio
from cnnstudio.ui import autosave
from cnnstudio.ui.settings import APPLICATION, ORGANIZATION

SAMPLE = Path(cnnstudio.__file__).resolve().parent.parent / "sample_projects" / "digits.cnnproj"
SAMPLE_TEMPLATE = "digits-lenet"


def application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once), named so QSettings and paths find their place."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationName(APPLICATION)
    QApplication.setApplicationDisplayName("CNN Studio")
    app.setStyle("Fusion")  # the same widgets everywhere; colours still follow the system
    return app  # type: ignore[return-value]


def create_window(path: str | None = None):  # -> MainWindow (imported lazily)
    """A MainWindow on `path`, else on the sample project (or the sample template).

    An unreadable `path` leaves the sample open and the error shown once the window is up.
    """
    from cnnstudio.project import ProjectError, read_project
    from cnnstudio.ui.main_window import MainWindow

    window = MainWindow()
    try:
        sample = read_project(SAMPLE)
        sample.path = None  # an untitled copy: Save must not overwrite the shipped sample
        window.set_project(sample)
    except ProjectError:
        window.new_project(SAMPLE_TEMPLATE)
    if path is not None:
        # After show(): the error box then sits on a visible window.
        QTimer.singleShot(0, lambda: window.load_project(path))  # read on a worker
    return window


def offer_recovery(window) -> bool:  # window: MainWindow
    """If an earlier session left unsaved work, ask to recover the newest; True if done."""
    files = autosave.recovery_files()
    if not files or not window.confirm_unsaved:  # no one to ask on an offscreen platform
        return False
    lines = "\n".join(f"• {autosave.describe(p)}" for p in files[:5])
    box = QMessageBox(QMessageBox.Icon.Question, "CNN Studio",
                      "CNN Studio found work that was not saved when it last closed.",
                      QMessageBox.StandardButton.NoButton, window)
    box.setInformativeText(f"{lines}\n\nRecover the most recent?")
    recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton("Not Now", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(recover)
    box.exec()
    if box.clickedButton() is recover:
        return window.recover(files[0])
    if box.clickedButton() is discard:
        for path in files:
            autosave.discard_recovery(path)
    return False


def run_app(path: str | None = None) -> int:
    """Open the window on `path` (or a sample) and run the event loop; the exit status."""
    app = application()
    window = create_window(path)
    window.show()
    # What start-up made (Qt's, pyqtgraph's and numpy's modules and the window: ~75,000
    # objects) lives as long as the app: out of the collector's reach, a full collection
    # with a 1,000-layer network open takes 2–8 ms instead of 55 ms (one stall each).
    gc.freeze()
    QTimer.singleShot(0, lambda: offer_recovery(window))
    return app.exec()
