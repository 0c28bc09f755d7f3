"""The arithmetic of the chosen value, painted from a `Figure` and scaled to the room the
page has: larger when the panel is wide, scrolled when it is small."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QFrame, QScrollArea, QStyle, QWidget

from cnnstudio.ui.explain.number_grid import Figure, Metrics, paint_figure

MARGIN = 10.0
MIN_ZOOM, MAX_ZOOM = 0.85, 1.7  # below: too small to read; above: a few huge cells
FIT_ZOOM = 0.9  # a figure that fits at this zoom is shown whole rather than scrolled


class _FigureWidget(QWidget):
    def __init__(self, owner: ArithmeticView) -> None:
        super().__init__()
        self.owner = owner

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        owner = self.owner
        if owner.message:
            painter.setPen(self.palette().text().color())
            painter.drawText(QRectF(self.rect()).adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
                             | Qt.TextFlag.TextWordWrap, owner.message)
            return
        painter.translate(MARGIN, MARGIN)
        painter.scale(owner.zoom, owner.zoom)
        paint_figure(painter, owner.figure, self.font())


class ArithmeticView(QScrollArea):
    """Shows one `Figure` (or a message) at a zoom that fits the panel's width."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("explainArithmetic")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidgetResizable(False)
        self.canvas = _FigureWidget(self)
        self.setWidget(self.canvas)
        self.figure = Figure()
        self.message = ""
        self.zoom = 1.0
        self.metrics = Metrics(self.canvas.font())
        self._build: Callable[[float], Figure] | None = None
        self._built_for = 0.0

    def room(self) -> float:
        """The figure width that fits the panel without scrolling, in logical units."""
        # The vertical scroll bar's room is kept free: it comes and goes with the figure's
        # height without the scroll area being resized (so nothing would lay it out again).
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        return max(100.0, self.width() - 2 * self.frameWidth() - bar - 2 * MARGIN - 1)

    def show_figure(self, figure: Figure, build: Callable[[float], Figure] | None = None
                    ) -> None:
        """Show `figure`; with `build(room)`, laid out again when the panel's width
        changes."""
        self.figure, self.message, self._build = figure, "", build
        self._built_for = self.room()
        self._fit()
        self.canvas.update()

    def show_message(self, text: str) -> None:
        self.figure, self.message, self._build = Figure(), text, None
        self._fit()
        self.canvas.update()

    def _fit(self) -> None:
        view = self.viewport().size()
        if self.message or not self.figure.width:
            self.canvas.resize(max(1, view.width()), max(1, view.height()))
            return
        room_w = self.room()
        room_h = max(1.0, view.height() - 2 * MARGIN)
        whole = min(room_w / self.figure.width, room_h / self.figure.height)
        if whole >= FIT_ZOOM:  # all of it in view, grown where there is room
            self.zoom = min(MAX_ZOOM, whole)
        else:  # fit the width (at most full size) and scroll down
            self.zoom = max(MIN_ZOOM, min(1.0, room_w / self.figure.width))
        self.canvas.resize(int(self.figure.width * self.zoom + 2 * MARGIN),
                           int(self.figure.height * self.zoom + 2 * MARGIN))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._build is not None and abs(self.room() - self._built_for) > 1:
            self.figure, self._built_for = self._build(self.room()), self.room()
        self._fit()
