"""Geometry of Fit and of the first view: zoom factors, which blocks Fit folds, where the
first view of a long network looks.

Fit folds only as much as it must: the blocks of the deepest nesting level at which the
fitted network is still legible (ResNet-50: its 16 bottleneck blocks, inside the frames of
its unfolded stages), else one level up, else the outermost. It predicts each level's
extent without folding anything (`plan_folding`), so one fold (one undo entry) follows.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRect, QRectF
from PySide6.QtWidgets import QGraphicsItem

from cnnstudio.core.folding import card_position, flow_axis
from cnnstudio.core.graph import Graph

FIT_MARGIN_PX = 12  # free pixels around a fitted network
_EPS = 1e-6  # core.folding's tolerance: things this close stand side by side

Box = tuple[float, float, float, float]  # left, top, right, bottom in scene units


def fit_zoom(port: QRect, rect: QRectF) -> float:
    """The zoom at which `rect` fills the viewport `port`, less a small margin."""
    room = port.adjusted(FIT_MARGIN_PX, FIT_MARGIN_PX, -FIT_MARGIN_PX, -FIT_MARGIN_PX)
    return min(room.width() / max(rect.width(), 1.0), room.height() / max(rect.height(), 1.0))


# ---- which blocks Fit folds -------------------------------------------------------------

@dataclass(frozen=True)
class ItemBoxes:
    """The canvas items' extents, taken from the item classes themselves: a node item's
    and a folded card's bounding box about their pos, and what a block's frame adds
    around its members (`frame`: margin and title tab) and around that (`frame_bounds`)."""

    node: Box
    card: Box
    frame: Box
    frame_bounds: Box


@functools.cache
def item_boxes() -> ItemBoxes:
    from cnnstudio.ui.canvas.group_item import GroupFrame, GroupItem
    from cnnstudio.ui.canvas.items import NodeItem

    def box(rect: QRectF) -> Box:
        return rect.left(), rect.top(), rect.right(), rect.bottom()

    frame = GroupFrame("", "")
    inner = QRectF(0.0, 0.0, 100.0, 100.0)
    frame.set_rect(inner)
    outer, bounds = frame.frame_rect(), frame.boundingRect()
    return ItemBoxes(
        node=box(NodeItem("", "ReLU").boundingRect()),
        card=box(GroupItem("", "").boundingRect()),
        frame=(outer.left() - inner.left(), outer.top() - inner.top(),
               outer.right() - inner.right(), outer.bottom() - inner.bottom()),
        frame_bounds=(bounds.left() - outer.left(), bounds.top() - outer.top(),
                      bounds.right() - outer.right(), bounds.bottom() - outer.bottom()))


def _unite(a: Box | None, b: Box) -> Box:
    if a is None:
        return b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _around(centre: tuple[float, float], box: Box) -> Box:
    x, y = centre
    return x + box[0], y + box[1], x + box[2], y + box[3]


def _grow(rect: Box, by: Box) -> Box:
    return rect[0] + by[0], rect[1] + by[1], rect[2] + by[2], rect[3] + by[3]


def _shown_groups(graph: Graph) -> tuple[dict[str, int], Callable[[str | None], str | None]]:
    """The depth of every group, and a map group → the outermost folded group over it
    (itself included), None when it shows unfolded."""
    depth, folded_at = graph.groups.fold_map()
    return depth, lambda group_id: folded_at.get(group_id) if group_id is not None else None


def fold_levels(graph: Graph) -> list[list[str]]:
    """What Fit may fold, least first: for each nesting depth, deepest first, the unfolded
    blocks of that depth that show (no folded block holds them; not empty). Folding one
    level hides every deeper one."""
    groups = graph.groups
    depth, resolve = _shown_groups(graph)
    by_depth: dict[int, list[str]] = {}
    for group in groups:
        if resolve(group.id) is None and not groups.is_empty(group.id):
            by_depth.setdefault(depth[group.id], []).append(group.id)
    return [by_depth[d] for d in sorted(by_depth, reverse=True)]


@dataclass(frozen=True)
class FoldPlan:
    """A folding predicted: the blocks in the order to fold them (along the flow, the
    order the prediction assumed) and the extent of the content then (None: empty)."""

    order: list[str]
    extent: Box | None

    def rect(self) -> QRectF:
        if self.extent is None:
            return QRectF()
        left, top, right, bottom = self.extent
        return QRectF(left, top, right - left, bottom - top)


def plan_folding(graph: Graph, fold: list[str], boxes: ItemBoxes | None = None) -> FoldPlan:
    """Predict, without changing `graph`, what folding the blocks `fold` (shown, unfolded,
    none inside another) would leave on the canvas: core.folding's moves, folded one after
    the other along the flow, and then the cards, the nodes and the frames drawn.

    core.folding moves everything past a block (that has nothing beside it) back by the
    block's length. Folded in flow order, each block lies past the blocks folded before
    it, so a thing's final place is its place now less the lengths of the moved blocks
    that end before it: one sort and a bisection per thing instead of a pass over the
    graph per block (0.2 s for 141 blocks of a 1,000-node graph)."""
    boxes = boxes or item_boxes()
    groups = graph.groups
    axis = flow_axis(graph)
    depth, resolve = _shown_groups(graph)
    folding = set(fold)
    in_fold: dict[str | None, str | None] = {None: None}

    def fold_over(group_id: str | None) -> str | None:  # the block of `fold` holding it
        if group_id not in in_fold:
            parent = groups.get(group_id).parent
            in_fold[group_id] = group_id if group_id in folding else fold_over(
                parent if parent in groups else None)
        return in_fold[group_id]

    # Units: what moves as one now (a node, or a folded block with all its nodes), at
    # its place along the flow; and which block of `fold` holds it.
    unit_at: dict[str, float] = {}
    unit_block: dict[str, str | None] = {}
    node_unit: dict[str, str] = {}
    for node in graph:
        if node.pos is None:
            continue
        group = node.group if node.group in groups else None
        unit = resolve(group) or node.id
        node_unit[node.id] = unit
        at = node.pos[axis]
        if unit not in unit_at:
            unit_at[unit] = at
            unit_block[unit] = fold_over(group if unit == node.id else unit)
        elif at < unit_at[unit]:
            unit_at[unit] = at

    extents: dict[str, tuple[float, float, int]] = {}  # block → start, end, units inside
    for unit, block in unit_block.items():
        if block is not None:
            start, end, count = extents.get(block, (unit_at[unit], unit_at[unit], 0))
            extents[block] = (min(start, unit_at[unit]), max(end, unit_at[unit]), count + 1)
    order = sorted((g for g in dict.fromkeys(fold) if g in extents),
                   key=lambda g: extents[g][0])
    order += [g for g in dict.fromkeys(fold) if g not in extents]  # nothing placed: no move

    everything = sorted(unit_at.values())
    moved_ends: list[float] = []
    shifted: list[float] = [0.0]  # shifted[k]: the lengths of the first k moved blocks
    for block in order:
        if block not in extents:
            continue
        start, end, inside = extents[block]
        near = (bisect.bisect_right(everything, end + _EPS)
                - bisect.bisect_left(everything, start - _EPS))
        if end - start > _EPS and near == inside:  # nothing beside it: the rest moves
            moved_ends.append(end)
            shifted.append(shifted[-1] + end - start)

    def moved_back(at: float) -> float:
        return shifted[bisect.bisect_left(moved_ends, at - _EPS)]

    # What shows afterwards, and where.
    card_of: dict[str | None, str | None] = {}  # group → the card showing it, or None

    def card_over(group_id: str | None) -> str | None:
        if group_id not in card_of:
            card_of[group_id] = resolve(group_id) or fold_over(group_id)
        return card_of[group_id]

    card_boxes: dict[str, Box] = {}
    for unit, at in unit_at.items():
        card = unit_block[unit] or (unit if unit in groups else None)
        if card is None or card in card_boxes:
            continue
        start = extents[card][0] if card in extents else at
        across = card_position(graph, card)
        if across is not None:
            place = [across[0], across[1]]
            place[axis] = start - moved_back(start)
            card_boxes[card] = _around((place[0], place[1]), boxes.card)

    content: Box | None = None
    member_boxes: dict[str, Box] = {}  # unfolded group → its members' united box
    for node in graph:
        unit = node_unit.get(node.id)
        group = node.group if node.group in groups else None
        if unit is None or unit != node.id or unit_block[unit] is not None:
            continue
        place = list(node.pos)
        place[axis] -= moved_back(place[axis])
        box = _around((place[0], place[1]), boxes.node)
        content = _unite(content, box)
        if group is not None:
            member_boxes[group] = _unite(member_boxes.get(group), box)
    for card, box in card_boxes.items():
        content = _unite(content, box)
        parent = groups.get(card).parent
        if parent in groups:
            member_boxes[parent] = _unite(member_boxes.get(parent), box)
    # Frames, innermost first: a frame surrounds its members and its inner frames.
    framed = [g for g in depth if card_over(g) is None]
    for group_id in sorted(framed, key=lambda g: -depth[g]):
        inner = member_boxes.get(group_id)
        if inner is None:  # empty: no frame
            continue
        frame = _grow(inner, boxes.frame)
        content = _unite(content, _grow(frame, boxes.frame_bounds))
        parent = groups.get(group_id).parent
        if parent in groups:
            member_boxes[parent] = _unite(member_boxes.get(parent), frame)
    return FoldPlan(order, content)


# Folding that leaves the fitted network too small to read anyway is worth it only when it
# makes it this much larger (a U-Net's folds move nothing: folding only hides its layers).
FOLD_GAIN = 1.25


def choose_folding(graph: Graph, fitted_zoom: Callable[[QRectF], float], legible: float,
                   unfolded: float) -> list[str]:
    """The blocks Fit folds, in the order to fold them: those of the deepest level at
    which the fitted zoom reaches `legible`; else the level that shows the network
    largest, if that beats the `unfolded` fitted zoom by FOLD_GAIN; else none."""
    best: tuple[float, list[str]] | None = None
    boxes = item_boxes()
    for level in fold_levels(graph):
        plan = plan_folding(graph, level, boxes)
        if plan.extent is None:
            continue
        zoom = fitted_zoom(plan.rect())
        if zoom >= legible:
            return plan.order
        if best is None or zoom > best[0]:
            best = (zoom, plan.order)
    return best[1] if best is not None and best[0] >= unfolded * FOLD_GAIN else []


def start_centre(content: QRectF, visible: QRectF, items: list[QGraphicsItem],
                 across: bool) -> QPointF:
    """Where the first view of a network bigger than the view centres: on the start of the
    flow (the top, or the left edge when it runs `across`), and across the flow on the
    first card (the Input) when the network is too wide for the view there too."""
    w, h = visible.width() / 2, visible.height() / 2
    x, y = content.center().x(), content.center().y()
    first = min(items, key=lambda item: (item.sceneBoundingRect().left() if across
                                         else item.sceneBoundingRect().top()))
    start = first.sceneBoundingRect().center()
    if across:
        x = content.left() + w
        if content.height() > visible.height():
            y = min(max(start.y(), content.top() + h), content.bottom() - h)
    else:
        y = content.top() + h
        if content.width() > visible.width():
            x = min(max(start.x(), content.left() + w), content.right() - w)
    return QPointF(x, y)
