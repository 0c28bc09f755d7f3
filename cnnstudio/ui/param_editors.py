"""One typed editor per layer parameter kind, each with an inline error line.

An editor only turns what the user typed into a Python value (`ParamField.value()`); the
inspector validates the value with `LayerType.resolve` before anything is applied, so a
wrong value is shown under the field and never reaches the graph.
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.params import (
    BOOL,
    CHOICE,
    FLOAT,
    FLOATS,
    INT,
    INTS,
    LIMIT,
    PADDING,
    SHAPE,
    SIZE,
    Param,
)

ERROR_COLOR = "#d83b3b"  # readable on light and dark backgrounds
_INT_MAX = 2**31 - 1  # QSpinBox holds a C int


class _DefaultType:
    """Sentinel: leave the parameter out of the file, so torch's default applies."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _DefaultType()
_NULL_WORDS = {"none", "null", "auto"}
_SEPARATORS = re.compile(r"[,;\s×*]+|(?<=\d)x(?=\d)")


class ParseError(ValueError):
    """What the user typed is not a value of the parameter's kind (a sentence to show)."""


def format_value(value: Any) -> str:
    """A parameter value as the user types it: `3`, `3, 5`, `same`, `0.001`, '' for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join("none" if v is None else format_value(v) for v in value)
    return str(value)


def _number(token: str, kind: str, allow_null: bool) -> Any:
    if allow_null and token.lower() in _NULL_WORDS:
        return None
    try:
        return float(token) if kind in (FLOAT, FLOATS) else int(token)
    except ValueError:
        pass
    what = "a number" if kind in (FLOAT, FLOATS) else "a whole number"
    raise ParseError(f"“{token}” is not {what}")


def parse_text(param: Param, text: str) -> Any:
    """Turn typed text into a value for `param` (or None / DEFAULT for an empty field).

    Accepts `3`, `3, 5`, `3x5`, `[3, 5]`, `same`/`valid` for PADDING, `none` where null is
    allowed. Raises ParseError with a sentence for the user.
    """
    text = text.strip()
    if not text:
        if param.nullable:
            return None
        if param.required:
            raise ParseError("a value is required")
        return DEFAULT
    lowered = text.strip("'\"").lower()
    if param.kind == PADDING and lowered in ("same", "valid"):
        return lowered
    if param.nullable and lowered in _NULL_WORDS:
        return None
    tokens = [t for t in _SEPARATORS.split(text.strip("[]() ")) if t]
    if not tokens:
        raise ParseError("enter a value")
    if param.kind == FLOAT:
        if len(tokens) != 1:
            raise ParseError("enter one number")
        return _number(tokens[0], FLOAT, False)
    if param.kind == INT:
        if len(tokens) != 1:
            raise ParseError("enter one whole number")
        return _number(tokens[0], INT, False)
    values = [_number(t, param.kind, param.kind == SIZE) for t in tokens]
    if param.kind == SHAPE or len(values) > 1:
        return values
    return values[0]


_EXAMPLES = {INTS: "3, or one per dimension: 3, 5", PADDING: "1, or 1, 2, or same, or valid",
             SIZE: "4, or one per dimension: 4, 4 (none keeps one)",
             FLOATS: "2, or one per dimension: 2, 1.5", SHAPE: "channels first: 3, 32, 32",
             FLOAT: "a number, e.g. 0.001 or 1e-5"}


def _hint(param: Param) -> str:
    """Placeholder text: the default (or an example for a required value)."""
    if param.required:
        return "e.g. " + _EXAMPLES.get(param.kind, "")
    return f"{'auto' if param.default is None else format_value(param.default)} (default)"


def _tooltip(param: Param) -> str:
    """The parameter's help, and what can be typed where it is not obvious."""
    example = _EXAMPLES.get(param.kind)
    return f"{param.help}\nType {example}." if example else param.help


