"""The Help menu: Getting Started, Keyboard Shortcuts and About.

The dialogs are non-modal (the window stays usable beside them) and built when opened:
the shortcut table is read from the window's actual QActions at that moment, so it lists
exactly what the menus do, with the platform's own key names.
"""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import cnnstudio

if TYPE_CHECKING:
    from cnnstudio.ui.main_window import MainWindow

GETTING_STARTED = """
<h3>Getting started</h3>
<ol>
<li><b>Data.</b> Open the <i>Data</i> tab (bottom) and pick the data to learn from: a
built-in set such as <i>digits</i>, or a folder with one subfolder of images per class.
</li>
<li><b>Build.</b> Drag layers from <i>Layers</i> (left) onto the canvas, or double-click
one to add it after the selected layer. Drag from a card's bottom port to another card's
top port to connect them. The <i>Inspector</i> (right) edits the selected layer and shows
the arithmetic behind its output shape.</li>
<li><b>Fix.</b> A red card has a problem: the <i>Problems</i> tab says what is wrong and
offers one-click fixes. Every edit can be undone (Ctrl+Z).</li>
<li><b>Train.</b> Press <b>Train</b> in the toolbar. The <i>Training</i> tab shows the
loss and accuracy curves as they come; Pause or Stop at any time and resume later.</li>
<li><b>Inspect.</b> Look at what the network learned: <i>Filters</i>, <i>Activations</i>,
the <i>Confusion</i> matrix, and <i>Predict image…</i> to classify a picture of your own.
</li>
<li><b>Keep it.</b> File ▸ Save writes a <code>.cnnproj</code> with the trained weights;
File ▸ Export writes ONNX, TorchScript or PyTorch source.</li>
</ol>
"""

LICENCE = "MIT"
DATA_ATTRIBUTION = (
    "The built-in <i>digits</i> data set is the UCI “Optical Recognition of Handwritten "
    "Digits” (E. Alpaydin, C. Kaynak; UCI Machine Learning Repository, 1998; "
    "DOI 10.24432/C50P49), under CC BY 4.0.")
# What the canvas does with the mouse: gestures, not QActions, so listed here.
CANVAS_GESTURES = (
    ("Zoom around the pointer", "Ctrl+wheel"),
    ("Pan", "Middle drag, or Space+drag"),
    ("Connect two layers", "Drag from an output port to an input port"),
    ("Add to the selection", "Shift+click or Ctrl+click"),
    ("Delete the selection", "Del or Backspace"),
    ("Unfold a folded block", "Double-click its card"),
    ("Fold a block", "Click − on its title tab, or double-click the tab"),
)


def _plain(text: str) -> str:
    """A menu text without its mnemonic '&' and trailing ellipsis."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


_PLAIN_KEYS = {"Del", "Delete", "Backspace", "Esc", "Space", "Return", "Enter", "Tab"} | {
    f"F{i}" for i in range(1, 13)}


def _typed(key: QKeySequence) -> bool:
    """Whether a binding is one people type: with Ctrl/Alt/Meta, or a plain key such as
    Del or F1. Qt's standard bindings also list the dedicated keys of old Sun keyboards
    (F14, "Undo", "Shift+Save"), which only confuse a table of shortcuts."""
    text = key.toString(QKeySequence.SequenceFormat.PortableText)
    parts = text.split("+") if text != "+" else ["+"]
    modifiers = set(parts[:-1])
    return bool(modifiers & {"Ctrl", "Alt", "Meta"}) or (not modifiers and parts[-1] in _PLAIN_KEYS)


def _menu_paths(window: MainWindow) -> dict[QAction, str]:
    """Every action reachable from the menu bar, with its menu path ('Edit', 'View ▸ …')."""
    paths: dict[QAction, str] = {}

    def walk(menu: QMenu, path: str) -> None:
        for action in menu.actions():
            sub = action.menu()
            if sub is not None:
                walk(sub, f"{path} ▸ {_plain(action.text())}")
            elif not action.isSeparator():
                paths.setdefault(action, path)

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), _plain(top.text()))
    return paths


def shortcut_rows(window: MainWindow) -> list[tuple[str, str, str]]:
    """(action, keys, menu) for every action of the window that has a shortcut, in menu
    order; then the canvas's mouse gestures. Read from the live actions: never stale."""
    paths = _menu_paths(window)
    ordered = list(paths) + [a for a in window.findChildren(QAction) if a not in paths]
    names = {window.actions_.undo: "Undo", window.actions_.redo: "Redo"}  # texts change
    rows, seen = [], set()
    for action in ordered:
        keys = [k for k in action.shortcuts() if not k.isEmpty() and _typed(k)]
        if not keys or action in seen:
            continue
        seen.add(action)
        text = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
        name = names.get(action) or _plain(action.text())
        rows.append((name, text, paths.get(action, "")))
    rows += [(name, keys, "Canvas") for name, keys in CANVAS_GESTURES]
    return rows


