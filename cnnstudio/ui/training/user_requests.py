"""What the training UI does on request: show snapshots, explain a confusion cell, predict
a dropped or opened image, outline receptive fields, open the kernel playground, follow
the run history. Questions to the user are small methods tests can replace.

Building a model, importing torch the first time and computing on it run on the
`Background` worker; the views get the results on the GUI thread. With no trained
weights the views show the network as a run will start it (seeded initialisation), and
only while they are visible: a window that never shows them never loads torch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from cnnstudio.core.errors import first_line
from cnnstudio.train.model_io import TrainedModel, read_image
from cnnstudio.ui.document import deferred
from cnnstudio.ui.training.background import Background
from cnnstudio.ui.training.confusion import SamplesDialog
from cnnstudio.ui.training.controller import graph_structure
from cnnstudio.ui.training.dialogs import KernelPlayground, PredictionDialog, predict_image
from cnnstudio.ui.training.image_checks import read_original

if TYPE_CHECKING:
    from cnnstudio.ui.training.window import TrainingPlugin

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm", ".pbm")
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"
WARNING_SAMPLES = 5000  # training images the predict warning compares an image with
GRAPH_SETTLE_MS = 250  # after an edit, the views follow once the edits pause


def image_paths(event: Any) -> list[str]:
    """Local image files carried by a drag/drop event."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls()
            if u.isLocalFile() and Path(u.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES]


