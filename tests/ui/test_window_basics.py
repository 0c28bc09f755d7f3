"""The main window's public surface (SPEC §2.3): objectNames, palette drags, menus, title."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeySequence, QUndoStack
from PySide6.QtWidgets import QDockWidget, QWidget

from cnnstudio.core import registry
from cnnstudio.core.blocks import BLOCKS
from cnnstudio.ui.mime import MIME_BLOCK, MIME_LAYER

ISSUE_4_NAMES = ("layerPalette", "graphView", "inspector", "modelSummary", "problemsList")
LATER_NAMES = ("trainButton", "pauseButton", "stopButton", "trainingProgress", "lossPlot",
               "accuracyPlot", "filterView", "activationView", "confusionMatrix")


def test_main_window_is_exported_by_the_ui_package():
    from cnnstudio.ui import MainWindow
    from cnnstudio.ui.main_window import MainWindow as Direct

    assert MainWindow is Direct


def test_contract_widgets_carry_their_object_names(window):
    for name in ISSUE_4_NAMES:
        assert window.findChild(QWidget, name) is not None, name
    for name in LATER_NAMES:  # the training docks (issue 5)
        assert window.findChild(QWidget, name) is not None, name


def test_public_properties(window):
    assert isinstance(window.undo_stack, QUndoStack)
    assert window.undo_stack is window.document.undo_stack
    assert window.project is window.document.project
    assert "conv1" in window.project.graph
    assert window.centralWidget() is window.findChild(QWidget, "graphView")


def test_palette_lists_every_layer_by_category_and_the_blocks(window):
    palette = window.findChild(QWidget, "layerPalette")
    groups = [palette.topLevelItem(i).text(0) for i in range(palette.topLevelItemCount())]
    assert groups == [*registry.by_category(), "Blocks"]
    names = {item.text(0) for item in palette.entries()}
    assert {t.name for t in registry.all_types()} | set(BLOCKS) == names
    conv = palette.findItems("Conv2d", Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive)
    assert len(conv) == 1
    assert registry.get("Conv2d").help in conv[0].toolTip(0)


def test_palette_search_filters_by_name_and_help(window, qtbot):
    search = window.findChild(QWidget, "paletteSearch")
    palette = window.findChild(QWidget, "layerPalette")
    qtbot.keyClicks(search, "pool")
    visible = [item.text(0) for item in palette.entries() if not item.isHidden()]
    assert "MaxPool2d" in visible and "Conv2d" not in visible
    search.clear()
    assert all(not item.isHidden() for item in palette.entries())


def test_palette_mime_data_carries_the_type_or_block(window):
    palette = window.findChild(QWidget, "layerPalette")
    mime = palette.mimeData([palette.entry("Conv2d")])
    assert bytes(mime.data(MIME_LAYER).data()).decode() == "Conv2d"
    mime = palette.mimeData([palette.entry("Residual block")])
    assert bytes(mime.data(MIME_BLOCK).data()).decode() == "Residual block"
    index = palette.indexFromItem(palette.entry("ReLU"))
    assert palette.model().mimeData([index]).hasFormat(MIME_LAYER)  # the model asks us too


def test_palette_drop_on_graph_view_adds_a_node(window, drop_on):
    palette = window.findChild(QWidget, "layerPalette")
    view = window.findChild(QWidget, "graphView")
    before = set(window.project.graph.ids)
    mime = palette.mimeData([palette.entry("Dropout")])
    corner = QPointF(view.viewport().width() - 20, 20)  # away from nodes and edges
    assert drop_on(view.viewport(), mime, corner)
    added = set(window.project.graph.ids) - before
    assert len(added) == 1
    assert window.project.graph.node(added.pop()).type == "Dropout"
    assert window.undo_stack.count() == 1


def test_palette_double_click_inserts_after_the_selection_in_one_step(window, qtbot):
    palette = window.findChild(QWidget, "layerPalette")
    graph = window.project.graph
    window.document.set_selection(["conv1"])
    old_consumers = graph.consumers("conv1")
    palette.itemDoubleClicked.emit(palette.entry("BatchNorm2d"), 0)
    assert window.undo_stack.count() == 1
    (new,) = [n for n in graph.ids if graph.node(n).type == "BatchNorm2d"]
    assert graph.node(new).inputs == ["conv1"]
    assert graph.consumers(new) == old_consumers
    assert window.document.selection == [new]
    assert window.document.inference.ok
    window.undo_stack.undo()
    assert graph.consumers("conv1") == old_consumers


def test_palette_enter_in_search_inserts_the_first_match(window, qtbot):
    search = window.findChild(QWidget, "paletteSearch")
    window.document.set_selection(["relu1"])
    qtbot.keyClicks(search, "dropout2")
    qtbot.keyClick(search, Qt.Key.Key_Return)
    assert any(n.type == "Dropout2d" for n in window.project.graph)


def test_block_insert_after_selection(window):
    palette = window.findChild(QWidget, "layerPalette")
    window.document.set_selection(["relu2"])
    before = len(window.project.graph)
    palette.itemDoubleClicked.emit(palette.entry("Residual block"), 0)
    assert len(window.project.graph) > before
    assert window.undo_stack.count() == 1
    assert window.document.inference.ok


def test_menus_have_standard_shortcuts(window):
    actions = window.actions_
    assert actions.new.shortcut() == QKeySequence("Ctrl+N")
    assert actions.open.shortcut() == QKeySequence("Ctrl+O")
    assert actions.save.shortcut() == QKeySequence("Ctrl+S")
    assert actions.save_as.shortcut() == QKeySequence("Ctrl+Shift+S")
    assert actions.quit.shortcut() == QKeySequence("Ctrl+Q")
    assert actions.duplicate.shortcut() == QKeySequence("Ctrl+D")
    assert actions.fit.shortcut() == QKeySequence("Ctrl+0")
    assert actions.auto_layout.shortcut() == QKeySequence("Ctrl+L")
    assert actions.find.shortcut() == QKeySequence("Ctrl+F")
    assert actions.find_next.shortcut() == QKeySequence("F3")
    assert actions.undo.shortcut() == QKeySequence(QKeySequence.StandardKey.Undo)
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus[:3] == ["File", "Edit", "View"]


def test_undo_actions_follow_the_stack(window):
    actions = window.actions_
    assert not actions.undo.isEnabled()
    window.document.set_selection(["relu1"])
    window.findChild(QWidget, "layerPalette").itemDoubleClicked.emit(
        window.palette_tree.entry("GELU"), 0)
    assert actions.undo.isEnabled()
    actions.undo.trigger()
    assert not any(n.type == "GELU" for n in window.project.graph)
    assert actions.redo.isEnabled()


def test_dock_toggles_hide_and_show_panels(window):
    window.show()
    dock = window.findChild(QDockWidget, "inspectorDock")
    toggle = dock.toggleViewAction()
    assert toggle in window.actions_.panels_menu.actions()
    toggle.trigger()
    assert dock.isHidden()
    toggle.trigger()
    assert not dock.isHidden()


def test_title_shows_name_and_modified_star(window, qtbot):
    window.show()
    assert window.windowTitle() == "Digits LeNet[*] — CNN Studio"
    assert not window.isWindowModified()
    window.document.set_selection(["relu1"])
    window.palette_tree.itemDoubleClicked.emit(window.palette_tree.entry("Dropout"), 0)
    assert window.isWindowModified()
    assert window.windowHandle().title() == "Digits LeNet* — CNN Studio"
    window.undo_stack.undo()
    assert not window.isWindowModified()


def test_status_bar_shows_totals_problems_and_device(window, qtbot):
    params = window.findChild(QWidget, "statusParams")
    qtbot.waitUntil(lambda: f"{window.document.inference.total_params:,}" in params.text())
    assert window.findChild(QWidget, "statusProblems").text() == "no problems"
    assert window.findChild(QWidget, "statusDevice").text() == "device: not loaded yet"
    window.document.graph.set_param("classifier", "out_features", 7)
    qtbot.waitUntil(lambda: window.findChild(QWidget, "statusProblems").text() == "1 error")


def test_palette_real_double_click_and_enter_insert(window, qtbot):
    window.show()
    qtbot.waitExposed(window)
    palette = window.findChild(QWidget, "layerPalette")
    window.document.set_selection(["relu1"])
    item = palette.entry("SiLU")
    palette.scrollToItem(item)
    rect = palette.visualItemRect(item)
    qtbot.mouseClick(palette.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert sum(n.type == "SiLU" for n in window.project.graph) == 0  # one click: no insert
    qtbot.mouseDClick(palette.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert sum(n.type == "SiLU" for n in window.project.graph) == 1
    palette.setCurrentItem(palette.entry("ELU"))
    palette.setFocus()
    qtbot.keyClick(palette, Qt.Key.Key_Return)
    assert sum(n.type == "ELU" for n in window.project.graph) == 1
    group = palette.topLevelItem(0)  # a heading inserts nothing
    palette.activate(group)
    assert window.undo_stack.count() == 2
