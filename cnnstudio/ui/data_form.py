"""The data settings form: source kind and its paths, validation share, normalisation,
augmentation.

Every change is checked with `fill_data` and pushed as one `SetSettingsCommand`, so it can
be undone; a value the schema refuses is shown in red under the form and not applied. A
file source is applied once its paths are given: until then the chosen kind is a draft.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette, QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.data_sources import BUILTINS, SOURCE_KINDS, path_keys
from cnnstudio.core.errors import FormatError
from cnnstudio.project.settings import fill_data
from cnnstudio.ui.commands import SetSettingsCommand
from cnnstudio.ui.document import Document
from cnnstudio.ui.param_editors import ERROR_COLOR

# JSON path → the name the form gives it, for error lines the user can place.
FIELD_NAMES = {"data.val_fraction": "Validation share", "data.normalize": "Normalize",
               "data.augmentation.flip": "Flip", "data.augmentation.crop_padding":
               "Crop padding", "data.augmentation.rotation": "Rotation"}
_INVALID = f"QLineEdit {{ border: 1px solid {ERROR_COLOR}; }}"


def parse_number(text: str) -> Any:
    """Typed text as JSON would hold it: an int, a float, or the text itself (so that
    `fill_data` names the bad value); empty text is None (the default applies)."""
    text = text.strip()
    if not text:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _set_key(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(data.get(key), dict):
            data[key] = {}
        data = data[key]
    if value is None:
        data.pop(path[-1], None)
    else:
        data[path[-1]] = value


def wrap_path(path: str, fits: Callable[[str], bool]) -> list[str]:
    """`path` cut into lines that each `fits`: after a separator where possible, else
    anywhere (a folder name longer than the line), so nothing of it is ever hidden."""
    lines: list[str] = []
    rest = path
    while rest:
        if fits(rest):
            lines.append(rest)
            break
        cut = 1
        while cut < len(rest) and fits(rest[:cut + 1]):
            cut += 1
        separator = max(rest.rfind("/", 0, cut), rest.rfind("\\", 0, cut))
        if separator > 0:
            cut = separator + 1
        lines.append(rest[:cut])
        rest = rest[cut:]
    return lines


class PathLabel(QLabel):
    """A whole path in as many lines as the width needs (never cut, never elided); the
    path is also its tooltip."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.path = ""
        # Takes the width it is given (the lines follow it) instead of asking for the path's.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setForegroundRole(QPalette.ColorRole.PlaceholderText)

    def set_path(self, path: str) -> None:
        self.path = path
        self.setToolTip(path)
        self._reflow()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._reflow()

    def _reflow(self) -> None:
        metrics, room = self.fontMetrics(), max(self.contentsRect().width(), 40)
        text = "\n".join(wrap_path(self.path, lambda t: metrics.horizontalAdvance(t) <= room))
        if text != self.text():
            self.setText(text)


