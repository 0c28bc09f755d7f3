"""The learning-rate finder dialog: the range test off the GUI thread, its curve, one
click to use the suggested rate.

The test runs on a copy of the project (`Project.copy()`, taken when it starts) on a
`Background` worker; the worker writes its progress into plain values that a timer reads
(no widget is touched off the GUI thread), and Cancel sets an event the test checks
after each batch. "Use it" sets the learning rate through the settings form, as one undo
entry like any other edit of the form. torch is imported only by the worker's job.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.ui.training.background import Background

POLL_MS = 100  # how often the progress bar reads the worker's count
CURVE, SUGGESTED = "#1f77b4", "#d62728"


def shown_rate(lr: float) -> float:
    """The rate as the form will hold it: three significant digits (0.00123)."""
    return float(f"{lr:.3g}")


class LRFinderDialog(QDialog):
    """Runs the range test on `project_copy()` and offers its suggestion to `use(lr)`.

    `project_copy` is called when a test starts (a private copy for the worker);
    `use(lr)` applies a rate and returns False when it was refused."""

    def __init__(self, project_copy: Callable[[], Any], use: Callable[[float], bool],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("lrFinderDialog")
        self.setWindowTitle("Find a learning rate")
        self.resize(560, 420)
        self._project_copy, self._use = project_copy, use
        self._background = Background(self)
        self._cancel = threading.Event()
        self._done_batches = [0, 0]  # (done, most): written by the worker, read by a timer
        self.result: Any = None  # the LRFindResult of the last finished test
        self.running = False

        layout = QVBoxLayout(self)
        intro = QLabel("Trains a copy of the model for up to 100 batches while the learning"
                       " rate rises from 1e-7 to 10, and stops when the loss diverges."
                       " The project's weights are not changed.", self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.plot = pg.PlotWidget(self, enableMenu=False)
        self.plot.setObjectName("lrFinderPlot")
        self.plot.setBackground(None)
        item = self.plot.getPlotItem()
        item.setLogMode(x=True, y=False)
        item.setLabel("bottom", "learning rate")
        item.setLabel("left", "loss (smoothed)")
        self.curve = item.plot([], [], pen=pg.mkPen(CURVE, width=2))
        self.marker = pg.InfiniteLine(angle=90, movable=False,
                                      pen=pg.mkPen(SUGGESTED, width=1.5))
        self.marker.setVisible(False)
        item.addItem(self.marker, ignoreBounds=True)
        layout.addWidget(self.plot, 1)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("lrFinderProgress")
        layout.addWidget(self.progress)
        self.status = QLabel(self)
        self.status.setObjectName("lrFinderStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run again", self)
        self.run_button.setObjectName("lrFinderRun")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("lrFinderCancel")
        self.use_button = QPushButton("Use it", self)
        self.use_button.setObjectName("lrFinderUse")
        self.use_button.setToolTip("Set the learning rate to the suggested one (undoable)")
        close = QPushButton("Close", self)
        for button in (self.run_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.use_button.clicked.connect(self.use_suggestion)
        close.clicked.connect(self.close)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._show_progress)
        self._show_state()

    # ---- running ---------------------------------------------------------------------

    def start(self) -> None:
        """Start a test on a fresh copy of the project (nothing if one is running)."""
        if self.running:
            return
        project = self._project_copy()
        self._cancel = cancel = threading.Event()
        counts = self._done_batches = [0, 0]

        def progress(done: int, most: int) -> None:
            counts[0], counts[1] = done, most

        def job() -> Any:
            from cnnstudio.train.lr_find import lr_find_project

            return lr_find_project(project, progress=progress, cancel=cancel.is_set)

        self.running = True
        self.result = None
        self.curve.setData([], [])
        self.marker.setVisible(False)
        self.status.setText("Loading the data and the model…")
        self.progress.setRange(0, 0)  # busy until the first batch says how many
        self._timer.start()
        self._show_state()
        self._background.submit("lr-find", job, self._finished, self._failed)

    def cancel(self) -> None:
        """Stop the running test after its current batch; the curve so far is shown."""
        if self.running:
            self._cancel.set()
            self.status.setText("Cancelling…")

    def _show_progress(self) -> None:
        done, most = self._done_batches
        if most:
            self.progress.setRange(0, most)
            self.progress.setValue(done)
            self.status.setText(f"Batch {done} of at most {most}")

    def _finished(self, result: Any) -> None:
        self._stop_running()
        self.result = result
        if result.lrs:
            finite = [(lr, loss) for lr, loss in zip(result.lrs, result.losses, strict=True)
                      if math.isfinite(loss)]
            self.curve.setData([lr for lr, _ in finite], [loss for _, loss in finite])
            self._fit_loss_range([loss for _, loss in finite])
        self.progress.setRange(0, max(1, len(result.lrs)))
        self.progress.setValue(len(result.lrs))
        how = ("cancelled" if result.cancelled else "stopped when the loss diverged"
               if result.diverged else "finished")
        if result.suggested_lr is None:
            self.status.setText(f"The test {how} before any batch: no suggestion.")
        else:
            self.marker.setValue(math.log10(result.suggested_lr))  # log-x axis
            self.marker.setVisible(True)
            self.status.setText(
                f"Suggested learning rate: {shown_rate(result.suggested_lr):g} (where the"
                f" smoothed loss falls fastest). The test {how} after {len(result.lrs)}"
                " batches.")
        self._show_state()

    def _fit_loss_range(self, losses: list[float]) -> None:
        """Show the losses up to 1.5× the first one: the diverging tail would otherwise
        squeeze the descent that matters into a flat line at the bottom."""
        if not losses:
            return
        low, top = min(losses), max(losses)
        high = min(top, max(losses[0], low) * 1.5)
        margin = 0.05 * (high - low) or 0.05 * abs(high) or 0.05
        self.plot.getPlotItem().setYRange(low - margin, high + margin, padding=0)

    def _failed(self, error: BaseException) -> None:
        self._stop_running()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        first = str(error).strip().splitlines()
        self.status.setText(f"The test cannot run: {first[0] if first else type(error).__name__}")
        self._show_state()

    def _stop_running(self) -> None:
        self.running = False
        self._timer.stop()

    def _show_state(self) -> None:
        self.run_button.setEnabled(not self.running)
        self.cancel_button.setEnabled(self.running)
        self.use_button.setEnabled(not self.running and self.result is not None
                                   and self.result.suggested_lr is not None)

    # ---- using the result -------------------------------------------------------------

    def use_suggestion(self) -> bool:
        """Set the learning rate to the suggestion (rounded to 3 digits); one undo entry."""
        if self.result is None or self.result.suggested_lr is None:
            return False
        return self._use(shown_rate(self.result.suggested_lr))

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self._cancel.set()  # a running test stops after its batch; its result is dropped
        self._background.forget()
        self._stop_running()
        self._show_state()
        super().closeEvent(event)
