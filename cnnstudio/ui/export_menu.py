"""File → Export ▸ Python source…, TorchScript…, ONNX…, safetensors…, Model card….

Each entry asks for a file with `ExportMenu.ask_export_path` (tests replace it), then
exports the project as it is in the window, unsaved edits included. torch is imported
only when an export runs, so the window still appears before torch loads. An export
(ONNX: seconds) runs on a worker thread on a copy of the project taken when it was asked
for: the window keeps answering, the status bar shows a busy bar with Cancel, and the
entries are disabled until it ends (`finished`). Files are written atomically, so a
cancelled or failed export leaves no partial file. Failures go to `window.show_error`,
warnings (an untrained project, a classifier whose outputs differ from the class count)
and success to the status bar.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu

from cnnstudio.ui.busy import BusyBar
from cnnstudio.ui.training.background import Background

if TYPE_CHECKING:
    from cnnstudio.nn.export import ExportResult
    from cnnstudio.project import Project
    from cnnstudio.ui.main_window import MainWindow


@dataclass(frozen=True)
class Entry:
    """One menu entry; `fmt` is a key of `cnnstudio.nn.export.FORMATS` (a test checks)."""

    fmt: str
    label: str
    suffix: str
    file_filter: str
    tip: str


# Kept here rather than read from cnnstudio.nn.export: that import would load torch.
ENTRIES = (
    Entry("python", "&Python Source…", ".py", "Python source (*.py)",
          "A readable PyTorch nn.Module file that needs only torch"),
    Entry("torchscript", "&TorchScript…", ".pt", "TorchScript (*.pt *.pth)",
          "A traced TorchScript model for torch.jit.load, C++ and mobile"),
    Entry("onnx", "&ONNX…", ".onnx", "ONNX model (*.onnx)",
          "An ONNX model with a dynamic batch size, for onnxruntime and other runtimes"),
    Entry("safetensors", "&safetensors Weights…", ".safetensors",
          "safetensors weights (*.safetensors)",
          "The weights with class names, normalization and the graph in the header"),
    Entry("card", "Model &Card…", ".md", "Markdown (*.md)",
          "A Markdown summary: layers, data, training settings, metrics, confusion matrix"),
)


class ExportMenu(QObject):
    """File ▸ Export ▸ of a MainWindow (after Save As) and the exports it runs."""

    finished = Signal(bool)  # an export ended: True when its file was written

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.menu = QMenu("&Export", window)
        self.menu.setObjectName("exportMenu")
        self.actions: dict[str, QAction] = {}
        self.warnings: list[str] = []  # of the last export (shown in the status bar)
        for entry in ENTRIES:
            action = QAction(entry.label, window)
            action.setStatusTip(entry.tip)
            action.setToolTip(entry.tip)
            action.triggered.connect(lambda _checked=False, e=entry: self.export(e.fmt))
            self.menu.addAction(action)
            self.actions[entry.fmt] = action
        window.actions_.file_menu.insertMenu(window.actions_.quit_separator, self.menu)
        self.background = Background(self)
        self.busy = BusyBar(window.statusBar(), "exportBusy")
        self._cancel: threading.Event | None = None  # of the export running, if any

    @property
    def running(self) -> bool:
        return self._cancel is not None

    # ---- questions (tests replace this) ---------------------------------------------------

    def ask_export_path(self, entry: Entry, start: str) -> str | None:
        """Ask where to write; None when cancelled."""
        path, _ = QFileDialog.getSaveFileName(self.window, f"Export {entry.label.strip('&…')}",
                                              start, f"{entry.file_filter};;All files (*)")
        return path or None

    # ---- exporting -------------------------------------------------------------------------

    def default_path(self, entry: Entry) -> str:
        """Beside the project file, named after it (or after the project when unsaved)."""
        project = self.window.project
        if project.path is not None:
            return str(Path(project.path).with_suffix(entry.suffix))
        stem = re.sub(r"[^\w.-]+", "_", project.name or "model").strip("._") or "model"
        return str(Path.home() / f"{stem}{entry.suffix}")

    def export(self, fmt: str, path: str | None = None) -> bool:
        """Start exporting the window's project as `fmt` to `path` (asked for when None).

        Returns True when the export started (`finished` says how it ended), False when
        cancelled at the file dialog or while another export runs."""
        entry = next(e for e in ENTRIES if e.fmt == fmt)
        if self.running:
            return False
        if path is None:
            path = self.ask_export_path(entry, self.default_path(entry))
            if not path:
                return False
            if not Path(path).suffix:  # a name typed without a suffix gets the format's
                path += entry.suffix
        project, cancel = snapshot(self.window.project), threading.Event()
        classes = self.window.document.class_count()
        self._cancel = cancel
        for action in self.actions.values():
            action.setEnabled(False)
        self.busy.start(f"Exporting {Path(path).name}…", self.cancel)
        self.background.submit("export", lambda: _export(project, fmt, str(path), cancel,
                                                         classes),
                               self._done, lambda err: self._done(
                                   (None, f"Export failed: {type(err).__name__}: {err}")))
        return True

    def cancel(self) -> None:
        """Stop the running export: nothing is written unless it was already writing."""
        if self._cancel is not None:
            self._cancel.set()
            self.window.statusBar().showMessage("Cancelling the export…")

    def release(self) -> None:
        """The window closes: cancel a running export and let it end (no temp file left)."""
        self.cancel()
        self.background.wait()

    def _done(self, outcome: tuple[ExportResult | None, str]) -> None:
        result, error = outcome
        self._cancel = None
        self.busy.stop()
        for action in self.actions.values():
            action.setEnabled(True)
        status = self.window.statusBar()
        if result is None:
            status.clearMessage()
            if error == CANCELLED:
                status.showMessage("Export cancelled: nothing was written", 6000)
            else:
                self.window.show_error(error)
            self.finished.emit(False)
            return
        message = f"Exported {Path(result.path).name}"
        self.warnings = result.warnings
        if self.warnings:
            message += " — " + "; ".join(self.warnings)
        status.showMessage(message, 10000)
        self.finished.emit(True)


CANCELLED = "cancelled"
_warm: set[str] = set()  # formats exported once in this process
# Exported by a child process: ONNX's dependencies hold the GIL in C 0.4–1.4 s as they
# import (see cnnstudio.nn.export.child), which no worker thread can hide.
IN_CHILD = ("onnx",)


def snapshot(project: Project) -> Project:
    """A copy of `project` the worker can read while the user goes on editing."""
    return project.copy()


def _export(project: Project, fmt: str, path: str, cancel: threading.Event,
            data_classes: int | None) -> tuple[ExportResult | None, str]:
    """(the result, "") or (None, the error to show, or CANCELLED). On the worker; ONNX in
    a child process, and the first export of each other format with the garbage collector
    off (`collector_off`: its lazy imports made full collections hold the GIL 0.1–0.25 s).

    The result's warnings include the classifier's output size against the trained
    run's classes, else `data_classes` (what the problems list checks)."""
    from cnnstudio.ui.torch_loading import collector_off

    try:
        from cnnstudio.nn.export import ExportError, export_project  # loads torch
        from cnnstudio.nn.export.child import export_in_child
        from cnnstudio.nn.export.classes import class_count_warning
        from cnnstudio.nn.export.formats import ExportCancelled
    except ImportError as err:  # e.g. a broken torch install: say it, don't crash
        return None, f"Export is not available: {err}"
    try:
        if fmt in IN_CHILD:
            result = export_in_child(project, fmt, path, cancel.is_set)
        else:
            job = lambda: export_project(project, fmt, path, cancel.is_set)  # noqa: E731
            result = job() if fmt in _warm else collector_off(job)
            _warm.add(fmt)
    except ExportCancelled:
        return None, CANCELLED
    except ExportError as err:
        return None, str(err)
    try:
        result.warnings.extend(filter(None, [class_count_warning(project, data_classes)]))
    except Exception:  # a check that fails must not turn a written file into an error
        pass
    return result, ""
