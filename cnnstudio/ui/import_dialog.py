"""File → Import Model…: choose an ONNX file, or a Python file and one of its classes,
with an optional input shape, safetensors weights and project name.

The classes of a Python file are listed by parsing it (`cnnstudio.core.pyclasses`),
never by running it; the dialog says plainly that importing one will run it. Tests drive
the dialog through `set_model_file`, `set_class`, `set_input_shape`, `set_weights`,
`set_name`, `problem()` and `request()`, without showing it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.import_spec import PICKLE_SUFFIXES, parse_input_shape
from cnnstudio.core.pyclasses import module_classes_in_file
from cnnstudio.ui.import_job import ImportRequest
from cnnstudio.ui.training.background import Background

MODEL_FILTER = ("Models (*.onnx *.py);;ONNX models (*.onnx);;Python files (*.py);;"
                "All files (*)")
WEIGHTS_FILTER = "safetensors weights (*.safetensors);;All files (*)"
READING_CLASSES = "Reading the classes…"
IN_PROCESS_BYTES = 32 * 1024  # larger files are parsed in a process of their own
READ_TIMEOUT_S = 120
CODE_WARNING = ("Importing a .py file runs that file's code: the class is created and "
                "traced with torch.fx. Import only code you trust. (An .onnx file is only "
                "read.)")


def read_classes(path: Path) -> list[str]:
    """The nn.Module classes of the .py file at `path` (`module_classes_in_file`), parsed
    in a short-lived process of its own when the file is large: `ast.parse` holds the GIL
    while it works (seconds for a few MiB), which would stop the window's event loop even
    from a worker thread. Raises ValueError (one line). Runs on a worker, never the GUI
    thread."""
    if path.stat().st_size <= IN_PROCESS_BYTES:
        return module_classes_in_file(path)
    with tempfile.TemporaryDirectory(prefix="cnnstudio-classes-") as folder:
        # Started in an empty folder: `-m` puts the working folder first on sys.path.
        try:
            done = subprocess.run(
                [sys.executable, "-m", "cnnstudio.core.pyclasses", str(path.resolve())],
                capture_output=True, text=True, encoding="utf-8", errors="replace",
                stdin=subprocess.DEVNULL, cwd=folder, timeout=READ_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise ValueError(f"reading the classes of {path.name} took over"
                             f" {READ_TIMEOUT_S} s; type the class name") from None
        except OSError as err:
            raise ValueError(f"cannot read the classes of {path.name}: {err}") from None
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except ValueError:
        answer = {}
    if isinstance(answer, dict) and isinstance(answer.get("classes"), list):
        return [str(name) for name in answer["classes"]]
    if isinstance(answer, dict) and "error" in answer:
        raise ValueError(str(answer["error"]))
    raise ValueError(f"cannot read the classes of {path.name} (exit status"
                     f" {done.returncode}); type the class name")


class ImportDialog(QDialog):
    """The import's questions; `request()` is the answer once `problem()` is None."""

    def __init__(self, parent: QWidget | None = None, folder: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("importDialog")
        self.setWindowTitle("Import Model")
        self.setMinimumWidth(560)
        self._folder = folder or str(Path.home())
        self.model_edit = QLineEdit(self)
        self.model_edit.setObjectName("importModelPath")
        self.model_edit.setPlaceholderText("an .onnx file, or a .py file with an nn.Module class")
        self.class_combo = QComboBox(self)
        self.class_combo.setObjectName("importClass")
        self.class_combo.setEditable(True)  # a class the parser missed can be typed
        self.class_combo.setToolTip("The nn.Module class to import, created with no"
                                    " arguments. Listed by reading the file, not running it")
        self.weights_edit = QLineEdit(self)
        self.weights_edit.setObjectName("importWeights")
        self.weights_edit.setPlaceholderText("optional: the class's state_dict as .safetensors")
        self.shape_edit = QLineEdit(self)
        self.shape_edit.setObjectName("importInputShape")
        self.shape_edit.setPlaceholderText("optional: from the model, e.g. 3,32,32 (C,H,W)")
        self.name_edit = QLineEdit(self)
        self.name_edit.setObjectName("importName")
        self.name_edit.setPlaceholderText("the model file's name")
        self.warning = QLabel(CODE_WARNING, self)
        self.warning.setObjectName("importCodeWarning")
        self.warning.setWordWrap(True)
        self.message = QLabel(self)
        self.message.setObjectName("importProblem")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b3261e;")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.import_button = self.buttons.addButton(
            "Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setObjectName("importButton")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._lay_out()
        self.model_edit.editingFinished.connect(self._model_changed)
        self.model_edit.textChanged.connect(lambda _text: self._check())
        for edit in (self.weights_edit, self.shape_edit):
            edit.textChanged.connect(lambda _text: self._check())
        self.class_combo.currentTextChanged.connect(lambda _text: self._check())
        self._listed_for: str | None = None  # the .py file the class list was read from
        self._list_problem: str | None = None  # the file cannot be parsed: no import
        self._list_note: str | None = None  # no class found (one may still be typed)
        self._reading = False  # the class list is being read on the worker
        # Parsing a large file takes seconds: never on the GUI thread.
        self._reader = Background(self, needs_torch=False)
        self._model_changed()

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Model file:", self._with_browse(self.model_edit, self._browse_model,
                                                     "importBrowseModel"))
        form.addRow("Class:", self.class_combo)
        form.addRow("Weights:", self._with_browse(self.weights_edit, self._browse_weights,
                                                  "importBrowseWeights"))
        form.addRow("Input shape:", self.shape_edit)
        form.addRow("Project name:", self.name_edit)
        column = QVBoxLayout(self)
        column.addLayout(form)
        column.addWidget(self.warning)
        column.addWidget(self.message)
        column.addStretch(1)
        column.addWidget(self.buttons)

    def _with_browse(self, edit: QLineEdit, slot, name: str) -> QWidget:  # noqa: ANN001
        row = QWidget(self)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        button = QPushButton("Browse…", row)
        button.setObjectName(name)
        button.clicked.connect(slot)
        layout.addWidget(button)
        return row

    # ---- the test surface ---------------------------------------------------------------

    def set_model_file(self, path: str | Path) -> None:
        """Choose the model file (lists its classes when it is a .py file)."""
        self.model_edit.setText(str(path))
        self._model_changed()

    def classes(self) -> list[str]:
        """The classes offered for the chosen .py file (read, never run)."""
        return [self.class_combo.itemText(i) for i in range(self.class_combo.count())]

    def set_class(self, name: str) -> None:
        self.class_combo.setCurrentText(name)

    def set_input_shape(self, text: str) -> None:
        self.shape_edit.setText(text)

    def set_weights(self, path: str | Path) -> None:
        self.weights_edit.setText(str(path))

    def set_name(self, text: str) -> None:
        self.name_edit.setText(text)

    def problem(self) -> str | None:
        """Why Import cannot go ahead yet (one line), or None."""
        text = self.model_edit.text().strip()
        if not text:
            return "Choose an .onnx file or a .py file"
        path = Path(text).expanduser()
        suffix = path.suffix.lower()
        if suffix in PICKLE_SUFFIXES:
            return (f"{path.name} is a pickle-based PyTorch file, which is never read (it can"
                    " run any code): export the model to ONNX, or choose its .py file and a"
                    " safetensors state_dict")
        if suffix not in (".onnx", ".py"):
            return "Choose an .onnx file or a .py file"
        if not path.is_file():
            return f"{path.name}: no such file"
        if suffix == ".py":
            if self._reading and not self.class_combo.currentText().strip():
                return READING_CLASSES
            if self._list_problem:
                return self._list_problem
            if not self.class_combo.currentText().strip().isidentifier():
                return self._list_note or "Choose the class to import"
        try:
            parse_input_shape(self.shape_edit.text())
        except ValueError as err:
            return str(err)
        weights = self.weights_edit.text().strip()
        if weights and suffix == ".onnx":
            return "An .onnx file carries its own weights; leave Weights empty"
        if weights and not Path(weights).expanduser().is_file():
            return f"{Path(weights).name}: no such weights file"
        return None

    def request(self) -> ImportRequest:
        """The import asked for; raises ValueError (one line) while `problem()` says one."""
        problem = self.problem()
        if problem is not None:
            raise ValueError(problem)
        path = str(Path(self.model_edit.text().strip()).expanduser())
        is_python = path.lower().endswith(".py")
        model = f"{path}:{self.class_combo.currentText().strip()}" if is_python else path
        weights = self.weights_edit.text().strip()
        return ImportRequest(model=model,
                             input_shape=parse_input_shape(self.shape_edit.text()),
                             weights=str(Path(weights).expanduser()) if weights else None,
                             name=self.name_edit.text().strip() or None)

    # ---- reacting ----------------------------------------------------------------------

    def _model_changed(self) -> None:
        text = self.model_edit.text().strip()
        path = Path(text).expanduser() if text else None
        is_python = path is not None and path.suffix.lower() == ".py"
        if is_python and str(path) != self._listed_for:
            self._list_classes(path)
        elif not is_python:
            self._listed_for = self._list_problem = self._list_note = None
            self.class_combo.clear()
        self.class_combo.setEnabled(is_python)
        self.weights_edit.setEnabled(is_python or path is None)
        font = self.warning.font()
        font.setBold(is_python)  # the warning is about this very choice now
        self.warning.setFont(font)
        if path is not None and not self.name_edit.text():
            self.name_edit.setPlaceholderText(path.stem or "the model file's name")
        self._check()

    def wait_for_classes(self, timeout_ms: int = 60_000) -> bool:
        """Wait until the class list being read has arrived (tests); True when it has."""
        self._reader.wait(timeout_ms)
        QCoreApplication.sendPostedEvents(self._reader)  # deliver the queued result
        return not self._reading

    def _list_classes(self, path: Path) -> None:
        """Start reading the class list from the file's source (parsed with ast, not run)
        on a worker thread; `_classes_read` fills the chooser when it arrives."""
        self._listed_for = str(path)
        self.class_combo.clear()
        self._list_problem = self._list_note = None
        if not path.is_file():
            self._reading = False
            self._reader.forget()  # a list still being read is for another file
            return
        self._reading = True
        self._reader.submit("classes", lambda: read_classes(path),
                            lambda found: self._classes_read(path, found),
                            lambda err: self._classes_failed(path, err))

    def _classes_failed(self, path: Path, err: BaseException) -> None:
        if str(path) != self._listed_for:
            return  # the user has chosen another file meanwhile
        self._reading = False
        self._list_problem = (str(err) if isinstance(err, ValueError)
                              else f"cannot read {path.name}: {err}")
        self._check()

    def _classes_read(self, path: Path, found: list[str]) -> None:
        if str(path) != self._listed_for:
            return  # the user has chosen another file meanwhile
        self._reading = False
        typed = self.class_combo.currentText().strip()
        self.class_combo.addItems(found)
        if typed:  # typed while the list was read: the user's choice stays
            self.class_combo.setCurrentText(typed)
            self._check()
            return
        # Files define their building blocks first and the network last, as a rule.
        self.class_combo.setCurrentIndex(len(found) - 1)
        if not found:
            self._list_note = (f"{path.name} defines no class deriving from nn.Module"
                               " (type the class name if it does)")
        self._check()

    def _check(self) -> None:
        problem = self.problem()
        self.message.setText(problem or "")
        self.import_button.setEnabled(problem is None)

    def accept(self) -> None:
        if self.problem() is None:
            super().accept()

    def _browse_model(self) -> None:
        start = self.model_edit.text().strip() or self._folder
        path, _ = QFileDialog.getOpenFileName(self, "Import Model", start, MODEL_FILTER)
        if path:
            self.set_model_file(path)

    def _browse_weights(self) -> None:
        start = self.weights_edit.text().strip() or str(
            Path(self.model_edit.text().strip()).parent if self.model_edit.text().strip()
            else self._folder)
        path, _ = QFileDialog.getOpenFileName(self, "Weights for the class", start,
                                              WEIGHTS_FILTER)
        if path:
            self.set_weights(path)


def ask_import(parent: QWidget, folder: str) -> ImportRequest | None:
    """Show the dialog (modal); the request, or None when cancelled."""
    dialog = ImportDialog(parent, folder)
    try:
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.request()
    finally:
        dialog.deleteLater()
