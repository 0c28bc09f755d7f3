"""Long work on a worker thread, shown in the status bar: what is happening, a busy bar and,
where stopping makes sense, a Cancel button (exports, opening a project).

The work itself runs on a `Background` worker; this only says that it runs. The bar sits
with the status bar's permanent widgets, so the status messages shown meanwhile (and the
one that says what is being done) do not hide it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QStatusBar, QToolButton, QWidget


class BusyBar(QWidget):
    """A busy indicator (objectName `name`) in `status`'s permanent area, hidden when idle."""

    def __init__(self, status: QStatusBar, name: str) -> None:
        super().__init__(status)
        self.setObjectName(name)
        self.status = status
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 0)  # busy: the work cannot say how far it is
        self.bar.setMaximumSize(120, 14)
        self.bar.setTextVisible(False)
        row.addWidget(self.bar)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setText("Cancel")
        self.cancel_button.setObjectName(f"{name}Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        row.addWidget(self.cancel_button)
        self._on_cancel: Callable[[], None] | None = None
        status.insertPermanentWidget(0, self)
        self.hide()

    @property
    def running(self) -> bool:
        return not self.isHidden()

    def start(self, text: str, cancel: Callable[[], None] | None = None) -> None:
        """Say `text` in the status bar and show the bar, with Cancel calling `cancel`."""
        self._on_cancel = cancel
        self.cancel_button.setVisible(cancel is not None)
        self.cancel_button.setEnabled(True)
        self.setToolTip(text)
        self.status.showMessage(text)
        self.show()

    def stop(self) -> None:
        """The work ended (its outcome is said by whoever ran it)."""
        self._on_cancel = None
        self.hide()

    def _cancel(self) -> None:
        if self._on_cancel is not None:
            self.cancel_button.setEnabled(False)  # once: the work may take a moment to stop
            self._on_cancel()
