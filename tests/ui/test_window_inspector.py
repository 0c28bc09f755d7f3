"""The inspector: typed editors, validation before applying, renames, the arithmetic."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox, QWidget

from cnnstudio.core import registry
from cnnstudio.core.params import FLOAT, INTS, PADDING, SHAPE, SIZE, Param
from cnnstudio.ui.param_editors import DEFAULT, ParamField, ParseError, parse_text


def _type_into(qtbot, editor: QLineEdit, text: str) -> None:
    """Replace the text as a user would and press Enter."""
    editor.selectAll()
    qtbot.keyClicks(editor, text) if text else editor.clear()
    qtbot.keyClick(editor, Qt.Key.Key_Return)


def _inspect(window, node_id: str):
    window.document.set_selection([node_id])
    inspector = window.findChild(QWidget, "inspector")
    assert inspector.node_id == node_id
    return inspector


def _problem_texts(window) -> list[str]:
    problems = window.findChild(QWidget, "problemsList")
    problems.refresh()
    return [problems.item(i).text() for i in range(problems.count())]


def test_editors_match_parameter_kinds(window):
    inspector = _inspect(window, "conv1")
    assert isinstance(inspector.findChild(QSpinBox, "param_out_channels"), QSpinBox)
    assert isinstance(inspector.findChild(QLineEdit, "param_kernel_size"), QLineEdit)
    assert isinstance(inspector.findChild(QLineEdit, "param_padding"), QLineEdit)
    assert isinstance(inspector.findChild(QCheckBox, "param_bias"), QCheckBox)
    assert isinstance(inspector.findChild(QComboBox, "param_padding_mode"), QComboBox)
    spin = inspector.findChild(QSpinBox, "param_out_channels")
    assert spin.minimum() == 1 and spin.value() == 16
    assert inspector.findChild(QLineEdit, "param_kernel_size").text() == "3"
    stride = inspector.findChild(QLineEdit, "param_stride")
    assert stride.text() == "" and stride.placeholderText().startswith("1 (default)")


def test_kernel_edit_updates_shapes_downstream_and_problems(window, qtbot):
    inspector = _inspect(window, "conv1")
    kernel = inspector.findChild(QLineEdit, "param_kernel_size")
    summary = window.findChild(QWidget, "modelSummary")
    _type_into(qtbot, kernel, "5")
    assert window.project.graph.node("conv1").params["kernel_size"] == 5
    assert window.document.inference.nodes["conv1"].shape == (16, 6, 6)
    assert window.document.inference.nodes["pool1"].shape == (32, 3, 3)
    qtbot.waitUntil(lambda: summary.model().index(5, 2).data() == "32×3×3")
    assert inspector.findChild(QWidget, "detail_output").text() == "<b>16×6×6</b>"
    assert "H_out = ⌊(8 + 2·1 − 5)/1⌋ + 1 = 6" in inspector.findChild(QWidget, "formulas").text()

    _type_into(qtbot, kernel, "11")  # larger than the padded 8×8 input
    assert any(t.startswith("conv1:") for t in _problem_texts(window))
    qtbot.waitUntil(lambda: inspector.findChild(QWidget, "detail_output").text() == "?")
    _type_into(qtbot, kernel, "3")
    assert _problem_texts(window) == []


@pytest.mark.parametrize("text", ["0", "abc", "3, 3, 3", "-1", "2.5"])
def test_impossible_kernel_shows_an_error_and_changes_nothing(window, qtbot, text):
    inspector = _inspect(window, "conv1")
    before = window.project.graph.to_dict()
    field = inspector.field("kernel_size")
    _type_into(qtbot, field.editor, text)
    assert field.error
    assert not field.error_label.isHidden()
    assert window.project.graph.to_dict() == before
    assert window.undo_stack.count() == 0
    _type_into(qtbot, field.editor, "3")  # correcting it clears the error
    assert field.error == ""


def test_padding_takes_same_and_lists(window, qtbot):
    inspector = _inspect(window, "conv1")
    padding = inspector.field("padding")
    _type_into(qtbot, padding.editor, "same")
    assert window.project.graph.node("conv1").params["padding"] == "same"
    _type_into(qtbot, padding.editor, "1, 2")
    assert window.project.graph.node("conv1").params["padding"] == [1, 2]
    assert window.document.inference.nodes["conv1"].shape == (16, 8, 10)
    _type_into(qtbot, padding.editor, "sideways")
    assert padding.error and window.project.graph.node("conv1").params["padding"] == [1, 2]


def test_empty_optional_field_returns_to_the_default(window, qtbot):
    inspector = _inspect(window, "conv1")
    stride = inspector.field("stride")
    _type_into(qtbot, stride.editor, "2")
    assert window.project.graph.node("conv1").params["stride"] == 2
    _type_into(qtbot, stride.editor, "")
    assert "stride" not in window.project.graph.node("conv1").params
    kernel = inspector.field("kernel_size")
    _type_into(qtbot, kernel.editor, "")  # required: empty is an error
    assert kernel.error and window.project.graph.node("conv1").params["kernel_size"] == 3


def test_nullable_parameter_offers_none(window, qtbot):
    inspector = _inspect(window, "pool1")
    stride = inspector.field("stride")
    _type_into(qtbot, stride.editor, "1")
    assert window.project.graph.node("pool1").params["stride"] == 1
    _type_into(qtbot, stride.editor, "none")
    assert window.project.graph.node("pool1").params["stride"] is None
    assert window.document.inference.nodes["pool1"].shape == (32, 4, 4)


def test_spin_checkbox_and_combo_apply(window, qtbot):
    inspector = _inspect(window, "conv1")
    spin = inspector.field("out_channels").editor
    spin.setValue(24)
    assert window.project.graph.node("conv1").params["out_channels"] == 24
    assert window.document.inference.nodes["conv1"].shape == (24, 8, 8)
    inspector.field("bias").editor.setChecked(False)
    assert window.project.graph.node("conv1").params["bias"] is False
    combo = inspector.field("padding_mode").editor
    combo.setCurrentIndex(combo.findText("reflect"))
    combo.activated.emit(combo.currentIndex())
    assert window.project.graph.node("conv1").params["padding_mode"] == "reflect"
    assert window.undo_stack.count() == 3  # three fields: three undo entries


def test_undo_shows_the_old_value_in_the_editor(window, qtbot):
    inspector = _inspect(window, "conv1")
    kernel = inspector.field("kernel_size").editor
    _type_into(qtbot, kernel, "5")
    window.undo_stack.undo()
    assert kernel.text() == "3"
    window.undo_stack.redo()
    assert kernel.text() == "5"


def test_rename_is_one_undo_entry_and_keeps_the_selection(window, qtbot):
    inspector = _inspect(window, "conv1")
    _type_into(qtbot, inspector.findChild(QLineEdit, "nodeIdEdit"), "stem")
    graph = window.project.graph
    assert "stem" in graph and "conv1" not in graph
    assert graph.node("relu1").inputs == ["stem"]
    assert window.undo_stack.count() == 1
    assert window.document.selection == ["stem"]
    window.undo_stack.undo()
    assert "conv1" in window.project.graph and "stem" not in window.project.graph


@pytest.mark.parametrize("new_id", ["1conv", "conv 1", "relu1", "forward", ""])
def test_invalid_rename_shows_an_error(window, qtbot, new_id):
    inspector = _inspect(window, "conv1")
    _type_into(qtbot, inspector.findChild(QLineEdit, "nodeIdEdit"), new_id)
    error = inspector.findChild(QWidget, "error_id")
    assert not error.isHidden() and error.text()
    assert "conv1" in window.project.graph and window.undo_stack.count() == 0


def test_details_show_numbers_and_receptive_field(window):
    inspector = _inspect(window, "conv2")
    text = {k: inspector.findChild(QWidget, f"detail_{k}").text()
            for k in ("inputs", "output", "params", "macs", "memory", "rf")}
    assert text["inputs"] == "16×8×8"
    assert text["params"] == "4,640"
    assert text["macs"] == "294,912"
    assert text["memory"] == "8.0 KiB per sample"
    assert text["rf"].startswith("5×5")
    assert "params = (3·3·16 + 1)·32 = 4640" in inspector.findChild(QWidget, "formulas").text()


def test_no_or_many_selected_shows_a_hint(window):
    inspector = window.findChild(QWidget, "inspector")
    window.document.set_selection([])
    assert inspector.node_id is None
    window.document.set_selection(["conv1", "conv2"])
    assert inspector.node_id is None


@pytest.mark.parametrize(("kind", "text", "value"), [
    (INTS, "3", 3), (INTS, "3, 5", [3, 5]), (INTS, "3x5", [3, 5]), (INTS, "[3, 5]", [3, 5]),
    (PADDING, "same", "same"), (PADDING, "'valid'", "valid"), (SHAPE, "1, 28, 28", [1, 28, 28]),
    (SHAPE, "3", [3]), (SIZE, "4, none", [4, None]), (FLOAT, "1e-3", 0.001),
])
def test_parse_text(kind, text, value):
    assert parse_text(Param("p", kind, 0, "help"), text) == value


@pytest.mark.parametrize("text", ["abc", "3,,x", "1.5.2"])
def test_parse_text_rejects(text):
    with pytest.raises(ParseError):
        parse_text(Param("p", INTS, 0, "help"), text)
    assert parse_text(Param("p", INTS, 0, "help"), "") is DEFAULT


@pytest.mark.parametrize("layer", registry.all_types(), ids=lambda t: t.name)
def test_every_parameter_round_trips_through_its_editor(qtbot, layer):
    params = {}
    for param in layer.params:
        field = ParamField(param)
        qtbot.addWidget(field)
        suggested = param.required or param.initial is not None
        value = param.initial if suggested else param.default
        field.set_value(value)
        shown = field.value()
        if shown is not DEFAULT:
            params[param.name] = shown
    layer.resolve(params)  # what the editors show is what the layer accepts


@pytest.mark.parametrize("layer", registry.all_types(), ids=lambda t: t.name)
def test_every_layer_can_be_inserted_from_the_palette(window, layer):
    window.document.set_selection(["flatten"])
    window.palette_tree.itemDoubleClicked.emit(window.palette_tree.entry(layer.name), 0)
    assert any(n.type == layer.name for n in window.project.graph), window.last_error
    inspector = window.findChild(QWidget, "inspector")
    assert window.project.graph.node(inspector.node_id).type == layer.name
