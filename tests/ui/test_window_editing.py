"""Issue 12 points 5–7 through the real widgets: one undo entry per field edit, palette
search ranking names first, impossible kernels explained with one-click repairs."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStyleOptionViewItem,
    QWidget,
)

from cnnstudio.ui import commands
from cnnstudio.ui.commands import AddNodeCommand
from cnnstudio.ui.palette import match_rank


def _type_into(qtbot, editor: QLineEdit | QSpinBox, text: str) -> None:
    """Replace the text as a user would and press Enter."""
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)


def _inspect(window, node_id: str):
    window.document.set_selection([node_id])
    inspector = window.findChild(QWidget, "inspector")
    assert inspector.node_id == node_id
    return inspector


def _conv1(window) -> dict:
    return window.project.graph.node("conv1").params


# ---- point 5: undo granularity ---------------------------------------------------------


def test_each_field_edit_is_its_own_undo_entry(window, qtbot):
    inspector = _inspect(window, "conv1")
    _type_into(qtbot, inspector.findChild(QSpinBox, "param_out_channels"), "32")
    _type_into(qtbot, inspector.findChild(QLineEdit, "param_kernel_size"), "5")
    _type_into(qtbot, inspector.findChild(QLineEdit, "param_padding"), "2")
    assert (_conv1(window)["out_channels"], _conv1(window)["kernel_size"],
            _conv1(window)["padding"]) == (32, 5, 2)
    assert window.undo_stack.count() == 3
    window.actions_.undo.trigger()  # Ctrl+Z once: only the padding goes back
    assert _conv1(window) == {"out_channels": 32, "kernel_size": 5, "padding": 1}
    assert inspector.findChild(QLineEdit, "param_padding").text() == "1"
    window.actions_.undo.trigger()
    assert _conv1(window) == {"out_channels": 32, "kernel_size": 3, "padding": 1}
    window.actions_.undo.trigger()
    assert _conv1(window)["out_channels"] == 16
    assert inspector.findChild(QSpinBox, "param_out_channels").value() == 16


def test_undo_entries_name_the_field(window, qtbot):
    inspector = _inspect(window, "conv1")
    _type_into(qtbot, inspector.findChild(QLineEdit, "param_kernel_size"), "5")
    assert window.undo_stack.undoText() == "Edit conv1.kernel_size"


def test_spin_box_steps_in_a_row_are_one_entry(window, qtbot, monkeypatch):
    monkeypatch.setattr(commands, "clock", lambda: 5.0)  # a busy machine must not split them
    inspector = _inspect(window, "conv1")
    spin = inspector.findChild(QSpinBox, "param_out_channels")
    for _ in range(4):
        qtbot.keyClick(spin, Qt.Key.Key_Up)
    assert _conv1(window)["out_channels"] == 20
    assert window.undo_stack.count() == 1
    window.undo_stack.undo()
    assert _conv1(window)["out_channels"] == 16


def test_spin_box_stepped_up_and_back_leaves_no_entry(window, qtbot, monkeypatch):
    monkeypatch.setattr(commands, "clock", lambda: 5.0)
    spin = _inspect(window, "conv1").findChild(QSpinBox, "param_out_channels")
    qtbot.keyClick(spin, Qt.Key.Key_Up)
    qtbot.keyClick(spin, Qt.Key.Key_Down)
    assert _conv1(window)["out_channels"] == 16
    assert window.undo_stack.count() == 0 and window.undo_stack.isClean()


def test_the_same_field_edited_again_later_is_a_new_entry(window, qtbot, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(commands, "clock", lambda: now[0])
    inspector = _inspect(window, "conv1")
    kernel = inspector.findChild(QLineEdit, "param_kernel_size")
    _type_into(qtbot, kernel, "5")
    now[0] += commands.MERGE_WINDOW_S / 2  # within the window: one gesture
    _type_into(qtbot, kernel, "7")
    assert window.undo_stack.count() == 1
    now[0] += commands.MERGE_WINDOW_S * 3  # a separate edit
    _type_into(qtbot, kernel, "1")
    assert window.undo_stack.count() == 2
    window.undo_stack.undo()
    assert _conv1(window)["kernel_size"] == 7
    window.undo_stack.undo()
    assert _conv1(window)["kernel_size"] == 3


def test_edits_of_two_nodes_never_merge(window, qtbot):
    inspector = _inspect(window, "conv1")
    _type_into(qtbot, inspector.findChild(QLineEdit, "param_kernel_size"), "5")
    inspector = _inspect(window, "conv2")
    _type_into(qtbot, inspector.findChild(QLineEdit, "param_kernel_size"), "5")
    assert window.undo_stack.count() == 2


# ---- point 6: palette search ranks names first -----------------------------------------


@pytest.mark.parametrize(("query", "inserted"), [
    ("relu", "ReLU"),  # exact name beats GELU, whose help says "smooth ReLU"
    ("RELU", "ReLU"),
    ("leaky", "LeakyReLU"),  # name prefix
    ("norm2", "BatchNorm2d"),  # name substring
    ("smooth", "GELU"),  # only the help text matches
])
def test_enter_in_the_search_inserts_the_best_name_match(window, qtbot, query, inserted):
    search = window.findChild(QWidget, "paletteSearch")
    window.document.set_selection(["relu2"])
    before = {n.id for n in window.project.graph}
    qtbot.keyClicks(search, query)
    qtbot.keyClick(search, Qt.Key.Key_Return)
    added = [n.type for n in window.project.graph if n.id not in before]
    assert added == [inserted]


@pytest.mark.parametrize(("query", "inserted"), [
    ("conv", "Conv2d"), ("maxpool", "MaxPool2d"), ("batchnorm", "BatchNorm2d")])
def test_among_equal_matches_enter_inserts_one_that_fits_the_selected_layer(
        window, qtbot, query, inserted):
    # Review: "conv" + Enter after a 2-D layer inserted Conv1d (first in the list): a red
    # card for a student who meant Conv2d. Equal name matches go to one that fits.
    search = window.findChild(QWidget, "paletteSearch")
    window.document.set_selection(["relu2"])
    before = {n.id for n in window.project.graph}
    qtbot.keyClicks(search, query)
    qtbot.keyClick(search, Qt.Key.Key_Return)
    assert [n.type for n in window.project.graph if n.id not in before] == [inserted]
    assert not [p for p in window.document.inference.problems if p.severity == "error"]


def test_match_rank_order():
    assert [match_rank("relu", n) for n in ("ReLU", "ReLU6x", "LeakyReLU", "GELU")] == [
        0, 1, 2, 3]


# ---- point 7: impossible kernels and lone layers ---------------------------------------


def _fix_buttons(widget: QWidget) -> dict[str, QPushButton]:
    return {b.text(): b for b in widget.findChildren(QPushButton) if b.text().startswith("Fix:")
            and b.isVisibleTo(widget)}


def test_too_large_kernel_shows_the_impossible_arithmetic(window, qtbot):
    inspector = _inspect(window, "conv1")
    _type_into(qtbot, inspector.findChild(QLineEdit, "param_kernel_size"), "13")
    formulas = inspector.findChild(QWidget, "formulas")
    qtbot.waitUntil(lambda: "&lt; 1" in formulas.text())
    text = formulas.text()
    assert "H_out = ⌊(8 + 2·1 − 13)/1⌋ + 1 = −2 &lt; 1" in text
    assert "the kernel spans 13, the padded input only 10" in text
    assert "#d83b3b" in text  # the impossible lines are red
    assert inspector.findChild(QWidget, "detail_output").text() == "?"


def test_inspector_offers_both_repairs_as_one_undo_step_each(window, qtbot):
    inspector = _inspect(window, "conv1")
    _type_into(qtbot, inspector.findChild(QLineEdit, "param_kernel_size"), "13")
    qtbot.waitUntil(lambda: len(_fix_buttons(inspector)) == 2)
    assert sorted(_fix_buttons(inspector)) == ["Fix: Set padding to 3",
                                               "Fix: Shrink kernel_size to 10"]
    qtbot.mouseClick(_fix_buttons(inspector)["Fix: Set padding to 3"], Qt.MouseButton.LeftButton)
    assert _conv1(window) == {"out_channels": 16, "kernel_size": 13, "padding": 3}
    assert window.document.inference.ok
    assert window.document.inference.nodes["conv1"].shape == (16, 2, 2)
    window.undo_stack.undo()
    assert _conv1(window)["padding"] == 1 and not window.document.inference.ok


def test_problems_list_offers_the_repairs_and_shrinks_the_kernel(window, qtbot):
    inspector = _inspect(window, "conv1")
    _type_into(qtbot, inspector.findChild(QLineEdit, "param_kernel_size"), "13")
    problems = window.findChild(QWidget, "problemsList")
    problems.refresh()
    [row] = [r for r in range(problems.count()) if problems.item(r).text().startswith("conv1:")]
    holder = problems.itemWidget(problems.item(row))
    buttons = _fix_buttons(holder)
    assert list(buttons) == ["Fix: Shrink kernel_size to 10", "Fix: Set padding to 3"]
    count = window.undo_stack.count()
    qtbot.mouseClick(buttons["Fix: Shrink kernel_size to 10"], Qt.MouseButton.LeftButton)
    assert _conv1(window)["kernel_size"] == 10
    assert window.document.inference.nodes["conv1"].shape == (16, 1, 1)
    assert window.undo_stack.count() == count + 1


def test_problem_text_is_never_covered_by_its_fix_buttons(window, qtbot):
    window.resize(1280, 800)
    window.show()
    window.problems_dock.show()
    window.problems_dock.raise_()
    inspector = _inspect(window, "conv1")
    _type_into(qtbot, inspector.findChild(QLineEdit, "param_kernel_size"), "13")
    problems = window.findChild(QWidget, "problemsList")
    problems.refresh()
    option = QStyleOptionViewItem()
    option.initFrom(problems)
    line = problems.fontMetrics().lineSpacing()
    for width, min_lines in ((900, 1), (330, 2), (240, 2)):  # wide; narrow: text wraps
        problems.setFixedWidth(width)
        qtbot.waitUntil(lambda w=width: problems.width() == w)
        qtbot.wait(20)  # the list lays its rows out again
        item = problems.item(0)
        rect = problems.visualItemRect(item)
        text_height = problems.itemDelegate()._text_height(option, item.text())
        assert text_height >= min_lines * line  # wrapped, not elided
        buttons = _fix_buttons(problems.itemWidget(item)).values()
        assert buttons
        for button in buttons:
            top_left = button.mapTo(problems.viewport(), QPoint(0, 0))
            assert top_left.y() >= rect.top() + text_height, f"a button covers text at {width}"
            assert top_left.x() + button.width() <= problems.viewport().width()
            assert top_left.y() + button.height() <= rect.bottom() + 1


def test_lone_dropped_layer_offers_to_connect_after_the_layer_above(window, qtbot):
    window.undo_stack.push(AddNodeCommand(window.document, "BatchNorm2d", {},
                                          pos=(180.0, 300.0), node_id="bn"))
    problems = window.findChild(QWidget, "problemsList")
    problems.refresh()
    [row] = [r for r in range(problems.count()) if problems.item(r).text().startswith("bn:")]
    buttons = _fix_buttons(problems.itemWidget(problems.item(row)))
    # conv2 (y 270) is the nearest layer above whose output a BatchNorm2d takes.
    assert list(buttons) == ["Fix: Connect after conv2", "Fix: Delete bn"]
    qtbot.mouseClick(buttons["Fix: Connect after conv2"], Qt.MouseButton.LeftButton)
    assert window.project.graph.node("bn").inputs == ["conv2"]
    assert window.document.inference.nodes["bn"].shape == (32, 8, 8)
    window.undo_stack.undo()
    assert window.project.graph.node("bn").inputs == []
