"""The main window: canvas in the middle, palette, inspector, summary and problems around.

Everything the user changes goes through the Document's undo stack; the window only
replaces whole projects (new, open, recover), which clears the stack. Questions to the
user go through small methods (`ask_unsaved_changes`, `ask_open_path`, `ask_save_path`,
`ask_save_without_weights`, `ask_template`, `show_error`) so tests can answer them without
a modal dialog; where nobody can answer (`confirm_unsaved` off: offscreen), the questions
about losing something are not asked and the action goes ahead.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QUndoStack
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMessageBox, QWidget

from cnnstudio.core.errors import GraphError
from cnnstudio.project import (
    Project,
    ProjectError,
    read_project,
    rebase_data_paths,
    write_project,
)
from cnnstudio.ui import autosave
from cnnstudio.ui.actions import WindowActions
from cnnstudio.ui.canvas import GraphView
from cnnstudio.ui.commands import SetSettingsCommand
from cnnstudio.ui.data_view import install_data_view
from cnnstudio.ui.document import Document
from cnnstudio.ui.evaluation_view import install_evaluation_ui
from cnnstudio.ui.explain import install_explain_ui
from cnnstudio.ui.export_menu import ExportMenu
from cnnstudio.ui.help import HelpMenu
from cnnstudio.ui.icons import icon
from cnnstudio.ui.import_menu import install_import_menu
from cnnstudio.ui.inspector import Inspector
from cnnstudio.ui.opening import ProjectLoader
from cnnstudio.ui.palette import PalettePanel, fits_after_anchor, insert_entry
from cnnstudio.ui.problems import ProblemsList
from cnnstudio.ui.settings import add_recent_file, app_settings, recent_files
from cnnstudio.ui.summary_table import ModelStatusBar, SummaryPanel
from cnnstudio.ui.template_dialog import BLANK, blank_project, choose_template, template_project
from cnnstudio.ui.training import install_training_ui

APP_TITLE = "CNN Studio"
PROJECT_FILTER = "CNN Studio projects (*.cnnproj *.json);;All files (*)"
PROJECT_SUFFIXES = (".cnnproj", ".json")
SAVE, DISCARD, CANCEL = "save", "discard", "cancel"
LEFT, RIGHT, BOTTOM = (Qt.DockWidgetArea.LeftDockWidgetArea,
                       Qt.DockWidgetArea.RightDockWidgetArea,
                       Qt.DockWidgetArea.BottomDockWidgetArea)


class MainWindow(QMainWindow):
    """The CNN Studio window. Public surface (stable; end-to-end tests rely on it): `open_project(path)`,
    `load_project(path)` (the same, read on a worker), `save_project(path)`, `project`,
    `undo_stack`; plus `document` and `view`.

    Plug-ins (data view, training, export, help) extend it through `actions_` (its menus:
    `file_menu`, `view_menu`, `panels_menu`…), `add_dock` and `show_error`."""

    project_loaded = Signal(bool)  # a `load_project` ended: True when the project opened

    def __init__(self, project: Project | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowIcon(icon("cnnstudio"))
        self.setDockNestingEnabled(True)
        self.setAcceptDrops(True)  # project files dropped anywhere on the window open
        # Nobody can answer a dialog on an offscreen platform; asking would hang forever.
        self.confirm_unsaved = QGuiApplication.platformName() not in ("offscreen", "minimal")
        self.last_error: str | None = None
        self._document = Document(project or blank_project(), self)
        self.view = GraphView(self._document, self)
        self.setCentralWidget(self.view)
        self.palette_panel = PalettePanel(self)
        self.palette_tree = self.palette_panel.tree
        self.palette_tree.fits = lambda name: fits_after_anchor(self._document, name)
        self.inspector = Inspector(self._document, self)
        self.summary_panel = SummaryPanel(self._document, self)
        self.problems = ProblemsList(self._document, self)
        self.actions_ = WindowActions(self)  # menus first: add_dock lists docks in them
        self.palette_dock = self.add_dock("paletteDock", "Layers", self.palette_panel, LEFT)
        self.inspector_dock = self.add_dock("inspectorDock", "Inspector", self.inspector,
                                            RIGHT)
        self.summary_dock = self.add_dock("summaryDock", "Model Summary", self.summary_panel,
                                          BOTTOM)
        self.problems_dock = self.add_dock("problemsDock", "Problems", self.problems, BOTTOM,
                                           beside=self.summary_dock)
        self._arrange_docks()
        self.data_view, self.data_dock = install_data_view(self)  # tabbed with the summary
        self.status = ModelStatusBar(self._document, self)
        self.setStatusBar(self.status)
        self.status.problems_clicked.connect(self._show_problems)
        self.autosaver = autosave.Autosaver(self._document, parent=self)
        self.autosaver.failed.connect(self._autosave_failed)
        self.loader = ProjectLoader(self)  # `load_project`'s reading, on a worker thread
        self.open_busy = self.loader.busy
        self.training = install_training_ui(self)  # Training docks, menu, image drops
        self.explain = install_explain_ui(self)  # the Explain dock, beside Training
        self.evaluation = install_evaluation_ui(self)  # the Evaluate dock, beside Training
        self.export_menu = ExportMenu(self)  # File → Export ▸, right after Save As
        self.importer = install_import_menu(self)  # File → Import Model…, after Open Recent
        self.actions_.add_training_buttons(self.training.controls)  # Train/Stop in the toolbar
        self.help = HelpMenu(self)  # last: Help ends the menu bar
        self._connect()
        self._restore_settings()
        self._update_title()

    # ---- layout ---------------------------------------------------------------------------

    def add_dock(self, name: str, title: str, widget: QWidget, area: Qt.DockWidgetArea,
                 beside: QDockWidget | None = None) -> QDockWidget:
        """A dock (objectName `name`: the saved layout's key) showing `widget` in `area`,
        listed in View ▸ Panels; with `beside`, tabbed behind it (`beside` stays in front)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        if beside is not None:
            self.tabifyDockWidget(beside, dock)
            beside.raise_()
        self.actions_.panels_menu.addAction(dock.toggleViewAction())
        return dock

    def _arrange_docks(self) -> None:
        # Side panels run the full height; the bottom panels sit under the canvas only.
        self.setCorner(Qt.Corner.BottomLeftCorner, LEFT)
        self.setCorner(Qt.Corner.BottomRightCorner, RIGHT)
        self.resize(1280, 800)
        self.resizeDocks([self.palette_dock, self.inspector_dock], [210, 340],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.summary_dock], [230], Qt.Orientation.Vertical)

    def _connect(self) -> None:
        doc = self._document
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        doc.project_replaced.connect(self._update_title)
        self.palette_tree.entry_activated.connect(self._insert_entry)
        self.problems.node_activated.connect(self.show_node)
        self.problems.counts_changed.connect(self._problem_counts)
        self.summary_panel.table.node_activated.connect(self.show_node)
        self.summary_panel.table.group_activated.connect(self.show_group)
        self.view.message.connect(self._show_message)
        self.view.node_activated.connect(self._on_node_double_clicked)

    def _restore_settings(self) -> None:
        settings = app_settings()
        geometry, state = settings.value("window/geometry"), settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def _save_settings(self) -> None:
        settings = app_settings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.sync()

    # ---- public surface -------------------------------------------------------------------

    @property
    def document(self) -> Document:
        """The open document: project, graph, inference, selection, undo stack."""
        return self._document

    @property
    def project(self) -> Project:
        """The project being edited (its `.graph` is the network)."""
        return self._document.project

    @property
    def undo_stack(self) -> QUndoStack:
        """The one undo stack every edit goes through."""
        return self._document.undo_stack

    def open_project(self, path: str | Path) -> bool:
        """Open the project at `path` (no question asked about unsaved changes). On failure
        the error is shown with `show_error`, the open project stays, and False is returned.
        The file is read on this thread: File → Open, recent files, drops and the command
        line use `load_project`, which keeps the window answering."""
        try:
            project = read_project(path)
        except ProjectError as err:
            self.show_error(str(err))
            return False
        self.set_project(project)
        add_recent_file(path)
        self.status.showMessage(f"Opened {Path(path).name}", 4000)
        return True

    def load_project(self, path: str | Path) -> None:
        """Open `path` as `open_project` does, reading and checking the file (tens of MB of
        weights: 0.1 s and more) on a worker thread, with a busy bar and Cancel meanwhile;
        `project_loaded(ok)` follows. Replacing the project meanwhile (New, another open)
        drops this one."""
        self.loader.load(Path(path))

    def save_project(self, path: str | Path | None = None) -> bool:
        """Save to `path`, or where the project came from (asking for a path when it has
        none). `.json` writes the bare project.json (asking first when that leaves trained
        weights out). Relative data paths are rewritten for the new folder. Returns False
        on failure or cancel (the project is then unchanged)."""
        target = Path(path) if path else self.project.path
        if target is None:
            chosen = self.ask_save_path()
            if not chosen:
                return False
            target = Path(chosen)
        if target.suffix.lower() not in PROJECT_SUFFIXES:
            target = target.with_name(target.name + ".cnnproj")
        project = self.project
        left_out = target.suffix.lower() == ".json" and (project.weights is not None
                                                         or bool(project.attachments))
        if left_out and self.confirm_unsaved and not self.ask_save_without_weights(target):
            return False
        old_dir = project.path.parent if project.path is not None else None  # None: cwd
        data = rebase_data_paths(project.data, old_dir, target.parent)
        name = target.stem if project.name == "Untitled" else project.name
        try:
            write_project(replace(project, name=name, data=data), target)
        except ProjectError as err:
            self.show_error(str(err))
            return False
        project.name, project.path = name, target
        self._rebase_history(old_dir, target.parent)  # even when today's source is built in
        if data != project.data:
            project.data = data
            self._document.settings_changed.emit("data")  # the Data form shows the new text
        self.autosaver.discard()
        if left_out:
            # Memory still holds the weights the file lacks: stay modified, so closing asks
            # (and autosave keeps them) instead of dropping them without a word.
            self.undo_stack.resetClean()
        else:
            self.undo_stack.setClean()
        add_recent_file(target)
        self._update_title()
        self.status.showMessage(f"Saved {target.name} without the trained weights" if left_out
                                else f"Saved {target.name}", 6000 if left_out else 4000)
        return True

    def _rebase_history(self, old_dir: Path | None, new_dir: Path) -> None:
        """The data sections that undo and redo put back must name the same files from the
        project's new folder as the project's own section does."""
        stack = self.undo_stack
        pending = [stack.command(i) for i in range(stack.count())]
        while pending:  # macros hold their commands as children
            command = pending.pop()
            pending.extend(command.child(i) for i in range(command.childCount()))
            if isinstance(command, SetSettingsCommand) and command.section == "data":
                command.rebase(lambda data: rebase_data_paths(data, old_dir, new_dir))

    def set_project(self, project: Project, modified: bool = False) -> None:
        """Replace the open project (not undoable: the history starts afresh); a project
        still being read by `load_project` is dropped."""
        if self.loader.drop():
            self.project_loaded.emit(False)
        self.autosaver.discard()
        self._document.set_project(project)
        if modified:
            self.undo_stack.resetClean()
        self._update_title()

    def new_project(self, template: str | None = BLANK) -> None:
        """Start a new, unsaved project from template `template` (BLANK/None: an Input)."""
        self.set_project(template_project(template) if template else blank_project())

    def recover(self, path: str | Path) -> bool:
        """Open a recovery file as unsaved work of the project it belongs to; the recovery
        file is kept until that work is saved or discarded."""
        try:
            project = autosave.read_recovery(path)
        except ProjectError as err:
            self.show_error(str(err))
            return False
        self.set_project(project, modified=True)
        self.autosaver.save_now()  # takes the recovered work over under this session
        if Path(path) != self.autosaver.target:
            autosave.discard_recovery(path)
        return True

    def recent_files(self) -> list[str]:
        """Recently opened or saved projects, newest first."""
        return recent_files()

    def show_node(self, node_id: str) -> None:
        """Select `node_id` and scroll the canvas to it."""
        if node_id in self._document.graph:
            self._document.set_selection([node_id])
            self.view.center_on(node_id)

    def show_group(self, group_id: str) -> None:
        """Scroll the canvas to a block (its card, its frame, or the folded block holding
        it); the summary has selected its nodes already."""
        scene, groups = self.view.graph_scene, self._document.graph.groups
        if group_id not in groups:
            return
        holders = [g for g in groups.ancestors(group_id) if groups.get(g).collapsed]
        shown = holders[0] if holders else group_id
        item = scene.group_item_for(shown) or scene.frame_for(shown)
        if item is not None:
            self.view.center_on_point(item.sceneBoundingRect().center())

    # ---- questions (tests replace these) ---------------------------------------------------

    def show_error(self, text: str) -> None:
        """Tell the user something failed: a window-modal box that does not block."""
        self.last_error = text
        box = QMessageBox(QMessageBox.Icon.Warning, APP_TITLE, text,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()

    def ask_unsaved_changes(self) -> str:
        """Ask Save / Discard / Cancel about unsaved changes; returns SAVE, DISCARD, CANCEL."""
        box = QMessageBox(QMessageBox.Icon.Question, APP_TITLE,
                          f"Save the changes to “{self._display_name()}”?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("Your changes will be lost if you don't save them.")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: SAVE,
                QMessageBox.StandardButton.Discard: DISCARD}.get(
                    QMessageBox.StandardButton(answer), CANCEL)

    def ask_open_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Open Project", self._folder(),
                                              PROJECT_FILTER)
        return path or None

    def ask_save_without_weights(self, target: Path) -> bool:
        """Ask whether to save to a bare `.json` file, which cannot hold trained weights."""
        box = QMessageBox(QMessageBox.Icon.Question, APP_TITLE,
                          f"Save “{target.name}” without the trained weights?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setInformativeText("A .json project holds the network and settings only; the "
                               "weights and any paused run's state are left out. Save as "
                               ".cnnproj to keep them.")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        return box.exec() == QMessageBox.StandardButton.Yes

    def ask_save_path(self) -> str | None:
        start = str(Path(self._folder()) / f"{self._display_name(stem=True)}.cnnproj")
        path, _ = QFileDialog.getSaveFileName(self, "Save Project", start, PROJECT_FILTER)
        return path or None

    def ask_template(self) -> str | None:
        """A template name, BLANK for a blank canvas, None if cancelled."""
        return choose_template(self)

    def maybe_save(self) -> bool:
        """True when it is fine to drop the open project (saved, or the user said so)."""
        if not self.training.release():  # a running training stops; its result is kept
            return False
        if self.undo_stack.isClean() or not self.confirm_unsaved:
            return True
        answer = self.ask_unsaved_changes()
        if answer == SAVE:
            return self.save_project()
        return answer == DISCARD

    # ---- actions -------------------------------------------------------------------------

    def new_from_template(self) -> None:
        if not self.maybe_save():
            return
        template = self.ask_template()
        if template is not None:
            self.new_project(template)

    def open_dialog(self) -> None:
        if self.maybe_save():
            path = self.ask_open_path()
            if path:
                self.load_project(path)

    def open_with_prompt(self, path: str | Path) -> bool:
        """Open `path` after asking about unsaved changes (recent files, drops), reading
        it with `load_project`; False when the user kept the open project."""
        if not self.maybe_save():
            return False
        self.load_project(path)
        return True

    def save_as_dialog(self) -> bool:
        path = self.ask_save_path()
        return bool(path) and self.save_project(path)

    def cut_selection(self) -> None:
        self.view.copy_selection()
        self.view.delete_selection()

    def _insert_entry(self, kind: str, name: str) -> None:
        try:
            new_ids = insert_entry(self._document, kind, name)
        except (ValueError, KeyError, GraphError) as err:  # say it, don't crash
            self.status.showMessage(f"Cannot add {name}: {err}", 6000)
            return
        if new_ids:
            self.show_node(new_ids[-1])

    def _on_clean_changed(self, clean: bool) -> None:
        self.setWindowModified(not clean)

    def _show_message(self, text: str) -> None:
        self.status.showMessage(text, 6000)

    def _autosave_failed(self, reason: str) -> None:
        self.status.showMessage(f"Autosave failed: {reason}", 8000)

    def _on_node_double_clicked(self, _node_id: str) -> None:
        self.inspector_dock.show()
        self.inspector_dock.raise_()

    def _show_problems(self) -> None:
        self.problems_dock.show()
        self.problems_dock.raise_()

    def _problem_counts(self, errors: int, warnings: int) -> None:
        total = errors + warnings
        self.problems_dock.setWindowTitle(f"Problems ({total})" if total else "Problems")

    # ---- title, closing, drops ------------------------------------------------------------

    def _display_name(self, stem: bool = False) -> str:
        path = self.project.path
        if path is not None:
            return path.stem if stem else path.name
        return self.project.name or "Untitled"

    def _folder(self) -> str:
        path = self.project.path
        return str(path.parent) if path is not None else str(Path.home())

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self._display_name()}[*] — {APP_TITLE}")
        self.setWindowModified(not self.undo_stack.isClean())

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.loader.drop()  # a project still being read is not opened into a closed window
        self.explain.release()  # Explain jobs are cancelled; torch must not run at exit
        self.evaluation.release()  # a running evaluation is waited for (bounded)
        self.export_menu.release()  # a running export is cancelled, its temp file removed
        self.importer.release()  # a running import's child process is ended
        self.autosaver.discard()
        self.autosaver.timer.stop()
        self._save_settings()
        event.accept()

    @staticmethod
    def _project_urls(event: QDragEnterEvent | QDropEvent) -> list[str]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()
                and Path(u.toLocalFile()).suffix.lower() in PROJECT_SUFFIXES]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._project_urls(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: ANN001 (QDragMoveEvent)
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self._project_urls(event)
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        # After the drop returns: the drag source must not wait on a dialog.
        QTimer.singleShot(0, lambda: self.open_with_prompt(paths[0]))
