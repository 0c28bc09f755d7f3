"""The Explain view's "What the filters respond to" page: for the chosen layer, each
filter's top-k dataset samples cropped to the receptive field of their strongest
position (Zeiler & Fergus), an image synthesised to excite it, and for one image its
occlusion-sensitivity map beside Grad-CAM.

Everything heavy runs on the host's worker with progress and Cancel (`response_jobs`);
the page computes only while it is visible, and again only when the layer, the model,
the split or k changed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QHideEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.errors import first_line
from cnnstudio.ui.explain import page_jobs as jobs_book
from cnnstudio.ui.explain import response_jobs as jobs
from cnnstudio.ui.explain.gallery import (
    GALLERY_TIP,
    FilterRow,
    HitStrip,
    Picture,
    display_box,
    hit_caption,
    hit_pictures,
    to_rgb,
)
from cnnstudio.ui.explain.host import on_screen
from cnnstudio.ui.explain.image_side import ImageSide
from cnnstudio.ui.training.user_requests import IMAGE_FILTER

if TYPE_CHECKING:
    from cnnstudio.ui.explain.host import ExplainHost

PAGE = 16  # filters per page (and per synthesis)
DEFAULT_K = 9
THUMB = 40  # pixels of one top-k picture
PREVIEW = 84  # pixels of the hovered sample, whole
SPLIT_CHOICES = (("validation", "val"), ("training", "train"), ("all", "all"))


def _input_id(source: Any) -> str | None:
    node = source.graph.input_node()
    return node.id if node is not None else None


def _image_classifier(source: Any) -> bool:
    """Whether occlusion and Grad-CAM apply: a classifier of (C, H, W) images."""
    node = source.graph.input_node()
    try:
        shape = tuple(node.resolved_params()["shape"]) if node is not None else ()
    except Exception:  # an unreadable shape: the Problems panel says why
        return False
    return source.task == "classification" and len(shape) == 3


class FilterResponsesPanel(QWidget):
    """What each filter of a layer responds to (see the module's docstring)."""

    def __init__(self, host: ExplainHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("explainResponses")
        self.host = host
        self.node: str | None = None
        self.cache = jobs.DataCache()  # used on the worker only
        self.occlusions = jobs.OcclusionCache()  # used on the worker only
        self.top: jobs.TopK | None = None
        self.maps: jobs.ImageMaps | None = None
        self.synthesis: jobs.Synthesised | None = None
        self.rows: list[FilterRow] = []
        self.image_file: str | None = None
        self._source: Any = None  # the model the results are for
        self._top_key: tuple | None = None
        self._image_key: tuple | None = None
        self.jobs = jobs_book.PageJobs(host, "explainResponses", self._paused)
        self._build()
        host.model_changed.connect(self._model_changed)
        host.jobs_forgotten.connect(self._jobs_forgotten)

    # ---- building --------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Samples", self))
        self.split = QComboBox(self)
        self.split.setObjectName("responsesSplit")
        for text, key in SPLIT_CHOICES:
            self.split.addItem(text, key)
        self.split.setToolTip("Which samples to search for each filter's strongest responses")
        self.split.currentIndexChanged.connect(lambda _i: self.refresh())
        controls.addWidget(self.split)
        controls.addWidget(QLabel("top", self))
        self.k = QSpinBox(self)
        self.k.setObjectName("responsesK")
        self.k.setRange(1, 32)
        self.k.setValue(DEFAULT_K)
        self.k.setToolTip("How many samples to show per filter")
        # Typing sends one value when done (Enter or leaving); the arrows send each step.
        self.k.setKeyboardTracking(False)
        self.k.valueChanged.connect(lambda _v: self.refresh())
        controls.addWidget(self.k)
        self.page = QComboBox(self)
        self.page.setObjectName("responsesPage")
        self.page.setToolTip(f"Which filters to show ({PAGE} at a time)")
        self.page.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.page.currentIndexChanged.connect(lambda _i: self._show_page())
        controls.addWidget(self.page)
        self.synth_button = QPushButton("Synthesise", self)
        self.synth_button.setObjectName("synthesiseButton")
        self.synth_button.setToolTip("Optimise an input image to excite each shown filter"
                                     " (activation maximisation)")
        self.synth_button.clicked.connect(self.synthesise)
        self.synth_button.setEnabled(False)
        controls.addWidget(self.synth_button)
        controls.addStretch(1)
        layout.addLayout(controls)
        self.state = QLabel(self)
        self.state.setObjectName("responsesState")
        self.state.setWordWrap(True)
        self.state.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.state)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        self.scroll = QScrollArea(split)
        self.scroll.setObjectName("responsesGallery")
        self.scroll.setWidgetResizable(True)
        self.scroll.setToolTip(GALLERY_TIP)
        self.gallery = QWidget()
        self.gallery_layout = QVBoxLayout(self.gallery)
        self.gallery_layout.setContentsMargins(0, 0, 0, 0)
        self.gallery_layout.setSpacing(2)
        self.gallery_layout.addStretch(1)
        self.scroll.setWidget(self.gallery)
        split.addWidget(self.scroll)

        right = QWidget(split)
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        top_row = QHBoxLayout()
        self.preview = Picture(PREVIEW, right)
        self.preview.setObjectName("hitPreview")
        self.preview.setFixedSize(PREVIEW, PREVIEW)
        top_row.addWidget(self.preview)
        self.preview_text = QLabel("Hover over a sample to see it whole, its receptive"
                                   " field outlined; click it to explain it below.", right)
        self.preview_text.setObjectName("hitPreviewText")
        self.preview_text.setWordWrap(True)
        self.preview_text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.preview_text.setSizePolicy(QSizePolicy.Policy.Ignored,
                                        QSizePolicy.Policy.Preferred)
        top_row.addWidget(self.preview_text, 1)
        column.addLayout(top_row)
        self.side = ImageSide(right)
        self.sample, self.prediction = self.side.sample, self.side.prediction
        self.occlusion, self.grad_cam = self.side.occlusion, self.side.grad_cam
        self.sample.valueChanged.connect(self._sample_chosen)
        self.side.open_button.clicked.connect(lambda: self.open_image())
        column.addWidget(self.side, 1)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        right.setMinimumWidth(260)
        self.split_view = split
        self._split_moved = False  # the user's own split is kept
        split.splitterMoved.connect(lambda *_: setattr(self, "_split_moved", True))
        layout.addWidget(split, 1)

    # ---- what to show ------------------------------------------------------------------

    def set_layer(self, node_id: str | None) -> None:
        """Show what the filters of layer `node_id` respond to (None: nothing chosen)."""
        if node_id == self.node:
            return
        self.node = node_id
        self.refresh()

    def _model_changed(self) -> None:
        self._top_key = self._image_key = None  # stale: recomputed when seen
        self.refresh()

    def _fit_split(self) -> None:
        """The gallery as wide as a row of nine pictures, if that leaves the image side
        over a third."""
        if self._split_moved:
            return
        total = self.split_view.width()
        gallery = min(190 + DEFAULT_K * (THUMB + HitStrip.GAP), int(total * 0.64))
        self.split_view.setSizes([gallery, total - gallery])

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_split()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit_split()
        self.refresh()

    def hideEvent(self, event: QHideEvent) -> None:
        """Leaving the page stops its jobs (the Computation page shares the worker and
        must not wait behind them); they run again when the page is shown."""
        super().hideEvent(event)
        if not event.spontaneous():  # a minimised window's work goes on
            self.jobs.pause()

    def _jobs_forgotten(self) -> None:
        """The host's worker dropped every result (the project went): all is stale."""
        self._top_key = self._image_key = None

    def _keys(self) -> tuple[Any, Any, Any] | None:
        """(model, top-k key, image key), or None (with the reason shown) when there is
        nothing to compute."""
        source = self.host.source()
        if source is None:
            self._say("The network is empty: add layers to see what they respond to")
            return None
        try:
            request = self.host.data_request()
        except Exception as err:  # FormatError / GraphError: the project's data settings
            self._say(f"Cannot load the project's data: {first_line(err)}")
            return None
        split = self.split.currentData()
        top_key = (id(source), request, self.node, split, self.k.value())
        image_key = (id(source), request, self.node, self.image_file,
                     None if self.image_file else self.sample.value())
        return (source, request), top_key, image_key

    def refresh(self) -> None:
        """Compute what is stale, if the page can be seen (else when it is shown)."""
        if not on_screen(self):
            return
        keys = self._keys()
        if keys is None:
            return
        (source, request), top_key, image_key = keys
        if self.node is None or self.node == _input_id(source):
            self._top_key, self.top = None, None
            self.jobs.cancel()  # what runs is for another layer: stop it
            self._clear_rows()
            self._say("Choose a layer after the Input (click it in the network) to see what"
                      " its filters respond to")
            return
        if top_key != self._top_key:
            self._top_key = top_key
            self._source = source
            self._start_top_k(source, request)
        if image_key != self._image_key:
            self._image_key = image_key
            if _image_classifier(source):
                self.side.set_available(True)
                self._start_image(source, request)
            else:
                self.maps = None
                self.side.set_available(False, jobs.NOT_A_CLASSIFIER)

    def _say(self, text: str) -> None:
        self.state.setText(text)
        self.state.setToolTip(text)

    # ---- jobs --------------------------------------------------------------------------

    def _submit(self, kind: str, text: str, work: jobs_book.Work, done: Callable[[Any], None],
                failed: Callable[[str, bool], None]) -> None:
        self.jobs.submit(kind, text, work, done, failed)

    def cancel(self) -> None:
        """Stop every job of this page (Cancel in the progress row)."""
        self.jobs.cancel()

    @property
    def busy(self) -> bool:
        return bool(self.jobs.running)

    @property
    def _running(self) -> dict[str, Any]:
        return self.jobs.running

    def _paused(self, kind: str) -> None:
        """A job stopped because the page was left: it runs again when the page is seen."""
        if kind == "top":
            self._top_key = None
        elif kind == "image":
            self._image_key = None
        self.refresh()  # shown again meanwhile: it starts over now

    def _start_top_k(self, source: Any, request: Any) -> None:
        node, split, k = self.node, self.split.currentData(), self.k.value()
        cache = self.cache
        self._say(f"Finding each filter's top {k} samples of {node}…")

        def work(report: Callable[[str, int, int], None], cancelled: Callable[[], bool]) -> Any:
            return jobs.top_k(source, cache, request, node, split, k, report, cancelled)

        def failed(text: str, cancelled: bool) -> None:
            if node != self.node:
                return  # stopped because another layer was chosen: it says its own
            if cancelled:
                self._say("Cancelled: change the layer, split or k to compute again")
                return
            self._clear_rows()
            self._say(f"{node}: {text}")

        self._submit("top", f"{node}: top-{k} samples", work, self._show_top, failed)

    def _show_top(self, top: jobs.TopK) -> None:
        self.top = top
        self.synthesis = None
        self.sample.blockSignals(True)
        self.sample.setRange(0, max(top.total - 1, 0))
        self.sample.blockSignals(False)
        pages = max(1, -(-len(top.filters) // PAGE))
        self.page.blockSignals(True)
        self.page.clear()
        for p in range(pages):
            first, last = p * PAGE, min((p + 1) * PAGE, len(top.filters)) - 1
            self.page.addItem(f"filters {first}–{last} of {len(top.filters)}")
        self.page.blockSignals(False)
        self.page.setVisible(pages > 1)
        self._show_page()
        self._say(jobs.top_summary(top, self.split.currentData()))

    def _clear_rows(self) -> None:
        for row in self.rows:
            row.setParent(None)
            row.deleteLater()
        self.rows = []
        self.synth_button.setEnabled(False)

    def shown_filters(self) -> list[int]:
        """The filters of the page shown."""
        if self.top is None:
            return []
        first = max(self.page.currentIndex(), 0) * PAGE
        return [f.filter for f in self.top.filters[first:first + PAGE]]

    def _show_page(self) -> None:
        """The rows of the page chosen; rows are reused (new widgets cost the GUI thread
        their creation, polish and layout)."""
        top = self.top
        if top is None:
            self._clear_rows()
            return
        filters = self.shown_filters()
        noun = "unit" if top.filters and top.filters[0].hits and \
            not top.filters[0].hits[0].position else "filter"
        if self.rows and self.rows[0].noun != noun:
            self._clear_rows()
        rgb_cache: dict[int, np.ndarray] = {}
        self.gallery.setUpdatesEnabled(False)  # one layout pass for the whole page
        while len(self.rows) > len(filters):
            row = self.rows.pop()
            row.setParent(None)
            row.deleteLater()
        for i, f in enumerate(filters):
            if i == len(self.rows):
                row = FilterRow(THUMB, noun, self.gallery)
                row.hit_entered.connect(self._preview)
                row.hit_clicked.connect(self._use_hit)
                self.gallery_layout.insertWidget(self.gallery_layout.count() - 1, row)
                self.rows.append(row)
            self.rows[i].set_filter(f, *hit_pictures(top.filters[f].hits, top.samples,
                                                     top.labels, rgb_cache))
        cell = max((row.strip.needed_cell() for row in self.rows), default=THUMB)
        for row in self.rows:  # one cell width for the page: the pictures form columns
            row.strip.set_cell(cell)
        self._show_synthesis()
        self.gallery.setUpdatesEnabled(True)
        self.synth_button.setEnabled(bool(self.rows))
        if self.rows and self.rows[0].hits:
            self._preview(self.rows[0].filter, 0)

    def _preview(self, f: int, position: int) -> None:
        top = self.top
        if top is None or f >= len(top.filters) or position >= len(top.filters[f].hits):
            return
        hit = top.filters[f].hits[position]
        sample = top.samples[hit.sample]
        rgb = to_rgb(sample)
        if np.ndim(sample) == 2:  # a signal: curves, its field shaded
            self.preview.set_signal(sample, None if hit.box is None else
                                    (int(hit.box[1]), int(hit.box[3])))
        else:
            self.preview.set_rgb(rgb, display_box(sample, rgb, hit.box))
        noun = self.rows[0].noun if self.rows else "filter"
        self.preview_text.setText(hit_caption(noun, f, position, hit,
                                              top.labels.get(hit.sample, "")))

    def _use_hit(self, f: int, position: int) -> None:
        """A clicked top-k sample becomes the image explained on the right."""
        if self.top is not None:
            self.image_file = None
            self.sample.setValue(self.top.filters[f].hits[position].sample)
            self.refresh()

    # ---- synthesis ---------------------------------------------------------------------

    def synthesise(self) -> None:
        """Synthesise an image for each shown filter (on the worker)."""
        if self.top is None or self._source is None or self.cache is None:
            return
        source, node, filters = self._source, self.top.node, self.shown_filters()
        split, cache = self.top.split, self.cache
        try:
            request = self.host.data_request()
        except Exception as err:
            self._say(f"Cannot load the project's data: {first_line(err)}")
            return

        def work(report: Callable[[str, int, int], None], cancelled: Callable[[], bool]) -> Any:
            return jobs.synthesise(source, cache, request, node, split, filters, report,
                                   cancelled)

        def done(result: jobs.Synthesised) -> None:
            self.synthesis = result
            self._show_synthesis()

        def failed(text: str, cancelled: bool) -> None:
            self._say("Synthesis cancelled" if cancelled else f"Cannot synthesise: {text}")

        self._submit("synthesis", f"{node}: synthesising {len(filters)} images", work, done,
                     failed)

    def _show_synthesis(self) -> None:
        made = self.synthesis
        if made is None or self.top is None or made.node != self.top.node:
            return
        where = {f: i for i, f in enumerate(made.filters)}
        for row in self.rows:
            i = where.get(row.filter)
            if i is not None:
                image = made.images[i]
                row.show_synthesis(to_rgb(image), made.reached[i], made.means[i],
                                   image if np.ndim(image) == 2 else None)

    # ---- one image ---------------------------------------------------------------------

    def _sample_chosen(self, _value: int) -> None:
        self.image_file = None
        self.refresh()

    def ask_image_path(self) -> str | None:
        """The file dialog (tests replace it)."""
        path, _ = QFileDialog.getOpenFileName(self, "Explain an Image", "", IMAGE_FILTER)
        return path or None

    def open_image(self, path: str | None = None) -> None:
        """Explain an image file (asked for when `path` is None)."""
        path = path or self.ask_image_path()
        if path:
            self.image_file = str(path)
            self.refresh()

    def _start_image(self, source: Any, request: Any) -> None:
        node, sample, path, cache = self.node, self.sample.value(), self.image_file, self.cache
        what = Path(path).name if path else f"sample {sample}"

        occlusions = self.occlusions

        def work(report: Callable[[str, int, int], None], cancelled: Callable[[], bool]) -> Any:
            return jobs.image_maps(source, cache, request, node, sample, path, report,
                                   cancelled, occlusions)

        def failed(text: str, cancelled: bool) -> None:
            self.maps = None
            self.side.show_failure("Cancelled" if cancelled else f"Cannot explain {what}: {text}")

        self._submit("image", f"occlusion and Grad-CAM of {what}", work, self._show_maps,
                     failed)

    def _show_maps(self, maps: jobs.ImageMaps) -> None:
        self.maps = maps
        self.side.show_maps(maps.what, maps.image, maps.class_name, maps.probability,
                            maps.occlusion, maps.grad_cam, maps.grad_cam_layer)