class ParamField(QWidget):
    """An editor for one parameter plus the red error line under it.

    `committed` fires when the user finished a change (Enter, focus out, a click).
    """

    committed = Signal(str)  # the parameter name

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.param = param
        self.editor = self._make_editor(param)
        self.editor.setObjectName(f"param_{param.name}")
        self.editor.setToolTip(_tooltip(param))
        self.editor.setStatusTip(param.help)
        self.error_label = QLabel(self)
        self.error_label.setObjectName(f"error_{param.name}")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {ERROR_COLOR};")
        self.error_label.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.editor)
        layout.addWidget(self.error_label)
        self._shown = ""  # the text last shown, so focus-out without a change is no edit

    def _make_editor(self, p: Param) -> QWidget:
        name = p.name
        if p.kind == INT:
            spin = QSpinBox(self)
            low = int(max(p.minimum if p.minimum is not None else -LIMIT, -_INT_MAX + 1))
            high = int(min(p.maximum if p.maximum is not None else LIMIT, _INT_MAX))
            if p.nullable:  # one step below the minimum stands for None
                spin.setSpecialValueText("none")
                low -= 1
            spin.setRange(low, high)
            spin.setKeyboardTracking(False)  # commit when typing is done, not per digit
            spin.setAccelerated(True)
            spin.valueChanged.connect(lambda _v: self.committed.emit(name))
            return spin
        if p.kind == BOOL and not p.nullable:
            check = QCheckBox(self)
            check.toggled.connect(lambda _v: self.committed.emit(name))
            return check
        if p.kind in (BOOL, CHOICE):
            combo = QComboBox(self)
            options = ["true", "false"] if p.kind == BOOL else list(p.choices)
            if p.nullable:
                combo.addItem("auto" if p.kind == BOOL else "none", None)
            for option in options:
                combo.addItem(option, option == "true" if p.kind == BOOL else option)
            combo.activated.connect(lambda _i: self.committed.emit(name))
            return combo
        line = QLineEdit(self)
        line.setPlaceholderText(_hint(p))
        if p.kind == PADDING:
            completer = QCompleter(["same", "valid"], line)
            completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
            line.setCompleter(completer)
        line.editingFinished.connect(lambda: self._line_finished(line))
        return line

    def _line_finished(self, line: QLineEdit) -> None:
        if line.text() != self._shown or not self.error_label.isHidden():
            self.committed.emit(self.param.name)

    # ---- value in and out ----------------------------------------------------------------

    def set_value(self, value: Any, present: bool = True) -> None:
        """Show `value` without emitting `committed`; `present` False: the file leaves the
        parameter out (a line edit then shows the default as its placeholder)."""
        editor = self.editor
        editor.blockSignals(True)
        try:
            if isinstance(editor, QSpinBox):
                # A file may hold any int where the layer sets no bound (Flatten.start_dim
                # = 2**40); a C int cannot, so show the nearest value the field can take.
                number = editor.minimum() if value is None else int(value)
                editor.setValue(min(max(number, editor.minimum()), editor.maximum()))
            elif isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, QComboBox):
                index = editor.findData(value)
                editor.setCurrentIndex(max(index, 0))
            elif isinstance(editor, QLineEdit):
                self._shown = format_value(value) if present else ""
                editor.setText(self._shown)
                editor.setCursorPosition(0)
        finally:
            editor.blockSignals(False)

    def value(self) -> Any:
        """The value the editor shows; DEFAULT for an empty optional field. Raises
        ParseError for text that is not a value."""
        editor = self.editor
        if isinstance(editor, QSpinBox):
            if self.param.nullable and editor.value() == editor.minimum():
                return None
            return editor.value()
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, QComboBox):
            return editor.currentData()
        return parse_text(self.param, editor.text())  # type: ignore[union-attr]

    def set_error(self, message: str | None) -> None:
        """Show `message` under the field (None hides it)."""
        if message:
            self.error_label.setText(message[:1].upper() + message[1:])
            self.error_label.show()
        else:
            self.error_label.clear()
            self.error_label.hide()
        self.editor.setProperty("invalid", bool(message))

    @property
    def error(self) -> str:
        """The error shown under the field, '' if none."""
        return "" if self.error_label.isHidden() else self.error_label.text()

    def accept_shown(self) -> None:
        """The shown text was applied: remember it, so leaving the field is no new edit."""
        if isinstance(self.editor, QLineEdit):
            self._shown = self.editor.text()
