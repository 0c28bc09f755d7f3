"""Mouse events sent to a canvas view's viewport, as a user's hand would (offscreen, QDrag
and QTest cannot drive QGraphicsView): shared by the canvas tests."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from cnnstudio.ui.canvas import GraphView

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
NO_MOD = Qt.KeyboardModifier.NoModifier


def send(view: GraphView, kind: QEvent.Type, scene_pos: QPointF, button: Qt.MouseButton,
         buttons: Qt.MouseButton, modifiers: Qt.KeyboardModifier = NO_MOD) -> None:
    port = view.viewport()
    local = QPointF(view.mapFromScene(scene_pos))
    event = QMouseEvent(kind, local, QPointF(port.mapToGlobal(local.toPoint())), button,
                        buttons, modifiers)
    QApplication.sendEvent(port, event)


def drag(view: GraphView, start: QPointF, end: QPointF, button: Qt.MouseButton = LEFT,
         modifiers: Qt.KeyboardModifier = NO_MOD, release: bool = True) -> None:
    """Press at `start`, move to `end` in five steps, release (unless not `release`)."""
    send(view, QEvent.Type.MouseButtonPress, start, button, button, modifiers)
    for i in range(1, 6):
        point = start + (end - start) * (i / 5)
        send(view, QEvent.Type.MouseMove, point, NONE, button, modifiers)
    if release:
        send(view, QEvent.Type.MouseButtonRelease, end, button, NONE, modifiers)
