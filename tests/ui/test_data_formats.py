"""The Data view says what the files were and what the Input makes of them, offers to set
the Input to the data's shape (one undo step), and shows the chosen folder's whole path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QApplication

LOAD_MS = 30_000


@pytest.fixture(autouse=True)
def dataset_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _rgb_folder(root: Path, side: int = 32) -> Path:
    rng = np.random.default_rng(1)
    for name in ("cars", "ships"):
        (root / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (side, side, 3), np.uint8)).save(
                root / name / f"{i}.png")
    return root


def _choose(view, qtbot, folder: Path) -> None:
    form = view.form
    form.ask_directory = lambda title, start: str(folder)
    form.kind.setCurrentIndex(form.kind.findData("folder"))
    form.kind.activated.emit(form.kind.currentIndex())
    with qtbot.waitSignal(view.dataset_loaded, timeout=LOAD_MS):
        form.paths[0].browse.click()
        view.reload()


def _input(window):
    return next(n for n in window.project.graph if n.type == "Input")


def test_rgb_files_fitted_to_a_grey_input_are_named_and_one_click_fixes_the_input(
        window, qtbot, tmp_path):
    view = window.data_view
    _choose(view, qtbot, _rgb_folder(tmp_path / "photos"))
    assert view.dataset.sample_shape == (1, 8, 8)
    assert view.formats.text() == ("files: 32×32 RGB; converted to 1×8×8 grey for the"
                                   " Input node")
    assert view.formats.isVisibleTo(view)
    button = view.fit_input
    assert button.isVisibleTo(view) and button.text() == "Set the Input to 3×32×32"
    stack = window.undo_stack
    count = stack.count()
    with qtbot.waitSignal(view.dataset_loaded, timeout=LOAD_MS):
        button.click()
        view.reload()
    assert _input(window).params["shape"] == [3, 32, 32]
    assert stack.count() == count + 1 and stack.undoText() == "Set the Input to 3×32×32"
    assert view.dataset.sample_shape == (3, 32, 32)
    assert view.formats.text() == "files: 32×32 RGB; used as they are by the Input node"
    assert not button.isVisibleTo(view)
    stack.undo()
    assert _input(window).params["shape"] == [1, 8, 8]


def test_mixed_files_are_counted_and_the_commonest_kind_is_offered(window, qtbot, tmp_path):
    folder = _rgb_folder(tmp_path / "mixed", side=16)
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(folder / "cars" / "grey.png")
    view = window.data_view
    _choose(view, qtbot, folder)
    assert view.formats.text() == ("files: 16×16 RGB (10), 30×20 grey (1); converted to"
                                   " 1×8×8 grey for the Input node")
    assert view.fit_input.text() == "Set the Input to 3×16×16"


def test_builtin_data_used_as_it_is_offers_nothing(window, qtbot):
    view = window.data_view
    with qtbot.waitSignal(view.dataset_loaded, timeout=LOAD_MS):
        view.reload()
    assert view.formats.text() == "data: 8×8 grey; used as it is by the Input node"
    assert not view.fit_input.isVisibleTo(view)


def test_describe_formats_keeps_the_input_size_for_big_photos():
    from cnnstudio.ui.data_samples import describe_formats

    line, converted, shape = describe_formats({(3000, 4000, "RGB"): 5}, (1, 64, 64), True)
    assert converted and line.startswith("files: 4000×3000 RGB;")
    assert shape == (3, 64, 64)  # the channels only: 3000×4000 is no Input for a first net
    assert describe_formats({(64, 64, "P"): 2}, (3, 64, 64), True)[1:] == (True, None)
    assert describe_formats({}, (1, 8, 8), True) == ("", False, None)


def test_the_chosen_folders_whole_path_is_shown_wrapped_not_cut(window, qtbot, tmp_path):
    deep = tmp_path.joinpath(*[f"a_rather_long_folder_name_{i}" for i in range(6)], "photos")
    view = window.data_view
    window.data_dock.show()
    window.data_dock.raise_()
    view.resize(700, 400)
    QApplication.processEvents()
    _choose(view, qtbot, _rgb_folder(deep))
    row = view.form.paths[0]
    assert row.full_path() == str(deep)  # every character of it, in order
    assert row.full.toolTip() == str(deep) and row.edit.toolTip() == str(deep)
    QApplication.processEvents()
    label = row.full
    lines = label.text().split("\n")
    assert len(lines) >= 2  # the column is narrow: the path takes several lines…
    room = label.contentsRect().width()
    assert all(label.fontMetrics().horizontalAdvance(line) <= room for line in lines)  # …cut none
    assert lines[-1].endswith("photos") and lines[0].startswith(str(tmp_path)[:5])


def test_wrap_path_breaks_after_separators_else_anywhere():
    from cnnstudio.ui.data_form import wrap_path

    def fits(text):
        return len(text) <= 10

    assert wrap_path("/home/ann/pictures", fits) == ["/home/ann/", "pictures"]
    assert wrap_path("/a/averyveryverylongname/b", fits) == ["/a/", "averyveryv", "erylongnam",
                                                             "e/b"]
    assert wrap_path("", fits) == []
