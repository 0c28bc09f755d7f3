"""The window's actions, menus and toolbar."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractButton, QMenu, QToolBar, QToolButton

from cnnstudio.ui.icons import icon

if TYPE_CHECKING:
    from cnnstudio.ui.main_window import MainWindow
    from cnnstudio.ui.training.panel import TrainingControls

StandardKey = QKeySequence.StandardKey


def _action(parent: MainWindow, text: str, slot: Callable[[], object] | None = None, *,
            keys: list[QKeySequence | StandardKey | str] | None = None,
            icon_name: str | None = None, tip: str | None = None) -> QAction:
    action = QAction(text, parent)
    if icon_name:
        action.setIcon(icon(icon_name))
    if keys:
        sequences = []
        for key in keys:
            sequences.extend(QKeySequence.keyBindings(key) if isinstance(key, StandardKey)
                             else [QKeySequence(key)])
        # Some platforms have no binding for a standard key (Quit on Windows): fall back.
        action.setShortcuts([s for s in sequences if not s.isEmpty()])
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    if slot is not None:
        action.triggered.connect(lambda _checked=False: slot())
    return action


def _standard(key: StandardKey, fallback: str) -> list[QKeySequence | StandardKey | str]:
    """A standard key, or `fallback` where the platform defines none for it."""
    return [key] if QKeySequence.keyBindings(key) else [fallback]


class _ButtonAction(QAction):
    """A toolbar action standing for a push button elsewhere: triggering it clicks the
    button; the button's enabled state, text and tooltip are copied whenever they change."""

    def __init__(self, button: QAbstractButton, name: str, icon_name: str,
                 parent: QObject) -> None:
        super().__init__(button.text(), parent)
        self.button = button
        self.setObjectName(name)
        self.setIcon(icon(icon_name) if not icon(icon_name).isNull() else button.icon())
        self.triggered.connect(lambda _checked=False: button.click())
        button.installEventFilter(self)
        self._copy()

    def _copy(self) -> None:
        self.setEnabled(self.button.isEnabled())
        self.setText(self.button.text())
        self.setToolTip(self.button.toolTip())
        self.setStatusTip(self.button.toolTip())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # The panel sets a button's text just before its tooltip (Train ↔ Resume), and
        # both changes are sent to the button at once, shown or hidden.
        if watched is self.button and event.type() in (QEvent.Type.EnabledChange,
                                                       QEvent.Type.ToolTipChange):
            self._copy()
        return False


