"""The Sweep dialog (Training ▸ Sweep…): what `cnnstudio sweep` does, in the window.

The sweep trains on a copy of the project on a worker thread (torch is imported there,
never on the GUI thread); each finished trial comes back through a queued signal, and
when the sweep ends its runs are added to the open project's History (unsaved, like a
training run's). Stop asks the trial in progress to stop after its batch.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.ui.torch_loading import fast_switching, load_torch

EXAMPLE = "training.optimizer.lr=0.0003,0.001,0.003\ntraining.batch_size=32,64"


class _Signals(QObject):
    planned = Signal(object)  # (sweep id, number of trials, number already recorded)
    trial_ended = Signal(object)  # a TrialOutcome
    epoch_ended = Signal(int, int)  # epoch, epochs of the trial
    finished = Signal(object)  # (project copy, sweep id, ranking rows, stopped)
    failed = Signal(str)


class SweepDialog(QDialog):
    """Settings to sweep (one `KEY=V1,V2,...` per line), the number of random trials
    (0: every combination), the epochs per trial; Run, Stop; progress; the ranking."""

    def __init__(self, training_ui: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sweepDialog")
        self.setWindowTitle("Sweep")
        self.training_ui = training_ui
        self.signals = _Signals(self)
        self._sweep: Any = None
        self._thread: threading.Thread | None = None
        self.settings = QPlainTextEdit(EXAMPLE)
        self.settings.setObjectName("sweepSettings")
        self.settings.setMaximumHeight(90)  # a few lines; the ranking gets the room
        self.settings.setToolTip("One setting per line: a dotted key into training or data"
                                 " and its values, separated by commas")
        self.trials = QSpinBox()
        self.trials.setRange(0, 10_000)
        self.trials.setSpecialValueText("every combination")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10_000)
        self.epochs.setValue(int(training_ui.doc.project.training.get("epochs", 10) or 10))
        form = QFormLayout()
        form.addRow("Settings to sweep:", self.settings)
        form.addRow("Random trials:", self.trials)
        form.addRow("Epochs per trial:", self.epochs)
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setObjectName("sweepStatus")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, 0)
        self.table.setObjectName("sweepRanking")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()  # the rank column numbers the rows
        self.run_button = QPushButton("Run")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        close = QPushButton("Close")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.run_button, self.stop_button, close):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.run_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        close.clicked.connect(self.close)
        self.signals.planned.connect(self._planned)
        self.signals.trial_ended.connect(self._trial_ended)
        self.signals.epoch_ended.connect(self._epoch_ended)
        self.signals.finished.connect(self._finished)
        self.signals.failed.connect(self._failed)
        self.resize(640, 480)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Plan and run the sweep on a worker thread; False (with the reason shown) when
        it cannot start now."""
        if self.running:
            return False
        if getattr(self.training_ui.controller, "running", False):
            self.status.setText("Training is running: stop it or wait before a sweep.")
            return False
        lines = [line.strip() for line in self.settings.toPlainText().splitlines()
                 if line.strip()]
        project = self.training_ui.doc.project.copy()
        trials = self.trials.value() or None
        epochs = self.epochs.value()
        self._origin = self.training_ui.doc.project
        self._done = 0
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status.setText("Starting…")
        self._thread = threading.Thread(target=self._work, daemon=True,
                                        args=(project, lines, trials, epochs))
        self._thread.start()
        return True

    def stop(self) -> None:
        if self._sweep is not None:
            self._sweep.stop()
            self.status.setText("Stopping after this batch…")

    def _work(self, project: Any, lines: list[str], trials: int | None, epochs: int) -> None:
        """On the worker thread: everything that needs torch (loaded so that the window
        keeps answering meanwhile)."""
        try:
            load_torch()
            with fast_switching():
                self._sweep_on(project, lines, trials, epochs)
        except Exception as err:  # a fault of ours: said in the dialog, never raised in Qt
            self.signals.failed.emit(f"the sweep failed: {type(err).__name__}: {err}")

    def _sweep_on(self, project: Any, lines: list[str], trials: int | None,
                  epochs: int) -> None:
        """Plan and run the sweep on `project` (on the worker thread)."""
        from cnnstudio.train.callbacks import Callback
        from cnnstudio.train.sweep import Sweep, SweepError, parse_set, plan_sweep, ranking

        signals = self.signals

        class Epochs(Callback):
            def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
                signals.epoch_ended.emit(int(record.get("epoch", 0)), epochs)

        try:
            plan = plan_sweep(project, [parse_set(line) for line in lines], trials=trials,
                              epochs=epochs)
        except SweepError as err:
            signals.failed.emit(str(err))
            return
        self._sweep = Sweep(project, plan, epochs=epochs)
        signals.planned.emit((plan.id, len(plan.trials), len(plan.done)))
        self._sweep.run(callbacks=[Epochs()], on_trial_end=signals.trial_ended.emit)
        signals.finished.emit((project, plan.id, ranking(project, plan.id),
                               self._sweep.stopped))

    def _planned(self, info: tuple[str, int, int]) -> None:
        sid, total, done = info
        self._sid, self._total = sid, total
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.status.setText(f"Sweep {sid}: {total} trial(s), {done} already recorded.")

    def _epoch_ended(self, epoch: int, epochs: int) -> None:
        self.status.setText(f"Sweep {self._sid}: trial {self._done + 1} of {self._total},"
                            f" epoch {epoch} of {epochs}")

    def _trial_ended(self, outcome: Any) -> None:
        if outcome.status != "stopped":
            self._done = outcome.trial + 1
            self.progress.setValue(self._done)

    def _failed(self, message: str) -> None:
        self.status.setText(message)
        self._idle()

    def _finished(self, result: tuple[Any, str, list[dict[str, Any]], bool]) -> None:
        project, sid, rows, stopped = result
        renamed = self._merge(project, sid)
        self._show_ranking([{**row, "run": renamed.get(str(row["run"]), row["run"])}
                            for row in rows])
        added = len(renamed)
        what = "stopped: Run again to resume it" if stopped else "finished"
        self.status.setText(f"Sweep {sid} {what}; {added} new run(s) added to the History.")
        self._idle()

    def _idle(self) -> None:
        self._sweep = None
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _merge(self, trained: Any, sid: str) -> dict[str, str]:
        """Add the sweep's new runs to the open project (renumbered after its runs, which
        may have changed meanwhile); return their old id → new id, none when another
        project was opened since."""
        doc = self.training_ui.doc
        if doc.project is not self._origin:
            return {}
        known = {str(r.get("id")) for r in doc.project.runs if isinstance(r, dict)}
        new = [r for r in trained.runs if isinstance(r, dict) and str(r.get("id")) not in known
               and isinstance(r.get("sweep"), dict) and r["sweep"].get("id") == sid]
        numbers = [int(m.group(1)) for r in doc.project.runs if isinstance(r, dict)
                   and (m := re.fullmatch(r"run-(\d+)", str(r.get("id", ""))))]
        renamed: dict[str, str] = {}
        for offset, record in enumerate(new, start=max(numbers, default=0) + 1):
            renamed[str(record["id"])] = record["id"] = f"run-{offset}"
        if new:
            doc.project.runs = [*doc.project.runs, *new]
            doc.undo_stack.resetClean()  # as a training run does: new content to save
            self.training_ui.history.set_runs(doc.project.runs)
        return renamed

    def _show_ranking(self, rows: list[dict[str, Any]]) -> None:
        keys = list(rows[0]["settings"]) if rows else []
        metric = rows[0]["metric"] if rows else "val_accuracy"
        heads = ["rank", "run", *keys, metric, "val_loss"]
        self.table.clear()
        self.table.setColumnCount(len(heads))
        self.table.setHorizontalHeaderLabels(heads)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            cells = [row["rank"], row["run"], *(row["settings"].get(k) for k in keys),
                     "—" if row["value"] is None else f"{row['value']:.4f}",
                     "—" if row["val_loss"] is None else f"{row['val_loss']:.4f}"]
            for j, cell in enumerate(cells):
                item = QTableWidgetItem(str(cell))
                item.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        self.stop()  # a sweep left running would train on unseen
        super().closeEvent(event)


def open_sweep_dialog(training_ui: Any) -> SweepDialog:
    """Show the window's Sweep dialog (one per window, kept between uses)."""
    dialog = getattr(training_ui, "_sweep_dialog", None)
    if dialog is None:
        dialog = training_ui._sweep_dialog = SweepDialog(training_ui, training_ui.window)
    dialog.show()
    dialog.raise_()
    return dialog
