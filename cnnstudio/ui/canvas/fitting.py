"""Geometry of Fit and of the first view: zoom factors, which blocks Fit folds, where the
first view of a long network looks."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF
from PySide6.QtWidgets import QGraphicsItem

from cnnstudio.core.graph import Graph

FIT_MARGIN_PX = 12  # free pixels around a fitted network


def fit_zoom(port: QRect, rect: QRectF) -> float:
    """The zoom at which `rect` fills the viewport `port`, less a small margin."""
    room = port.adjusted(FIT_MARGIN_PX, FIT_MARGIN_PX, -FIT_MARGIN_PX, -FIT_MARGIN_PX)
    return min(room.width() / max(rect.width(), 1.0), room.height() / max(rect.height(), 1.0))


def outer_unfolded(graph: Graph) -> list[str]:
    """The top-level blocks that are unfolded and not empty: what Fit folds."""
    groups = graph.groups
    return [g.id for g in groups if g.parent is None and not g.collapsed
            and not groups.is_empty(g.id)]


def start_centre(content: QRectF, visible: QRectF, items: list[QGraphicsItem],
                 across: bool) -> QPointF:
    """Where the first view of a network bigger than the view centres: on the start of the
    flow (the top, or the left edge when it runs `across`), and across the flow on the
    first card (the Input) when the network is too wide for the view there too."""
    w, h = visible.width() / 2, visible.height() / 2
    x, y = content.center().x(), content.center().y()
    first = min(items, key=lambda item: (item.sceneBoundingRect().left() if across
                                         else item.sceneBoundingRect().top()))
    start = first.sceneBoundingRect().center()
    if across:
        x = content.left() + w
        if content.height() > visible.height():
            y = min(max(start.y(), content.top() + h), content.bottom() - h)
    else:
        y = content.top() + h
        if content.width() > visible.width():
            x = min(max(start.x(), content.left() + w), content.right() - w)
    return QPointF(x, y)
