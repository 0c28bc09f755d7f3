"""What the Explain pages need from the window: the model to explain, the loaded samples,
a worker thread, and a progress strip in the view.

The pages never reach into the window themselves: they ask the host, so a page can be
tested with a small fake host, and the window's plug-ins stay free to change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from cnnstudio.ui.document import deferred
from cnnstudio.ui.training.background import Background

if TYPE_CHECKING:
    from cnnstudio.train.model_io import DataRequest, TrainedModel
    from cnnstudio.ui.main_window import MainWindow

MODEL_SETTLE_MS = 250  # after an edit, the pages recompute once the edits pause
RELEASE_WAIT_MS = 20_000  # closing waits this long at most for a cancelled job's batch


class ProgressStrip(QWidget):
    """A one-line progress row (text, bar, Cancel) the view shows while a page works."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("explainProgress")
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 6, 2)
        self.label = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setMaximumWidth(260)
        self.bar.setMaximumHeight(16)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setText("Cancel")
        self.cancel_button.setObjectName("explainProgressCancel")
        row.addWidget(self.label, 1)
        row.addWidget(self.bar)
        row.addWidget(self.cancel_button)
        self.hide()


class ExplainHost(QObject):
    """What the Explain pages need from the window."""

    model_changed = Signal()  # weights/graph changed: pages recompute lazily
    samples_changed = Signal()  # the loaded samples arrived or went (a run began, …)
    # The worker's undelivered results were dropped (the project went): pages forget the
    # jobs they wait for, or their progress would show for ever.
    jobs_forgotten = Signal()
    _progress = Signal(str, int, int)  # emitted on a worker: queued onto the GUI thread

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.background = Background(self, needs_torch=True)
        self.strip = ProgressStrip()
        self.strip.cancel_button.clicked.connect(self._cancel)
        self._on_cancel: Callable[[], None] | None = None
        self._progress_text = ""
        self._progress.connect(self._show_progress, Qt.ConnectionType.QueuedConnection)
        training = window.training
        doc = window.document
        self._settle = deferred(self, self.model_changed.emit, doc.inference_invalidated,
                                ms=MODEL_SETTLE_MS)
        doc.project_replaced.connect(self._project_replaced)
        ctl = training.controller
        ctl.finished.connect(lambda _outcome: self.model_changed.emit())
        ctl.epoch_added.connect(lambda _epoch: self.model_changed.emit())
        ctl.context_ready.connect(lambda _ctx: self.samples_changed.emit())
        ctl.samples_loaded.connect(lambda _ctx: self.samples_changed.emit())
        ctl.samples_failed.connect(lambda _why: self.samples_changed.emit())

    # ---- the model and its data -------------------------------------------------------

    def source(self) -> TrainedModel | None:
        """The model the views show: the running or saved weights, else the untrained
        network as a run will start it; None for an empty graph."""
        return self.window.training.actions.source()

    def samples(self, load: bool = True) -> dict[str, Any] | None:
        """The loaded samples context (x, y, class_names, mean, std, split, …) or None;
        when there are none yet and `load`, asks the training controller to load them
        (`samples_changed` follows)."""
        ctl = self.window.training.controller
        ctx = ctl.live.context
        if ctx is None and load:
            ctl.load_samples()
        return ctx

    def training_running(self) -> bool:
        """True while a training run is going (it owns torch's thread count)."""
        return bool(self.window.training.controller.running)

    def samples_loading(self) -> bool:
        """True while the project's samples are being loaded."""
        return self.window.training.controller.loading_samples

    def samples_error(self) -> str | None:
        """Why the project's samples could not be loaded (one line), else None."""
        return self.window.training.controller.samples_error

    def data_request(self) -> DataRequest:
        """What the project trains on. Raises FormatError / GraphError (one line)."""
        from cnnstudio.train.model_io import DataRequest

        return DataRequest.of(self.window.project)

    def graph_errors(self) -> list[str]:
        """The open network's problems (errors only), as the Problems panel says them."""
        return [str(e) for e in self.window.document.inference.errors]

    # ---- progress --------------------------------------------------------------------

    def start_progress(self, text: str, cancel: Callable[[], None] | None
                       ) -> Callable[[str, int, int], None]:
        """Show `text` and a progress bar in the view (with Cancel calling `cancel`);
        return a thread-safe callback (stage, done, total) for the job to report with;
        total 0 shows a busy bar. Call `finish_progress` when the job ended."""
        self._on_cancel = cancel
        self._progress_text = text
        strip = self.strip
        strip.label.setText(text)
        strip.bar.setRange(0, 0)
        strip.cancel_button.setVisible(cancel is not None)
        strip.cancel_button.setEnabled(True)
        strip.show()

        def report(stage: str, done: int, total: int) -> None:
            try:
                self._progress.emit(str(stage), int(done), int(total))
            except RuntimeError:  # the window (and this object) went meanwhile
                pass

        return report

    def finish_progress(self) -> None:
        """The job ended (its outcome is shown by the page that ran it)."""
        self._on_cancel = None
        self.strip.hide()

    @Slot(str, int, int)
    def _show_progress(self, stage: str, done: int, total: int) -> None:
        strip = self.strip
        if strip.isHidden():
            return  # a late report of a job that has finished
        strip.label.setText(f"{self._progress_text} {stage}".strip())
        strip.bar.setRange(0, max(0, total))
        if total:
            strip.bar.setValue(min(done, total))

    def _cancel(self) -> None:
        if self._on_cancel is not None:
            self.strip.cancel_button.setEnabled(False)  # once: the job stops at its pace
            self._on_cancel()

    def release(self, timeout_ms: int = RELEASE_WAIT_MS) -> bool:
        """The window closes: stop every Explain job and wait (at most `timeout_ms`) for
        the worker, so no torch work is still running while the interpreter ends (that
        aborts the process). True when the worker is idle."""
        self.background.forget()
        self.jobs_forgotten.emit()  # the pages set their jobs' cancel flags
        self.finish_progress()
        return self.background.wait(timeout_ms)

    def _project_replaced(self) -> None:
        self.background.forget()
        self.jobs_forgotten.emit()
        self.finish_progress()
        self.model_changed.emit()
        self.samples_changed.emit()


def on_screen(widget: QWidget) -> bool:
    """Whether `widget` can be seen: shown, and not in a dock tabbed behind another. Qt
    keeps a tabified dock that is not in front "visible" (isVisible is True, its visible
    region empty); the pages must not compute for it — a trace or a top-k per epoch
    while training runs would take the trainer's CPU."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()
