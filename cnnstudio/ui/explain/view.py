"""The Explain view: a page switcher over "Computation" (how the selected layer computes a
value) and "What the filters respond to", with the host's progress row below."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFrame, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from cnnstudio.ui.explain.computation import ComputationPage
from cnnstudio.ui.explain.responses import FilterResponsesPanel

if TYPE_CHECKING:
    from cnnstudio.ui.explain.host import ExplainHost

RESPONSES_TITLE = "What the filters respond to"


class ExplainView(QWidget):
    """objectName `explainView`: `set_layer(node)` points every page at a layer."""

    def __init__(self, host: ExplainHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("explainView")
        self.host = host
        self.node: str | None = None
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("explainTabs")
        self.tabs.setDocumentMode(True)
        self.computation = ComputationPage(host)
        self.tabs.addTab(self.computation, "Computation")
        self.responses = FilterResponsesPanel(host)
        self.tabs.addTab(self.responses, RESPONSES_TITLE)
        # In a scroll area: the pages need ~350 px to be read, and the bottom docks tabbed
        # with this one would otherwise all be held that tall, taking the canvas's room.
        # Explain Layer makes the dock tall enough; a short dock scrolls.
        scroll = QScrollArea(self)
        scroll.setObjectName("explainScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.tabs)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(scroll, 1)
        layout.addWidget(host.strip)

    def dock_visibility_changed(self, in_front: bool) -> None:
        """The dock came in front of the docks tabbed with it (or went behind them): the
        page shown catches up, or the filters page stops its jobs."""
        if in_front:
            page = self.tabs.currentWidget()
            if page is self.computation:
                self.computation.came_into_view()
            elif page is self.responses:
                self.responses.refresh()
        else:
            self.responses.jobs.pause()

    def set_layer(self, node: str | None) -> None:
        """Explain `node` (None: no layer chosen); pages compute when shown."""
        self.node = node
        self.computation.set_layer(node)
        self.responses.set_layer(node)
