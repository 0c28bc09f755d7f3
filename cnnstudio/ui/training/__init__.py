"""Training from the window: settings, the worker thread, live views, inspection, history.

`install_training_ui(window)` adds the "Training" docks and menu to a MainWindow and
returns the `TrainingPlugin`. Nothing here imports torch until a run starts or a trained
model is inspected: the window still appears before torch is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnstudio.ui.main_window import MainWindow
    from cnnstudio.ui.training.window import TrainingPlugin


def install_training_ui(window: MainWindow) -> TrainingPlugin:
    """Add the training docks, menu and drop handling to `window`; return them."""
    from cnnstudio.ui.training.window import TrainingPlugin

    return TrainingPlugin(window)
