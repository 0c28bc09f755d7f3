"""File → Export ▸ Python source…, TorchScript…, ONNX…, safetensors…, Model card….

Each entry asks for a file with `ExportMenu.ask_export_path` (tests replace it), then
exports the project as it is in the window, unsaved edits included. torch is imported
only when an export runs, so the window still appears before torch loads. Exports take
at most a few seconds (ONNX is the slowest), so they run on the GUI thread under a busy
cursor; failures go to `window.show_error`, warnings (an untrained project, a classifier
whose outputs differ from the class count) and success to the status bar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEventLoop, QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu

if TYPE_CHECKING:
    from cnnstudio.nn.export import ExportResult
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
        """Export the window's project as `fmt` to `path` (asked for when None).

        Returns True when a file was written; errors are shown with `window.show_error`.
        """
        entry = next(e for e in ENTRIES if e.fmt == fmt)
        if path is None:
            path = self.ask_export_path(entry, self.default_path(entry))
            if not path:
                return False
            if not Path(path).suffix:  # a name typed without a suffix gets the format's
                path += entry.suffix
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        self.window.statusBar().showMessage(f"Exporting {Path(path).name}…")
        # Paint the cursor and message now; user input waits (no second export meanwhile).
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        try:
            result, error = self._run(fmt, path)
        finally:
            QApplication.restoreOverrideCursor()  # before any message box
        if result is None:
            self.window.statusBar().clearMessage()
            self.window.show_error(error)
            return False
        message = f"Exported {Path(result.path).name}"
        self.warnings = [*result.warnings, *filter(None, [self._class_warning()])]
        if self.warnings:
            message += " — " + "; ".join(self.warnings)
        self.window.statusBar().showMessage(message, 10000)
        return True

    def _class_warning(self) -> str | None:
        """The classifier's output size against the trained run's classes, else the
        loaded data's (what the problems list checks); torch is loaded by now."""
        from cnnstudio.nn.export.classes import class_count_warning

        try:
            return class_count_warning(self.window.project, self.window.document.class_count())
        except Exception:  # a check that fails must not turn a written file into an error
            return None

    def _run(self, fmt: str, path: str) -> tuple[ExportResult | None, str]:
        """(the result, "") or (None, the error to show)."""
        try:
            from cnnstudio.nn.export import ExportError, export_project  # loads torch
        except ImportError as err:  # e.g. a broken torch install: say it, don't crash
            return None, f"Export is not available: {err}"
        try:
            return export_project(self.window.project, fmt, path), ""
        except ExportError as err:
            return None, str(err)
        except Exception as err:  # a bug of ours: say it, never crash the window
            return None, f"Export failed: {type(err).__name__}: {err}"