def about_html() -> str:
    """Version, the libraries it runs on (torch only if this session loaded it), the
    licence and where the built-in data comes from."""
    torch = sys.modules.get("torch")
    torch_text = (f"PyTorch {getattr(torch, '__version__', '?')}" if torch is not None
                  else "PyTorch (not loaded yet: it loads with the first training)")
    return (
        f"<h3>CNN Studio {cnnstudio.__version__}</h3>"
        "<p>Design, train and understand convolutional neural networks.</p>"
        f"<p>Python {platform.python_version()} · Qt {qVersion()} · PySide6 "
        f"{pyside_version}<br>{torch_text}</p>"
        f"<p>Licence: {LICENCE}.</p>"
        f"<p><small>{DATA_ATTRIBUTION}</small></p>")


class _Dialog(QDialog):
    """A non-modal dialog with a Close button, deleted when closed."""

    def __init__(self, parent: QWidget, name: str, title: str, body: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setWindowTitle(title)
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        layout = QVBoxLayout(self)
        layout.addWidget(body)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)


def _text(html: str, name: str) -> QLabel:
    label = QLabel(html)
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
    label.setOpenExternalLinks(True)
    return label


class HelpMenu:
    """Adds the Help menu to `window` (create it last: Help ends the menu bar); `dialogs`
    holds the open ones by objectName."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.dialogs: dict[str, QDialog] = {}
        self.menu = window.menuBar().addMenu("&Help")
        self.getting_started = self._action("&Getting Started", "actionGettingStarted",
                                            self.show_getting_started,
                                            "Data → build → train → inspect, in six steps")
        self.shortcuts = self._action("&Keyboard Shortcuts", "actionShortcuts",
                                      self.show_shortcuts, "Every shortcut of the window",
                                      QKeySequence.StandardKey.HelpContents)
        self.menu.addSeparator()
        self.about = self._action("&About CNN Studio", "actionAbout", self.show_about,
                                  "Version, licence and data attribution")
        self.about.setMenuRole(QAction.MenuRole.AboutRole)

    def _action(self, text: str, name: str, slot, tip: str,
                key: QKeySequence.StandardKey | None = None) -> QAction:
        action = QAction(text, self.window)
        action.setObjectName(name)
        action.setStatusTip(tip)
        if key is not None:
            action.setShortcuts(QKeySequence.keyBindings(key) or [QKeySequence("F1")])
        action.triggered.connect(lambda _checked=False: slot())
        self.menu.addAction(action)
        return action

    def _open(self, name: str, title: str, body: QWidget, size: tuple[int, int]) -> QDialog:
        old = self.dialogs.get(name)
        if old is not None:
            old.close()  # rebuilt, so the contents are current
        dialog = _Dialog(self.window, name, title, body)
        dialog.resize(*size)
        dialog.destroyed.connect(lambda _o=None, n=name, d=dialog: self._forget(n, d))
        self.dialogs[name] = dialog
        dialog.show()
        dialog.raise_()
        return dialog

    def _forget(self, name: str, dialog: QDialog) -> None:
        if self.dialogs.get(name) is dialog:
            del self.dialogs[name]

    def show_getting_started(self) -> QDialog:
        return self._open("gettingStartedDialog", "Getting Started",
                          _text(GETTING_STARTED, "gettingStartedText"), (540, 400))

    def show_shortcuts(self) -> QDialog:
        rows = shortcut_rows(self.window)
        table = QTableWidget(len(rows), 3)
        table.setObjectName("shortcutTable")
        table.setHorizontalHeaderLabels(["Action", "Keys", "Menu"])
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                table.setItem(r, c, QTableWidgetItem(value))
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setAlternatingRowColors(True)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        return self._open("shortcutsDialog", "Keyboard Shortcuts", table, (620, 640))

    def show_about(self) -> QDialog:
        return self._open("aboutDialog", "About CNN Studio", _text(about_html(), "aboutText"),
                          (460, 320))
