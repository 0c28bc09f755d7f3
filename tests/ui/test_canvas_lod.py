"""Issue 15 point 3: cards, edges and groups legible at every zoom; direction-aware ports;
the folded group card and the frame of an unfolded group."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent
from PySide6.QtWidgets import QApplication, QGraphicsScene, QGraphicsView

from cnnstudio.core.graph import Graph
from cnnstudio.project.model import Project
from cnnstudio.ui.canvas import GraphView, lod, style
from cnnstudio.ui.canvas.edges import EdgeItem, curve
from cnnstudio.ui.canvas.group_item import GroupFrame, GroupItem
from cnnstudio.ui.canvas.items import IN_PORT, OUT_PORT, NodeItem
from cnnstudio.ui.document import Document

W, H = style.NODE_WIDTH, style.NODE_HEIGHT
SIZE = 400  # the rendered image is SIZE × SIZE pixels


def _render(scene: QGraphicsScene, zoom: float, centre: QPointF, qtbot) -> QImage:
    """The scene as a view at `zoom` shows it on screen (item caches and markers included:
    the viewport's own paint, not QGraphicsView.render, which may reuse stale caches)."""
    view = QGraphicsView(scene)
    qtbot.addWidget(view)
    view.setFixedSize(SIZE, SIZE)
    view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    view.setFrameShape(QGraphicsView.Shape.NoFrame)
    view.setSceneRect(QRectF(centre.x() - 50_000, centre.y() - 50_000, 100_000, 100_000))
    view.setBackgroundBrush(QColor("white"))
    view.show()  # lays the viewport out at SIZE × SIZE
    view.scale(zoom, zoom)
    view.centerOn(centre)
    QApplication.processEvents()
    return view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)


def _dark_pixels(image: QImage, rect: QRectF, darker_than: int = 90) -> int:
    """Pixels inside `rect` (image coordinates) dark enough to be text."""
    r = rect.toAlignedRect().intersected(image.rect())
    return sum(QColor(image.pixel(x, y)).lightness() < darker_than
               for x in range(r.left(), r.right() + 1) for y in range(r.top(), r.bottom() + 1))


def _screen_rect(zoom: float, width: float = W, height: float = H) -> QRectF:
    """Where a card centred on the view's centre lands in the image."""
    return QRectF(SIZE / 2 - width * zoom / 2, SIZE / 2 - height * zoom / 2, width * zoom,
                  height * zoom)


def _node_scene(type_name: str = "Conv2d", node_id: str = "conv1") -> tuple:
    scene = QGraphicsScene()
    item = NodeItem(node_id, type_name)
    item.set_texts("32@3×3 s1 p1", "32×28×28")
    scene.addItem(item)
    return scene, item


# ---- what a card says at each zoom ---------------------------------------------------------


def test_card_text_shows_everything_at_full_size_and_only_the_type_zoomed_out(qapp):
    assert lod.card_text_at(1.0, "Conv2d", "Conv", W, H).level == lod.FULL
    out = lod.card_text_at(0.25, "Conv2d", "Conv", W, H)
    assert (out.level, out.text) == (lod.LABEL, "Conv2d")
    assert out.screen_px >= 10 and out.pixel_size * 0.25 == pytest.approx(out.screen_px)
    # Between the two, the label keeps LABEL_PX on screen: it grows in scene units.
    mid = lod.card_text_at(0.5, "Conv2d", "Conv", W, H)
    assert mid.screen_px == pytest.approx(lod.LABEL_PX)
    assert mid.pixel_size == pytest.approx(lod.LABEL_PX / 0.5)
    # Far out: a block with the abbreviation, then a plain block.
    far = lod.card_text_at(0.17, "BatchNorm2d", "BN", W, H)
    assert (far.level, far.text) == (lod.BLOCK, "BN")
    assert lod.card_text_at(0.05, "Conv2d", "Conv", W, H) == lod.CardText(lod.BLOCK)


def test_a_long_label_is_abbreviated_or_elided_to_fit_the_card(qapp):
    text = lod.card_text_at(0.3, "AdaptiveAvgPool2d", "GAP", W, H)
    assert text.level == lod.LABEL
    assert text.text == "AdaptiveAvgPool2d" or text.text == "GAP"
    name = "A very long block name that cannot fit"
    group = lod.card_text_at(0.3, name, name, W, H, bold=True)
    assert group.text.endswith("…")


