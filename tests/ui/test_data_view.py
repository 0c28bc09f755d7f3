"""The Data view: loading off the GUI thread, the preview, errors, and undoable settings."""

from __future__ import annotations

import copy
import gc
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QCoreApplication, QEvent, QTimer

LOAD_MS = 30_000


@pytest.fixture(autouse=True)
def dataset_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Decoded datasets go to this test's own cache."""
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _write_png(path: Path, value: int, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((size, size), value, np.uint8)
    pixels[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 255 - value
    Image.fromarray(pixels).save(path)


def _class_folder(root: Path, classes: dict[str, int], bad: bool = True) -> Path:
    """root/<class>/<i>.png, `classes[name]` files each; plus a corrupt PNG and a text file."""
    for c, (name, count) in enumerate(classes.items()):
        for i in range(count):
            _write_png(root / name / f"{i:03d}.png", 40 * c + i % 30)
    if bad:
        first = next(iter(classes))
        (root / first / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
        (root / first / "notes.txt").write_text("not a picture")
    return root


def _load(view, qtbot) -> object:
    with qtbot.waitSignal(view.dataset_loaded, timeout=LOAD_MS) as blocker:
        view.reload()
    return blocker.args[0]


def _choose_folder(view, folder: Path) -> None:
    """Pick the Image folder kind and browse to `folder`, as a user would."""
    form = view.form
    form.ask_directory = lambda title, start: str(folder)
    form.kind.setCurrentIndex(form.kind.findData("folder"))
    form.kind.activated.emit(form.kind.currentIndex())
    form.paths[0].browse.click()


def _type(line, text: str) -> None:
    line.setText(text)
    line.editingFinished.emit()


def test_the_dock_is_installed(window):
    from PySide6.QtWidgets import QDockWidget

    dock = window.findChild(QDockWidget, "dataView")
    assert dock is window.data_dock and dock.windowTitle() == "Data"
    assert dock.widget() is window.data_view
    assert dock.toggleViewAction() in window.actions_.panels_menu.actions()


def test_builtin_digits_preview(window, qtbot):
    view = window.data_view
    assert view.dataset is None and not view.is_loading()  # hidden: nothing loaded yet
    dataset = _load(view, qtbot)
    assert view.dataset is dataset and len(dataset.x) == 1797
    assert view.samples.count() == 48
    labels = [view.samples.item(i).text() for i in range(10)]
    assert labels == [str(d) for d in range(10)]  # every class in turn
    preview = view.preview
    sizes = {name: len(index) for name, index in dataset.splits.items()}
    assert preview.split_sizes == sizes
    assert sum(sizes.values()) == len(dataset.x)
    assert sum(sum(counts) for counts in preview.counts.values()) == len(dataset.x)
    assert view.chart.total() == pytest.approx(len(dataset.x))
    text = view.splits.text()
    assert f"{sizes['train']:,}" in text and f"{sizes['val']:,}" in text
    assert preview.images[0].shape == (8, 8, 3)
    icon = view.samples.item(0).icon().availableSizes()[0]
    assert icon.width() == 56  # 8×8 digits scaled up 7× with nearest neighbour
    assert window.document.num_classes == 10
    assert view.message_text() == ""


def test_folder_lists_skipped_files(window, qtbot, tmp_path):
    folder = _class_folder(tmp_path / "pictures", {"cat": 6, "dog": 5})
    view = window.data_view
    _choose_folder(view, folder)
    assert window.project.data["source"] == {"kind": "folder", "path": str(folder)}
    dataset = _load(view, qtbot)
    assert dataset.class_names == ["cat", "dog"] and len(dataset.x) == 11
    rows = dict(view.skipped.rows())
    assert set(rows) == {"cat/broken.png", "cat/notes.txt"}
    assert all(reason for reason in rows.values())
    assert "not an image" in rows["cat/notes.txt"]
    assert view.tabs.tabText(1) == "Skipped (2)"
    assert view.samples.count() == len(dataset.splits["train"])  # thumbnails: train split


def test_folder_without_images_shows_the_error(window, qtbot, tmp_path):
    folder = tmp_path / "empty"
    (folder / "things").mkdir(parents=True)
    (folder / "things" / "readme.txt").write_text("hello")
    view = window.data_view
    _choose_folder(view, folder)
    with qtbot.waitSignal(view.load_failed, timeout=LOAD_MS) as blocker:
        view.reload()
    message = blocker.args[0]
    assert message.startswith("no usable image in") and "\n" not in message
    assert view.message_text() == message and view.message.isVisibleTo(view)
    assert view.dataset is None and view.samples.count() == 0
    assert not view.is_loading()


def test_settings_edits_are_undoable(window, qtbot, tmp_path):
    project, stack = window.project, window.undo_stack
    before = copy.deepcopy(project.data)
    form = window.data_view.form
    _type(form.val_fraction, "0.3")
    assert project.data["val_fraction"] == 0.3 and stack.count() == 1
    form.builtin.setCurrentIndex(form.builtin.findData("xo"))
    form.builtin.activated.emit(form.builtin.currentIndex())
    assert project.data["source"] == {"kind": "builtin", "name": "xo"}
    form.flip.setChecked(True)
    _type(form.rotation, "15")
    assert project.data["augmentation"] == {"flip": True, "rotation": 15}
    _choose_folder(window.data_view, tmp_path)
    assert project.data["source"] == {"kind": "folder", "path": str(tmp_path)}
    assert stack.count() == 5
    stack.undo()
    assert project.data["source"] == {"kind": "builtin", "name": "xo"}
    assert form.kind.currentData() == "builtin"  # the form follows the undo
    while stack.canUndo():
        stack.undo()
    assert project.data == before
    assert form.val_fraction.text() == str(before.get("val_fraction", ""))


def test_choosing_a_file_kind_waits_for_its_path(window):
    form = window.data_view.form
    before = copy.deepcopy(window.project.data)
    form.kind.setCurrentIndex(form.kind.findData("npz"))
    form.kind.activated.emit(form.kind.currentIndex())
    assert window.project.data == before and window.undo_stack.count() == 0
    assert form.error_text() == "" and form.paths[0].isVisibleTo(form)
    form.ask_file = lambda title, start, filters: "/data/set.npz"
    form.paths[0].browse.click()
    assert window.project.data["source"] == {"kind": "npz", "path": "/data/set.npz"}


@pytest.mark.parametrize(("field", "text", "needle"), [
    ("val_fraction", "1.5", "Validation share must be ≥ 0 and < 1, got 1.5"),
    ("val_fraction", "lots", 'Validation share must be a number, got "lots"'),
    ("crop", "2.5", "Crop padding must be an integer"),
    ("rotation", "-3", "Rotation must be ≥ 0"),
])
def test_invalid_values_are_shown_not_applied(window, field, text, needle):
    before = copy.deepcopy(window.project.data)
    form = window.data_view.form
    line = getattr(form, field)
    _type(line, text)
    assert needle in form.error_text()
    assert window.project.data == before and window.undo_stack.count() == 0
    assert line.text() == text  # left for the user to correct
    _type(line, "")  # back to the default: the error goes
    assert form.error_text() == ""


def test_paths_inside_the_project_folder_are_stored_relative(window, tmp_path):
    window.project.path = tmp_path / "digits.cnnproj"
    form = window.data_view.form
    assert form.store_path(str(tmp_path / "data" / "train")) == "data/train"
    outside = tmp_path.parent / "elsewhere"
    assert form.store_path(str(outside)) == str(outside)


def test_progress_arrives_and_the_window_stays_responsive(window, qtbot, tmp_path):
    import cnnstudio.data  # noqa: F401  (torch's one-time import is not what this measures)

    rng = np.random.default_rng(0)
    folder = tmp_path / "many"
    for c in range(3):
        (folder / f"class{c}").mkdir(parents=True)
        for i in range(150):
            pixels = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"class{c}" / f"{i:03d}.png")
    view = window.data_view
    _choose_folder(view, folder)
    stages: list[tuple[str, int, int]] = []
    view.progress_changed.connect(lambda *args: stages.append(args))
    # Windows of earlier tests are deleted at the next event loop: not this load's doing.
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    QCoreApplication.processEvents()
    # Nor is a full garbage collection of what earlier tests left alive, which stops every
    # thread for 0.3-0.8 s late in a full run (~600,000 objects): those objects are out of
    # the collector's reach while the load is timed.
    gc.collect()
    gc.freeze()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    try:
        began = time.perf_counter()
        dataset = _load(view, qtbot)
        ended = time.perf_counter()
    finally:
        timer.stop()
        gc.unfreeze()
    assert len(dataset.x) == 450
    decoding = [s for s in stages if s[0] == "decoding"]
    assert decoding and decoding[-1][1:] == (450, 450)
    # The GUI thread kept running its timers while the worker decoded.
    during = [t for t in ticks if began <= t <= ended]
    assert len(during) >= 3, (len(during), ended - began)
    gaps = np.diff([began, *during, ended])
    assert gaps.max() < 0.3, gaps.max()


def test_a_new_load_cancels_the_running_one(window, qtbot, tmp_path):
    folder = _class_folder(tmp_path / "pictures", {"a": 40, "b": 40}, bad=False)
    view = window.data_view
    _choose_folder(view, folder)
    seen: list[object] = []
    view.dataset_loaded.connect(seen.append)
    view.reload()
    window.undo_stack.undo()  # back to the built-in digits, while the folder loads
    dataset = _load(view, qtbot)
    qtbot.wait(200)
    assert seen == [dataset] and dataset.num_classes == 10


def test_class_count_reaches_the_problems(window, qtbot, tmp_path):
    folder = _class_folder(tmp_path / "pictures", {"a": 4, "b": 4, "c": 4}, bad=False)
    view = window.data_view
    _choose_folder(view, folder)
    assert window.document.num_classes is None
    _load(view, qtbot)
    assert window.document.num_classes == 3
    messages = [str(p) for p in window.document.inference.errors]
    assert any("3 classes" in m for m in messages), messages
    problems = window.problems
    qtbot.waitUntil(lambda: any("3 classes" in problems.item(i).text()
                                for i in range(problems.count())))
    # Normalize is no reason to reload, and the class count survives the edit.
    window.data_view.form.normalize.setChecked(False)
    assert window.document.num_classes == 3 and not view.is_loading()


def test_reloads_when_visible_and_settings_change(window, qtbot):
    view = window.data_view
    window.show()
    qtbot.waitExposed(window)
    with qtbot.waitSignal(view.dataset_loaded, timeout=LOAD_MS):
        window.data_dock.raise_()  # shown: loads by itself
    with qtbot.waitSignal(view.dataset_loaded, timeout=LOAD_MS) as blocker:
        _type(view.form.val_fraction, "0.5")
    assert len(blocker.args[0].splits["val"]) == pytest.approx(1797 * 0.5, abs=10)
    window.summary_dock.raise_()  # hidden: a change waits until the view is shown again
    _type(view.form.val_fraction, "0.1")
    qtbot.wait(500)
    assert not view.is_loading() and len(view.dataset.splits["val"]) > 800
    with qtbot.waitSignal(view.dataset_loaded, timeout=LOAD_MS) as blocker:
        window.data_dock.raise_()
    assert len(blocker.args[0].splits["val"]) < 200


def test_another_project_clears_the_view(window, qtbot):
    view = window.data_view
    _load(view, qtbot)
    window.new_project("xo")
    assert view.dataset is None and view.samples.count() == 0
    assert window.document.num_classes is None
    dataset = _load(view, qtbot)
    assert dataset.class_names == ["O", "X"] and view.samples.count() == 48


def test_segmentation_and_signal_previews(window, qtbot):
    view = window.data_view
    window.new_project("unet")
    _load(view, qtbot)
    preview = view.preview
    assert preview.unit == "pixels" and preview.kind == "image"
    assert preview.images[0].ndim == 3 and preview.images[0].shape[2] == 3
    window.new_project("cnn1d")
    _load(view, qtbot)
    assert view.preview.kind == "signal" and view.samples.count() == 48


def test_many_reloads_and_closing_mid_load_are_safe(qtbot, tmp_path):
    from PySide6.QtCore import QCoreApplication, QEvent

    from cnnstudio.ui import MainWindow, data_loading

    folder = _class_folder(tmp_path / "pictures", {"a": 60, "b": 60}, bad=False)
    window = MainWindow()
    window.confirm_unsaved = False
    window.new_project("digits-lenet")
    view = window.data_view
    _choose_folder(view, folder)
    seen: list[object] = []
    view.dataset_loaded.connect(seen.append)
    for _ in range(10):  # each one cancels the one before
        view.reload()
    qtbot.waitUntil(lambda: len(seen) == 1, timeout=LOAD_MS)
    qtbot.wait(100)
    assert len(seen) == 1 and len(seen[0].x) == 120
    view.reload()  # and now the window goes away while this one runs
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    qtbot.waitUntil(lambda: all(t.isFinished() for t, _ in data_loading._LIVE.values()),
                    timeout=LOAD_MS)
