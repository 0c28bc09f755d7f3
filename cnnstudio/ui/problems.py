"""The problems list: every inference problem, on the node at fault, with its quick fix.

Clicking a problem selects its node; the "Fix: …" button (or the context menu) applies
`core.edits.apply_fix` as one undo entry.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from cnnstudio.core import edits
from cnnstudio.core.shapes import ERROR, Fix, Problem
from cnnstudio.ui.actions import icon
from cnnstudio.ui.commands import push_snapshot
from cnnstudio.ui.document import Document

RESERVE_ROLE = Qt.ItemDataRole.UserRole + 1  # pixels kept free at the right for the button


def apply_fix(doc: Document, fix: Fix) -> None:
    """Apply a quick fix as one undo entry; raises GraphError (nothing changed) if the graph
    refuses it."""
    push_snapshot(doc, fix.label, lambda graph: edits.apply_fix(graph, fix))


def problem_text(problem: Problem) -> str:
    """One line: `node: message`."""
    return str(problem)


class _Delegate(QStyledItemDelegate):
    """Paints the row's icon and text short of the fix button at its right."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        reserve = index.data(RESERVE_ROLE) or 0
        if reserve:
            option = QStyleOptionViewItem(option)
            option.rect = option.rect.adjusted(0, 0, -int(reserve), 0)
        super().paint(painter, option, index)


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
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.itemClicked.connect(self._on_item)
        self.itemActivated.connect(self._on_item)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)  # coalesce the many events of one edit into one refresh
        self._timer.timeout.connect(self.refresh)
        document.inference_changed.connect(self._timer.start)
        document.project_replaced.connect(self._timer.start)
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
        if problem.fix is None:
            return
        holder = QWidget()  # plain QWidget: clicks beside the button fall through to the row
        layout = QHBoxLayout(holder)
        layout.setContentsMargins(0, 1, 4, 1)
        layout.addStretch(1)
        button = QPushButton(icon("fix"), f"Fix: {problem.fix.label}", holder)
        button.setObjectName("fixButton")
        button.setToolTip(f"{problem.fix.label} (one undo step)")
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        fix = problem.fix
        button.clicked.connect(lambda _c=False, f=fix: self.apply(f))
        layout.addWidget(button)
        hint = holder.sizeHint()
        item.setData(RESERVE_ROLE, button.sizeHint().width() + 12)
        item.setSizeHint(hint.expandedTo(item.sizeHint()).expandedTo(hint))
        self.setItemWidget(item, holder)

    def apply(self, fix: Fix) -> None:
        """Apply `fix` (one undo entry) and select the node it changed, if it remains."""
        apply_fix(self.doc, fix)
        if fix.node in self.doc.graph:
            self.doc.set_selection([fix.node])

    def apply_fix_at(self, row: int) -> bool:
        """Apply the fix of the problem in `row`; False if it has none."""
        if 0 <= row < len(self._problems) and self._problems[row].fix is not None:
            self.apply(self._problems[row].fix)  # type: ignore[arg-type]
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
        if problem.fix is not None:
            menu.addAction(icon("fix"), f"Fix: {problem.fix.label}",
                           lambda: self.apply_fix_at(row))
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
