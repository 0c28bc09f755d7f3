"""The problems list: every inference problem, on the node at fault, with its quick fix.

Clicking a problem selects its node; each "Fix: …" button (or the context menu) applies
`core.edits.apply_fix` as one undo entry. A problem may offer several repairs (shrink the
kernel or pad the input; connect a lone layer or delete it): the buttons sit in a row under
the wrapped text, so they never hide any of it.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QGuiApplication, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QBoxLayout,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core import edits
from cnnstudio.core.shapes import ERROR, Fix, Problem
from cnnstudio.ui.commands import push_snapshot
from cnnstudio.ui.document import Document, deferred
from cnnstudio.ui.icons import icon

FIXES_ROLE = Qt.ItemDataRole.UserRole + 1  # the widths of the fix buttons under the text
_PAD, _ICON, _GAP = 4, 16, 6  # row padding, icon size, icon-to-text gap (pixels)
_BUTTON_ROW = 30  # height of one row of fix buttons under a problem's text
_SPACING = 6  # between two fix buttons
_INDENT = _PAD + _ICON + _GAP  # buttons line up with the text, not the icon


def button_rows(widths: list[int], room: int) -> int:
    """How many rows the fix buttons take: one beside the other when they fit in `room`
    pixels, else one above the other."""
    if not widths:
        return 0
    return 1 if sum(widths) + _SPACING * (len(widths) - 1) <= room else len(widths)


class _FixRow(QWidget):
    """The fix buttons of one problem, under its text: side by side while they fit the
    row's width, stacked when the list is too narrow (never clipped, never over text)."""

    def __init__(self) -> None:
        super().__init__()  # a plain QWidget: clicks beside the buttons reach the row
        column = QVBoxLayout(self)
        column.setContentsMargins(_INDENT, 0, _PAD, _PAD)
        column.addStretch(1)
        self.line = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.line.setSpacing(_SPACING)
        column.addLayout(self.line)
        self.line.addStretch(1)  # buttons keep their size, packed to the left (or top)
        self.buttons: list[QPushButton] = []

    def add(self, button: QPushButton) -> None:
        button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.line.insertWidget(len(self.buttons), button)
        self.buttons.append(button)

    def widths(self) -> list[int]:
        for button in self.buttons:  # the style's font and margins: as they will show
            button.ensurePolished()
        return [b.sizeHint().width() for b in self.buttons]

    def resizeEvent(self, event) -> None:  # noqa: ANN001 (QResizeEvent)
        rows = button_rows(self.widths(), self.width() - _INDENT - _PAD)
        self.line.setDirection(QBoxLayout.Direction.LeftToRight if rows <= 1
                               else QBoxLayout.Direction.TopToBottom)
        super().resizeEvent(event)


def apply_fix(doc: Document, fix: Fix) -> None:
    """Apply a quick fix as one undo entry; raises GraphError (nothing changed) if the graph
    refuses it."""
    push_snapshot(doc, fix.label, lambda graph: edits.apply_fix(graph, fix))


def problem_text(problem: Problem) -> str:
    """One line: `node: message`."""
    return str(problem)


class _Delegate(QStyledItemDelegate):
    """Paints the icon and the whole text, wrapped to the list's width; the fix buttons
    get a row of their own under the text, so they never cover it."""

    def _row_width(self) -> int:
        view = self.parent()
        return view.viewport().width() if isinstance(view, QListWidget) else 300

    def _text_width(self) -> int:
        return max(60, self._row_width() - 2 * _PAD - _ICON - _GAP)

    def _text_height(self, option: QStyleOptionViewItem, text: str) -> int:
        bounds = option.fontMetrics.boundingRect(
            QRect(0, 0, self._text_width(), 100_000), Qt.TextFlag.TextWordWrap, text)
        return max(bounds.height(), _ICON)

    def sizeHint(self, option: QStyleOptionViewItem,
                 index: QModelIndex | QPersistentModelIndex) -> QSize:
        text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        room = self._row_width() - _INDENT - _PAD  # as _FixRow measures it
        buttons = _BUTTON_ROW * button_rows(list(index.data(FIXES_ROLE) or []), room)
        height = self._text_height(option, text) + 2 * _PAD + buttons
        return QSize(self._text_width() + 2 * _PAD + _ICON + _GAP, height)

    def updateEditorGeometry(self, editor: QWidget, option: QStyleOptionViewItem,
                             index: QModelIndex | QPersistentModelIndex) -> None:
        # The fix buttons' holder covers the whole row (the base class would start it
        # right of the icon), so its layout measures the same width as sizeHint does.
        editor.setGeometry(option.rect)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, widget)
        rect = opt.rect
        icon_rect = QRect(rect.left() + _PAD, rect.top() + _PAD + 1, _ICON, _ICON)
        opt.icon.paint(painter, icon_rect)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.save()
        painter.setPen(opt.palette.color(role))
        painter.setFont(opt.font)
        text_rect = QRect(icon_rect.right() + 1 + _GAP, rect.top() + _PAD,
                          rect.width() - 2 * _PAD - _ICON - _GAP,
                          self._text_height(opt, opt.text))
        painter.drawText(text_rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
                                        | Qt.TextFlag.TextWordWrap), opt.text)
        painter.restore()


