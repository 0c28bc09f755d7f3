"""The icons the window shows.

Icons are small SVGs in the repository's top-level `resources/icons/`; monochrome ones
draw with `currentColor`, which is replaced by the palette's text colour so they follow
light and dark themes. A missing file gives an empty icon, never an error.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

import cnnstudio

_ICON_SIZES = (16, 20, 24, 32, 48)


def resources_dir() -> Path:
    """The `resources/` folder: beside the package in a checkout or an editable install,
    inside it when installed from a wheel that ships it as package data."""
    package = Path(cnnstudio.__file__).resolve().parent
    for candidate in (package.parent / "resources", package / "resources"):
        if candidate.is_dir():
            return candidate
    return package.parent / "resources"


@lru_cache(maxsize=128)
def _icon(name: str, color: str) -> QIcon:
    path = resources_dir() / "icons" / f"{name}.svg"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return QIcon()
    renderer = QSvgRenderer(QByteArray(text.replace("currentColor", color).encode("utf-8")))
    if not renderer.isValid():
        return QIcon()
    icon = QIcon()
    ratio = QApplication.instance().devicePixelRatio() if QApplication.instance() else 1.0
    for size in _ICON_SIZES:
        pixels = round(size * max(ratio, 1.0))
        pixmap = QPixmap(pixels, pixels)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF(0, 0, pixels, pixels))
        painter.end()
        pixmap.setDevicePixelRatio(max(ratio, 1.0))
        icon.addPixmap(pixmap)
    return icon


def icon(name: str, color: str | None = None) -> QIcon:
    """The icon `resources/icons/<name>.svg`, monochrome parts drawn in `color` (default:
    the application palette's text colour)."""
    if color is None:
        app = QApplication.instance()
        color = app.palette().windowText().color().name() if app else "#333333"
    return _icon(name, color)
