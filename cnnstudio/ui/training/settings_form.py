"""The training settings form, bound to the project's `training` and `data.augmentation`.

Every change is validated with `fill_training`/`fill_data` first, then pushed as one
undoable `SetSettingsCommand`; a value the schema refuses is shown in red and the form
goes back to what the project holds. The form stores only what the user set (defaults
are filled when training reads the settings), so saving adds nothing the user did not
write. It re-reads the project after undo/redo and when another project is opened.

One row is not a project setting: the number of processes (or GPUs) a run trains in. It
describes this machine rather than the project (and the project format has no field for
it), so it is a session option of the window (`RunOptions`), 1 by default.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.errors import FormatError
from cnnstudio.project.settings import (
    CHECKPOINTS,
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    canonical_data,
    canonical_training,
    fill_data,
    fill_training,
)
from cnnstudio.ui.commands import SetSettingsCommand
from cnnstudio.ui.document import Document
from cnnstudio.ui.training.distributed_worker import process_kind, run_options

Path = tuple[str, ...]


class NumberEdit(QLineEdit):
    """A float typed as text (accepts 1e-3); emits `value_edited` when editing ends."""

    value_edited = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editingFinished.connect(self._finished)
        self._value: float | None = None

    def set_value(self, value: float | None) -> None:
        self._value = value
        self.setText("" if value is None else f"{value:g}")

    def _finished(self) -> None:
        text = self.text().strip()
        try:
            value = float(text)
        except ValueError:
            self.value_edited.emit(text)  # let validation word the problem
            return
        if value != self._value:
            self.value_edited.emit(value)


def _get(data: dict[str, Any], path: Path) -> Any:
    """The value at `path`, None when it is not there."""
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _set(data: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(data.get(key), dict):
            data[key] = {}
        data = data[key]
    data[path[-1]] = value


class TrainingSettingsForm(QScrollArea):
    """The form; `fields` maps (section, *path) to its editor for tests."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingSettings")
        self.setWidgetResizable(True)
        self.doc = document
        body = QWidget(self)
        outer = QVBoxLayout(body)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        outer.addLayout(self.form)
        self.error = QLabel(body)
        self.error.setObjectName("settingsError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b;")
        outer.addWidget(self.error)
        outer.addStretch(1)
        self.setWidget(body)
        self.fields: dict[Path, QWidget] = {}
        self.lr_finder: Any = None  # the learning-rate finder dialog, made when first opened
        self._loaders: list[Callable[[dict[str, Any], dict[str, Any]], None]] = []
        self._build()
        document.settings_changed.connect(lambda _section: self.reload())
        document.project_replaced.connect(self.reload)
        self.reload()

    # ---- building --------------------------------------------------------------------

    def _heading(self, text: str) -> None:
        label = QLabel(f"<b>{text}</b>", self)
        self.form.addRow(label)

    def _add(self, label: str, section: str, path: Path, widget: QWidget, tip: str,
             to_widget: Callable[[Any], None], signal: Any,
             convert: Callable[[Any], Any] = lambda v: v, row: QWidget | None = None) -> None:
        widget.setToolTip(tip)
        self.form.addRow(label, row or widget)  # `row`: the editor with widgets beside it
        self.fields[(section, *path)] = widget
        for sig in signal if isinstance(signal, tuple) else (signal,):
            sig.connect(lambda *args: self.edit(section, path,
                                                convert(args[0] if args else None), label))
        self._loaders.append(lambda t, d: to_widget(_get(t if section == "training" else d,
                                                         path)))

    def _spin(self, label: str, section: str, path: Path, low: int, high: int, tip: str, *,
              none_text: str | None = None) -> None:
        box = QSpinBox(self)
        box.setRange(low, high)
        box.setKeyboardTracking(False)  # one edit per finished number, not per digit
        if none_text:
            box.setSpecialValueText(none_text)  # the minimum stands for "off"/null

        def show(value: Any) -> None:
            box.blockSignals(True)
            box.setValue(low if value is None else int(value))
            box.blockSignals(False)

        convert = (lambda v: None if v == low else v) if none_text else (lambda v: v)
        self._add(label, section, path, box, tip, show, box.valueChanged, convert)

    def _number(self, label: str, path: Path, tip: str,
                beside: QWidget | None = None) -> None:
        edit = NumberEdit(self)
        row = None
        if beside is not None:
            row = QWidget(self)
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            line.addWidget(edit, 1)
            line.addWidget(beside)
        self._add(label, "training", path, edit, tip,
                  lambda v: edit.set_value(None if v is None else float(v)),
                  edit.value_edited, row=row)

    def _choice(self, label: str, path: Path, choices: tuple[str, ...], tip: str, *,
                editable: bool = False) -> None:
        combo = QComboBox(self)
        combo.addItems(list(choices))
        combo.setEditable(editable)

        def show(value: Any) -> None:
            combo.blockSignals(True)
            combo.setCurrentText(str(value))
            combo.blockSignals(False)

        signal = (combo.currentTextChanged if not editable
                  else (combo.lineEdit().editingFinished, combo.activated))
        convert = (lambda _v: combo.currentText()) if editable else (lambda v: v)
        self._add(label, "training", path, combo, tip, show, signal, convert)

    def _check(self, label: str, section: str, path: Path, tip: str) -> None:
        box = QCheckBox(self)

        def show(value: Any) -> None:
            box.blockSignals(True)
            box.setChecked(bool(value))
            box.blockSignals(False)

        self._add(label, section, path, box, tip, show, box.toggled)

    def _build(self) -> None:
        self._heading("Run")
        self._spin("Epochs", "training", ("epochs",), 1, 100_000, "Passes over the training data")
        self._spin("Batch size", "training", ("batch_size",), 1, 65_536, "Samples per step")
        self._spin("Batches per epoch", "training", ("max_batches_per_epoch",), 0, 10_000_000,
                   "At most this many batches per epoch, for quick tries", none_text="all")
        self._choice("Device", ("device",), ("auto", "cpu", "cuda", "mps"),
                     "auto: CUDA, then MPS, then CPU; or cuda:N", editable=True)
        self._processes_row()
        self._check("Mixed precision", "training", ("amp",), "float16 on CUDA (ignored on CPU)")
        self._spin("Seed", "training", ("seed",), 0, 2**31 - 1, "Same seed, same run")
        self._choice("Keep weights", ("checkpoint",), CHECKPOINTS,
                     "best: of the epoch with the lowest validation loss; last: the last")
        self._spin("Early stopping", "training", ("early_stopping", "patience"), 0, 100_000,
                   "Stop after this many epochs without a better validation loss",
                   none_text="off")
        self._heading("Optimizer")
        self._choice("Optimizer", ("optimizer", "name"), OPTIMIZERS, "How weights are updated")
        self._number("Learning rate", ("optimizer", "lr"), "Step size, e.g. 0.001",
                     beside=self._lr_find_button())
        self._number("Weight decay", ("optimizer", "weight_decay"), "L2 penalty on weights")
        self._number("Momentum", ("optimizer", "momentum"), "SGD/RMSprop momentum, 0 ≤ m < 1")
        self._check("Nesterov", "training", ("optimizer", "nesterov"), "Nesterov momentum (SGD)")
        self._heading("Schedule")
        self._choice("Schedule", ("schedule", "name"), SCHEDULES, "How the learning rate moves")
        self._spin("Step every", "training", ("schedule", "step_size"), 1, 100_000, "Epochs")
        self._number("Gamma", ("schedule", "gamma"), "Factor at each step")
        self._number("Max lr", ("schedule", "max_lr"), "One-cycle peak learning rate")
        self._spin("Patience", "training", ("schedule", "patience"), 0, 100_000,
                   "Epochs without improvement before the lr drops")
        self._number("Factor", ("schedule", "factor"), "Plateau factor, 0 < f < 1")
        self._heading("Loss")
        self._choice("Loss", ("loss", "name"), LOSSES, "auto: cross-entropy, or BCE for masks")
        self._number("Label smoothing", ("loss", "label_smoothing"), "0 ≤ s < 1")
        self._heading("Augmentation")
        self._check("Flip", "data", ("augmentation", "flip"), "Mirror half the training images")
        self._spin("Crop padding", "data", ("augmentation", "crop_padding"), 0, 256,
                   "Pad, then crop back to size at a random place")
        rotation = QDoubleSpinBox(self)
        rotation.setRange(0, 180)
        rotation.setSuffix("°")
        rotation.setKeyboardTracking(False)

        def show_rotation(value: Any) -> None:
            rotation.blockSignals(True)
            rotation.setValue(float(value or 0))
            rotation.blockSignals(False)

        self._add("Rotation", "data", ("augmentation", "rotation"), rotation,
                  "Random rotation up to ± this many degrees", show_rotation,
                  rotation.valueChanged, lambda v: int(v) if float(v).is_integer() else v)

    def _lr_find_button(self) -> QPushButton:
        button = QPushButton("Find…", self)
        button.setObjectName("lrFindButton")
        button.setToolTip("Find a learning rate: a short range test on a copy of the model")
        button.clicked.connect(self.open_lr_finder)
        return button

    def open_lr_finder(self) -> None:
        """Open the learning-rate finder and start a range test off the GUI thread."""
        from cnnstudio.ui.training.lr_finder import LRFinderDialog

        if self.lr_finder is None:
            self.lr_finder = LRFinderDialog(
                lambda: self.doc.project.copy(),
                lambda lr: self.edit("training", ("optimizer", "lr"), lr, "Learning rate"),
                self)
            # Another project: the curve was of the old one; it cannot be used here.
            self.doc.project_replaced.connect(self.lr_finder.close)
        self.lr_finder.show()
        self.lr_finder.raise_()
        self.lr_finder.start()

    def _processes_row(self) -> None:
        self.options = run_options(self.doc)
        self.processes_label = QLabel("Processes", self)
        box = self.processes = QSpinBox(self)
        box.setObjectName("processesSpin")
        box.setRange(1, 1)
        box.setKeyboardTracking(False)
        box.setToolTip(
            "Train in this many processes with torch.distributed, one per GPU on CUDA"
            " (1: in this window, with live filters and activations). Each process takes"
            " a batch of the size above: a step sees processes × batch size samples."
            " Not saved in the project")
        self.form.addRow(self.processes_label, box)
        box.valueChanged.connect(self.options.set_processes)
        self.options.changed.connect(self._show_processes)

    def _show_processes(self) -> None:
        """Label and range of the processes row for the device setting (GPUs or CPUs)."""
        try:
            device = fill_training(self.doc.project.training)["device"]
        except FormatError:
            device = "auto"
        label, most = process_kind(device, self.options.gpus)
        self.processes_label.setText(label)
        box = self.processes
        box.blockSignals(True)
        box.setRange(1, most)
        box.setValue(self.options.processes)  # clamped to the range
        box.blockSignals(False)
        self.options.set_processes(box.value())

    # ---- reading and editing ---------------------------------------------------------

    def reload(self) -> None:
        """Show what the project holds (defaults filled); say so if it is invalid."""
        project = self.doc.project
        problems = []
        try:
            training = fill_training(project.training)
        except FormatError as err:
            training, problems = fill_training({}), [str(err)]
        try:
            data = fill_data(project.data)
        except FormatError as err:
            data, problems = fill_data({}), [*problems, str(err)]
        for load in self._loaders:
            load(training, data)
        self._show_rows(training)
        self._show_processes()
        self.error.setText("\n".join(problems))

    def _show_rows(self, training: dict[str, Any]) -> None:
        opt, sched = training["optimizer"]["name"], training["schedule"]["name"]
        visible = {("optimizer", "momentum"): opt in ("SGD", "RMSprop"),
                   ("optimizer", "nesterov"): opt == "SGD",
                   ("schedule", "step_size"): sched == "step",
                   ("schedule", "gamma"): sched == "step",
                   ("schedule", "max_lr"): sched == "onecycle",
                   ("schedule", "patience"): sched == "plateau",
                   ("schedule", "factor"): sched == "plateau"}
        for path, shown in visible.items():
            self.form.setRowVisible(self.fields[("training", *path)], shown)

    def edit(self, section: str, path: Path, value: Any, label: str = "") -> bool:
        """Set one setting; validate; push an undoable command. False if refused."""
        project = self.doc.project
        current = copy.deepcopy(getattr(project, section) or {})
        if _get(current, path) == value:
            return True
        _set(current, path, value)
        try:  # validated, and names kept in their canonical spelling ("CPU" → "cpu")
            current = (canonical_training if section == "training" else canonical_data)(current)
        except FormatError as err:
            self.error.setText(str(err))
            self.reload()
            self.error.setText(str(err))
            return False
        if current == (getattr(project, section) or {}):  # "CPU" where "cpu" is stored
            self.reload()
            return True
        shown = f"{value:g}" if isinstance(value, float) else value
        self.doc.undo_stack.push(SetSettingsCommand(
            self.doc, section, current, f"Set {label or path[-1]} to {shown}"))
        self.error.setText("")
        return True
