"""1-D samples (C, L) drawn as small line plots: one curve per channel, the range a
filter sees shaded. A top-k hit of a signal is its receptive field with some context on
each side (a 5-sample crop alone reads as nothing)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QPainter, QPen

SPAN_FILL = QColor(255, 64, 64, 60)
SPAN_EDGE = QColor(255, 64, 64)
CONTEXT = 1.0  # a hit shows its field and this many field widths on each side
MIN_SHOWN = 16  # ... and at least this many samples


def channel_colour(k: int) -> QColor:
    """Channel `k`'s curve colour (as the Computation page draws signals)."""
    return QColor.fromHsv((210 + 70 * k) % 360, 200, 160)


def signal_window(signal: np.ndarray, box: Sequence[int] | None
                  ) -> tuple[np.ndarray, tuple[int, int] | None]:
    """The part of `signal` (C, L) to draw for a hit whose field is `box` ([0, x0, 1, x1],
    end-exclusive): the field with context around it, and the field's range within the
    part; the whole signal and None without a box."""
    a = np.asarray(signal, np.float64).reshape(len(signal), -1)
    if box is None:
        return a, None
    length = a.shape[1]
    x0, x1 = max(0, int(box[1])), min(length, int(box[3]))
    if x1 <= x0:
        return a, None
    width = x1 - x0
    shown = min(length, max(MIN_SHOWN, int(round(width * (1 + 2 * CONTEXT)))))
    start = min(max(0, (x0 + x1 - shown) // 2), length - shown)
    return a[:, start:start + shown], (x0 - start, x1 - start)


def paint_signal(painter: QPainter, area: QRectF, signal: np.ndarray,
                 span: tuple[int, int] | None = None, width: float = 1.5) -> None:
    """`signal` (C, L) as curves filling `area` (min–max scaled over all channels), the
    range `span` (start, end-exclusive) shaded."""
    a = np.asarray(signal, np.float64).reshape(len(signal), -1)
    if not a.size or area.isEmpty():
        return
    length = a.shape[1]
    step = area.width() / max(1, length)
    painter.save()
    if span is not None:
        s0, s1 = max(0, span[0]), min(length, span[1])
        shade = QRectF(area.left() + s0 * step, area.top(), (s1 - s0) * step, area.height())
        painter.fillRect(shade, SPAN_FILL)
        painter.setPen(QPen(SPAN_EDGE, 1))
        painter.drawRect(shade)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    finite = a[np.isfinite(a)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scale = high - low if high > low else 1.0
    for k, curve in enumerate(np.nan_to_num(a, nan=low)):
        painter.setPen(QPen(channel_colour(k), width))
        centre = 0.5 if high <= low else None
        points = [QPointF(area.left() + (i + 0.5) * step,
                          area.bottom() - ((v - low) / scale if centre is None else centre)
                          * area.height())
                  for i, v in enumerate(curve)]
        if len(points) == 1:
            points.append(QPointF(area.right(), points[0].y()))
        painter.drawPolyline(points)
    painter.restore()