class _PathRow(QWidget):
    """A path field with its Browse… button, and under them the whole path it stands for
    (wrapped, never cut: the field is narrow and may hold a relative path)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(self)
        self.browse = QToolButton(self)  # narrower than a push button: room for the path
        self.browse.setText("Browse…")
        self.browse.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.full = PathLabel(self)
        self.full.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        layout.addLayout(row)
        layout.addWidget(self.full)

    def show_full(self, path: str) -> None:
        """Show (and give as tooltip) the whole resolved path; '' hides it."""
        self.edit.setToolTip(path)
        self.full.set_path(path)
        self.full.setVisible(bool(path))

    def full_path(self) -> str:
        """The whole path shown under the field, as its lines joined ('' when none)."""
        return self.full.text().replace("\n", "") if self.full.isVisibleTo(self) else ""


class DataSettingsForm(QWidget):
    """Edits the project's `data` section through the undo stack."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self._drafts: dict[str, dict[str, str]] = {}  # kind → paths typed so far
        self.kind = QComboBox(self)
        self.kind.setObjectName("dataSourceKind")
        for key, kind in SOURCE_KINDS.items():
            self.kind.addItem(kind.title, key)
        self.builtin = QComboBox(self)
        self.builtin.setObjectName("dataBuiltinName")
        shrink = QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        for combo in (self.kind, self.builtin):  # may shrink with the dock; full text in list
            combo.setSizeAdjustPolicy(shrink)
            combo.setMinimumContentsLength(8)
        for name, builtin in BUILTINS.items():
            self.builtin.addItem(builtin.title, name)
        self.paths = [_PathRow(self), _PathRow(self)]
        for i, row in enumerate(self.paths):
            row.edit.setObjectName(f"dataPath{i + 1}")
            row.edit.editingFinished.connect(lambda i=i: self._path_finished(i))
            row.browse.clicked.connect(lambda _c=False, i=i: self._browse(i))
        self.val_fraction = self._line("dataValFraction", "0.2 (default)",
                                       "Share of the data held out for validation, 0 ≤ f < 1")
        self.normalize = QCheckBox("per channel", self)
        self.normalize.setObjectName("dataNormalize")
        self.flip = QCheckBox("random, horizontal", self)
        self.flip.setObjectName("dataFlip")
        self.crop = self._line("dataCropPadding", "0 (off)",
                               "Pad by this many pixels, then crop randomly back to size")
        self.rotation = self._line("dataRotation", "0 (off)",
                                   "Rotate randomly by up to ± this many degrees (0…180)")
        self.hint = QLabel(self)
        self.hint.setWordWrap(True)
        self.hint.setObjectName("dataHint")
        self.error = QLabel(self)
        self.error.setObjectName("dataError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {ERROR_COLOR};")
        self.error.hide()
        self._layout()
        self.kind.activated.connect(self._kind_chosen)
        self.builtin.activated.connect(self._builtin_chosen)
        self.val_fraction.editingFinished.connect(
            lambda: self._line_finished(self.val_fraction, ("val_fraction",)))
        self.crop.editingFinished.connect(
            lambda: self._line_finished(self.crop, ("augmentation", "crop_padding")))
        self.rotation.editingFinished.connect(
            lambda: self._line_finished(self.rotation, ("augmentation", "rotation")))
        self.normalize.toggled.connect(lambda on: self.set_value(("normalize",), on))
        self.flip.toggled.connect(lambda on: self.set_value(("augmentation", "flip"), on))
        document.settings_changed.connect(self._settings_changed)
        document.project_replaced.connect(self._project_replaced)
        self.refresh()

    def _line(self, name: str, placeholder: str, tip: str) -> QLineEdit:
        line = QLineEdit(self)
        line.setObjectName(name)
        line.setPlaceholderText(placeholder)
        line.setToolTip(tip)
        return line

    def _layout(self) -> None:
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Source", self.kind)
        form.addRow("Dataset", self.builtin)
        form.addRow("Path", self.paths[0])
        form.addRow("Path", self.paths[1])
        form.addRow("", self.hint)
        form.addRow("Validation", self.val_fraction)
        form.addRow("Normalize", self.normalize)
        form.addRow("Flip", self.flip)
        form.addRow("Crop padding", self.crop)
        form.addRow("Rotation", self.rotation)
        self._form = form
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.error)

    # ---- showing the project --------------------------------------------------------------

    def _settings_changed(self, section: str) -> None:
        if section == "data":
            self.refresh()

    def _project_replaced(self) -> None:
        self._drafts.clear()
        self.refresh()

    def refresh(self) -> None:
        """Show the project's `data` section (drops a draft kind and any error)."""
        data = self.doc.project.data if isinstance(self.doc.project.data, dict) else {}
        try:
            filled, problem = fill_data(data), None
        except FormatError as err:
            filled, problem = data, err  # show what is there; say what is wrong
        source = filled.get("source") if isinstance(filled.get("source"), dict) else {}
        kind = source.get("kind", "builtin")
        if kind in SOURCE_KINDS:
            self._drafts[kind] = {k: str(source.get(k, "")) for k in path_keys(kind)}
        aug = filled.get("augmentation") if isinstance(filled.get("augmentation"), dict) else {}
        for widget in (self.kind, self.builtin, self.normalize, self.flip):
            widget.blockSignals(True)
        self.kind.setCurrentIndex(max(0, self.kind.findData(kind)))
        self.builtin.setCurrentIndex(max(0, self.builtin.findData(source.get("name"))))
        self.normalize.setChecked(filled.get("normalize") is not False)
        flip = aug.get("flip", False)
        self.flip.setChecked(bool(flip))
        self.flip.setToolTip(f"flip probability {flip:g}" if type(flip) is float else
                             "Mirror half the training samples left to right")
        for widget in (self.kind, self.builtin, self.normalize, self.flip):
            widget.blockSignals(False)
        # Numbers as the file has them: an absent key shows its default as placeholder.
        raw_aug = data.get("augmentation") if isinstance(data.get("augmentation"), dict) else {}
        for line, value in ((self.val_fraction, data.get("val_fraction")),
                            (self.crop, raw_aug.get("crop_padding")),
                            (self.rotation, raw_aug.get("rotation"))):
            line.setText("" if value is None else str(value))
            line.setStyleSheet("")
        self._show_kind_fields(self.kind.currentData())
        self._show_error(str(problem) if problem else None)

    def _show_kind_fields(self, kind: str) -> None:
        fields, hint = SOURCE_KINDS[kind].paths, SOURCE_KINDS[kind].hint
        self._form.setRowVisible(1, kind == "builtin")
        draft = self._drafts.get(kind, {})
        for i, row in enumerate(self.paths):
            visible = i < len(fields)
            self._form.setRowVisible(2 + i, visible)
            if visible:
                self._form.labelForField(row).setText(fields[i].label)
                self._set_path_text(i, draft.get(fields[i].key, ""))
                row.edit.setPlaceholderText("choose a folder…" if fields[i].browse == "dir"
                                            else "choose a file…")
        self._form.setRowVisible(4, bool(hint))
        self.hint.setText(hint)

    def _show_error(self, text: str | None, field: QLineEdit | None = None) -> None:
        self.error.setText(text or "")
        self.error.setVisible(bool(text))
        if field is not None:
            field.setStyleSheet(_INVALID if text else "")

    def error_text(self) -> str:
        """The inline error shown under the form ('' when none)."""
        return self.error.text() if self.error.isVisibleTo(self) else ""

    # ---- editing --------------------------------------------------------------------------

    def apply(self, change: Callable[[dict[str, Any]], None], label: str,
              field: QLineEdit | None = None) -> bool:
        """Run `change` on a copy of the data section; push it if `fill_data` accepts it,
        else show the error under the form. Returns whether the project now holds it."""
        old = self.doc.project.data if isinstance(self.doc.project.data, dict) else {}
        new = copy.deepcopy(old)
        change(new)
        try:
            fill_data(new)
        except FormatError as err:
            name = FIELD_NAMES.get(err.path)
            self._show_error(f"{name} {err.message}" if name else str(err), field)
            return False
        self._show_error(None, field)
        if new != old:
            self.doc.undo_stack.push(SetSettingsCommand(self.doc, "data", new, label))
        return True

    def set_value(self, path: tuple[str, ...], value: Any) -> bool:
        """Set one key of the data section (None removes it: the default applies)."""
        label = f"Set {FIELD_NAMES.get('data.' + '.'.join(path), path[-1])}"
        field = {("val_fraction",): self.val_fraction, ("augmentation", "crop_padding"):
                 self.crop, ("augmentation", "rotation"): self.rotation}.get(path)
        return self.apply(lambda data: _set_key(data, path, value), label, field)

    def _line_finished(self, line: QLineEdit, path: tuple[str, ...]) -> None:
        self.set_value(path, parse_number(line.text()))

    def _builtin_chosen(self, _index: int) -> None:
        self._apply_source("builtin")

    def _kind_chosen(self, _index: int) -> None:
        kind = self.kind.currentData()
        self._show_kind_fields(kind)
        if not self._apply_source(kind):
            self._show_error(None)
            # A draft: nothing to apply until its paths are given.
            self.paths[0].edit.setFocus()

    def _apply_source(self, kind: str) -> bool:
        """Push `kind` with its drafted paths; False (nothing pushed) while one is missing."""
        draft = self._drafts.setdefault(kind, {})
        keys = path_keys(kind)
        if any(not draft.get(key, "").strip() for key in keys):
            return False
        current = self.doc.project.data.get("source") if isinstance(
            self.doc.project.data, dict) else None
        # Same kind: keep the source's other keys (e.g. a built-in's seed and sample count).
        source = copy.deepcopy(current) if isinstance(current, dict) and str(
            current.get("kind", "")).lower() == kind else {"kind": kind}
        source["kind"] = kind
        if kind == "builtin":
            source["name"] = self.builtin.currentData()
        for key in keys:
            source[key] = draft[key].strip()
        return self.apply(lambda data: data.__setitem__("source", source),
                          f"Data: {SOURCE_KINDS[kind].title}")

    def _set_path_text(self, i: int, text: str) -> None:
        edit = self.paths[i].edit
        edit.setText(text)
        edit.setCursorPosition(len(text))  # the end (the folder's own name) matters most
        self.paths[i].show_full(self._full_path(text))

    def _full_path(self, text: str) -> str:
        """The absolute path a path field stands for, as the loader resolves it ('' if
        empty): relative to the project file's folder, else to the working folder."""
        text = text.strip()
        return str(self.doc.project.resolve_path(text).absolute()) if text else ""

    def _path_finished(self, i: int) -> None:
        kind = self.kind.currentData()
        keys = path_keys(kind)
        if i < len(keys):
            text = self.paths[i].edit.text().strip()
            self._drafts.setdefault(kind, {})[keys[i]] = text
            self.paths[i].show_full(self._full_path(text))
            self._apply_source(kind)

    # ---- file dialogs (tests replace `ask_directory` / `ask_file`) ---------------------

    def ask_directory(self, title: str, start: str) -> str | None:
        """A folder chosen by the user, or None."""
        return QFileDialog.getExistingDirectory(self, title, start) or None

    def ask_file(self, title: str, start: str, filters: str) -> str | None:
        """A file chosen by the user, or None."""
        path, _ = QFileDialog.getOpenFileName(self, title, start, filters)
        return path or None

    def _start_folder(self, text: str) -> str:
        if text.strip():
            return str(self.doc.project.resolve_path(text.strip()))
        path = self.doc.project.path
        return str(Path(path).parent) if path is not None else str(Path.home())

    def store_path(self, chosen: str) -> str:
        """`chosen` as the settings keep it: relative to the project file's folder when it
        lies inside it (the project can move with its data), else absolute."""
        path = Path(chosen)
        if self.doc.project.path is None:
            return str(path)
        base = Path(self.doc.project.path).resolve().parent
        try:
            return path.resolve().relative_to(base).as_posix()
        except ValueError:
            return str(path)

    def _browse(self, i: int) -> None:
        kind = SOURCE_KINDS[self.kind.currentData()]
        if i >= len(kind.paths):
            return
        field = kind.paths[i]
        title = f"{kind.title}: {field.label}"
        start = self._start_folder(self.paths[i].edit.text())
        chosen = (self.ask_directory(title, start) if field.browse == "dir"
                  else self.ask_file(title, start, field.browse))
        if chosen:
            self._set_path_text(i, self.store_path(chosen))
            self._path_finished(i)
