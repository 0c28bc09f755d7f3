"""The training controls: Train / Pause / Stop, the progress bar, the device, the log."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QToolButton,
    QWidget,
)

IDLE, STARTING, RUNNING, PAUSED, STOPPING = "idle", "starting", "running", "paused", "stopping"
PAUSE_TIP = "Hold training after the current batch"


def format_eta(seconds: float) -> str:
    """0:07, 1:05:30: seconds as h:mm:ss or m:ss."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_text(p: dict[str, Any], epochs: int, batch_size: int,
                  paused: bool) -> tuple[int, int, str]:
    """(done, total, text) of the progress bar from a batch signal's progress `p`: epoch,
    batch, images per second and the time left at that speed."""
    batches = int(p["batches"])
    done = (p["epoch"] - 1) * batches + p["batch"]
    total = epochs * batches
    where = f"Epoch {p['epoch']}/{epochs} · batch {p['batch']}/{batches}"
    if paused:  # nothing moves while paused: no speed, no time left that would drift
        return done, total, f"Paused · {where}"
    ips = float(p.get("images_per_second") or 0.0)
    eta = (total - done) * batch_size / ips if ips > 0 else 0.0
    return done, total, f"{where} · {ips:,.0f} img/s · ETA {format_eta(eta)}"


def epoch_line(record: dict[str, Any], epochs: Any) -> str:
    """The log's line for one epoch: losses, accuracies (or IoU), seconds."""
    parts = [f"epoch {record.get('epoch')}/{epochs}",
             f"train loss {record.get('train_loss', float('nan')):.4f}"]
    for key, label, pct in (("train_accuracy", "train acc", True),
                            ("val_loss", "val loss", False),
                            ("val_accuracy", "val acc", True), ("val_iou", "val IoU", True)):
        value = record.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{label} {100 * value:.1f} %" if pct else f"{label} {value:.4f}")
    if record.get("seconds") is not None:
        parts.append(f"{record['seconds']:.1f} s")
    return "  ".join(parts)


class ElidedProgressBar(QProgressBar):
    """A progress bar whose text is cut with "…" to fit the bar (never wrapped or drawn
    past it); the whole text is its tooltip."""

    def text(self) -> str:
        full = super().text()
        room = self.contentsRect().width() - 12  # the style's margins around the text
        return self.fontMetrics().elidedText(full, Qt.TextElideMode.ElideRight, max(room, 20))

    def full_text(self) -> str:
        return super().text()

    def setFormat(self, text: str) -> None:
        super().setFormat(text)
        self.setToolTip(text)


class TrainingControls(QWidget):
    """One row: the buttons, the progress bar (epoch, batch, images/s, ETA), the device."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingControls")
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        self.train_button = self._button("trainButton", "Train", QStyle.StandardPixmap.SP_MediaPlay,
                                         "Train the network on its data (Ctrl+T)")
        self.restart_button = self._button("restartButton", "New run", None,
                                           "Start a new run instead of resuming the stopped one")
        self.pause_button = self._button("pauseButton", "Pause", QStyle.StandardPixmap.SP_MediaPause,
                                         PAUSE_TIP)
        self.pause_button.setCheckable(True)
        self.stop_button = self._button("stopButton", "Stop", QStyle.StandardPixmap.SP_MediaStop,
                                        "Stop after the current batch; the weights are kept"
                                        " and the run can be resumed")
        for button in (self.train_button, self.restart_button, self.pause_button,
                       self.stop_button):
            row.addWidget(button)
        self.progress = ElidedProgressBar(self)
        self.progress.setObjectName("trainingProgress")
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Not trained yet")
        self.progress.setMinimumWidth(280)
        self.progress.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        row.addWidget(self.progress, 1)
        self.device = QLabel("", self)
        self.device.setObjectName("trainingDevice")
        self.device.setToolTip("Where the run trains (shown once it started)")
        row.addWidget(self.device)
        self.predict_button = QToolButton(self)
        self.predict_button.setObjectName("predictImageButton")
        self.predict_button.setText("Predict image…")
        self.predict_button.setToolTip("Classify an image file and show where the network"
                                       " looks (Grad-CAM); you can also drop images here")
        self.kernel_button = QToolButton(self)
        self.kernel_button.setObjectName("kernelPlaygroundButton")
        self.kernel_button.setText("Kernels…")
        self.kernel_button.setToolTip("Set a convolution kernel by hand (Sobel, …) and see"
                                      " its feature map")
        # The inspection buttons live in the tab bar's corner (`tools`): the row keeps
        # its room for the progress text.
        self.tools = QWidget(self)
        tools = QHBoxLayout(self.tools)
        tools.setContentsMargins(0, 0, 4, 0)
        tools.addWidget(self.predict_button)
        tools.addWidget(self.kernel_button)
        self.set_state(IDLE, resumable=False)

    def _button(self, name: str, text: str, pixmap: QStyle.StandardPixmap | None,
                tip: str) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.setToolTip(tip)
        if pixmap is not None:
            button.setIcon(self.style().standardIcon(pixmap))
        button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        return button

    def set_state(self, state: str, resumable: bool) -> None:
        """Enable what makes sense in `state`; Train reads Resume for a stopped run."""
        busy = state != IDLE
        self.train_button.setEnabled(not busy)
        self.train_button.setText("Resume" if resumable and not busy else "Train")
        self.train_button.setToolTip(
            "Continue the stopped run where it stopped, with its optimizer state"
            if resumable else "Train the network on its data")
        self.restart_button.setVisible(resumable and not busy)
        self.pause_button.setEnabled(state in (RUNNING, PAUSED, STARTING))
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(state == PAUSED)
        self.pause_button.blockSignals(False)
        self.pause_button.setText("Resume" if state == PAUSED else "Pause")
        self.stop_button.setEnabled(state in (RUNNING, PAUSED, STARTING))

    def show_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(min(done, max(1, total)))
        self.progress.setFormat(text)


class TrainingLog(QPlainTextEdit):
    """One line per epoch, plus the start, the end and any error of each run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingLog")
        self.setReadOnly(True)
        self.setMaximumBlockCount(10_000)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)

    def add(self, line: str) -> None:
        self.appendPlainText(line)
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def lines(self) -> list[str]:
        return self.toPlainText().splitlines()
