"""Where a new run starts, asked when it matters: continue from the trained weights, or
start fresh (new weights from the seed).

Train on a project that holds trained weights used to continue from them silently while
History showed a run from scratch. Now the Train button (and Ctrl+T, the toolbar's Train,
and "New run" after a stop) ask; resuming a stopped run asks nothing (it continues that
run). The question is `StartChooser.ask`, which tests replace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox

from cnnstudio.project.origin import imported_from, weights_run

if TYPE_CHECKING:
    from cnnstudio.ui.training.window import TrainingPlugin

CONTINUE, FRESH = "continue", "fresh"


class StartChooser(QObject):
    """What Train does: resume a stopped run, ask how a new run on trained weights starts,
    or just train."""

    def __init__(self, ui: TrainingPlugin) -> None:
        super().__init__(ui)
        self.ui = ui

    # ---- the question (tests replace it) ---------------------------------------------

    def ask(self, run_id: str | None) -> str | None:
        """CONTINUE, FRESH, or None when cancelled."""
        source = run_id or "no recorded run"
        box = QMessageBox(QMessageBox.Icon.Question, "Train",
                          f"This project holds trained weights (from {source}). How should"
                          " the new run start?", parent=self.ui.window)
        box.setInformativeText(
            "Continue: the new run starts from these weights (more epochs, fine-tuning)."
            "\nStart fresh: new random weights, seeded by the training seed, as the first"
            " run had (to compare settings fairly).\nEvery run stays in History.")
        keep = box.addButton(continue_label(run_id), QMessageBox.ButtonRole.AcceptRole)
        fresh = box.addButton(FRESH_LABEL, QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        keep.setObjectName("trainContinue")
        fresh.setObjectName("trainFresh")
        box.setDefaultButton(keep)
        box.setEscapeButton(cancel)
        box.exec()
        clicked = box.clickedButton()
        return CONTINUE if clicked is keep else FRESH if clicked is fresh else None

    # ---- Train ----------------------------------------------------------------------------

    def train(self, new_run: bool = False) -> bool:
        """Train as the button says: resume a stopped run (unless `new_run`); on trained
        weights, ask first. False when nothing started (cancelled, or it cannot)."""
        ui = self.ui
        if ui.controller.running:
            return False
        if ui.controller.resumable() and not new_run:
            return ui.train(resume=True)
        project = ui.doc.project
        if project.weights is None:
            return ui.train(resume=False)
        source = weights_run(project)
        if source is None and imported_from(project):  # an imported model's own weights
            source = f"imported {imported_from(project)}"
        choice = self.ask(source)
        if choice is None:
            ui.log.add("Train cancelled")
            return False
        return ui.train(fresh=choice == FRESH, resume=False)


FRESH_LABEL = "Start fresh (re-initialise, seeded)"


def continue_label(run_id: str | None) -> str:
    return (f"Continue from the trained weights ({run_id})" if run_id
            else "Continue from the trained weights")

