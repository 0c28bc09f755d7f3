"""What the GUI thread tells a running training, as plain attributes (no Qt, no torch).

The GUI writes; the training thread reads between batches. Assigning a Python attribute
is atomic under the GIL, and the Trainer's own `request_stop()`/`pause()`/`resume()` are
thread-safe, so no lock is needed. A stop or pause asked for before the trainer exists
(while data loads) is applied the moment it attaches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class RunControls:
    """Stop/pause requests and what the live views want to see."""

    def __init__(self) -> None:
        self.trainer: Any = None  # the running Trainer, set on the training thread
        self.stop_requested = False
        self.paused = False
        self.filter_node: str | None = None  # convolution whose filters are shown
        self.activation_node: str | None = None  # node whose feature maps are shown
        self.sample_index = 0  # index into the samples of the run context
        self.refresh_requested = True  # the views changed: send a snapshot at the next batch
        # Called (on the GUI thread) after each focus change, when a run must be told
        # at once rather than polled between batches (a distributed job's watch file).
        self.focus_listener: Callable[[], None] | None = None

    def attach(self, trainer: Any) -> None:
        """Called on the training thread when the trainer starts; applies early requests."""
        self.trainer = trainer
        if self.stop_requested:
            trainer.request_stop()
        elif self.paused:
            trainer.pause()

    def request_stop(self) -> None:
        """Stop before the next batch (also while paused or still loading)."""
        self.stop_requested = True
        trainer = self.trainer
        if trainer is not None:
            trainer.request_stop()

    def pause(self) -> None:
        self.paused = True
        trainer = self.trainer
        if trainer is not None:
            trainer.pause()

    def resume(self) -> None:
        self.paused = False
        trainer = self.trainer
        if trainer is not None:
            trainer.resume()

    def focus(self, *, filter_node: str | None = None, activation_node: str | None = None,
              sample_index: int | None = None) -> None:
        """Change what the live views show; the next batch sends a fresh snapshot."""
        if filter_node is not None:
            self.filter_node = filter_node
        if activation_node is not None:
            self.activation_node = activation_node
        if sample_index is not None:
            self.sample_index = sample_index
        self.refresh_requested = True
        listener = self.focus_listener
        if listener is not None:
            listener()