class WindowActions:
    """Creates the main window's actions, its menu bar and its toolbar."""

    def __init__(self, window: MainWindow) -> None:
        w = window
        self.window = window
        view = lambda name: (lambda: getattr(w.view, name)())  # noqa: E731 (late-bound view)
        self.new = _action(w, "&New from Template…", w.new_from_template, icon_name="new",
                           keys=_standard(StandardKey.New, "Ctrl+N"),
                           tip="Start a new project from a template or a blank canvas")
        self.open = _action(w, "&Open…", w.open_dialog, icon_name="open",
                            keys=_standard(StandardKey.Open, "Ctrl+O"),
                            tip="Open a .cnnproj or .json project")
        self.save = _action(w, "&Save", w.save_project, icon_name="save",
                            keys=_standard(StandardKey.Save, "Ctrl+S"), tip="Save the project")
        self.save_as = _action(w, "Save &As…", w.save_as_dialog,
                               keys=_standard(StandardKey.SaveAs, "Ctrl+Shift+S"),
                               tip="Save the project under a new name")
        self.quit = _action(w, "&Quit", w.close, icon_name="quit",
                            keys=_standard(StandardKey.Quit, "Ctrl+Q"))
        self.quit.setMenuRole(QAction.MenuRole.QuitRole)

        stack = w.undo_stack
        self.undo = stack.createUndoAction(w, "&Undo")
        self.undo.setShortcuts(QKeySequence.keyBindings(StandardKey.Undo))
        self.undo.setIcon(icon("undo"))
        self.redo = stack.createRedoAction(w, "&Redo")
        self.redo.setShortcuts(QKeySequence.keyBindings(StandardKey.Redo))
        self.redo.setIcon(icon("redo"))
        self.cut = _action(w, "Cu&t", w.cut_selection, icon_name="cut",
                           keys=[StandardKey.Cut])
        self.copy = _action(w, "&Copy", view("copy_selection"), icon_name="copy",
                            keys=[StandardKey.Copy])
        self.paste = _action(w, "&Paste", view("paste"), icon_name="paste",
                             keys=[StandardKey.Paste])
        self.duplicate = _action(w, "D&uplicate", view("duplicate_selection"),
                                 icon_name="duplicate", keys=["Ctrl+D"])
        # Not StandardKey.Delete: on X11 it also binds Ctrl+D, which is Duplicate here, and
        # an ambiguous shortcut fires neither action.
        self.delete = _action(w, "&Delete", view("delete_selection"), icon_name="delete",
                              keys=["Del"])
        self.select_all = _action(w, "Select &All", view("select_all"), icon_name="select-all",
                                  keys=[StandardKey.SelectAll])

        self.zoom_in = _action(w, "Zoom &In", view("zoom_in"), icon_name="zoom-in",
                               keys=_standard(StandardKey.ZoomIn, "Ctrl++"))
        self.zoom_out = _action(w, "Zoom &Out", view("zoom_out"), icon_name="zoom-out",
                                keys=_standard(StandardKey.ZoomOut, "Ctrl+-"))
        self.fit = _action(w, "&Fit to Window", view("fit_all"), icon_name="zoom-fit",
                           keys=["Ctrl+0"], tip="Zoom to show the whole network")
        self.reset_zoom = _action(w, "&Actual Size", view("reset_zoom"),
                                  icon_name="zoom-reset", keys=["Ctrl+1"])
        self.auto_layout = _action(w, "Auto &Layout", view("auto_layout"), icon_name="layout",
                                   keys=["Ctrl+L"], tip="Arrange the layers top to bottom")
        self.recent_menu = QMenu("Open &Recent", w)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._build_menus()
        self.toolbar = self._build_toolbar()

    def _build_menus(self) -> None:
        """File, Edit, View (with its Panels submenu). Plug-ins add theirs to these by
        name: `file_menu` entries go before `quit_separator`, docks into `panels_menu`."""
        bar = self.window.menuBar()
        file = self.file_menu = bar.addMenu("&File")
        file.addActions([self.new, self.open])
        file.addMenu(self.recent_menu)
        file.addSeparator()
        file.addActions([self.save, self.save_as])
        self.quit_separator = file.addSeparator()
        file.addAction(self.quit)
        edit = self.edit_menu = bar.addMenu("&Edit")
        edit.addActions([self.undo, self.redo])
        edit.addSeparator()
        edit.addActions([self.cut, self.copy, self.paste, self.duplicate, self.delete])
        edit.addSeparator()
        edit.addAction(self.select_all)
        self.view_menu = bar.addMenu("&View")
        self.view_menu.addActions([self.zoom_in, self.zoom_out, self.fit, self.reset_zoom])
        self.view_menu.addSeparator()
        self.view_menu.addAction(self.auto_layout)
        self.view_menu.addSeparator()
        self.panels_menu = self.view_menu.addMenu("&Panels")

    def _build_toolbar(self) -> QToolBar:
        bar = QToolBar("Main toolbar", self.window)
        bar.setObjectName("mainToolbar")  # saveState needs a name
        bar.setIconSize(QSize(20, 20))
        bar.setMovable(False)
        bar.addActions([self.new, self.open, self.save])
        bar.addSeparator()
        bar.addActions([self.undo, self.redo])
        bar.addSeparator()
        bar.addActions([self.delete, self.duplicate])
        bar.addSeparator()
        bar.addActions([self.zoom_in, self.zoom_out, self.fit, self.auto_layout])
        self.window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        return bar

    def add_training_buttons(self, controls: TrainingControls) -> None:
        """Train and Stop at the toolbar's end, for a user who has not found the Training
        tab yet. They press the training panel's own buttons (so they do exactly what
        those do) and mirror their enabled state, text and tip."""
        self.train = _ButtonAction(controls.train_button, "actionTrainToolbar", "train",
                                   self.window)
        self.stop = _ButtonAction(controls.stop_button, "actionStopToolbar", "stop",
                                  self.window)
        self.toolbar.addSeparator()
        self.toolbar.addActions([self.train, self.stop])
        for action in (self.train, self.stop):  # icon and text: a first-time user reads it
            button = self.toolbar.widgetForAction(action)
            if isinstance(button, QToolButton):
                button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)

    def _fill_recent(self) -> None:
        from cnnstudio.ui.settings import clear_recent_files, recent_files

        menu = self.recent_menu
        menu.clear()
        paths = recent_files()
        for i, path in enumerate(paths, 1):
            label = f"&{i} {Path(path).name}" if i < 10 else Path(path).name
            action = menu.addAction(label)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _c=False, p=path: self.window.open_with_prompt(p))
        if not paths:
            menu.addAction("No recent projects").setEnabled(False)
        menu.addSeparator()
        menu.addAction("Clear Menu", clear_recent_files).setEnabled(bool(paths))