def test_node_card_pixels_at_full_label_and_block_zoom(qtbot):
    scene, item = _node_scene()
    full = _render(scene, 1.0, item.pos(), qtbot)
    card = _screen_rect(1.0)
    top, bottom = QRectF(card.left(), card.top(), W, H / 2), QRectF(card.left(), 0, W, 0)
    bottom = QRectF(card.left(), card.center().y(), W, H / 2)
    assert _dark_pixels(full, top) > 40  # the id and the shape
    assert _dark_pixels(full, bottom) > 40  # the type line

    quarter = _render(scene, 0.25, item.pos(), qtbot)
    # One label, at least 10 pixels high: dark pixels span ≥ 7 rows (x-height and caps).
    card = _screen_rect(0.25)
    rows = [y for y in range(int(card.top()), int(card.bottom()) + 1)
            if _dark_pixels(quarter, QRectF(card.left(), y, card.width(), 1)) > 0]
    assert rows and rows[-1] - rows[0] + 1 >= 7

    far = _render(scene, 0.05, item.pos(), qtbot)
    card = _screen_rect(0.05)
    assert _dark_pixels(far, card.adjusted(-2, -2, 2, 2)) == 0  # no unreadable text
    centre = QColor(far.pixel(int(card.center().x()), int(card.center().y())))
    assert centre.saturation() > 60  # a coloured block, not the white canvas


