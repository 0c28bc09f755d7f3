"""The Explain view: what the user's own network computes, value by value ("Computation"),
and what each filter responds to ("What the filters respond to").

`install_explain_ui(window)` adds the "Explain" dock (beside the training dock) and the
Explain Layer action to a MainWindow and returns the `ExplainPlugin`. Nothing here
imports torch at module level: tracing runs on a worker thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnstudio.ui.explain.install import ExplainPlugin
    from cnnstudio.ui.main_window import MainWindow


def install_explain_ui(window: MainWindow) -> ExplainPlugin:
    """Add the Explain dock and its action to `window` (after the training UI); return
    the plug-in holding them."""
    from cnnstudio.ui.explain.install import ExplainPlugin

    return ExplainPlugin(window)
