"""The window's actions, menus and toolbar."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
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
        self._make_group_actions()

        self.zoom_in = _action(w, "Zoom &In", view("zoom_in"), icon_name="zoom-in",
                               keys=_standard(StandardKey.ZoomIn, "Ctrl++"))
        self.zoom_out = _action(w, "Zoom &Out", view("zoom_out"), icon_name="zoom-out",
                                keys=_standard(StandardKey.ZoomOut, "Ctrl+-"))
        self.fit = _action(w, "&Fit to Window", view("fit_all"), icon_name="zoom-fit",
                           keys=["Ctrl+0"], tip="Zoom to show the whole network (folding "
                           "its outermost blocks when it would be too small to read)")
        self.fit.setObjectName("actionFit")
        self.reset_zoom = _action(w, "&Actual Size", view("reset_zoom"),
                                  icon_name="zoom-reset", keys=["Ctrl+1"])
        self.auto_layout = _action(w, "Auto &Layout", view("auto_layout"), icon_name="layout",
                                   keys=["Ctrl+L"], tip="Arrange the layers in rows along "
                                   "the data flow")
        self.auto_layout.setObjectName("actionAutoLayout")
        self._make_view_actions()
        self.recent_menu = QMenu("Open &Recent", w)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._build_menus()
        self.toolbar = self._build_toolbar()

    def _make_view_actions(self) -> None:
        """Find, the overview map's toggle and the layout direction choice."""
        w = self.window
        self.find = _action(w, "&Find Layer…", lambda: w.view.find_bar.open(),
                            icon_name="find", keys=_standard(StandardKey.Find, "Ctrl+F"),
                            tip="Find a layer by id, type or block name")
        self.find.setObjectName("actionFind")
        self.find_next = _action(w, "Find &Next", lambda: w.view.find_bar.next_match(),
                                 keys=["F3"])
        self.find_next.setObjectName("actionFindNext")
        self.find_previous = _action(w, "Find Pre&vious",
                                     lambda: w.view.find_bar.previous_match(),
                                     keys=["Shift+F3"])
        self.find_previous.setObjectName("actionFindPrevious")
        self.overview = _action(w, "&Overview Map", tip="Show a map of the whole network "
                                "while it does not fit the view")
        self.overview.setObjectName("actionOverview")
        self.overview.setCheckable(True)
        self.overview.setChecked(w.view.overview.enabled)
        self.overview.toggled.connect(lambda on: w.view.overview.set_enabled(on))
        self.direction_group = QActionGroup(w)  # exclusive
        self.directions: dict[str, QAction] = {}
        for direction, text in (("down", "&Top to Bottom"), ("right", "&Left to Right")):
            action = QAction(text, self.direction_group)
            action.setObjectName(f"actionDirection{direction.capitalize()}")
            action.setCheckable(True)
            action.triggered.connect(
                lambda _checked=False, d=direction: self._choose_direction(d))
            self.directions[direction] = action
        for signal in (w.document.graph_reset, w.document.project_replaced):
            signal.connect(self._show_direction)
        self._show_direction()

    def _choose_direction(self, direction: str) -> None:
        self.window.view.set_direction(direction)
        self._show_direction()

    def _show_direction(self) -> None:
        """Check the direction the graph flows in now (an undo may have changed it)."""
        current = self.window.document.graph.direction
        for direction, action in self.directions.items():
            action.setChecked(direction == current)

    def _make_group_actions(self) -> None:
        """Edit ▸ Group, Ungroup, Fold/Unfold Block, Rename Block…, Group Automatically:
        they act on the selection (a selected folded card stands for its block)."""
        w = self.window
        self.group = _action(w, "&Group", lambda: self._on_blocks("group"), keys=["Ctrl+G"],
                             tip="Make the selected layers one block, which can fold into a card")
        self.group.setObjectName("actionGroup")
        self.ungroup = _action(w, "Ungr&oup", lambda: self._on_blocks("ungroup"),
                               keys=["Ctrl+Shift+G"], tip="Dissolve the selected block")
        self.ungroup.setObjectName("actionUngroup")
        self.fold = _action(w, "&Fold/Unfold Block", lambda: self._on_blocks("fold"),
                            keys=["Ctrl+Shift+E"],
                            tip="Fold the selected block into one card, or unfold a folded one")
        self.fold.setObjectName("actionFoldBlock")
        self.rename_block = _action(w, "Re&name Block…", lambda: self._on_blocks("rename"),
                                    tip="Rename the selected block")
        self.rename_block.setObjectName("actionRenameBlock")
        self.auto_group = _action(w, "Group Auto&matically", lambda: self._on_blocks("auto"),
                                  tip="Group repeated structure (residual and inception "
                                  "blocks, and the stages made of them) into blocks")
        self.auto_group.setObjectName("actionGroupAutomatically")

    def _on_blocks(self, what: str) -> None:
        from cnnstudio.ui.canvas import editing
        from cnnstudio.ui.canvas.menus import rename_block

        w = self.window
        scene = w.view.graph_scene
        targets = editing.target_groups(scene)
        hint = ""
        if what == "group":
            done = editing.group_selection(scene) is not None
            hint = "Select the layers to group first"
        elif what == "auto":
            done = bool(editing.auto_group(scene))
            hint = "No repeated blocks found among the ungrouped layers"
        elif not targets:
            done, hint = False, "Select a block (or a layer in one) first"
        elif what == "ungroup":
            w.undo_stack.beginMacro("Ungroup")  # several selected cards: one entry
            done = all([editing.ungroup(scene, g) for g in targets])
            w.undo_stack.endMacro()
        elif what == "fold":
            done = editing.toggle_fold(scene)
        else:
            done = rename_block(w, scene, targets[0])
        if not done and hint:
            w.status.showMessage(hint, 4000)

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
        edit.addSeparator()
        edit.addActions([self.group, self.ungroup, self.fold, self.rename_block,
                         self.auto_group])
        self.view_menu = bar.addMenu("&View")
        self.view_menu.addActions([self.zoom_in, self.zoom_out, self.fit, self.reset_zoom])
        self.view_menu.addSeparator()
        self.view_menu.addActions([self.find, self.find_next, self.find_previous])
        self.view_menu.addSeparator()
        self.view_menu.addAction(self.auto_layout)
        self.direction_menu = self.view_menu.addMenu("Layout &Direction")
        self.direction_menu.addActions(list(self.directions.values()))
        self.direction_menu.aboutToShow.connect(self._show_direction)
        self.view_menu.addAction(self.overview)
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