class UserRequests(QObject):
    """The inspection side of `TrainingPlugin`; also filters the window's image drops."""

    def __init__(self, ui: TrainingPlugin) -> None:
        super().__init__(ui)
        self.ui = ui
        self.dialogs: list[Any] = []  # open non-modal dialogs (kept alive)
        self._probs_key: tuple[int, int] | None = None
        self._probs: np.ndarray | None = None
        self.background = Background(self)
        self._cached: tuple[Any, TrainedModel] | None = None
        self._idle_due = False
        self.last_prediction: PredictionDialog | None = None
        self.last_cell: SamplesDialog | None = None
        self._settle = deferred(self, self.idle_snapshot, ui.doc.inference_invalidated,
                                ms=GRAPH_SETTLE_MS)
        ui.window.installEventFilter(self)
        ui.filters.installEventFilter(self)
        ui.activations.installEventFilter(self)
        ui.activations.pixel_clicked.connect(self.outline_field)
        ui.confusion.cell_activated.connect(self.show_cell)
        ui.history.shown_changed.connect(self.show_runs)
        ui.controls.predict_button.clicked.connect(lambda: self.open_image())
        ui.controls.kernel_button.clicked.connect(lambda: self.kernel_playground())

    # ---- questions (tests replace these) ---------------------------------------------

    def ask_image_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.ui.window, "Predict an Image", "",
                                              IMAGE_FILTER)
        return path or None

    def ask_stop_training(self) -> bool:
        answer = QMessageBox.question(self.ui.window, "CNN Studio",
                                      "Training is running. Stop it and keep its weights?")
        return answer == QMessageBox.StandardButton.Yes

    def _error(self, text: str) -> None:
        self.ui.log.add(text)
        self.ui.window.show_error(text)

    def _show(self, dialog: Any) -> None:
        self.dialogs = [d for d in self.dialogs if d.isVisible()] + [dialog]
        dialog.show()

    # ---- snapshots -----------------------------------------------------------------------

    def _running_state(self) -> str:
        epoch = self.ui.controller.live.progress.get("epoch")
        return f"training, epoch {epoch}" if epoch else "training"

    def _labels(self, node: str, values: np.ndarray) -> list[str] | None:
        """Class names for the network's output values (a node nothing consumes)."""
        ui = self.ui
        graph = ui.controller.run_graph if ui.controller.running else ui.doc.graph
        names = list((ui.controller.live.context or {}).get("class_names") or [])
        if graph is None or node not in graph or graph.consumers(node):
            return None
        return names if np.ndim(values) == 1 and len(names) == len(values) else None

    def apply_snapshot(self, snap: dict[str, Any]) -> None:
        """Show a snapshot of filters / feature maps (from the run or `idle_snapshot`)."""
        ui = self.ui
        state = snap.get("state") or self._running_state()
        if snap.get("error"):
            ui.filters.header.caption.setText(snap["error"])
        if snap.get("missing"):
            ui.activations.clear("this layer is not in the running model (added since)")
        if "filter_node" in snap:
            if snap["filter_node"] is None:
                ui.filters.clear("This network has no convolution: there are no filters")
            else:
                ui.filters.show_filters(snap["filter_node"], snap.get("filters"), state)
        if snap.get("activation") is not None:
            node, act = snap["activation_node"], snap["activation"]
            ui.activations.show_maps(node, act, state, self._labels(node, act))

    def views_visible(self) -> bool:
        ui = self.ui
        return ui.refresh_hidden or ui.filters.isVisible() or ui.activations.isVisible()

    def source(self) -> TrainedModel | None:
        """The model the idle views show: the saved (or running) weights, else the
        untrained network; the same object (and built module) while nothing changed."""
        ui = self.ui
        source = ui.controller.inspection_source()
        if source is None:
            if not len(ui.doc.graph):
                return None
            source = TrainedModel.initial(ui.doc.project, ui.controller.live.context)
        key = (id(ui.doc.project), id(source.weights), source.label, source.seed,
               repr(graph_structure(source.graph)), source.prep)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        self._cached = (key, source)
        return source

    def idle_snapshot(self) -> None:
        """When no run is going: filters and maps from the saved weights, else from the
        untrained network, computed on the worker; only while the views are visible
        (else when they are shown next)."""
        ui = self.ui
        if ui.controller.running:
            return
        if not self.views_visible():
            self._idle_due = True
            return
        self._idle_due = False
        ctx = ui.controller.live.context
        if ctx is None and ui.activations.isVisible():
            if ui.controller.load_samples() or ui.controller.loading_samples:
                ui.activations.clear("Loading the project's samples…")  # the maps follow
            elif ui.controller.samples_error is not None:
                ui.activations.clear(
                    f"Cannot load the project's samples: {ui.controller.samples_error}")
        source = self.source()
        if source is None:
            return
        if source.untrained and ui.doc.inference.errors:
            ui.filters.clear("Fix the network's problems to see its initial filters")
            ui.activations.clear("Fix the network's problems to see its feature maps")
            return
        focus = dict(ui.controller.focus)
        x = None
        if ctx and len(ctx["x"]) and focus["activation_node"]:
            i = min(int(focus["sample_index"]), len(ctx["x"]) - 1)
            x = np.array(ctx["x"][i:i + 1])  # the worker's own copy

        def job() -> dict[str, Any]:
            return source.snapshot(focus["filter_node"], focus["activation_node"], x)

        what = "the initial weights" if source.untrained else "the saved weights"
        self.background.submit("snapshot", job, self.apply_snapshot,
                               lambda err: ui.filters.clear(
                                   f"cannot show {what}: {first_line(err)}"))

    def show_sample(self) -> None:
        ui = self.ui
        ctx = ui.controller.live.context
        if not ctx or not len(ctx["x"]):
            return
        i = min(int(ui.controller.focus["sample_index"]), len(ctx["x"]) - 1)
        names = ctx["class_names"]
        y = ctx["y"][i]
        label = names[int(y)] if np.ndim(y) == 0 and int(y) < len(names) else ""
        ui.activations.show_sample(ctx["x"][i], f"label {label}" if label else "")

    def outline_field(self, index: int, row: int, col: int) -> None:
        """Outline on the sample the input region a clicked map pixel sees."""
        from cnnstudio.nn.internals import receptive_field_box

        ui = self.ui
        node = ui.activations.node
        graph = ui.controller.run_graph or ui.doc.graph
        box = receptive_field_box(graph, node, (row, col)) if node in graph else None
        if box is None:
            ui.activations.show_field(None, f"{node}: no exact receptive field (it follows a"
                                      " dense, adaptive or upsampling layer)")
            return
        shape = ui.activations.sample_image.shape[:2]
        (r0, r1), (c0, c1) = box.clipped(shape)
        ui.activations.show_field(
            ((r0, r1), (c0, c1)),
            f"{node}, map {index}, pixel ({row}, {col}) sees input rows {r0}–{r1 - 1}, columns"
            f" {c0}–{c1 - 1} (a {box.size[0]}×{box.size[1]} field, padding included)")

    # ---- confusion matrix ------------------------------------------------------------------

    def show_cell(self, true: int, predicted: int) -> SamplesDialog | None:
        """The validation samples of class `true` predicted as `predicted`, most confident
        first, with the freshest weights. The samples are classified once per set of
        weights, on the worker: the dialog then opens (and is returned when it could open
        at once); `last_cell` is the newest one."""
        ui = self.ui
        ctx = ui.controller.live.context
        if ctx is None:
            loading = ui.controller.load_samples() or ui.controller.loading_samples
            failed = ui.controller.samples_error
            self._error("The validation samples are still loading; try again in a moment"
                        if loading else f"Cannot load the project's samples: {failed}"
                        if failed else "There are no samples to show: train first")
            return None
        if ctx.get("task") != "classification":
            self._error("Samples per cell are shown for classification only")
            return None
        source = ui.controller.inspection_source()
        if source is None:
            self._error("There are no trained weights to look at the samples with")
            return None
        key = (id(source.weights), id(ctx))
        if self._probs_key == key and self._probs is not None:
            return self._cell_dialog(ctx, source.label, self._probs, true, predicted)
        x = ctx["x"]

        def done(probs: np.ndarray) -> None:
            self._probs, self._probs_key = probs, key
            self._cell_dialog(ctx, source.label, probs, true, predicted)

        self.background.submit("cell", lambda: source.probabilities(x), done,
                               lambda err: self._error(
                                   f"Cannot classify the samples: {first_line(err)}"))
        return None

    def _cell_dialog(self, ctx: dict[str, Any], label: str, probs: np.ndarray, true: int,
                     predicted: int) -> SamplesDialog:
        pred = probs.argmax(axis=1)
        hits = np.flatnonzero((ctx["y"] == true) & (pred == predicted))
        conf = probs[hits, predicted]
        order = np.argsort(-conf, kind="stable")
        names = ctx["class_names"]
        title = f"true {names[true]}, predicted {names[predicted]}"
        note = f"Predictions of {label}."
        if len(ctx["x"]) < ctx.get("total", len(ctx["x"])):
            note += f" Only the first {len(ctx['x'])} validation samples are looked at."
        dialog = SamplesDialog(title, ctx["x"][hits[order]], conf[order], hits[order], note,
                               self.ui.window)
        self.last_cell = dialog
        self._show(dialog)
        return dialog

    # ---- images ------------------------------------------------------------------------

    def open_image(self) -> bool:
        """Ask for an image and predict it (see `predict_file`)."""
        path = self.ask_image_path()
        return self.predict_file(path) if path else False

    def predict_file(self, path: str | Path) -> bool:
        """Top-k classes and a Grad-CAM heat map for an image file, in a dialog that opens
        when the worker has them (`last_prediction`); False, with the reason shown, when
        there is nothing to predict with."""
        ui = self.ui
        source = ui.controller.inspection_source()
        if source is None:
            self._error("Train the network first: there are no weights to predict with")
            return False
        if source.task != "classification":
            self._error("Predicting an image gives classes; this project does segmentation")
            return False
        node = source.graph.input_node()
        shape = list(node.resolved_params().get("shape") or []) if node else []
        if len(shape) != 3:  # said before any file is read, in words (not the loader's)
            self._error("Predicting an image needs a network whose Input is an image"
                        f" (channels × height × width); this one's Input is"
                        f" {'×'.join(map(str, shape)) or 'missing'}")
            return False
        selected = ui.doc.selection
        node = selected[0] if len(selected) == 1 else None  # else: the last conv
        ctx = ui.controller.live.context or {}
        samples = ctx.get("x")
        samples = np.array(samples[:WARNING_SAMPLES]) if samples is not None else None
        name = Path(path).name

        def job() -> tuple[np.ndarray, Any]:
            image = read_image(source.graph, path)
            prediction = predict_image(source, image, node, samples=samples)
            try:
                prediction.original = read_original(path)
            except ValueError:
                prediction.original = None  # the network's view is shown all the same
            return image, prediction

        def done(result: tuple[np.ndarray, Any]) -> None:
            image, prediction = result
            dialog = PredictionDialog(name, image, prediction, f"With {source.label}.",
                                      ui.window)
            self.last_prediction = dialog
            self._show(dialog)

        def failed(err: BaseException) -> None:
            text = first_line(err)
            self._error(f"Cannot predict {text if text.startswith(name) else f'{name}: {text}'}")

        ui.window.status.showMessage(f"Predicting {name}…", 3000)
        self.background.submit("predict", job, done, failed)
        return True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Image files dropped on the window are predicted; project files still open."""
        kind = event.type()
        if watched is not self.ui.window:
            if kind == QEvent.Type.Show and (self._idle_due or watched is self.ui.activations):
                QTimer.singleShot(0, self._shown)  # after the show: sizes are known then
            return False
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and image_paths(event):
            event.acceptProposedAction()
            return True
        if kind == QEvent.Type.Drop and image_paths(event):
            path = image_paths(event)[0]
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.predict_file(path))  # not inside the drop
            return True
        return super().eventFilter(watched, event)

    def _shown(self) -> None:
        ui = self.ui
        if self._idle_due or (ui.activations.isVisible() and ui.controller.live.context is None):
            self.idle_snapshot()

    def kernel_playground(self) -> KernelPlayground:
        """The playground, on the project's own images once they are loaded (they are
        loaded for it when no run has them yet), until then on a built-in picture."""
        dialog = KernelPlayground(None, self.ui.window)
        if not self._feed_playground(dialog) and not self.ui.controller.load_samples():
            dialog.note_unavailable(self.ui.controller.samples_error)
        self._show(dialog)
        return dialog

    def _feed_playground(self, dialog: KernelPlayground) -> bool:
        ctx = self.ui.controller.live.context
        if not ctx or np.ndim(ctx["x"]) != 4 or not len(ctx["x"]):
            return False
        names = list(ctx.get("class_names") or [])
        labels = [names[int(y)] if np.ndim(y) == 0 and 0 <= int(y) < len(names) else ""
                  for y in np.asarray(ctx["y"])] if ctx.get("task") == "classification" else []
        split = "validation" if ctx.get("split") == "val" else "training"
        dialog.set_samples(ctx["x"], labels, f"the project's {split} images")
        return True

    def samples_ready(self) -> None:
        """The project's samples arrived (loaded for inspection, or a run began), or could
        not be loaded: open playgrounds switch to them or say why not."""
        for dialog in self.dialogs:
            if isinstance(dialog, KernelPlayground) and not dialog.uses_project_data:
                if not self._feed_playground(dialog):
                    dialog.note_unavailable(self.ui.controller.samples_error)

    def release(self) -> None:
        """The project may go (or the window close): let the worker finish its job."""
        self.background.wait()

    def project_replaced(self) -> None:
        """Results not yet shown were for the project that went: drop them."""
        self.background.forget()
        self._cached = None
        self._settle.stop()

    # ---- history and write-back --------------------------------------------------------------

    def show_runs(self, runs: list[dict[str, Any]]) -> None:
        """Overlay the chosen history runs; the selected one's confusion matrix too."""
        ui = self.ui
        if not ui.controller.running:
            ui.curves.set_epochs(None)  # past runs may be longer than the last one
        ui.curves.set_overlays(runs, ui.history.offsets)  # warm starts go on along x
        if runs and not ui.controller.running:
            self.show_run_matrix(runs[0])

    def show_run_matrix(self, run: Any, note: str = "") -> bool:
        """The validation confusion matrix `run` recorded (its weights kept); False when it
        recorded none."""
        if not isinstance(run, dict) or not run.get("confusion_matrix"):
            return False
        self.ui.confusion_panel.show_matrix(
            np.asarray(run["confusion_matrix"]), list(run.get("class_names") or []),
            f"{run.get('id')}: validation, epoch {run.get('best_epoch')}{note}")
        return True

    def after_write_back(self) -> None:
        """A run changed the project: refresh the views, write the recovery file (on the
        autosaver's worker: tens of MB of weights take 40 ms and more)."""
        ui = self.ui
        self._probs_key = None
        self._cached = None
        self.idle_snapshot()  # the weights kept (the best epoch's, maybe) and their name
        runs = ui.doc.project.runs
        self.show_run_matrix(runs[-1] if runs else None, " (the weights kept)")
        ui.window.autosaver.save_soon(changed=True)  # a run adds no undo step
