"""The Computation page: how the selected layer computes one output value, for one of the
project's samples, with the real numbers.

The layer's inputs and output for the sample are traced once on a worker (torch); each
click or step then explains one value on the GUI thread (NumPy, milliseconds). Stepping
(arrow keys, Play) walks the window across the output, and the output map fills in with
the values visited so far.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.errors import first_line
from cnnstudio.ui.explain import page_maps
from cnnstudio.ui.explain.arithmetic_view import ArithmeticView
from cnnstudio.ui.explain.figures import build_figure
from cnnstudio.ui.explain.host import on_screen
from cnnstudio.ui.explain.map_view import MapView

if TYPE_CHECKING:
    from cnnstudio.ui.explain.host import ExplainHost

MAPS_SHARE = 0.36  # of the page's width, for the sample, input and output maps
FILL_IN_LIMIT = 256  # maps with more values than this start filled in
PLAY_MS = 250  # Play steps four values a second: slow enough to follow the window
HINT = ("Select a layer on the canvas (or right-click it → Explain Layer) to see how its"
        " values are computed, number by number.")


def trace_job(source: Any, node: str, x: np.ndarray) -> dict[str, Any]:
    """On the worker: trace `node` for sample `x` (1, C, …) and the receptive field's
    start and step of its output positions (None without an exact field)."""
    from cnnstudio.nn.explain import trace_layer
    from cnnstudio.nn.internals import receptive_field_box

    trace = trace_layer(source.module(), node, source.prep.to_float(x))
    field = None
    nd = len(trace.output_shape) - 1
    if nd >= 1:
        first = receptive_field_box(source.graph, node, (0,) * nd)
        second = receptive_field_box(source.graph, node, (1,) * nd)
        if first is not None and second is not None:
            jump = tuple(b - a for a, b in zip(first.start, second.start, strict=True))
            field = (first.start, jump, first.size)
    return {"trace": trace, "field": field}


class ComputationPage(QWidget):
    """Point 1 of the Explain view: `set_layer(node)`; `explanation` is the value shown."""

    explained = Signal()  # a value was explained and drawn (tests wait for it)

    def __init__(self, host: ExplainHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("explainComputation")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.host = host
        # The host's one worker: a second thread on the same cached module would see the
        # other's temporary hooks (occlusion's logits tap) and trace wrong numbers.
        self.background = host.background
        self.node: str | None = None
        self.trace: Any = None
        self.field: Any = None
        self.explanation: Any = None
        self.source_label = ""  # whose weights, as the status line says it
        self.channel = 0
        self.position = 0  # flat index of the value in the channel's map (or the unit)
        self.visited = np.zeros(0, bool)
        self._traced: tuple[Any, ...] | None = None  # what `trace` is of
        self._wanted: tuple[Any, ...] | None = None  # the trace asked for and still wanted
        self._due = True
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(PLAY_MS)
        self.timer.timeout.connect(self._play_step)
        host.model_changed.connect(self._invalidate)
        host.samples_changed.connect(self._samples_changed)

    # ---- building ----------------------------------------------------------------------

    def _build(self) -> None:
        controls = QHBoxLayout()
        controls.setContentsMargins(6, 4, 6, 0)
        self.sample_spin = QSpinBox()
        self.sample_spin.setObjectName("explainSampleIndex")
        self.sample_spin.setToolTip("Which of the project's samples goes through the network")
        self.sample_spin.valueChanged.connect(lambda _v: self.refresh())
        self.sample_label = QLabel()
        self.channel_spin = QSpinBox()
        self.channel_spin.setObjectName("explainChannel")
        self.channel_spin.setToolTip("Which output channel (filter) the map shows")
        self.channel_spin.valueChanged.connect(self._channel_chosen)
        self.back_button = self._tool("◀", "Previous value (Left arrow)", lambda: self.step(-1))
        self.play_button = QPushButton("Play")
        self.play_button.setObjectName("explainPlay")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Step the window across the output, four values a"
                                    " second (Space)")
        self.play_button.toggled.connect(self._play_toggled)
        self.next_button = self._tool("▶", "Next value (Right arrow)", lambda: self.step(1))
        self.fill_button = self._tool("Fill all", "Show every value of the map at once",
                                      self.fill_all)
        self.status = QLabel()
        self.status.setObjectName("explainStatus")
        # Long texts must not widen the window: the label takes what room is left.
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for widget in (QLabel("Sample"), self.sample_spin, self.sample_label, QLabel("Channel"),
                       self.channel_spin, self.back_button, self.play_button,
                       self.next_button, self.fill_button):
            controls.addWidget(widget)
        controls.addWidget(self.status, 1)
        self.picture = MapView("explainPicture")
        self.input_map = MapView("explainInput")
        self.output_map = MapView("explainOutput")
        self.output_map.clicked.connect(self._map_clicked)
        maps = QWidget()
        grid = QGridLayout(maps)
        grid.setContentsMargins(4, 2, 4, 4)
        grid.addWidget(self.picture, 0, 0)
        grid.addWidget(self.input_map, 0, 1)
        grid.addWidget(self.output_map, 1, 0, 1, 2)
        grid.setRowStretch(0, 2)
        grid.setRowStretch(1, 3)
        self.arithmetic = ArithmeticView()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(maps)
        self.splitter.addWidget(self.arithmetic)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self._split_set = False  # until the user drags it, the maps get MAPS_SHARE
        self.splitter.splitterMoved.connect(lambda *_: setattr(self, "_split_set", True))
        self.message = QLabel(HINT)
        self.message.setObjectName("explainMessage")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(self.splitter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.stack, 1)
        self._enable(False)

    def _tool(self, text: str, tip: str, slot: Any) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    def _enable(self, on: bool) -> None:
        for widget in (self.channel_spin, self.back_button, self.play_button,
                       self.next_button, self.fill_button):
            widget.setEnabled(on)

    # ---- what to show --------------------------------------------------------------------

    def set_layer(self, node: str | None) -> None:
        """Explain `node` (None: show the hint); computed now when shown, else when shown."""
        if node == self.node:
            return
        self.node = node
        self._invalidate()

    def _invalidate(self) -> None:
        self._traced = self._wanted = None
        self._due = True
        if on_screen(self):
            self.refresh()

    def _samples_changed(self) -> None:
        ctx = self.host.samples(load=False)  # loaded when a trace needs them
        count = len(ctx["x"]) if ctx else 0
        self.sample_spin.blockSignals(True)
        self.sample_spin.setRange(0, max(0, count - 1))
        self.sample_spin.blockSignals(False)
        self._invalidate()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if not self._split_set:
            width = self.splitter.width()
            self.splitter.setSizes([int(width * MAPS_SHARE), width - int(width * MAPS_SHARE)])

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.came_into_view()

    def came_into_view(self) -> None:
        """Shown, or its dock brought in front of the docks tabbed with it: catch up."""
        if self._due:
            QTimer.singleShot(0, self.refresh)  # after the show: the dock has its size

    def hideEvent(self, event: Any) -> None:
        super().hideEvent(event)
        self.stop()  # Play stepping a page nobody sees would only cost the GUI thread

    def _say(self, text: str) -> None:
        """Show `text` instead of the maps; nothing is explained meanwhile."""
        self.stop()
        self._traced = self._wanted = None  # a trace still running is no longer wanted
        self.trace = self.explanation = None
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)
        self._enable(False)

    def refresh(self) -> None:
        """Trace the layer for the chosen sample (on the worker) unless already traced."""
        self._due = False
        host = self.host
        if self.node is None or self.node not in host.window.document.graph:
            self._say(HINT)
            return
        if host.window.document.graph.node(self.node).type == "Input":
            self._say("The Input layer computes nothing: select a layer after it to see how"
                      " its values are made.")
            return
        errors = host.graph_errors()
        if errors:
            self._say(f"Fix the network's problems first (see the Problems panel): {errors[0]}")
            return
        source = host.source()
        if source is None:
            self._say(HINT)
            return
        ctx = host.samples()
        if ctx is None:
            why = host.samples_error()
            self._say(f"Cannot load the project's samples: {why}" if why else
                      "Loading samples…")
            return
        if not len(ctx["x"]):
            self._say("The project's data has no samples to explain with")
            return
        if self.sample_spin.maximum() != len(ctx["x"]) - 1:
            self._samples_changed()
            return
        i = self.sample_spin.value()
        key = (id(source), id(ctx), self.node, i)
        self._show_label(ctx, i)
        if key == self._traced:
            return
        self._traced = key
        x = np.array(ctx["x"][i:i + 1])  # the worker's own copy
        node, sample = self.node, np.array(ctx["x"][i])
        if self.trace is None or self.trace.node != node:
            self._say(f"Computing {node} for sample {i}…")

        self._wanted = key

        def done(result: dict[str, Any]) -> None:
            if key == self._wanted:  # else: another layer, sample or project since
                self._wanted = None
                self._traced_done(result, source, sample)

        def failed(err: BaseException) -> None:
            if key == self._wanted:
                self._say(f"Cannot explain {node}: {first_line(err)}")

        self.background.submit("explainComputation.trace", lambda: trace_job(source, node, x),
                               done, failed)

    def _show_label(self, ctx: dict[str, Any], i: int) -> None:
        names = list(ctx.get("class_names") or [])
        y = np.asarray(ctx["y"])[i] if len(ctx.get("y", [])) > i else None
        label = names[int(y)] if y is not None and np.ndim(y) == 0 and 0 <= int(y) < \
            len(names) else ""
        self.sample_label.setText(f"label {label}" if label else "")

    def _traced_done(self, result: dict[str, Any], source: Any, sample: np.ndarray) -> None:
        trace = result["trace"]
        same_layer = self.trace is not None and self.trace.node == trace.node and \
            self.trace.output_shape == trace.output_shape
        self.trace, self.field = trace, result["field"]
        self.source_label = "untrained" if source.untrained else source.label
        self.status.setToolTip(f"The weights: {source.state}")
        if np.ndim(sample) == 2:  # a signal (C, L): curves
            self.picture.show_signal(sample, "sample")
        else:
            self.picture.show_picture(page_maps.sample_picture(sample), "sample")
        shape = trace.output_shape
        channels = shape[0] if len(shape) >= 2 else 1
        self.channel_spin.blockSignals(True)
        self.channel_spin.setRange(0, channels - 1)
        self.channel_spin.setEnabled(channels > 1)
        if not same_layer:
            strongest = trace.strongest()
            # Start where the layer responds most: a value worth reading.
            self.channel = strongest[0] if len(shape) >= 2 and strongest else 0
            if len(shape) >= 2 and strongest:
                self.position = int(np.ravel_multi_index(tuple(strongest[1:]), shape[1:]))
            else:
                self.position = strongest[0] if strongest else 0
        self.channel_spin.setValue(self.channel)
        self.channel_spin.blockSignals(False)
        self._enable(True)
        self.channel_spin.setEnabled(channels > 1)
        self.stack.setCurrentWidget(self.splitter)
        if not same_layer or self.visited.size != page_maps.positions(shape):
            self.visited = np.zeros(page_maps.positions(shape), bool)
            # Stepping across a large map takes minutes: it starts filled in.
            self.visited[:] = page_maps.positions(shape) > FILL_IN_LIMIT
        self.show_value()

    # ---- choosing and stepping ------------------------------------------------------------

    @property
    def index(self) -> tuple[int, ...]:
        """The output index explained now."""
        return page_maps.output_index(self.trace.output_shape, self.channel, self.position)

    def show_value(self) -> None:
        """Explain the current value and draw it (GUI thread: NumPy only)."""
        if self.trace is None:
            return
        self.visited[self.position] = True
        e = self.trace.explain(self.index)
        self.explanation = e
        labels = page_maps.class_labels(self.host, self.trace)
        trace = self.trace
        logits = page_maps.classifier_logits(self.host, trace)

        def build(room: float) -> Any:
            return build_figure(e, self.arithmetic.metrics, labels,
                                lambda i: page_maps.input_label(trace, i), room, logits)

        self.arithmetic.show_figure(build(self.arithmetic.room()), build)
        page_maps.draw_maps(self, e)
        total = page_maps.positions(self.trace.output_shape)
        self.status.setText(f"value {self.position + 1} of {total} · {self.source_label}")
        self.explained.emit()

    def step(self, delta: int) -> None:
        """Move to the next (or previous) value of the map, wrapping at its ends."""
        if self.trace is None:
            return
        total = page_maps.positions(self.trace.output_shape)
        self.position = (self.position + delta) % total
        self.show_value()

    def step_row(self, delta: int) -> None:
        if self.trace is None:
            return
        cols = page_maps.display_columns(self.trace.output_shape)
        total = page_maps.positions(self.trace.output_shape)
        target = self.position + delta * cols
        if 0 <= target < total:
            self.position = target
            self.show_value()

    def fill_all(self) -> None:
        if self.trace is not None:
            self.visited[:] = True
            self.show_value()

    def _channel_chosen(self, channel: int) -> None:
        if self.trace is None or channel == self.channel:
            return
        self.channel = channel
        self.visited[:] = self.visited.size > FILL_IN_LIMIT
        self.show_value()

    def _map_clicked(self, row: int, col: int) -> None:
        if self.trace is None:
            return
        flat = row * page_maps.display_columns(self.trace.output_shape) + col
        if flat < page_maps.positions(self.trace.output_shape):
            self.position = flat
            self.show_value()
            self.setFocus()  # the arrow keys step from here

    def _play_toggled(self, on: bool) -> None:
        self.play_button.setText("Pause" if on else "Play")
        if on:
            self.setFocus()
            self.timer.start()
        else:
            self.timer.stop()

    def _play_step(self) -> None:
        if self.trace is None:
            self.stop()
            return
        total = page_maps.positions(self.trace.output_shape)
        if self.position + 1 >= total and self.visited.all():
            self.stop()  # the map is full: nothing more to watch
            return
        self.step(1)

    def stop(self) -> None:
        """Stop playing."""
        self.play_button.setChecked(False)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        moves = {Qt.Key.Key_Right: lambda: self.step(1), Qt.Key.Key_Left: lambda: self.step(-1),
                 Qt.Key.Key_Down: lambda: self.step_row(1),
                 Qt.Key.Key_Up: lambda: self.step_row(-1),
                 Qt.Key.Key_Space: lambda: self.play_button.toggle(),
                 Qt.Key.Key_Home: lambda: self.step(-self.position)}
        if key in moves and self.trace is not None:
            moves[key]()
            event.accept()
            return
        super().keyPressEvent(event)
