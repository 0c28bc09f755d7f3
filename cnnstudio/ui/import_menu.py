"""File → Import Model… (action `actionImportModel`): an ONNX file or a PyTorch class
becomes the open project, as New and Open replace it.

The import runs in a child process (`import_job`), watched from a worker thread: the
window keeps answering, the status bar shows a progress bar with Cancel, and Cancel kills
the child at once. The result replaces the open project unsaved (the title shows its
name, Save asks where); the unsaved-changes question is asked first, as File → New asks
it, and again if the project was edited while the import ran. Failures go to
`window.show_error` in one line.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction

from cnnstudio.core.errors import first_line
from cnnstudio.ui.busy import BusyBar
from cnnstudio.ui.import_job import (
    ImportCancelled,
    ImportFailed,
    ImportOutcome,
    ImportRequest,
    import_in_child,
)
from cnnstudio.ui.training.background import Background

if TYPE_CHECKING:
    from cnnstudio.ui.main_window import MainWindow


class ModelImporter(QObject):
    """The Import Model action of a MainWindow and the import it runs (one at a time)."""

    finished = Signal(bool)  # an import ended: True when its project replaced the open one
    _progress = Signal(str, int, int)  # from the worker thread, queued to the window's

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.action = QAction("&Import Model…", window)
        self.action.setObjectName("actionImportModel")
        tip = ("Open an ONNX model, or an nn.Module class from your own .py file (which runs"
               " that file), with its weights, as a new project")
        self.action.setStatusTip(tip)
        self.action.setToolTip(tip)
        self.action.triggered.connect(lambda _checked=False: self.import_dialog())
        actions = window.actions_
        items = actions.file_menu.actions()
        after = items.index(actions.recent_menu.menuAction()) + 1  # New, Open, Recent, here
        actions.file_menu.insertAction(items[after] if after < len(items) else None,
                                       self.action)
        self.background = Background(self, needs_torch=False)  # the child loads torch
        self.busy = BusyBar(window.statusBar(), "importBusy")
        self._progress.connect(self._show_progress)
        self._cancel: threading.Event | None = None
        self._request: ImportRequest | None = None
        self._work: tuple | None = None  # the open project's state when the import began
        self._replacing = False
        window.document.project_replaced.connect(self._project_replaced)

    @property
    def running(self) -> bool:
        return self._cancel is not None

    # ---- questions (tests replace this) ---------------------------------------------------

    def ask_import_request(self) -> ImportRequest | None:
        """Show the Import Model dialog; the request, or None when cancelled."""
        from cnnstudio.ui.import_dialog import ask_import

        project = self.window.project
        folder = str(project.path.parent) if project.path is not None else ""
        return ask_import(self.window, folder)

    # ---- importing -------------------------------------------------------------------------

    def import_dialog(self) -> bool:
        """File → Import Model…: ask about unsaved changes, then what to import, then
        start; True when an import started."""
        if self.running:
            self.window.status.showMessage("An import is running already", 4000)
            return False
        if not self.window.maybe_save():
            return False
        request = self.ask_import_request()
        return request is not None and self.start(request)

    def start(self, request: ImportRequest) -> bool:
        """Import `request` on a worker (no question asked); `finished(ok)` says how it
        ended. False when another import is running."""
        if self.running:
            return False
        cancel = self._cancel = threading.Event()
        self._request, self._work = request, self._state()
        self.action.setEnabled(False)
        self.busy.start(f"Importing {request.file_name}…", self.cancel)

        def job() -> ImportOutcome:
            return import_in_child(request, cancel.is_set, self._progress.emit)

        self.background.submit("import", job, self._done, self._failed)
        return True

    def cancel(self) -> None:
        """Stop the running import (its child process is killed; nothing is kept)."""
        if self._cancel is not None:
            self._cancel.set()
            self.window.status.showMessage("Cancelling the import…")

    def release(self) -> None:
        """The window closes: cancel a running import and wait for its child to end."""
        self.cancel()
        self.background.wait()

    def _state(self) -> tuple:
        project = self.window.project
        return (self.window.undo_stack.index(), len(project.runs), id(project.weights),
                id(project))

    def _show_progress(self, stage: str, done: int, total: int) -> None:
        if not self.running or self._request is None:
            return
        bar = self.busy.bar
        if total > 0:
            bar.setRange(0, total)
            bar.setValue(min(done, total))
        else:
            bar.setRange(0, 0)
        self.window.status.showMessage(f"Importing {self._request.file_name}: {stage}…")

    def _end(self) -> ImportRequest | None:
        request = self._request
        self._cancel = self._request = None
        self.busy.stop()
        self.busy.bar.setRange(0, 0)
        self.action.setEnabled(True)
        self.window.status.clearMessage()
        return request

    def _done(self, outcome: ImportOutcome) -> None:
        cancelled = self._cancel is None or self._cancel.is_set()
        work, request = self._work, self._end()
        window = self.window
        if cancelled or request is None:
            window.status.showMessage("Import cancelled", 4000)
            self.finished.emit(False)
            return
        # Edits made while the model was read are asked about again, as Open does.
        if work != self._state() and not window.maybe_save():
            self.finished.emit(False)
            return
        self._replacing = True
        try:
            window.set_project(outcome.project, modified=True)
        finally:
            self._replacing = False
        notes = f" ({'; '.join(outcome.notes)})" if outcome.notes else ""
        window.status.showMessage(f"Imported {request.file_name}: {outcome.summary}{notes}",
                                  10000)
        self.finished.emit(True)

    def _failed(self, err: BaseException) -> None:
        self._end()
        if isinstance(err, ImportCancelled):
            self.window.status.showMessage("Import cancelled", 4000)
        else:
            self.window.show_error(str(err) if isinstance(err, ImportFailed)
                                   else f"the import failed: {first_line(err)}")
        self.finished.emit(False)

    def _project_replaced(self) -> None:
        """New or Open replaced the project while importing: the import is not wanted."""
        if self.running and not self._replacing:
            self.cancel()


def install_import_menu(window: MainWindow) -> ModelImporter:
    """Add File → Import Model… to `window`."""
    return ModelImporter(window)
