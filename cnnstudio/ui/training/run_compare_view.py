"""Runs side by side, under History: select two or more runs there (Ctrl/Shift+click) and
this panel shows their curves overlaid, only the settings that differ, their best-epoch
metrics, and the layers that changed between the graphs they trained — which it selects
on the canvas (where the project's current graph still has them).

Everything here is table filling on run records already in memory (a few ms)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.project.run_compare import (
    changed_nodes,
    graph_diff,
    has_graph,
    metrics_table,
    settings_table,
)
from cnnstudio.ui.training.plots import OVERLAY_COLORS

HINT = "Select two or more runs above (Ctrl+click or Shift+click) to compare them"


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _change_text(change: dict[str, Any]) -> str:
    """"out_channels 16 → 32; type ReLU → GELU": parameters one by one, the rest whole."""
    parts = []
    for field in change["a"]:
        a, b = change["a"][field], change["b"][field]
        if field == "params" and isinstance(a, dict) and isinstance(b, dict):
            parts += [f"{k} {_text(a.get(k))} → {_text(b.get(k))}"
                      for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        else:
            parts.append(f"{field} {_text(a)} → {_text(b)}")
    return "; ".join(parts)


def layer_changes(runs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """`(layer id, run id, what changed)` from the first run to each other one."""
    base, rows = runs[0], []
    for other in runs[1:]:
        rid = str(other.get("id"))
        diff = graph_diff(base, other)
        rows += [(i, rid, "added") for i in diff["added"]]
        rows += [(i, rid, "removed") for i in diff["removed"]]
        rows += [(c["id"], rid, _change_text(c)) for c in diff["changed"]]
    return rows


def _table(columns: list[str], name: str) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    table.setWordWrap(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _fill(table: QTableWidget, columns: list[str], rows: list[list[str]]) -> None:
    table.clear()
    table.setColumnCount(len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            table.setItem(r, c, item)


class RunCompareView(QWidget):
    """The compare panel (objectName `runCompare`); `highlight` carries the changed layer
    ids to select on the canvas."""

    highlight = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runCompare")
        self.runs: list[dict[str, Any]] = []
        self.changed_layers: list[str] = []
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.loss_plot = pg.PlotWidget(enableMenu=False)
        self.loss_plot.setObjectName("compareLossPlot")
        self.metric_plot = pg.PlotWidget(enableMenu=False)
        self.metric_plot.setObjectName("compareMetricPlot")
        for plot, title in ((self.loss_plot, "loss (dashed: train, solid: validation)"),
                            (self.metric_plot, "validation accuracy / IoU (%)")):
            plot.setBackground(None)
            plot.getPlotItem().setTitle(title, size="9pt")
            plot.getPlotItem().setLabel("bottom", "epoch")
            plot.addLegend(offset=(-5, 5))
            plot.setMinimumSize(160, 110)
        self.settings = _table(["setting"], "compareSettings")
        self.metrics = _table(["metric"], "compareMetrics")
        self.layers = _table(["layer", "run", "change"], "compareLayers")
        self.show_button = QPushButton("Select changed layers on the canvas")
        self.show_button.setToolTip("Selects the changed layers the project's graph still"
                                    " has (added or changed ones)")
        self.show_button.clicked.connect(lambda: self.highlight.emit(list(self.changed_layers)))
        self.layers_note = QLabel()
        self.layers_note.setWordWrap(True)

        plots = QSplitter(Qt.Orientation.Vertical)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.metric_plot)
        tables = QWidget()
        column = QVBoxLayout(tables)
        column.setContentsMargins(0, 0, 0, 0)
        for label, widget in (("Settings that differ", self.settings),
                              ("Best-epoch metrics", self.metrics),
                              ("Layers that changed (from the first run)", self.layers)):
            column.addWidget(QLabel(f"<b>{label}</b>"))
            column.addWidget(widget, 1)
        column.addWidget(self.layers_note)
        column.addWidget(self.show_button)
        self.body = QSplitter(Qt.Orientation.Horizontal)
        self.body.addWidget(plots)
        self.body.addWidget(tables)
        self.body.setSizes([400, 560])  # the tables' text needs the room more than the plots
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        top = QHBoxLayout()
        top.addWidget(self.hint, 1)
        layout.addLayout(top)
        layout.addWidget(self.body, 1)
        self.set_runs([])

    def set_runs(self, runs: list[dict[str, Any]]) -> None:
        """Compare these run records (fewer than two: only the hint shows). Emits
        `highlight` with the changed layers when the compared runs change."""
        runs = [r for r in runs if isinstance(r, dict)]
        if len(runs) < 2:
            runs = []
        same = [r.get("id") for r in runs] == [r.get("id") for r in self.runs]
        self.runs = runs
        self.body.setVisible(bool(runs))
        if not runs:
            self.hint.setText(HINT)
            self.changed_layers = []
            return
        ids = [str(r.get("id")) for r in runs]
        self.hint.setText(f"Comparing {', '.join(ids)}")
        settings = settings_table(runs)
        _fill(self.settings, ["setting", *ids], [[k, *map(_text, v)] for k, v in settings]
              or [["(the same settings)", *([""] * len(ids))]])
        _fill(self.metrics, ["metric", *ids],
              [[k, *map(_text, v)] for k, v in metrics_table(runs)])
        rows = layer_changes(runs)
        _fill(self.layers, ["layer", "run", "change"], [list(r) for r in rows])
        missing = [str(r.get("id")) for r in runs if not has_graph(r)]
        self.layers_note.setText(
            f"{', '.join(missing)} kept no graph (trained by an older version): its layers"
            " cannot be compared" if missing else
            "The same graph" if not rows else "")
        self.changed_layers = list(dict.fromkeys(
            i for r in runs[1:] for i in changed_nodes(graph_diff(runs[0], r))))
        self.show_button.setEnabled(bool(self.changed_layers))
        self._draw(runs)
        if not same and self.changed_layers:
            self.highlight.emit(list(self.changed_layers))

    def _draw(self, runs: list[dict[str, Any]]) -> None:
        for plot in (self.loss_plot, self.metric_plot):
            plot.getPlotItem().clear()  # the curves and their legend entries
        for i, run in enumerate(runs):
            color = OVERLAY_COLORS[i % len(OVERLAY_COLORS)]
            rid = str(run.get("id"))
            epochs = [e for e in run.get("epochs", []) if isinstance(e, dict)
                      and isinstance(e.get("epoch"), int)]
            for plot, key, style, name in (
                    (self.loss_plot, "train_loss", Qt.PenStyle.DashLine, None),
                    (self.loss_plot, "val_loss", Qt.PenStyle.SolidLine, rid),
                    (self.metric_plot, "val_accuracy", Qt.PenStyle.SolidLine, rid),
                    (self.metric_plot, "val_iou", Qt.PenStyle.SolidLine, rid)):
                pts = [(e["epoch"], e[key]) for e in epochs
                       if isinstance(e.get(key), (int, float))]
                if not pts:
                    continue
                x, y = (np.asarray(v, np.float64) for v in zip(*pts, strict=True))
                scale = 100.0 if plot is self.metric_plot else 1.0
                plot.plot(x, y * scale, pen=pg.mkPen(color, width=1.6, style=style),
                          name=name, symbol="o", symbolSize=5, symbolBrush=color,
                          symbolPen=None)

    def curve_names(self, plot: pg.PlotWidget) -> list[str | None]:
        """The curves' names on `plot` (tests)."""
        return [item.opts.get("name") for item in plot.getPlotItem().listDataItems()]
