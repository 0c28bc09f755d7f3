"""What the Explain view adds to the window: the "Explain" dock beside the training dock,
the Explain Layer action (Training menu, the canvas's layer menu, Ctrl+E), and the view
following the canvas selection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence

from cnnstudio.ui.explain.host import ExplainHost
from cnnstudio.ui.explain.view import ExplainView

if TYPE_CHECKING:
    from cnnstudio.ui.main_window import MainWindow

DOCK_SHARE = 0.5  # Explain Layer makes the dock this share of the window's height
SHORTCUT = "Ctrl+E"


class ExplainPlugin(QObject):
    """The Explain dock (`dock`, objectName "explainDock"), its view and action."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.host = ExplainHost(window)
        self.view = ExplainView(self.host)
        self.dock = window.add_dock("explainDock", "Explain", self.view,
                                    Qt.DockWidgetArea.BottomDockWidgetArea,
                                    beside=window.training.dock)
        window.summary_dock.raise_()  # add_dock raised Training; the summary was in front
        self.dock.visibilityChanged.connect(self.view.dock_visibility_changed)
        self.action = QAction("E&xplain Layer", window)
        self.action.setObjectName("actionExplain")
        self.action.setShortcut(QKeySequence(SHORTCUT))
        self.action.setStatusTip("Show how the selected layer computes its values, with the"
                                 " real numbers, and what its filters respond to")
        self.action.triggered.connect(lambda _checked=False: self._triggered())
        window.training.menu.addSeparator()
        window.training.menu.addAction(self.action)
        window.document.selection_changed.connect(self._selection_changed)
        window.document.project_replaced.connect(lambda: self.view.set_layer(None))

    def release(self) -> None:
        """The window closes: cancel every Explain job and wait (bounded) for the worker."""
        self.view.computation.stop()
        self.host.release()

    def _selection_changed(self, ids: list[str]) -> None:
        if len(ids) == 1 and ids[0] in self.window.document.graph:
            self.view.set_layer(ids[0])

    def _triggered(self) -> None:
        """Explain Layer chosen: from a node's menu, the node right-clicked (its data), if
        it is still selected (a menu closed unused leaves its node behind); else the
        selected layer."""
        clicked = self.action.data()
        self.action.setData(None)
        chosen = clicked if isinstance(clicked, str) and \
            clicked in self.window.document.selection else None
        self.explain(chosen)

    def explain(self, node_id: str | None = None) -> None:
        """Show the Explain dock, raised and tall enough to read, for `node_id` (shown and
        selected on the canvas unless it is part of the selection) or else the selected
        layer (none: the view says how to choose)."""
        w = self.window
        doc = w.document
        if node_id is not None and node_id in doc.graph:
            if node_id not in doc.selection:
                w.show_node(node_id)
            self.view.set_layer(node_id)
        else:
            selected = doc.selection
            if len(selected) == 1 and selected[0] in doc.graph:
                self.view.set_layer(selected[0])
        self.dock.show()
        self.dock.raise_()
        w.resizeDocks([self.dock], [int(w.height() * DOCK_SHARE)], Qt.Orientation.Vertical)
        self.view.computation.setFocus()
