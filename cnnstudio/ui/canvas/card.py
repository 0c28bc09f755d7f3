"""What a layer's card (`NodeItem`) and a folded block's card (`GroupItem`) share: the
flags and picture cache of a movable card, its ports (`Ports`), the problems it shows
with their far-zoom marker, and a tooltip built only when the pointer arrives.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsSceneHoverEvent,
    QStyleOptionGraphicsItem,
    QWidget,
)

from cnnstudio.ui.canvas import lod as lod_
from cnnstudio.ui.canvas import style
from cnnstudio.ui.canvas.ports import Ports

_NO_PEN = QPen(Qt.PenStyle.NoPen)


class Card(QGraphicsRectItem):
    """A selectable, movable card centred on its position, with `ports`, within `bounds`
    (item coordinates: the card, its ports and selection halo).

    Its bounding rect is the C++ QGraphicsRectItem's (the rect, no pen), not a Python
    method: Qt asks an item for it several times per move, show and paint — unfolding a
    1,000-layer network asked ~5,000 times, ~6 ms through Python.

    It has no Python `itemChange`: Qt would call it for every move and show/hide of every
    card (folding a block of a 1,000-layer network: ~3,000 calls, 12 ms). The scene routes
    the edges of what it moves itself, and of what a drag moves (`SceneInteraction`)."""

    def __init__(self, ports: Ports, bounds: QRectF) -> None:
        super().__init__(bounds)
        self.setPen(_NO_PEN)  # paint draws the card; the rect only bounds it
        self.ports = ports
        self.severity: str | None = None  # "error" | "warning" | None
        self.messages: list[str] = []
        self.painted_lod = 1.0  # the zoom of the last paint (the marker's fallback)
        self.marker: lod_.ScreenMarker | None = None  # made when first needed
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setAcceptHoverEvents(True)
        # Each card is rendered once into a pixmap and blitted: 1,000 cards stay smooth.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        lod_.ensure_pixmap_cache()
        self.setZValue(1)
        self._tooltip_dirty = True

    # ---- what it shows ------------------------------------------------------------------

    def set_problems(self, severity: str | None, messages: list[str]) -> None:
        if (severity, messages) != (self.severity, self.messages):
            self.severity, self.messages = severity, list(messages)
            lod_.ScreenMarker.follow(self, self.isSelected())
            self._changed()

    def set_input_count(self, count: int) -> None:
        if count != self.ports.input_count:
            self.ports.input_count = count
            self.update()

    def set_output_count(self, count: int) -> None:
        if count != self.ports.output_count:
            self.ports.output_count = count
            self.update()

    def set_direction(self, direction: str) -> None:
        """"down": input port on top, output below; "right": input left, output right."""
        if self.ports.set_direction(direction):
            self.update()

    def marker_state(self) -> tuple[bool, str | None]:
        """What the far-zoom marker must show: selected, and the problem severity."""
        return self.isSelected(), self.severity

    def tooltip_text(self) -> str:
        raise NotImplementedError

    def _begin_paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
                     widget: QWidget | None) -> tuple[QPalette, float]:
        """The palette to paint with and the zoom painted at (remembered: the far-zoom
        marker's fallback); antialiasing on."""
        self.painted_lod = option.levelOfDetailFromTransform(painter.worldTransform())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        return (widget.palette() if widget is not None else style.palette()), self.painted_lod

    def _changed(self) -> None:
        # The tooltip is built when the pointer arrives (hoverEnterEvent), not on every
        # edit: a shape change can touch 1,000 cards, and setToolTip costs ~10 µs each.
        self._tooltip_dirty = True
        self.update()

    def toolTip(self) -> str:  # noqa: N802 (Qt's name)
        self._refresh_tooltip()
        return super().toolTip()

    def _refresh_tooltip(self) -> None:
        if self._tooltip_dirty:
            self._tooltip_dirty = False
            self.setToolTip(self.tooltip_text())

    def hoverEnterEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        self._refresh_tooltip()
        super().hoverEnterEvent(event)

    # ---- ports --------------------------------------------------------------------------

    def input_anchor(self, index: int, count: int) -> QPointF:
        """Where input `index` of `count` meets the card (merge inputs spread out, in order)."""
        return self.ports.input_anchor(index, count)

    def input_tip(self, index: int, count: int) -> QPointF:
        """Where an edge into input `index` of `count` ends (the port's outer rim)."""
        return self.ports.input_tip(index, count)

    def output_anchor(self) -> QPointF:
        return self.ports.output_anchor()
