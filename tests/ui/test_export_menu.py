"""File → Export ▸ …: the five entries, a file dialog tests can answer, errors through
`show_error`, no torch until an export runs, exports on a worker thread (the window keeps
answering) with Cancel."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cnnstudio.ui.export_menu import ENTRIES, ExportMenu

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")


@pytest.fixture
def menu(window) -> ExportMenu:
    return window.export_menu  # MainWindow installs it


def answer(menu: ExportMenu, path: Path | None) -> list[str]:
    """Make the file dialog return `path`; returns the start paths it was offered."""
    offered: list[str] = []

    def ask(entry, start: str) -> str | None:
        offered.append(start)
        return None if path is None else str(path)

    menu.ask_export_path = ask  # type: ignore[method-assign]
    return offered


def run(qtbot, menu: ExportMenu, fmt: str, path: Path | None = None) -> bool:
    """Export (through the menu entry when no `path`) and wait for the worker; True when
    the file was written."""
    with qtbot.waitSignal(menu.finished, timeout=120_000) as ended:
        if path is None:
            menu.actions[fmt].trigger()
        else:
            assert menu.export(fmt, str(path))
    return ended.args[0]


def test_file_menu_offers_every_format_after_save_as(window, menu: ExportMenu) -> None:
    file_menu = next(a.menu() for a in window.menuBar().actions()
                     if a.menu() and a.menu().title() == "&File")
    items = file_menu.actions()
    position = items.index(menu.menu.menuAction())
    assert items[position - 1] is window.actions_.save_as
    assert items[position + 1].isSeparator() and items[position + 2] is window.actions_.quit
    labels = [a.text() for a in menu.menu.actions()]
    assert labels == ["&Python Source…", "&TorchScript…", "&ONNX…", "&safetensors Weights…",
                      "Model &Card…"]
    assert window.export_menu is menu


def test_entries_match_the_export_formats() -> None:
    from cnnstudio.nn.export import FORMATS

    assert [e.fmt for e in ENTRIES] == list(FORMATS)
    for entry in ENTRIES:
        assert entry.suffix in FORMATS[entry.fmt].suffixes
        assert f"*{entry.suffix}" in entry.file_filter


@pytest.mark.parametrize("fmt", [e.fmt for e in ENTRIES])
def test_each_entry_exports_the_open_project(fmt: str, window, menu: ExportMenu, qtbot,
                                             errors: list[str], tmp_path: Path) -> None:
    if fmt == "onnx":
        for package in ("onnx", "onnxscript", "onnxruntime"):
            pytest.importorskip(package)
    entry = next(e for e in ENTRIES if e.fmt == fmt)
    target = tmp_path / "net"  # no suffix: the format's is added
    offered = answer(menu, target)
    assert run(qtbot, menu, fmt)
    assert errors == []
    written = target.with_name("net" + entry.suffix)
    assert written.stat().st_size > 0
    assert offered[0].endswith(entry.suffix)
    message = window.statusBar().currentMessage()
    assert message.startswith(f"Exported net{entry.suffix}") and "untrained" in message


def test_unsaved_edits_are_exported(window, menu: ExportMenu, errors: list[str], qtbot,
                                    tmp_path: Path) -> None:
    window.project.graph.set_param("fc1", "out_features", 48)
    answer(menu, tmp_path / "m.py")
    assert run(qtbot, menu, "python")
    assert errors == []
    assert "out_features=48" in (tmp_path / "m.py").read_text(encoding="utf-8")


def test_cancel_writes_nothing(menu: ExportMenu, errors: list[str], tmp_path: Path) -> None:
    answer(menu, None)
    assert menu.export("card") is False
    assert errors == [] and list(tmp_path.iterdir()) == []


def test_failures_go_to_show_error(window, menu: ExportMenu, errors: list[str], qtbot,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QApplication

    answer(menu, tmp_path / "missing" / "m.py")
    assert run(qtbot, menu, "python") is False
    assert errors == [f"cannot write {tmp_path / 'missing' / 'm.py'}: the folder"
                      f" {tmp_path / 'missing'} does not exist"]
    assert QApplication.overrideCursor() is None  # the busy cursor is gone
    with monkeypatch.context() as mp:
        mp.setitem(sys.modules, "onnxscript", None)  # as if it were not installed
        answer(menu, tmp_path / "m.onnx")
        assert run(qtbot, menu, "onnx") is False
    assert errors[-1].endswith("pip install 'cnnstudio[onnx]'")
    window.project.graph.set_param("conv1", "kernel_size", 11)
    answer(menu, tmp_path / "m.pt")
    assert run(qtbot, menu, "torchscript") is False
    assert errors[-1].startswith("conv1: kernel 11×11 is larger than its input")
    assert not any(tmp_path.iterdir())


def test_installing_the_menu_does_not_load_torch() -> None:
    code = ("import sys; import cnnstudio.ui.export_menu; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


def test_a_classifier_whose_outputs_differ_from_the_data_warns_and_still_exports(
        window, menu: ExportMenu, errors: list[str], qtbot, tmp_path: Path) -> None:
    window.project.graph.set_param("classifier", "out_features", 4)  # digits: 10 classes
    answer(menu, tmp_path / "m.py")
    assert run(qtbot, menu, "python")
    assert errors == [] and (tmp_path / "m.py").is_file()
    warning = ("the classifier gives 4 outputs but the data has 10 classes: it cannot be"
               " trained on this data as it is")
    assert menu.warnings[-1] == warning
    assert warning in window.statusBar().currentMessage()
    window.project.graph.set_param("classifier", "out_features", 10)
    run(qtbot, menu, "python", tmp_path / "ok.py")
    assert not any("classifier" in w for w in menu.warnings)


def test_an_export_runs_off_the_gui_thread_and_can_be_cancelled(
        window, menu: ExportMenu, errors: list[str], qtbot, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import cnnstudio.nn.export.formats as formats

    started, release, threads = threading.Event(), threading.Event(), []
    real_gather = formats.gather

    def slow_gather(project):  # an export that takes as long as the test wants
        threads.append(threading.current_thread())
        started.set()
        release.wait(30)
        return real_gather(project)

    monkeypatch.setattr(formats, "gather", slow_gather)
    ticks: list[int] = []
    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    answer(menu, tmp_path / "m.pt")
    assert menu.export("torchscript") is True  # returns at once: the work is on the worker
    qtbot.waitUntil(started.is_set, timeout=60_000)
    assert threads[0] is not threading.main_thread()
    assert not menu.actions["onnx"].isEnabled() and menu.busy.running
    assert menu.export("python", str(tmp_path / "m.py")) is False  # one at a time
    before = len(ticks)
    qtbot.wait(200)
    assert len(ticks) - before >= 5  # the event loop kept running meanwhile
    menu.busy.cancel_button.click()
    release.set()
    with qtbot.waitSignal(menu.finished, timeout=60_000) as ended:
        pass
    assert ended.args == [False] and errors == []
    assert list(tmp_path.iterdir()) == []  # nothing written, no temp file left
    assert window.statusBar().currentMessage() == "Export cancelled: nothing was written"
    assert menu.actions["onnx"].isEnabled() and not menu.busy.running
    timer.stop()


def test_onnx_exports_in_a_child_process_that_cancel_ends(
        window, menu: ExportMenu, errors: list[str], qtbot, tmp_path: Path) -> None:
    import importlib.util

    if not all(importlib.util.find_spec(p) for p in ("onnx", "onnxscript")):
        pytest.skip("ONNX export is not installed")
    answer(menu, tmp_path / "m.onnx")
    assert menu.export("onnx")
    qtbot.wait(300)  # the child is starting (torch alone takes longer)
    with qtbot.waitSignal(menu.finished, timeout=10_000) as ended:
        menu.cancel()
    assert ended.args == [False] and errors == []
    assert list(tmp_path.iterdir()) == []
    window.project.graph.set_param("conv1", "kernel_size", 11)  # the child's error: one line
    assert run(qtbot, menu, "onnx") is False
    assert errors[-1].startswith("conv1: kernel 11×11 is larger than its input")
    assert "\n" not in errors[-1] and list(tmp_path.iterdir()) == []
