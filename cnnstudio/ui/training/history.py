"""The runs stored in the project: one row each; select one to see its curves again,
tick several to overlay them.

A click or a tick shows its curves at once; a refill (a project opened, a run ended)
and a selection made by the program show them in the next turn of the event loop, once:
the overlays and their legends take 20–50 ms, and that turn has other work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from cnnstudio.project.origin import FRESH
from cnnstudio.ui.document import deferred

COLUMNS = ("run", "status", "epochs", "best", "starts from", "device", "started")
INIT_TIP = {"fresh": "Started from new random weights (seeded by the training seed)",
            "—": "Recorded before runs noted where their weights started",
            "weights from no run": "Started from weights that no recorded run left"
                                   " (imported, or the project was edited by hand)"}


def best_metric(run: dict[str, Any]) -> str:
    """The run's headline: best-epoch validation accuracy / IoU, else its loss."""
    best = run.get("best") or {}
    epoch = run.get("best_epoch")
    at = f" (epoch {epoch})" if epoch else ""
    for key, label in (("val_accuracy", "accuracy"), ("val_iou", "IoU")):
        if isinstance(best.get(key), (int, float)):
            return f"{label} {100 * best[key]:.1f} %{at}"
    for key in ("val_loss", "train_loss"):
        if isinstance(best.get(key), (int, float)):
            return f"{key.replace('_', ' ')} {best[key]:.4f}{at}"
    return "—"


def when(text: Any) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM' (as given when it does not parse)."""
    try:
        return datetime.fromisoformat(str(text)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(text or "")


def weights_epoch(run: dict[str, Any]) -> int:
    """The epoch of `run` whose weights it left: its record's `best_epoch`, which names
    the epoch of the weights kept (the best one with checkpoint "best", also when the run
    was stopped or its loss diverged; else the last validated one); without it, its last
    recorded epoch."""
    best = run.get("best_epoch")
    if isinstance(best, int) and not isinstance(best, bool) and best >= 0:
        return best
    epochs = [e.get("epoch") for e in run.get("epochs", []) if isinstance(e, dict)]
    return max((e for e in epochs if isinstance(e, int)), default=0)


def from_run(run: dict[str, Any]) -> str | None:
    """The id of the run whose weights `run` started from (None: fresh or unknown)."""
    init = run.get("init")
    return str(init["from_run"]) if isinstance(init, dict) and init.get("from_run") else None


def starts_from(init: Any) -> str:
    """A run record's `init` in History's words: "fresh", "run-2", "—" when the record
    predates it, "imported (FILE)" for an imported model's weights, "weights from no run"
    for weights of unknown origin."""
    if init == FRESH:
        return "fresh"
    if isinstance(init, dict) and not init.get("from_run") and isinstance(init.get("imported"), str):
        return f"imported ({init['imported']})"
    if isinstance(init, dict) and "from_run" in init:
        return str(init["from_run"]) if init["from_run"] else "weights from no run"
    return "—"


def run_offsets(runs: list[dict[str, Any]]) -> dict[str, int]:
    """Where each run's epoch 0 lies on a shared axis: a warm start goes on from the
    epoch its weights came from (run-2 from run-1's epoch 5 begins at 5), so a chain of
    runs reads as one curve. Fresh runs, and runs of unknown origin, begin at 0."""
    by_id = {str(r.get("id")): r for r in runs if isinstance(r, dict)}
    out: dict[str, int] = {}

    def offset(run_id: str, chain: frozenset[str]) -> int:
        if run_id not in out:
            parent = from_run(by_id[run_id])
            # An unknown parent, or a loop (a hand-edited file), has no place on the axis.
            out[run_id] = 0 if parent not in by_id or parent in chain else (
                offset(str(parent), chain | {run_id}) + weights_epoch(by_id[str(parent)]))
        return out[run_id]

    for run_id in by_id:
        offset(run_id, frozenset({run_id}))
    return out


class HistoryView(QTreeWidget):
    """Lists `project.runs`; `shown_changed` carries the runs to draw (selected first,
    then the ticked ones)."""

    shown_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runHistory")
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(list(COLUMNS))
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)  # compare
        self.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.header().setStretchLastSection(True)
        self.setToolTip("Select a run to show its curves; tick runs to overlay them;"
                        " Ctrl+click a second run to compare them")
        self._runs: list[dict[str, Any]] = []
        self.offsets: dict[str, int] = {}  # run id → where its epoch 0 lies (run_offsets)
        self._filling = False
        self._later = deferred(self, self._emit)  # once, in the next turn (see above)
        self.itemSelectionChanged.connect(self._emit)
        self.itemChanged.connect(lambda _item, column: self._emit() if column == 0 else None)

    def set_runs(self, runs: list[dict[str, Any]]) -> None:
        """Show `runs` (oldest first in the project; newest on top here)."""
        ticked = {r.get("id") for r in self.shown_runs()}
        self._filling = True
        self.clear()
        self._runs = [r for r in runs if isinstance(r, dict)]
        self.offsets = run_offsets(self._runs)
        by_id = {str(r.get("id")): r for r in self._runs}
        start = COLUMNS.index("starts from")
        for index, run in reversed(list(enumerate(self._runs))):
            epochs = [e for e in run.get("epochs", []) if isinstance(e, dict)]
            init = starts_from(run.get("init"))
            item = QTreeWidgetItem([str(run.get("id", "?")), str(run.get("status", "")),
                                    str(len(epochs)), best_metric(run), init,
                                    str(run.get("device", "")), when(run.get("started"))])
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Checked if run.get("id") in ticked
                               and index is not None else Qt.CheckState.Unchecked)
            item.setData(0, Qt.ItemDataRole.UserRole, index)
            if run.get("message"):
                for column in range(len(COLUMNS)):
                    item.setToolTip(column, str(run["message"]))
            parent = by_id.get(init)
            item.setToolTip(start, INIT_TIP.get(init) or (
                f"Started from the weights {init} left (its epoch {weights_epoch(parent)}):"
                " the curves go on from there" if parent is not None
                else f"Started from the weights {init} left"))
            self.addTopLevelItem(item)
        self._filling = False
        self._later.start()

    def _run(self, item: QTreeWidgetItem) -> dict[str, Any]:
        return self._runs[int(item.data(0, Qt.ItemDataRole.UserRole))]

    def shown_runs(self) -> list[dict[str, Any]]:
        """The selected run, then the ticked ones (each once)."""
        out: list[dict[str, Any]] = []
        for item in self.selectedItems():
            out.append(self._run(item))
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if item.checkState(0) == Qt.CheckState.Checked and self._run(item) not in out:
                out.append(self._run(item))
        return out

    def selected_runs(self) -> list[dict[str, Any]]:
        """The selected runs, oldest first (the first is the one a compare starts from)."""
        items = sorted(self.selectedItems(), key=lambda i: -self.indexOfTopLevelItem(i))
        return [self._run(item) for item in items]

    def select_run(self, run_id: str) -> None:
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if item.text(0) == run_id:
                filling, self._filling = self._filling, True
                self.setCurrentItem(item)
                self._filling = filling
                self._later.start()
                return

    def set_ticked(self, run_id: str, ticked: bool) -> None:
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if item.text(0) == run_id:
                item.setCheckState(0, Qt.CheckState.Checked if ticked
                                   else Qt.CheckState.Unchecked)

    def _emit(self) -> None:
        if not self._filling:
            self._later.stop()  # shown now: nothing left for the next turn
            self.shown_changed.emit(self.shown_runs())
