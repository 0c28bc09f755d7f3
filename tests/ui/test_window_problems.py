"""Problems list and quick fixes, the summary table, and undo/redo of everything."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QLineEdit, QPushButton, QWidget

from cnnstudio.core.graph import Graph
from cnnstudio.project import Project
from cnnstudio.ui.commands import AddNodeCommand, RemoveNodesCommand


def _project(nodes: list[tuple]) -> Project:
    """A digits project from (id, type, params, inputs) tuples."""
    graph = Graph()
    for i, (nid, type_name, params, inputs) in enumerate(nodes):
        graph.add_node(type_name, params, id=nid, inputs=inputs, pos=(0.0, 90.0 * i))
    return Project(name="Broken", graph=graph,
                   data={"source": {"kind": "builtin", "name": "digits"}})


def _problems(window):
    widget = window.findChild(QWidget, "problemsList")
    widget.refresh()
    return widget


def _fix_buttons(problems, row: int) -> list[QPushButton]:
    holder = problems.itemWidget(problems.item(row))
    assert holder is not None, "this problem has no fix button"
    return holder.findChildren(QPushButton, "fixButton")


def _fix_button(problems, row: int, label: str | None = None) -> QPushButton:
    """The row's first fix button, or the one whose text is `Fix: <label>`."""
    buttons = _fix_buttons(problems, row)
    if label is None:
        return buttons[0]
    return next(b for b in buttons if b.text() == f"Fix: {label}")


def _row_of(problems, needle: str) -> int:
    for row in range(problems.count()):
        if needle in problems.item(row).text():
            return row
    raise AssertionError(f"no problem mentions {needle!r}")


NO_FLATTEN = [("input", "Input", {"shape": [1, 8, 8]}, []),
              ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3}, ["input"]),
              ("fc", "Linear", {"out_features": 10}, ["conv"])]


def test_insert_flatten_fix(window, qtbot):
    window.set_project(_project(NO_FLATTEN))
    problems = _problems(window)
    row = _row_of(problems, "last dimension")
    button = _fix_button(problems, row)
    assert button.text() == "Fix: Insert Flatten before fc"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    graph = window.project.graph
    (flat,) = [n.id for n in graph if n.type == "Flatten"]
    assert graph.node("fc").inputs == [flat] and graph.node(flat).inputs == ["conv"]
    assert window.document.inference.ok
    assert _problems(window).count() == 0
    assert window.undo_stack.count() == 1
    window.undo_stack.undo()
    assert not any(n.type == "Flatten" for n in window.project.graph)


def test_class_count_fix(window, qtbot):
    window.project.graph.set_param("classifier", "out_features", 7)
    window.undo_stack.resetClean()
    problems = _problems(window)
    row = _row_of(problems, "10 classes")
    assert problems.apply_fix_at(row)
    assert window.project.graph.node("classifier").params["out_features"] == 10
    assert window.undo_stack.count() == 1 and window.document.inference.ok


def test_dangling_node_fix_deletes_it(window, qtbot):
    window.undo_stack.push(AddNodeCommand(window.document, "ReLU", {}, pos=(400.0, 0.0),
                                          node_id="lonely"))
    problems = _problems(window)
    row = _row_of(problems, "lonely:")
    assert problems.item(row).toolTip().startswith("error:")
    assert [b.text() for b in _fix_buttons(problems, row)] == [
        "Fix: Connect after classifier", "Fix: Delete lonely"]
    qtbot.mouseClick(_fix_button(problems, row, "Delete lonely"), Qt.MouseButton.LeftButton)
    assert "lonely" not in window.project.graph
    assert window.undo_stack.count() == 2
    window.undo_stack.undo()
    assert "lonely" in window.project.graph


def test_clicking_a_problem_selects_its_node(window, qtbot):
    window.project.graph.set_param("classifier", "out_features", 3)
    problems = _problems(window)
    row = _row_of(problems, "classifier")
    holder = problems.itemWidget(problems.item(row))  # covers the row; clicks fall through
    qtbot.mouseClick(holder, Qt.MouseButton.LeftButton, pos=QPoint(8, holder.height() // 2))
    assert window.document.selection == ["classifier"]


def test_problem_counts_in_status_and_dock_title(window, qtbot):
    window.project.graph.set_param("classifier", "out_features", 3)
    qtbot.waitUntil(lambda: window.problems_dock.windowTitle() == "Problems (1)")
    assert window.findChild(QWidget, "statusProblems").text() == "1 error"


def test_summary_rows_and_click_selects(window, qtbot):
    summary = window.findChild(QWidget, "modelSummary")
    model = summary.model()
    assert model.rowCount() == len(window.project.graph)
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(5)]
    assert headers == ["Layer", "Type", "Output shape", "Params", "MACs"]
    assert [model.index(1, c).data() for c in (0, 2, 3)] == ["conv1", "16×8×8", "160"]
    rect = summary.visualRect(model.index(3, 0))
    qtbot.mouseClick(summary.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.document.selection == ["conv2"]
    window.document.set_selection(["pool1"])
    assert [i.row() for i in summary.selectionModel().selectedRows()] == [5]
    totals = window.findChild(QWidget, "summaryTotals").text()
    assert f"{window.document.inference.total_params:,}" in totals


def _type_into(qtbot, editor: QLineEdit, text: str) -> None:
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)


def test_undo_everything_then_redo_everything(window, qtbot, drop_on):
    doc, stack = window.document, window.undo_stack
    states = [doc.graph.to_dict()]

    def step() -> None:
        states.append(doc.graph.to_dict())
        assert stack.index() == len(states) - 1

    window.document.set_selection(["relu1"])  # palette double-click insert
    window.palette_tree.itemDoubleClicked.emit(window.palette_tree.entry("BatchNorm2d"), 0)
    step()
    inspector = window.findChild(QWidget, "inspector")
    window.document.set_selection(["conv2"])  # parameter edits: one entry per field
    _type_into(qtbot, inspector.field("kernel_size").editor, "5")
    step()
    _type_into(qtbot, inspector.field("padding").editor, "2")
    step()
    _type_into(qtbot, inspector.findChild(QLineEdit, "nodeIdEdit"), "features")  # rename
    step()
    mime = window.palette_tree.mimeData([window.palette_tree.entry("Tanh")])  # drop
    view = window.findChild(QWidget, "graphView").viewport()
    assert drop_on(view, mime, QPointF(view.width() - 10, 10))
    step()
    [tanh] = doc.selection  # the dropped node
    problems = _problems(window)  # the dropped Tanh dangles: connect it, then delete it
    assert problems.apply_fix_at(_row_of(problems, f"{tanh}:"))
    step()
    assert doc.graph.node(tanh).inputs
    window.view.graph_scene.select_nodes([tanh])  # and delete it from the canvas
    window.view.delete_selection()
    step()
    assert tanh not in doc.graph
    stack.push(RemoveNodesCommand(doc, ["dropout1"]))  # plain commands
    step()
    stack.push(AddNodeCommand(doc, "Dropout", {"p": 0.25}, inputs=["relu3"], pos=(0.0, 0.0)))
    step()
    window.view.auto_layout()
    step()

    while stack.canUndo():
        stack.undo()
        assert doc.graph.to_dict() == states[stack.index()]
    assert doc.graph.to_dict() == states[0]
    while stack.canRedo():
        stack.redo()
        assert doc.graph.to_dict() == states[stack.index()]
    assert doc.graph.to_dict() == states[-1]
