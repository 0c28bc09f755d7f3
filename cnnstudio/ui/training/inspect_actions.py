"""What the training UI does on request: show snapshots, explain a confusion cell, predict
a dropped or opened image, outline receptive fields, open the kernel playground, follow
the run history. Questions to the user are small methods tests can replace."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from cnnstudio.ui.training.confusion import SamplesDialog
from cnnstudio.ui.training.dialogs import KernelPlayground, PredictionDialog, predict_image
from cnnstudio.ui.training.inspection import read_image

if TYPE_CHECKING:
    from cnnstudio.ui.training.window import TrainingUI

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm", ".pbm")
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"


def image_paths(event: Any) -> list[str]:
    """Local image files carried by a drag/drop event."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls()
            if u.isLocalFile() and Path(u.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES]


class InspectActions(QObject):
    """The inspection side of `TrainingUI`; also filters the window's image drops."""

    def __init__(self, ui: TrainingUI) -> None:
        super().__init__(ui)
        self.ui = ui
        self.dialogs: list[Any] = []  # open non-modal dialogs (kept alive)
        self._probs_key: tuple[int, int] | None = None
        self._probs: np.ndarray | None = None
        ui.window.installEventFilter(self)
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

    def apply_snapshot(self, snap: dict[str, Any]) -> None:
        """Show a snapshot of filters / feature maps (from the run or `idle_snapshot`)."""
        ui = self.ui
        if snap.get("error"):
            ui.filters.header.caption.setText(snap["error"])
        if snap.get("missing"):
            ui.activations.clear("this layer is not in the running model (added since)")
        if "filter_node" in snap:
            ui.filters.show_filters(snap["filter_node"], snap.get("filters"))
        if snap.get("activation") is not None:
            ui.activations.show_maps(snap["activation_node"], snap["activation"])

    def idle_snapshot(self) -> None:
        """When no run is going: filters and maps from the saved weights, if any."""
        ui = self.ui
        if ui.controller.running:
            return
        source = ui.controller.inspection_source()
        if source is None:
            return
        from cnnstudio.nn.inspect import layer_filters, node_activation

        focus = ui.controller.focus
        snap: dict[str, Any] = {}
        try:
            module = source.module()
            if focus["filter_node"] in module.node_ids:
                snap["filter_node"] = focus["filter_node"]
                snap["filters"] = layer_filters(module, focus["filter_node"])
            ctx = ui.controller.live.context
            node = focus["activation_node"]
            if ctx and len(ctx["x"]) and node in module.node_ids:
                i = min(int(focus["sample_index"]), len(ctx["x"]) - 1)
                x = source.to_float(ctx["x"][i:i + 1])
                snap["activation_node"] = node
                snap["activation"] = node_activation(module, node, x)[0].numpy()
        except Exception as err:  # weights that no longer fit the edited graph, …
            ui.filters.clear(f"cannot show the saved weights: {err}")
            return
        self.apply_snapshot(snap)

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
        from cnnstudio.nn.inspect import receptive_field_box

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
        first, with the freshest weights."""
        ui = self.ui
        ctx = ui.controller.live.context
        if ctx is None:
            loading = ui.controller.load_samples() or ui.controller.loading_samples
            self._error("The validation samples are still loading; try again in a moment"
                        if loading else "There are no samples to show: train first")
            return None
        if ctx.get("task") != "classification":
            self._error("Samples per cell are shown for classification only")
            return None
        source = ui.controller.inspection_source()
        if source is None:
            self._error("There are no trained weights to look at the samples with")
            return None
        try:
            key = (id(source.weights), id(ctx))
            if self._probs_key != key or self._probs is None:
                self._probs, self._probs_key = source.probabilities(ctx["x"]), key
        except Exception as err:
            self._error(f"Cannot classify the samples: {err}")
            return None
        probs = self._probs
        pred = probs.argmax(axis=1)
        hits = np.flatnonzero((ctx["y"] == true) & (pred == predicted))
        conf = probs[hits, predicted]
        order = np.argsort(-conf, kind="stable")
        names = ctx["class_names"]
        title = f"true {names[true]}, predicted {names[predicted]}"
        note = f"Predictions of {source.label}."
        if len(ctx["x"]) < ctx.get("total", len(ctx["x"])):
            note += f" Only the first {len(ctx['x'])} validation samples are looked at."
        dialog = SamplesDialog(title, ctx["x"][hits[order]], conf[order], hits[order], note,
                               ui.window)
        self._show(dialog)
        return dialog

    # ---- images ------------------------------------------------------------------------

    def open_image(self) -> PredictionDialog | None:
        path = self.ask_image_path()
        return self.predict_file(path) if path else None

    def predict_file(self, path: str | Path) -> PredictionDialog | None:
        """Top-k classes and a Grad-CAM heat map for an image file, in a dialog."""
        ui = self.ui
        source = ui.controller.inspection_source()
        if source is None:
            self._error("Train the network first: there are no weights to predict with")
            return None
        if source.task != "classification":
            self._error("Predicting an image gives classes; this project does segmentation")
            return None
        try:
            image = read_image(source.graph, path)
            selected = ui.doc.selection
            node = selected[0] if len(selected) == 1 else None  # else: the last conv
            prediction = predict_image(source, image, node)
        except Exception as err:
            self._error(f"Cannot predict {Path(path).name}: {err}")
            return None
        dialog = PredictionDialog(Path(path).name, image, prediction,
                                  f"With {source.label}.", ui.window)
        self._show(dialog)
        return dialog

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Image files dropped on the window are predicted; project files still open."""
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and image_paths(event):
            event.acceptProposedAction()
            return True
        if kind == QEvent.Type.Drop and image_paths(event):
            path = image_paths(event)[0]
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.predict_file(path))  # not inside the drop
            return True
        return super().eventFilter(watched, event)

    def kernel_playground(self) -> KernelPlayground:
        ctx = self.ui.controller.live.context
        samples = ctx["x"] if ctx and np.ndim(ctx["x"]) == 4 else None
        dialog = KernelPlayground(samples, self.ui.window)
        self._show(dialog)
        return dialog

    # ---- history and write-back --------------------------------------------------------------

    def show_runs(self, runs: list[dict[str, Any]]) -> None:
        """Overlay the chosen history runs; the selected one's confusion matrix too."""
        ui = self.ui
        if not ui.controller.running:
            ui.curves.set_epochs(None)  # past runs may be longer than the last one
        ui.curves.set_overlays(runs)
        if runs and not ui.controller.running and runs[0].get("confusion_matrix"):
            ui.confusion_panel.show_matrix(
                np.asarray(runs[0]["confusion_matrix"]), list(runs[0].get("class_names") or []),
                f"{runs[0].get('id')}: validation, epoch {runs[0].get('best_epoch')}")

    def after_write_back(self) -> None:
        """A run changed the project: refresh the views, write the recovery file now."""
        from cnnstudio.project import ProjectError
        from cnnstudio.ui import autosave

        ui = self.ui
        self._probs_key = None
        last = ui.doc.project.runs[-1] if ui.doc.project.runs else None
        if isinstance(last, dict) and last.get("confusion_matrix"):
            ui.confusion_panel.show_matrix(
                np.asarray(last["confusion_matrix"]), list(last.get("class_names") or []),
                f"{last.get('id')}: validation, epoch {last.get('best_epoch')} (the weights kept)")
        saver = getattr(ui.window, "autosaver", None)
        if saver is not None:
            try:  # the autosaver tracks undo steps; a run adds none, so save it here
                autosave.write_recovery(ui.doc.project, saver.target)
            except ProjectError as err:
                ui.window.status.showMessage(f"Autosave failed: {err}", 8000)
