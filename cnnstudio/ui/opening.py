"""File → Open, recent files, dropped project files and the command line: the project file
is read and checked (its safetensors too: tens of MB take 0.1 s and more) on a worker
thread while the window keeps answering, with a busy bar and Cancel in the status bar.

Only replacing the document happens on the GUI thread, and the bookkeeping after it
(recent files, the status message) in the next turn of the event loop, so that each turn
holds the window as briefly as it can.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from cnnstudio.core.errors import first_line
from cnnstudio.project import Project, ProjectError, read_project
from cnnstudio.project.origin import weights_digest
from cnnstudio.ui.busy import BusyBar
from cnnstudio.ui.settings import add_recent_file
from cnnstudio.ui.training.background import Background

if TYPE_CHECKING:
    from cnnstudio.ui.main_window import MainWindow


def _read(path: Path) -> Project:
    """The project at `path`, its weights' digest remembered (Train asks which run left
    them: 20–30 ms for tens of MB, better spent here than on the GUI thread)."""
    project = read_project(path)
    if project.weights is not None:
        weights_digest(project.weights)
    return project


class ProjectLoader(QObject):
    """`MainWindow.load_project`: one file read at a time (a newer one supersedes it);
    the window's `project_loaded(ok)` says how each ended."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self._reader = Background(self, needs_torch=False)
        self.busy = BusyBar(window.status, "openBusy")
        self._loading: tuple[Path, tuple] | None = None  # the file, the work's state then

    def load(self, path: Path) -> None:
        self._loading = (path, self._work())
        self.busy.start(f"Opening {path.name}…", self._cancel)
        self._reader.submit("open", lambda: _read(path),
                            lambda project: self._loaded(project, path), self._failed)

    def _work(self) -> tuple:
        """What says the open project changed: its edits, its runs, its weights."""
        project = self.window.project
        return (self.window.undo_stack.index(), len(project.runs), id(project.weights))

    def drop(self) -> bool:
        """Forget the file being read (the project was replaced); True if there was one."""
        if self._loading is None:
            return False
        self._end()
        return True

    def _loaded(self, project: Project, path: Path) -> None:
        window = self.window
        _, work = self._loading or (path, self._work())
        self._end()
        # Edits or a run made while the file was read are asked about again (the answer
        # given before the open was about the work as it was then).
        if work != self._work() and not window.maybe_save():
            window.project_loaded.emit(False)
            return
        window.set_project(project)

        def remember() -> None:  # the next turn: QSettings' sync alone takes 5–20 ms
            add_recent_file(path)
            window.status.showMessage(f"Opened {path.name}", 4000)
            window.project_loaded.emit(True)

        QTimer.singleShot(0, self, remember)

    def _failed(self, err: BaseException) -> None:
        path = self._loading[0] if self._loading else Path()
        self._end()
        self.window.show_error(str(err) if isinstance(err, ProjectError)
                               else f"cannot open {path}: {first_line(err)}")
        self.window.project_loaded.emit(False)

    def _cancel(self) -> None:
        self._end()
        self.window.status.showMessage("Opening cancelled", 4000)
        self.window.project_loaded.emit(False)

    def _end(self) -> None:
        self._reader.forget()  # a file still being read is dropped when it arrives
        self._loading = None
        self.busy.stop()
        self.window.status.clearMessage()