class ProblemsList(QListWidget):
    """Problems of the open network (objectName `problemsList`)."""

    node_activated = Signal(str)  # the user picked a problem: select and show its node
    counts_changed = Signal(int, int)  # errors, warnings

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("problemsList")
        self.doc = document
        self._problems: list[Problem] = []
        self.setItemDelegate(_Delegate(self))
        self.setUniformItemSizes(False)
        self.setWordWrap(True)
        # Re-measure rows when the width changes: the wrapped text takes more or fewer lines.
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.itemClicked.connect(self._on_item)
        self.itemActivated.connect(self._on_item)
        self._timer = deferred(self, self.refresh, document.inference_invalidated,
                               document.project_replaced)
        self.refresh()

    @property
    def problems(self) -> list[Problem]:
        """The problems shown, in order."""
        return list(self._problems)

    def refresh(self) -> None:
        """Show the document's current problems (errors first)."""
        self._timer.stop()
        inference = self.doc.inference
        problems = sorted(inference.problems, key=lambda p: p.severity != ERROR)
        errors = sum(p.severity == ERROR for p in problems)
        if problems == self._problems:
            return
        current = self.currentRow()
        kept = self._problems[current] if 0 <= current < len(self._problems) else None
        self._problems = problems
        self.clear()
        for problem in problems:
            self._add_item(problem)
        if kept in problems:
            self.setCurrentRow(problems.index(kept))
        self.counts_changed.emit(errors, len(problems) - errors)
        self.viewport().update()

    def _add_item(self, problem: Problem) -> None:
        item = QListWidgetItem(icon("error" if problem.severity == ERROR else "warning"),
                               problem_text(problem), self)
        item.setToolTip(f"{problem.severity}: {problem_text(problem)}")
        fixes = problem.fixes
        if not fixes:
            return
        holder = _FixRow()
        for fix in fixes:
            button = QPushButton(icon("fix"), f"Fix: {fix.label}", holder)
            button.setObjectName("fixButton")
            button.setToolTip(f"{fix.label} (one undo step)")
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _c=False, f=fix: self.apply(f))
            holder.add(button)
        item.setData(FIXES_ROLE, holder.widths())
        self.setItemWidget(item, holder)

    def apply(self, fix: Fix) -> None:
        """Apply `fix` (one undo entry) and select the node it changed, if it remains."""
        apply_fix(self.doc, fix)
        if fix.node in self.doc.graph:
            self.doc.set_selection([fix.node])

    def apply_fix_at(self, row: int, choice: int = 0) -> bool:
        """Apply fix number `choice` (0: the first offered) of the problem in `row`; False
        if it has no such fix."""
        if 0 <= row < len(self._problems) and 0 <= choice < len(self._problems[row].fixes):
            self.apply(self._problems[row].fixes[choice])
            return True
        return False

    def _on_item(self, item: QListWidgetItem) -> None:
        row = self.row(item)
        if 0 <= row < len(self._problems) and self._problems[row].node:
            self.node_activated.emit(self._problems[row].node)

    def _context_menu(self, pos: QPoint) -> None:
        row = self.indexAt(pos).row()
        if not 0 <= row < len(self._problems):
            return
        problem = self._problems[row]
        menu = QMenu(self)
        if problem.node:
            menu.addAction(f"Select {problem.node}",
                           lambda: self.node_activated.emit(problem.node))
        for fix in problem.fixes:
            menu.addAction(icon("fix"), f"Fix: {fix.label}", lambda f=fix: self.apply(f))
        menu.addAction("Copy Message",
                       lambda: QGuiApplication.clipboard().setText(problem_text(problem)))
        menu.exec(self.viewport().mapToGlobal(pos))

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.count():
            return
        # An empty list says so, rather than looking broken.
        painter = QPainter(self.viewport())
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        rect = self.viewport().rect()
        size = 18
        text = "No problems: every layer fits."
        width = painter.fontMetrics().horizontalAdvance(text) + size + 8
        x = rect.center().x() - width // 2
        icon("ok").paint(painter, QRect(x, rect.center().y() - size // 2, size, size))
        painter.drawText(QRect(x + size + 8, rect.top(), width, rect.height()),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        painter.end()
