"""The window's training plug-in: docks, menus, the refresh timer, selection sync.

Two docks: "Training" at the bottom (tabbed with the model summary) holds the controls
row and the live views (Curves, Filters, Activations, Confusion, History, Log);
"Training settings" on the right (tabbed with the inspector) holds the settings form.
Views refresh from one 10 Hz timer while a run is going, and only when visible.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QSplitter, QTabWidget, QVBoxLayout, QWidget

from cnnstudio.core import registry
from cnnstudio.ui.document import deferred
from cnnstudio.ui.training import user_requests
from cnnstudio.ui.training.confusion import ConfusionPanel
from cnnstudio.ui.training.controller import TrainingController
from cnnstudio.ui.training.history import HistoryView
from cnnstudio.ui.training.images import ActivationView, FilterView
from cnnstudio.ui.training.panel import (
    IDLE,
    PAUSE_TIP,
    PAUSED,
    STARTING,
    STOPPING,
    TrainingControls,
    TrainingLog,
    epoch_line,
    progress_text,
)
from cnnstudio.ui.training.plots import CurvesView
from cnnstudio.ui.training.run_compare_view import RunCompareView
from cnnstudio.ui.training.settings_form import TrainingSettingsForm
from cnnstudio.ui.training.start_choice import StartChooser

if TYPE_CHECKING:
    from cnnstudio.ui.main_window import MainWindow

REFRESH_MS = 100  # 10 Hz: smooth enough to the eye, a small share of the GUI thread
# At most this share of the wall time goes to redrawing live views. Drawing is Python
# (pyqtgraph) holding the GIL the training thread needs between its torch operations, so
# this share comes straight off a small model's throughput (bench_gui_training.py).
DRAW_SHARE = 0.05
DOCK_HEIGHT = 330  # the training panel's height while a run goes on
PAINT_FIRST_MS = 100  # the window relaid out for a run paints before its worker starts
PROGRESS_S = 0.25  # the progress bar's text changes at most this often
CONV_TYPES = tuple(t.name for t in registry.by_category()["Convolution"])


class TrainingPlugin(QObject):
    """Everything training adds to a MainWindow; `install_training_ui` creates it."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.doc = window.document
        self.controller = TrainingController(self.doc, self)
        self.chooser = StartChooser(self)  # Train on trained weights: continue or fresh?
        self.refresh_hidden = False  # benchmarks: refresh every view, shown or not
        self._next_draw = self._next_progress = 0.0
        self._next_job = 0
        self._confusion_due = False
        self._build_widgets()
        self._build_docks()
        self._build_menu()
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self._connect()
        self.actions = user_requests.UserRequests(self)
        self._reload_project()

    # ---- building --------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.controls = TrainingControls()
        self.curves = CurvesView()
        self.filters = FilterView()
        self.activations = ActivationView()
        self.confusion_panel = ConfusionPanel()
        self.confusion = self.confusion_panel.table  # `confusionMatrix`
        self.history = HistoryView()
        self.run_compare = RunCompareView()  # under History: two or more runs selected
        self.history_tab = QSplitter(Qt.Orientation.Vertical)
        self.history_tab.addWidget(self.history)
        self.history_tab.addWidget(self.run_compare)
        self.history_tab.setStretchFactor(1, 2)
        self.log = TrainingLog()
        self.tabs = QTabWidget()
        self.tabs.setObjectName("trainingTabs")
        self.tabs.setDocumentMode(True)
        for widget, title in ((self.curves, "Curves"), (self.filters, "Filters"),
                              (self.activations, "Activations"),
                              (self.confusion_panel, "Confusion"), (self.history_tab, "History"),
                              (self.log, "Log")):
            self.tabs.addTab(widget, title)
        self.tabs.setCornerWidget(self.controls.tools, Qt.Corner.TopRightCorner)
        self.panel = QWidget()
        self.panel.setObjectName("trainingPanel")
        layout = QVBoxLayout(self.panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.controls)
        layout.addWidget(self.tabs, 1)
        self.settings = TrainingSettingsForm(self.doc)

    def _build_docks(self) -> None:
        w = self.window
        self.dock = w.add_dock("trainingDock", "Training", self.panel,
                               Qt.DockWidgetArea.BottomDockWidgetArea, beside=w.summary_dock)
        self.settings_dock = w.add_dock("trainingSettingsDock", "Training Settings",
                                        self.settings, Qt.DockWidgetArea.RightDockWidgetArea,
                                        beside=w.inspector_dock)

    def _build_menu(self) -> None:
        w = self.window
        menu = w.menuBar().addMenu("&Training")
        self.menu = menu

        def act(text: str, slot: Any, keys: str | None = None) -> QAction:
            action = QAction(text, w)
            if keys:
                action.setShortcut(QKeySequence(keys))
            action.triggered.connect(lambda _checked=False: slot())
            menu.addAction(action)
            return action

        self.train_action = act("&Train", lambda: self.chooser.train(), "Ctrl+T")
        self.pause_action = act("&Pause / Resume", self.toggle_pause, "Ctrl+Shift+P")
        self.stop_action = act("&Stop", self.controller.stop, "Ctrl+.")
        menu.addSeparator()
        self.open_image_action = act("Predict &Image…", lambda: self.actions.open_image(),
                                     "Ctrl+I")
        act("&Kernel Playground…", lambda: self.actions.kernel_playground())
        act("S&weep…", self._open_sweep)
        menu.addSeparator()
        act("Show Training &Settings", self._show_settings)
        image = QAction("Open &Image…", w)  # beside Open…: an image is something else one opens
        image.setStatusTip("Classify an image and show where the network looks")
        image.triggered.connect(lambda _checked=False: self.actions.open_image())
        w.actions_.file_menu.insertAction(w.actions_.recent_menu.menuAction(), image)

    def _connect(self) -> None:
        c, ctl = self.controls, self.controller
        c.train_button.clicked.connect(lambda: self.chooser.train())
        c.restart_button.clicked.connect(lambda: self.chooser.train(new_run=True))
        c.pause_button.clicked.connect(lambda _checked=False: self.toggle_pause())
        c.stop_button.clicked.connect(ctl.stop)
        for signal, slot in ((ctl.state_changed, self._state_changed),
                             (ctl.context_ready, self._context_ready),
                             (ctl.epoch_added, self._epoch_added), (ctl.finished, self._finished),
                             (ctl.samples_loaded, self._samples_loaded),
                             (ctl.samples_failed, self._samples_failed),
                             (ctl.log, self.log.add), (ctl.loading, self._loading)):
            signal.connect(slot)
        # The data loads there now: the views may load it too.
        self.window.data_view.dataset_loaded.connect(self._data_loaded)
        self.doc.selection_changed.connect(self._selection_changed)
        # A fold sends inference_invalidated several times in one turn, a parameter edit
        # once; the layer lists change only with the layers' ids and types.
        self._layers_shown: tuple[tuple[str, str], ...] | None = None
        self._fill_timer = deferred(self, self._refill_layers, self.doc.inference_invalidated)
        self.doc.project_replaced.connect(self._reload_project)
        self.filters.layer_chosen.connect(lambda n: self._watch(filter_node=n))
        self.activations.layer_chosen.connect(lambda n: self._watch(activation_node=n))
        self.activations.sample_chosen.connect(lambda i: self._watch(sample_index=i))
        self.tabs.currentChanged.connect(lambda _i: self.refresh(force=True))
        self.history.itemSelectionChanged.connect(
            lambda: self.run_compare.set_runs(self.history.selected_runs()))
        self.run_compare.highlight.connect(self._highlight_layers)

    def _open_sweep(self) -> None:
        from cnnstudio.ui.training.sweep_dialog import open_sweep_dialog  # when first used

        open_sweep_dialog(self)

    def _highlight_layers(self, node_ids: list[str]) -> None:
        """Select on the canvas the compared runs' changed layers the graph still has."""
        present = [i for i in node_ids if i in self.doc.graph]
        if present:
            self.doc.set_selection(present)
            self.window.view.center_on(present[0])

    # ---- commands ----------------------------------------------------------------------

    def train(self, fresh: bool = False, resume: bool = True) -> bool:
        """Start (or resume) training, without asking (`chooser.train` asks); False, with
        the reason shown, when it cannot. See `TrainingController.start`."""
        # The panel is shown at its height and the window laid out and painted anew before
        # the worker starts: that paint while the worker loaded torch, the data and tens
        # of MB of weights held the window 60–150 ms.
        moves = self.dock.isHidden() or self.dock.height() != DOCK_HEIGHT
        problem = self.controller.start(fresh=fresh, resume=resume,
                                        delay_ms=PAINT_FIRST_MS if moves else 0)
        if problem:
            self.log.add(f"cannot train: {problem}")
            self.window.show_error(f"Cannot train: {problem}")
            return False
        self.dock.show()
        self.dock.raise_()
        if self.tabs.currentWidget() in (self.history_tab, self.log):
            self.tabs.setCurrentWidget(self.curves)
        self.window.resizeDocks([self.dock], [DOCK_HEIGHT], Qt.Orientation.Vertical)
        return True

    def toggle_pause(self) -> None:
        if self.controller.state == PAUSED:
            self.controller.resume()
        else:
            self.controller.pause()

    def release(self) -> bool:
        """Before the project is dropped (close, open, new): stop a running training and
        keep its result in the project; True when nothing runs any more."""
        self.actions.release()  # the inspection worker finishes its job first
        if not self.controller.running:
            # A sample loader may still run (a trained project just opened): a QThread
            # destroyed while running aborts the process, so wait for it.
            return self.controller.shutdown()
        if self.window.confirm_unsaved and not self.actions.ask_stop_training():
            return False
        self.window.status.showMessage("Stopping training…")
        return self.controller.shutdown()

    def _show_settings(self) -> None:
        self.settings_dock.show()
        self.settings_dock.raise_()

    # ---- following the run -----------------------------------------------------------

    def _state_changed(self, state: str) -> None:
        self.controls.set_state(state, self.controller.resumable())
        several = state != IDLE and self.controller.processes > 1  # ranks cannot pause alone
        if several:
            self.controls.pause_button.setEnabled(False)
        self.controls.pause_button.setToolTip(
            "Pause is not available while training in several processes; Stop keeps the"
            " weights and Train resumes" if several else PAUSE_TIP)
        running = state != IDLE
        if running and not self.timer.isActive():
            self.timer.start()
        if state == STOPPING:
            self.controls.progress.setFormat("Stopping after the current batch…")
        elif state == STARTING:
            self.controls.show_progress(0, 0, "Starting…")
            self.controls.progress.setRange(0, 0)  # busy until the first batch

    def _loading(self, stage: str, done: int, total: int) -> None:
        if self.controller.state in (STARTING, PAUSED) and not self.controller.live.context:
            amount = f" {done}/{total}" if total else "…"
            self.controls.progress.setRange(0, total if total else 0)
            self.controls.progress.setValue(done)
            self.controls.progress.setFormat(f"{stage}{amount}")

    def _context_ready(self, context: dict[str, Any]) -> None:
        threads = context.get("threads")
        device = str(context.get("device", "?"))
        where = f"{device} · {threads} thread{'s' if threads != 1 else ''}" \
            if device == "cpu" and threads else device
        self.controls.device.setText(where)  # short: the progress text needs the room
        self.controls.device.setToolTip(f"This run trains on {where}")
        self.window.status.set_device(where)
        self.curves.clear()
        self.curves.set_task(str(context.get("task")))
        origin = self.controller.origin
        self.curves.set_epochs(int(context.get("epochs") or 0) or None, origin.x_offset)
        self.curves.set_origin(origin.from_run, origin.from_epoch)
        self.activations.set_sample_count(len(context.get("x", [])))
        self.log.add(f"training {context['epochs']} epochs of {context['batches']} batches"
                     f" (batch size {context['batch_size']}) on {where}")
        self.actions.show_sample()
        self.actions.samples_ready()

    def _epoch_added(self, epoch: dict[str, Any]) -> None:
        epochs = (self.controller.live.context or {}).get("epochs")
        self.log.add(epoch_line(epoch["record"], epochs))
        self._confusion_due = True  # drawn by refresh(), in its turn

    def _finished(self, outcome: dict[str, Any]) -> None:
        self.refresh(force=True)
        self.timer.stop()
        status, message = outcome.get("status"), outcome.get("message") or ""
        self.controls.set_state(IDLE, self.controller.resumable())
        self.controls.progress.setRange(0, 1)
        self.controls.progress.setValue(1 if status == "completed" else 0)
        self.controls.progress.setFormat(f"{str(status).capitalize()}"
                                         + (f": {message}" if message else ""))
        self.log.add(f"{status}" + (f": {message}" if message else ""))
        if status == "failed":
            self.window.show_error(f"Training failed: {message}")
        if outcome.get("changed"):
            self.actions.after_write_back()
        self.history.set_runs(self.doc.project.runs)

    def refresh(self, force: bool = False) -> None:
        """The timer's tick: the progress bar every tick; curves and the newest filter /
        activation snapshot when the drawing budget allows (see `DRAW_SHARE`)."""
        live = self.controller.live
        p = live.progress
        now = time.perf_counter()
        # QProgressBar repaints synchronously in setValue, holding the GIL: 4 Hz is plenty.
        if (p and self.controller.state not in (STOPPING, IDLE)
                and (force or now >= self._next_progress)):
            self._next_progress = now + PROGRESS_S
            ctx = live.context or {}
            self.controls.show_progress(*progress_text(
                p, int(ctx.get("epochs", 1)), int(ctx.get("batch_size", 1)),
                self.controller.state == PAUSED))
        if force:
            self.curves.refresh(live)
            self._apply_snapshot(force=True)
            self._show_confusion()
            return
        if now < self._next_draw:
            return
        # One view per tick, in turn: a redraw holds the GIL (which the training thread
        # needs between its torch operations) and delays this event loop; small pieces
        # keep both short.
        curves = self.refresh_hidden or self.curves.isVisible()
        jobs = [(lambda: curves and self.curves.refresh_loss(live), [self.curves.loss_plot]),
                (lambda: curves and self.curves.refresh_epochs(live),
                 [self.curves.accuracy_plot, self.curves.loss_plot]),
                (lambda: curves and self.curves.refresh_lr(live), [self.curves.lr_plot]),
                (self._apply_snapshot, [self.filters.plot, self.activations.plot,
                                        self.activations.input_plot]),
                (self._show_confusion, [])]
        for k in range(len(jobs)):
            index = (self._next_job + k) % len(jobs)
            run, widgets = jobs[index]
            if run():
                self._next_job = index + 1
                for widget in widgets:  # paint now, to know what a redraw costs
                    if widget.isVisible():
                        # The scene's changes are queued calls; deliver them first, so
                        # this paint is the only one (else Qt paints again after it).
                        QCoreApplication.sendPostedEvents(widget.scene(), 0)
                        widget.viewport().repaint()
                break
        cost = time.perf_counter() - now
        # Spend at most DRAW_SHARE of the time redrawing: a slow or busy machine redraws
        # less often, a fast one at the timer's rate.
        self._next_draw = now + max(0.0, cost / DRAW_SHARE - REFRESH_MS / 1000)

    def _show_confusion(self) -> bool:
        live = self.controller.live
        if not self._confusion_due or live.confusion is None:
            return False
        self._confusion_due = False
        names = (live.context or {}).get("class_names", [])
        self.confusion_panel.show_matrix(live.confusion, names,
                                         f"Validation, epoch {live.confusion_epoch}")
        return True

    def _apply_snapshot(self, force: bool = False) -> bool:
        snap = self.controller.pending_snapshot
        if snap is None or not (force or self.refresh_hidden or self.filters.isVisible()
                                or self.activations.isVisible()):
            return False
        self.controller.pending_snapshot = None
        self.actions.apply_snapshot(snap)
        return True

    # ---- layers and selection ----------------------------------------------------------

    def _refill_layers(self) -> None:
        """Fill the layer lists again when the layers' ids or types changed."""
        if tuple((n.id, n.type) for n in self.doc.graph) != self._layers_shown:
            self._fill_layers()

    def _fill_layers(self) -> None:
        graph = self.doc.graph
        self._layers_shown = tuple((n.id, n.type) for n in graph)
        convs = [n.id for n in graph if n.type in CONV_TYPES]
        nodes = [n.id for n in graph]
        focus = self.controller.focus
        if focus["filter_node"] not in convs:
            focus["filter_node"] = convs[0] if convs else None
        if focus["activation_node"] not in nodes:
            focus["activation_node"] = convs[0] if convs else (nodes[-1] if nodes else None)
        self.filters.set_layers(convs, focus["filter_node"])
        self.activations.set_layers(nodes, focus["activation_node"])
        self.controller.set_focus(**focus)

    def _selection_changed(self, ids: list[str]) -> None:
        if len(ids) != 1 or ids[0] not in self.doc.graph:
            return
        node = self.doc.graph.node(ids[0])
        self._watch(filter_node=node.id if node.type in CONV_TYPES else None,
                    activation_node=node.id)

    def _watch(self, **focus: Any) -> None:
        """The views should show other layers / another sample: ask the run (or, when
        idle, compute from the saved weights)."""
        self.controller.set_focus(**focus)
        f = self.controller.focus
        self.filters.header.select(f["filter_node"])
        self.activations.header.select(f["activation_node"])
        if "sample_index" in focus:
            self.actions.show_sample()
        if not self.controller.running:
            self.actions.idle_snapshot()

    def _reload_project(self) -> None:
        self.actions.project_replaced()
        self.controller.focus.update(filter_node=None, activation_node=None, sample_index=0)
        self._fill_layers()
        self.curves.clear()
        self.curves.set_task(self.doc.project.task)
        self.filters.clear("Computing the filters…")
        self.activations.clear("Computing the feature maps…")
        self.confusion_panel.show_matrix(None, [], "")
        self.controls.set_state(self.controller.state, self.controller.resumable())
        self.controls.progress.setRange(0, 1)
        self.controls.progress.setValue(0)
        self.controls.progress.setFormat("Not trained yet" if not self.doc.project.runs
                                         else f"{len(self.doc.project.runs)} run(s) in history")
        runs = self.doc.project.runs
        self.history.set_runs(runs)
        if runs:
            self.history.select_run(str(runs[-1].get("id")))  # its curves: the next turn
            if not self.controller.running:
                self.actions.show_run_matrix(runs[-1])
        self.actions.idle_snapshot()
        if self.doc.project.weights is not None:
            self.controller.load_samples()  # for activations and confusion samples

    def _samples_failed(self, message: str) -> None:
        self.log.add(f"cannot load the project's samples: {message}")
        self.activations.clear(f"Cannot load the project's samples: {message}")
        self.actions.samples_ready()  # open playgrounds say why they keep their picture

    def _data_loaded(self, _dataset: object) -> None:
        if self.controller.retry_samples():
            self.actions.idle_snapshot()

    def _samples_loaded(self, context: dict[str, Any]) -> None:
        self.activations.set_sample_count(len(context.get("x", [])))
        self.actions.show_sample()
        self.actions.idle_snapshot()
        self.actions.samples_ready()