def _halo_width(image: QImage, zoom: float) -> float:
    """How many pixels of selection colour the row through the card's centre holds just
    left of the card (antialiased pixels count by their share): the halo's width there."""
    halo = style.highlight_color()
    left = round(SIZE / 2 - W * zoom / 2)
    # On white, the red channel falls from 255 to the halo's red as a pixel fills with
    # it; the orange card beside it keeps red at 255 and adds nothing.
    return sum((255 - QColor(image.pixel(x, SIZE // 2)).red()) / (255 - halo.red())
               for x in range(left - 14, left - 1))


@pytest.mark.parametrize("zoom", [1.0, 0.3, 0.05, 0.03])
def test_selected_card_keeps_a_three_pixel_halo_at_any_zoom(qtbot, zoom):
    scene, item = _node_scene("ReLU", "relu1")  # orange: unlike the (blue) highlight
    assert _halo_width(_render(scene, zoom, item.pos(), qtbot), zoom) < 0.3
    item.setSelected(True)
    lod.ScreenMarker.follow(item, True)  # what GraphScene does on a selection change
    assert _halo_width(_render(scene, zoom, item.pos(), qtbot), zoom) >= 2.8


def test_the_canvas_marks_a_card_while_it_is_selected(qtbot):
    from cnnstudio.core.templates import get_template
    from cnnstudio.project.model import Project
    from cnnstudio.ui.canvas import GraphScene
    from cnnstudio.ui.document import Document

    scene = GraphScene(Document(Project(graph=get_template("xo").graph())))
    item = scene.item_for("conv1")
    assert item.marker is None or not item.marker.isVisible()
    scene.select_nodes(["conv1"])
    assert item.marker is not None and item.marker.isVisible()
    scene.select_nodes([])
    assert not item.marker.isVisible()
    scene.deleteLater()


def test_problem_card_is_marked_far_zoomed_out(qtbot):
    scene, item = _node_scene()
    item.set_problems("error", ["Conv2d needs 3 input channels, got 1"])
    image = _render(scene, 0.05, item.pos(), qtbot)
    red = [QColor(image.pixel(x, y)) for x in range(SIZE // 2 - 30, SIZE // 2 + 30)
           for y in range(SIZE // 2 - 30, SIZE // 2 + 30)]
    reds = sum(c.red() > 180 and c.green() < 110 and c.blue() < 110 for c in red)
    assert reds >= 40  # the badge is ~11 px across whatever the zoom


def test_marker_never_takes_a_click(qtbot):
    scene, item = _node_scene()
    assert item.marker is None  # made only for selected or problem cards
    item.setSelected(True)
    lod.ScreenMarker.follow(item, True)  # what GraphScene does on a selection change
    assert item.marker is not None and item.marker.isVisible()
    _render(scene, 0.05, item.pos(), qtbot)
    assert scene.itemAt(item.pos(), QGraphicsView().transform()) is item
    item.setSelected(False)
    lod.ScreenMarker.follow(item, False)
    assert not item.marker.isVisible()


# ---- edges ---------------------------------------------------------------------------------


def test_edge_pen_is_at_least_1_2_device_pixels_at_any_zoom(qapp):
    for zoom in (1.0, 0.3, 0.1, 0.05, 0.03):
        assert lod.edge_pen_width(zoom) * zoom >= 1.2 - 1e-9
        assert lod.edge_pen_width(zoom, emphasised=True) * zoom >= 3.0 - 1e-9
    assert lod.edge_pen_width(1.0) == pytest.approx(lod.EDGE_PX)  # unchanged close up


def test_a_long_straight_edge_is_drawn_at_least_a_pixel_wide_at_five_percent(qtbot):
    scene = QGraphicsScene()
    edge = EdgeItem("a", "b", 0)
    scene.addItem(edge)
    edge.set_ends(QPointF(0, -3000), QPointF(0, 3000))  # a skip edge: one straight line
    image = _render(scene, 0.05, QPointF(0, 0), qtbot)
    darkness = sum(255 - QColor(image.pixel(x, SIZE // 2)).lightness()
                   for x in range(SIZE // 2 - 6, SIZE // 2 + 7))
    one_pixel_of_line = 255 - style.edge_color().lightness()
    assert darkness >= 0.9 * one_pixel_of_line * lod.edge_opacity(0.05)


def test_edge_labels_fade_in_with_zoom(qapp):
    assert lod.edge_label_opacity(0.3) == 0.0  # unreadable: hidden
    assert lod.edge_label_opacity(1.0) == 1.0
    assert 0.0 < lod.edge_label_opacity(0.75) < 1.0
    assert lod.edge_opacity(0.05) < lod.edge_opacity(0.3) < lod.edge_opacity(1.0) == 1.0


# ---- direction-aware ports -----------------------------------------------------------------


def test_ports_left_and_right_for_direction_right(qapp):
    scene = QGraphicsScene()
    node = NodeItem("add1", "Add")
    scene.addItem(node)
    node.setPos(100, 50)
    assert node.output_anchor() == QPointF(0, H / 2)  # "down" by default
    node.set_direction("right")
    assert node.output_anchor() == QPointF(W / 2, 0)
    anchors = [node.input_anchor(i, 3) for i in range(3)]
    assert all(a.x() == -W / 2 for a in anchors)
    ys = [a.y() for a in anchors]
    assert ys == sorted(ys) and ys[0] < 0 < ys[2] and abs(ys[0]) < H / 2
    assert node.input_tip(0, 1) == QPointF(-W / 2 - style.PORT_RADIUS, 0)
    assert node.port_at(node.mapToScene(node.output_anchor())) == OUT_PORT
    for anchor in anchors:
        assert node.port_at(node.mapToScene(anchor)) == IN_PORT
    assert node.port_at(node.mapToScene(QPointF(0, -H / 2))) is None  # the old top port
    node.set_direction("down")
    assert node.port_at(node.mapToScene(QPointF(0, -H / 2))) == IN_PORT


def test_input_layer_has_no_input_port_in_either_direction(qapp):
    node = NodeItem("input", "Input")
    for direction in ("down", "right"):
        node.set_direction(direction)
        assert node.port_at(node.mapToScene(node.input_anchor(0, 1))) is None


def test_edge_curves_horizontally_for_direction_right(qapp):
    start, end = QPointF(0, 0), QPointF(300, 80)
    path = curve(start, end, direction="right")
    near_start = path.pointAtPercent(0.02)
    assert near_start.x() > start.x() and abs(near_start.y() - start.y()) < 1.0
    near_end = path.pointAtPercent(0.98)
    assert near_end.x() < end.x() and abs(near_end.y() - end.y()) < 1.0
    # A detour runs along y = side between the two ends.
    detour = curve(start, QPointF(900, 0), side=120.0, direction="right")
    assert detour.boundingRect().bottom() == pytest.approx(120.0)
    mid = detour.pointAtPercent(0.5)
    assert mid.y() == pytest.approx(120.0)
    edge = EdgeItem("a", "b", 0)
    edge.set_ends(start, end)
    edge.set_direction("right")
    assert edge.shape().contains(QPointF(5, 0))  # leaves rightwards, not downwards
    assert not edge.shape().contains(QPointF(0, 20))


def test_an_edge_back_up_the_flow_runs_beside_the_cards_not_across_them(qapp):
    # A U-Net's decoder is drawn going up: its edges end above where they start.
    up = curve(QPointF(0, 600), QPointF(230, 0))
    xs = {round(up.pointAtPercent(t / 50).x()) for t in range(50)
          if 100 < up.pointAtPercent(t / 50).y() < 500}
    assert xs == {115}  # the lane between the two columns
    same_column = curve(QPointF(0, 600), QPointF(0, 0))
    lane = W / 2 + 30
    assert all(abs(same_column.pointAtPercent(t / 50).x()) in (0.0, lane) or
               not 100 < same_column.pointAtPercent(t / 50).y() < 500 for t in range(50))
    right = curve(QPointF(600, 0), QPointF(0, 0), direction="right")
    assert right.boundingRect().bottom() == pytest.approx(H / 2 + 30)  # beside, below
    assert curve(QPointF(0, 0), QPointF(0, 90)).boundingRect().width() == 0  # plain


# ---- groups --------------------------------------------------------------------------------


def test_group_card_shows_its_facts_and_problems(qtbot):
    scene = QGraphicsScene()
    card = GroupItem("g1", "Residual block 1")
    scene.addItem(card)
    card.set_facts("64×56×56 → 64×56×56", "74 k params", "231 M MACs", 7)
    card.set_problems("warning", ["relu3 is never used"])
    tip = card.tooltip_text()
    for fact in ("Residual block 1", "64×56×56 → 64×56×56", "74 k params", "231 M MACs",
                 "7 layers", "⚠ relu3 is never used"):
        assert fact in tip
    assert card.node_id == "g1" and card.port_at(card.scenePos()) is None
    assert card.output_anchor() == QPointF(0, style.GROUP_HEIGHT / 2)
    card.set_direction("right")
    assert card.output_anchor() == QPointF(style.GROUP_WIDTH / 2, 0)
    image = _render(scene, 1.0, card.pos(), qtbot)
    rect = _screen_rect(1.0, style.GROUP_WIDTH, style.GROUP_HEIGHT)
    third = rect.height() / 3
    for line in range(3):  # name, shapes, params · MACs
        band = QRectF(rect.left(), rect.top() + line * third, rect.width(), third)
        assert _dark_pixels(image, band, darker_than=150) > 30  # the facts are dimmer
    short = lod.short_group_name(card.name)
    assert short == "Res 1"
    far = lod.card_text_at(0.25, card.name, short, style.GROUP_WIDTH, style.GROUP_HEIGHT,
                           bold=True)
    assert (far.level, far.text) == (lod.LABEL, "Res 1") and far.screen_px >= 10
    wide = lod.card_text_at(0.6, card.name, short, style.GROUP_WIDTH, style.GROUP_HEIGHT,
                            bold=True)
    assert wide.text == "Residual block 1"
    # Zoomed out with room for two lines, the card adds the shapes (else just the name).
    second = card.second_line(0.6, wide)
    # Both shapes when they fit, else the output shape alone.
    assert second is not None and second.text.endswith("→ 64×56×56")
    assert second.screen_px >= lod.LABEL_SHRINK_PX
    assert card.second_line(0.25, far) is None


def test_group_frame_surrounds_its_members_with_a_tab_and_fold_button(qapp):
    frame = GroupFrame("g1", "Stage 1")
    frame.set_rect(QRectF(0, 0, 220, 300))
    outline = frame.frame_rect()
    assert outline.contains(QRectF(0, 0, 220, 300)) and outline.top() < -10
    button = frame.button_rect().center()
    assert frame.fold_button_at(button) and frame.tab_at(button)
    assert not frame.fold_button_at(QPointF(110, 150)) and not frame.tab_at(QPointF(110, 150))
    assert not frame.shape().contains(QPointF(110, 150))  # clicks inside reach the cards
    # The name tab ends before a top-to-bottom block's incoming edge (at the centre);
    # the fold button is at the top right.
    assert frame.tab_rect().right() < 110 - 5
    assert frame.button_rect().center().x() > 200
    inner = GroupFrame("g2", "Block")
    inner.set_depth(1)
    assert frame.zValue() < inner.zValue() < 0  # above its parent's fill, behind edges


def test_connecting_in_a_left_to_right_graph_uses_the_side_ports(qtbot):
    graph = Graph()
    graph.add_node("Input", {"shape": [1, 16, 16]}, id="input", pos=(0, 0))
    graph.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3}, id="conv1",
                   inputs=["input"], pos=(260, 0))
    graph.add_node("ReLU", {}, id="relu1", pos=(520, 120))
    graph.direction = "right"
    doc = Document(Project(graph=graph))
    view = GraphView(doc)
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.show()
    view.centerOn(260, 60)
    scene = view.graph_scene
    conv, relu = scene.item_for("conv1"), scene.item_for("relu1")
    assert conv.direction == relu.direction == "right"
    edge = scene.edges_into("conv1")[0]
    path = edge.shape()
    assert path.contains(conv.mapToScene(QPointF(-W / 2 - 8, 0)))  # enters from the left

    def send(kind, scene_pos, button, buttons):
        port = view.viewport()
        local = QPointF(view.mapFromScene(scene_pos))
        QApplication.sendEvent(port, QMouseEvent(
            kind, local, QPointF(port.mapToGlobal(local.toPoint())), button, buttons,
            Qt.KeyboardModifier.NoModifier))

    left = Qt.MouseButton.LeftButton
    start = conv.mapToScene(conv.output_anchor())  # the right edge's port
    end = relu.mapToScene(relu.input_anchor(0, 1))  # the left edge's port
    send(QEvent.Type.MouseButtonPress, start, left, left)
    for i in range(1, 6):
        send(QEvent.Type.MouseMove, start + (end - start) * (i / 5), Qt.MouseButton.NoButton,
             left)
    send(QEvent.Type.MouseButtonRelease, end, left, Qt.MouseButton.NoButton)
    assert doc.graph.node("relu1").inputs == ["conv1"]
