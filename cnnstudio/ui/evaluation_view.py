"""The Evaluate dock: the trained model's metrics on a test set (the project's test or
validation split, or another folder), computed off the GUI thread by
`cnnstudio.train.evaluation_run.evaluate_project`, and a report saved from them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.ui.training.background import Background
from cnnstudio.ui.training.confusion import ConfusionMatrix

if TYPE_CHECKING:
    from cnnstudio.ui.main_window import MainWindow

METRICS = ("precision", "recall", "f1", "support", "roc_auc", "average_precision")
RELEASE_WAIT_MS = 5000
IMAGE_METRICS = ("iou", "dice", "precision", "recall", "f1")


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _table(headers: list[str], rows: list[list[Any]]) -> QTableWidget:
    table = QTableWidget(len(rows), len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(value if isinstance(value, str) else
                                                 _num(value)))
    table.resizeColumnsToContents()
    return table


class EvaluationView(QWidget):
    """Split / other folder, Evaluate, Save report…, then the results in tabs."""

    _progress = Signal(int, int)  # emitted on the worker: queued to the GUI thread

    def __init__(self, window: MainWindow) -> None:
        super().__init__()
        self.setObjectName("evaluationView")
        self.window_ = window
        self.background = Background(self, needs_torch=True)
        self.evaluation: Any = None
        self.worker_thread: int | None = None  # the thread the last evaluation ran on
        self.folder: str | None = None
        self.split = QComboBox()
        self.split.setObjectName("evaluationSplit")
        self.split.addItem("test split", "test")
        self.split.addItem("validation split", "val")
        self.other = QPushButton("Other folder…")
        self.other.setObjectName("evaluationOtherFolder")
        self.other.clicked.connect(self._choose_folder)
        self.run_button = QPushButton("Evaluate")
        self.run_button.setObjectName("evaluationRun")
        self.run_button.clicked.connect(self.evaluate)
        self.save_button = QPushButton("Save report…")
        self.save_button.setObjectName("evaluationSaveReport")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(lambda: self.save_report())
        self.progress = QProgressBar()
        self.progress.setObjectName("evaluationProgress")
        self.progress.setVisible(False)
        self._progress.connect(self._show_progress)
        self.message = QLabel("Choose the samples and press Evaluate.")
        self.message.setObjectName("evaluationMessage")
        self.message.setWordWrap(True)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("evaluationTabs")
        bar = QHBoxLayout()
        for w in (self.split, self.other, self.run_button, self.save_button):
            bar.addWidget(w)
        bar.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.message)
        layout.addWidget(self.tabs, 1)

    # ---- running ---------------------------------------------------------------------------

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Evaluate on the samples of")
        self.folder = folder or None
        self.other.setText(f"Folder: {Path(folder).name}" if folder else "Other folder…")

    def evaluate(self) -> None:
        """Start the evaluation on the worker; the results arrive in `_done`."""
        project = self.window_.project
        if getattr(project, "weights", None) is None:
            self._fail_text("The project has no trained weights: train it first.")
            return
        data, split = self.folder, self.split.currentData()
        emit = self._progress.emit
        project = project.copy()  # the worker's own: the user may edit on meanwhile

        def job() -> Any:
            from cnnstudio.train.evaluation_run import evaluate_project

            self.worker_thread = threading.get_ident()
            return evaluate_project(project, data=data, split=split,
                                    progress=lambda _what, done, total: emit(done, total))

        self.run_button.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.message.setText("Evaluating…")
        self.background.submit("evaluate", job, self._done, self._failed)

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _failed(self, err: BaseException) -> None:
        self._fail_text(str(err).splitlines()[0] if str(err) else type(err).__name__)

    def _fail_text(self, text: str) -> None:
        self.run_button.setEnabled(True)
        self.progress.setVisible(False)
        self.message.setText(text)

    def _done(self, evaluation: Any) -> None:
        self.evaluation = evaluation
        self.run_button.setEnabled(True)
        self.save_button.setEnabled(True)
        self.progress.setVisible(False)
        self.tabs.clear()
        doc = evaluation.to_json()
        head = f"{doc['samples']} samples: {evaluation.samples_from}"
        if evaluation.note:
            head += f" ({evaluation.note})"
        if evaluation.task == "classification":
            self._show_classification(evaluation, doc, head)
        else:
            self._show_segmentation(evaluation, doc, head)

    # ---- classification --------------------------------------------------------------------

    def _show_classification(self, ev: Any, doc: dict[str, Any], head: str) -> None:
        line = f"accuracy {_num(doc['accuracy'])}"
        if "top5" in doc:
            line += f" · top-5 {_num(doc['top5'])}"
        self.message.setText(f"{head} — {line}")
        rows = [[c["class"], *(c[m] for m in METRICS)] for c in doc["classes"]]
        for name in ("macro", "weighted"):
            avg = doc[name]
            rows.append([name, *(avg.get(m, "") if m != "support" else "" for m in METRICS)])
        self.class_table = _table(["class", *METRICS], rows)
        self.class_table.setObjectName("evaluationClassTable")
        self.tabs.addTab(self.class_table, "Per class")
        self.confusion = ConfusionMatrix()
        self.confusion.setObjectName("evaluationConfusion")
        self.confusion.set_matrix(np.asarray(doc["confusion_matrix"]), ev.class_names)
        self.tabs.addTab(self.confusion, "Confusion")
        self.tabs.addTab(self._curves(ev), "ROC / PR")
        self.tabs.addTab(self._mistakes(ev), "Mistakes")

    def _curves(self, ev: Any) -> QWidget:
        from cnnstudio.train.evaluation import curves

        box = QWidget()
        layout = QHBoxLayout(box)
        roc, pr = pg.PlotWidget(title="ROC"), pg.PlotWidget(title="Precision-recall")
        roc.setLabel("bottom", "false positive rate")
        roc.setLabel("left", "true positive rate")
        pr.setLabel("bottom", "recall")
        pr.setLabel("left", "precision")
        columns = 2 if len(ev.class_names) > 5 else 1
        # The curves hug the top-left (ROC) and top-right (PR) corners: legends go below.
        for plot, corner in ((roc, (-10, -10)), (pr, (10, -10))):
            plot.setBackground(None)  # the window's own background, as the training plots
            plot.addLegend(offset=corner, colCount=columns)
            layout.addWidget(plot)
        for k, name in enumerate(ev.class_names):
            pts = curves(ev.y == k, ev.probabilities[:, k])
            pen = pg.mkPen(pg.intColor(k, len(ev.class_names)), width=2)
            roc.plot(pts["fpr"], pts["tpr"], pen=pen, name=name)
            pr.plot(pts["recall"], pts["precision"], pen=pen, name=name)
        self.roc_plot, self.pr_plot = roc, pr
        return box

    def _mistakes(self, ev: Any) -> QWidget:
        box = QWidget()
        layout = QHBoxLayout(box)
        self.mistakes = QListWidget()
        self.mistakes.setObjectName("evaluationMistakes")
        self.mistakes.setIconSize(pg.QtCore.QSize(48, 48))
        names = ev.class_names
        for m in ev.result.mistakes:
            item = QListWidgetItem(f"true {names[m['true']]} → predicted"
                                   f" {names[m['predicted']]} ({m['probability']:.1%})")
            file = ev.files[m["index"]] if m["index"] < len(ev.files) else None
            if file:
                item.setIcon(QIcon(QPixmap(file)))
            item.setData(Qt.ItemDataRole.UserRole, m["index"])
            self.mistakes.addItem(item)
        self.probabilities = QLabel("Click a mistake to see its probabilities.")
        self.probabilities.setObjectName("evaluationProbabilities")
        self.probabilities.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.mistakes.currentItemChanged.connect(self._mistake_chosen)
        layout.addWidget(self.mistakes, 2)
        layout.addWidget(self.probabilities, 1)
        return box

    def _mistake_chosen(self, item: QListWidgetItem | None) -> None:
        if item is None or self.evaluation is None:
            return
        i = item.data(Qt.ItemDataRole.UserRole)
        probs = self.evaluation.probabilities[i]
        order = np.argsort(-probs)
        self.probabilities.setText("\n".join(
            f"{self.evaluation.class_names[k]}: {probs[k]:.1%}" for k in order))

    # ---- segmentation ----------------------------------------------------------------------

    def _show_segmentation(self, ev: Any, doc: dict[str, Any], head: str) -> None:
        overall = " · ".join(f"{m} {_num(doc[m])}" for m in IMAGE_METRICS)
        self.message.setText(f"{head} — {overall} · best threshold"
                             f" {_num(doc['best_threshold'])}")
        rows = [[Path(img["file"]).name if img["file"] else str(i),
                 *(img[m] for m in IMAGE_METRICS)] for i, img in enumerate(doc["images"])]
        self.image_table = _table(["image", *IMAGE_METRICS], rows)
        self.image_table.setObjectName("evaluationImageTable")
        self.tabs.addTab(self.image_table, "Per image")
        sweep = ev.result.sweep
        plot = pg.PlotWidget(title="Threshold sweep")
        plot.setBackground(None)
        plot.addLegend(offset=(10, -10))
        plot.setLabel("bottom", "foreground threshold")
        for k, key in enumerate(("precision", "recall", "f1")):
            plot.plot(sweep["threshold"], sweep[key], name=key,
                      pen=pg.mkPen(pg.intColor(k, 3), width=2))
        plot.addItem(pg.InfiniteLine(doc["best_threshold"], angle=90,
                                     label=f"best F1 at {doc['best_threshold']:.2f}"))
        self.sweep_plot = plot
        self.tabs.addTab(plot, "Threshold sweep")
        self.worst = QListWidget()
        self.worst.setObjectName("evaluationWorst")
        for w in ev.worst:
            name = Path(w["file"]).name if w["file"] else f"image {w['index']}"
            self.worst.addItem(f"{name}: IoU {w['iou']:.3f}")
        self.tabs.addTab(self.worst, "Worst images")

    # ---- report ----------------------------------------------------------------------------

    def save_report(self, path: str | None = None) -> None:
        """Write the report (.md or .html) on the worker; `path` None asks for one."""
        if self.evaluation is None:
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save the evaluation report",
                                                  "evaluation.html",
                                                  "Report (*.html *.md)")
            if not path:
                return
        ev, title = self.evaluation, self.window_.windowTitle() or "the model"

        def job() -> list[Path]:
            from cnnstudio.train.evaluation_report import write_report

            return write_report(ev, Path(path), title)

        self.message.setText("Writing the report…")
        self.background.submit("report", job,
                               lambda files: self.message.setText(
                                   f"Report saved: {Path(path).name}"),
                               self._failed)


class EvaluationPlugin(QObject):
    """The Evaluate dock (objectName "evaluationDock") and Training → Evaluate…."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.view = EvaluationView(window)
        self.dock = window.add_dock("evaluationDock", "Evaluate", self.view,
                                    Qt.DockWidgetArea.BottomDockWidgetArea,
                                    beside=window.training.dock)
        window.summary_dock.raise_()  # add_dock raised Training; the summary was in front
        self.action = QAction("E&valuate…", window)
        self.action.setObjectName("actionEvaluate")
        self.action.setStatusTip("Measure the trained model on the test set: metrics,"
                                 " confusion matrix, curves, mistakes")
        self.action.triggered.connect(lambda _checked=False: self.show())
        window.training.menu.addAction(self.action)

    def show(self) -> None:
        """Show and raise the Evaluate dock."""
        self.dock.show()
        self.dock.raise_()

    def release(self) -> None:
        """The window closes: drop the results not yet delivered and wait (at most
        `RELEASE_WAIT_MS`) for a running evaluation, so that torch is not running at exit."""
        self.view.background.forget()
        self.view.background.wait(RELEASE_WAIT_MS)


def install_evaluation_ui(window: MainWindow) -> EvaluationPlugin:
    """Add the Evaluate dock and its action to `window` (after the Explain UI)."""
    return EvaluationPlugin(window)
