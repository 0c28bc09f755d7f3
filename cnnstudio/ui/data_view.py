"""The Data view: choose the data source, then see samples, class counts, splits and the
files that were skipped.

The data is loaded off the GUI thread (`cnnstudio.ui.data_loading`), automatically and
debounced when what the load depends on changes (the `data` settings, the Input's shape,
the task, another project) — but only while the view is visible, so a big folder is not
decoded at start-up behind a closed tab; `reload()` loads at once. After a load the class
count reaches the document, so the problems list checks the classifier's output size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.train.model_io import DataRequest
from cnnstudio.ui.commands import SetParamsCommand
from cnnstudio.ui.data_form import DataSettingsForm
from cnnstudio.ui.data_loading import DataLoader, request_for, source_root
from cnnstudio.ui.data_preview import SPLIT_COLORS, SkippedList, ThumbnailGrid
from cnnstudio.ui.document import Document
from cnnstudio.ui.param_editors import ERROR_COLOR

if TYPE_CHECKING:
    from cnnstudio.data import Dataset
    from cnnstudio.ui.data_chart import ClassCountChart
    from cnnstudio.ui.data_samples import Preview
    from cnnstudio.ui.main_window import MainWindow

GROWN_HEIGHT = 350  # the Data dock's height when first shown, if it was lower
DEBOUNCE_MS = 300  # typing a path or stepping a value fires one load, not one per change
STAGES = {"starting": "Starting", "scanning": "Scanning folders", "decoding": "Decoding",
          "reading": "Reading", "generating": "Generating", "preview": "Preparing preview"}


def _muted(label: QLabel) -> QLabel:
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def _count(n: int) -> str:
    return f"{n:,}"


class DataView(QWidget):
    """The data source form and the preview of the loaded dataset.

    `dataset` is the last Dataset loaded (None before the first load, after a failed one
    and after another project was opened); `dataset_loaded(dataset)` fires after each load.
    """

    dataset_loaded = Signal(object)  # cnnstudio.data.Dataset
    load_failed = Signal(str)  # the one-line message shown in the view
    progress_changed = Signal(str, int, int)  # stage, done, total (total 0: not known)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dataViewPanel")
        self.doc = document
        self._dataset: Dataset | None = None
        self._preview: Preview | None = None
        self._shown_request: DataRequest | str | None = None  # what the preview shows
        self._pending: DataRequest | None = None  # what is being loaded
        self.chart: ClassCountChart | None = None  # made on first use (pyqtgraph is slow)
        # Whether the user can see the view, from its dock's visibilityChanged: a dock in a
        # background tab is moved off-screen, not hidden, so isVisible() stays True there.
        self._on_screen: bool | None = None
        self.form = DataSettingsForm(document, self)
        self.loader = DataLoader(self)
        self._build()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._auto_load)
        self.loader.progressed.connect(self._on_progress)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_failed)
        document.settings_changed.connect(self._settings_changed)
        document.project_replaced.connect(self._project_replaced)
        for edit in (document.params_changed, document.node_added, document.node_removed,
                     document.node_renamed):  # the Input node says the data's shape
            edit.connect(self.inputs_changed)
        document.graph_reset.connect(self.inputs_changed)

    # ---- layout ---------------------------------------------------------------------------

    def _build(self) -> None:
        self.reload_button = QPushButton("Reload", self)
        self.reload_button.setObjectName("dataReload")
        self.reload_button.setToolTip("Load the data again (e.g. after files changed on disk)")
        self.reload_button.clicked.connect(self.reload)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("dataProgress")
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.message = QLabel(self)
        self.message.setObjectName("dataMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        status = QHBoxLayout()
        status.addWidget(self.progress, 1)
        status.addStretch(0)
        status.addWidget(self.reload_button)
        settings = QWidget(self)
        column = QVBoxLayout(settings)
        column.setContentsMargins(6, 4, 6, 4)
        column.addWidget(self.form)
        column.addLayout(status)
        column.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidget(settings)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumWidth(220)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.info = _muted(QLabel("Samples", self))
        self.info.setObjectName("dataInfo")
        self.info.setWordWrap(True)  # a long line must not widen the dock past the canvas
        # What the files were and what the Input makes of them (a conversion is no error,
        # but a student must see that 32×32 colour pictures became 8×8 grey ones).
        self.formats = QLabel(self)
        self.formats.setObjectName("dataFormats")
        self.formats.setWordWrap(True)
        self.formats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fit_input = QPushButton(self)
        self.fit_input.setObjectName("dataFitInput")
        self.fit_input.setToolTip("Change the Input node's shape to the data's own, so the"
                                  " images are used as they are (one undoable step)")
        self.fit_input.clicked.connect(lambda _checked=False: self.set_input_to_data())
        self.fit_input.hide()
        fit_row = QHBoxLayout()
        fit_row.setContentsMargins(0, 0, 0, 0)
        fit_row.addWidget(self.fit_input)
        fit_row.addStretch(1)
        self.samples = ThumbnailGrid(self)
        samples = QWidget(self)
        middle = QVBoxLayout(samples)
        middle.setContentsMargins(4, 4, 4, 4)
        middle.setSpacing(3)
        middle.addWidget(self.info)
        middle.addWidget(self.formats)
        middle.addLayout(fit_row)
        middle.addWidget(self.message)
        middle.addWidget(self.samples, 1)

        self.splits = QLabel(self)
        self.splits.setObjectName("dataSplits")
        self.splits.setWordWrap(True)
        self.chart_page = QWidget(self)
        chart_column = QVBoxLayout(self.chart_page)
        chart_column.setContentsMargins(4, 4, 4, 4)
        chart_column.setSpacing(3)
        chart_column.addWidget(self.splits)
        self.chart_slot = chart_column
        chart_column.addStretch(1)
        self.skipped = SkippedList(self)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.chart_page, "Classes")
        self.tabs.addTab(self.skipped, "Skipped")
        samples.setMinimumWidth(170)
        self.tabs.setMinimumWidth(190)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setChildrenCollapsible(False)
        for widget, stretch in ((scroll, 0), (samples, 3), (self.tabs, 2)):
            splitter.addWidget(widget)
            splitter.setStretchFactor(splitter.indexOf(widget), stretch)
        splitter.setSizes([250, 235, 230])
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._show_nothing("No data loaded yet")

    def _ensure_chart(self) -> ClassCountChart:
        if self.chart is None:
            from cnnstudio.ui.data_chart import ClassCountChart

            self.chart = ClassCountChart(self.chart_page)
            self.chart_slot.insertWidget(1, self.chart, 1)
            self.chart_slot.takeAt(2)  # the stretch that held the place
        return self.chart

    # ---- public surface -------------------------------------------------------------------

    @property
    def dataset(self) -> Dataset | None:
        """The last Dataset loaded, or None."""
        return self._dataset

    @property
    def preview(self) -> Preview | None:
        """What the view shows of `dataset`: thumbnails, labels, counts per split."""
        return self._preview

    def on_screen(self) -> bool:
        """True when the user can see the view (then it loads by itself)."""
        return self.isVisible() and self._on_screen is not False

    def set_on_screen(self, visible: bool) -> None:
        """Say whether the view can be seen (connect a dock's `visibilityChanged`)."""
        self._on_screen = visible
        self._visibility_changed()

    def _visibility_changed(self) -> None:
        if not self.on_screen():
            self._timer.stop()
        elif self.current_request() not in (self._shown_request, self._pending):
            self._timer.start(50)  # after the dock finished showing, not inside its event

    def is_loading(self) -> bool:
        """True while a load runs."""
        return self.loader.is_busy()

    def reload(self) -> None:
        """Load the project's data now (cancelling a load in progress)."""
        self._timer.stop()
        request = self.current_request()
        if isinstance(request, str):
            self.loader.cancel()
            self._pending = None
            self._shown_request = request
            self._on_failed(request)
            return
        self._pending = request
        self.loader.start(request)
        self.progress.setRange(0, 0)
        self.progress.setFormat("Starting…")
        self.progress.show()
        self._set_message("")
        self.samples.set_placeholder("Loading…")  # shown while the grid is empty

    def current_request(self) -> DataRequest | str:
        """What the project asks to load, or the one-line reason it cannot be loaded."""
        return request_for(self.doc.project)

    # ---- when to load ---------------------------------------------------------------------

    def inputs_changed(self) -> None:
        """Something the load may depend on changed: reload (debounced) if it did and the
        view is visible; otherwise the view reloads when it is shown."""
        request = self.current_request()
        if request == self._shown_request and self._pending is None:
            self._publish_class_count()  # a settings edit cleared it; the data is the same
            return
        if request == self._pending:
            return
        if self.on_screen():
            self._timer.start(DEBOUNCE_MS)

    def _auto_load(self) -> None:
        if self.on_screen() and self.current_request() not in (self._shown_request,
                                                               self._pending):
            self.reload()

    def _settings_changed(self, section: str) -> None:
        if section == "data":
            self.inputs_changed()

    def _project_replaced(self) -> None:
        self.loader.cancel()
        self._timer.stop()
        self._dataset, self._preview = None, None
        self._shown_request = self._pending = None
        self._show_nothing("No data loaded yet")
        self.progress.hide()
        self._set_message("")
        if self.on_screen():
            self._timer.start(DEBOUNCE_MS)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._visibility_changed()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._timer.stop()

    # ---- results --------------------------------------------------------------------------

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        title = STAGES.get(stage, stage.capitalize())
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat(f"{title} {_count(done)} / {_count(total)}")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(f"{title}…")
        self.progress_changed.emit(stage, done, total)

    def _on_loaded(self, dataset: Dataset, preview: Preview) -> None:
        self._shown_request, self._pending = self._pending, None
        self._dataset, self._preview = dataset, preview
        self.progress.hide()
        self._show_preview(preview)
        self._set_message("")
        self._publish_class_count()
        self.dataset_loaded.emit(dataset)

    def _on_failed(self, message: str) -> None:
        if self._pending is not None:
            self._shown_request, self._pending = self._pending, None
        self._dataset, self._preview = None, None
        self.progress.hide()
        self._show_nothing("No data to show")
        self._set_message(message, error=True)
        self.load_failed.emit(message)

    def _publish_class_count(self) -> None:
        if self._dataset is None or self.doc.num_classes == self._dataset.num_classes:
            return
        if self.current_request() != self._shown_request:
            return  # the settings moved on while this loaded: its class count is stale
        self.doc.set_num_classes(self._dataset.num_classes)

    def _set_message(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(f"color: {ERROR_COLOR};" if error else "")
        self.message.setVisible(bool(text))

    def message_text(self) -> str:
        """The load message shown in the view (a load error, or '')."""
        return self.message.text()

    def _show_formats(self, preview: Preview | None) -> None:
        line = preview.formats_line if preview is not None else ""
        self.formats.setText(line)
        self.formats.setVisible(bool(line))
        # A conversion in normal text; data used as it is, muted.
        self.formats.setForegroundRole(QPalette.ColorRole.WindowText if preview is not None
                                       and preview.converted
                                       else QPalette.ColorRole.PlaceholderText)
        shape = preview.suggested_shape if preview is not None else None
        if shape:
            self.fit_input.setText(f"Set the Input to {'×'.join(map(str, shape))}")
        self.fit_input.setVisible(bool(shape))

    def set_input_to_data(self) -> bool:
        """Set the Input node's shape to the loaded data's own (as the button offers), as
        one undo step; False when there is nothing to set."""
        shape = self._preview.suggested_shape if self._preview is not None else None
        node = self.doc.graph.input_node()
        if not shape or node is None or list(node.params.get("shape") or []) == list(shape):
            return False
        text = f"Set the Input to {'×'.join(map(str, shape))}"
        params = dict(node.params, shape=list(shape))
        # A macro: never merged with an earlier edit of the shape, one entry in the history.
        self.doc.undo_stack.beginMacro(text)
        self.doc.undo_stack.push(SetParamsCommand(self.doc, node.id, params, field="shape"))
        self.doc.undo_stack.endMacro()
        return True

    def _show_nothing(self, placeholder: str) -> None:
        self.samples.clear()
        self.samples.set_placeholder(placeholder)
        self.info.setText("Samples")
        self._show_formats(None)
        self.splits.setText("")
        self.skipped.show_skipped([])
        self.tabs.setTabText(1, "Skipped")
        if self.chart is not None:
            self.chart.show_counts([], {})

    def _show_preview(self, preview: Preview) -> None:
        self.samples.show_preview(preview)
        shape = "×".join(str(d) for d in preview.sample_shape)
        dtype = preview.dtype.removeprefix("torch.")
        total = sum(preview.split_sizes.values())
        classes = len(preview.class_names)
        where = "training split" if preview.split_sizes.get("train") else "all samples"
        self.info.setText(f"{_count(total)} samples · {shape} {dtype} · {classes} "
                          f"class{'es' if classes != 1 else ''}")
        self.info.setToolTip(f"Thumbnails from the {where}; loaded in {preview.seconds:.1f} s")
        self._show_formats(preview)
        sizes = preview.split_sizes
        # The split line doubles as the chart's legend: a square in each split's colour.
        self.splits.setText("&nbsp;&nbsp; ".join(
            f"<span style='color:{SPLIT_COLORS[key]}'>■</span>&nbsp;{title}&nbsp;"
            f"<b>{_count(sizes.get(key, 0))}</b>"
            for key, title in (("train", "Train"), ("val", "Validation"), ("test", "Test"))
            if key != "test" or key in sizes))
        self._ensure_chart().show_counts(preview.class_names, preview.counts, preview.unit)
        request = self._shown_request
        root = source_root(request) if isinstance(request, DataRequest) else None
        self.skipped.show_skipped(preview.skipped, root)
        n = len(preview.skipped)
        self.tabs.setTabText(1, f"Skipped ({n})" if n else "Skipped")


def install_data_view(window: MainWindow) -> tuple[DataView, QDockWidget]:
    """Add the Data dock (objectName `dataView`) to `window`, tabbed behind the model
    summary; the view loads when the dock is shown."""
    view = DataView(window.document, window)
    dock = window.add_dock("dataView", "Data", view, Qt.DockWidgetArea.BottomDockWidgetArea,
                           beside=window.summary_dock)  # the summary in front: no load yet
    grown = []

    def grow(visible: bool) -> None:
        # The bottom panels' default height shows one row of thumbnails; the first time the
        # Data tab comes up, make room for the form and a few rows (the user can resize).
        if visible and not grown and not dock.isFloating() and dock.height() < GROWN_HEIGHT:
            grown.append(True)
            QTimer.singleShot(0, window, lambda: window.resizeDocks(
                [dock], [GROWN_HEIGHT], Qt.Orientation.Vertical))

    dock.visibilityChanged.connect(grow)
    dock.visibilityChanged.connect(view.set_on_screen)
    return view, dock
