"""Start-up: the window appears before torch is imported; `cnnstudio [PROJECT]` opens it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from cnnstudio.ui.app import SAMPLE_TEMPLATE, create_window

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               CNNSTUDIO_SETTINGS_DIR=str(tmp_path / "settings"),
               CNNSTUDIO_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_window_is_shown_before_torch_is_imported(tmp_path):
    result = _run("""
        import sys
        from cnnstudio.ui.app import application, create_window
        app = application()
        window = create_window()
        window.show()
        app.processEvents()
        assert window.isVisible()
        print("TORCH", "torch" in sys.modules, len(window.project.graph))
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("TORCH"))
    torch_loaded, nodes = line.split()[1:]
    assert torch_loaded == "False" and int(nodes) > 1


def test_cli_opens_the_window_and_shows_an_unreadable_project_error(tmp_path):
    bad = tmp_path / "broken.cnnproj"
    bad.write_text("{not json", encoding="utf-8")
    result = _run(f"""
        import sys
        from PySide6.QtCore import QTimer
        from cnnstudio.ui.app import application
        app = application()

        def check(tries=[100]):
            window = next(w for w in app.topLevelWidgets() if w.objectName() == "mainWindow")
            tries[0] -= 1
            if window.last_error is None and tries[0]:  # the file is read on a worker
                QTimer.singleShot(100, check)
                return
            print("VISIBLE", window.isVisible())
            print("ERROR", window.last_error)
            print("TORCH", "torch" in sys.modules)
            window.confirm_unsaved = False
            app.quit()

        QTimer.singleShot(500, check)
        from cnnstudio.cli import main
        sys.exit(main([{str(bad)!r}]))
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "VISIBLE True" in out
    assert "ERROR broken.cnnproj:" in out
    assert "TORCH False" in out
    assert "Traceback" not in result.stderr


def test_create_window_opens_a_project_given_on_the_command_line(qtbot, tmp_path):
    from cnnstudio.core.templates import TEMPLATES
    from cnnstudio.project import project_from_dict, write_project

    path = tmp_path / "given.cnnproj"
    write_project(project_from_dict(TEMPLATES["xo"].project_dict()), path)
    window = create_window(str(path))
    qtbot.addWidget(window)
    window.confirm_unsaved = False
    qtbot.waitUntil(lambda: window.project.path == path)
    assert window.project.name == "X vs O"


def test_default_window_opens_a_sample(qtbot):
    window = create_window()
    qtbot.addWidget(window)
    window.confirm_unsaved = False
    assert len(window.project.graph) > 1
    assert window.document.inference.ok
    assert SAMPLE_TEMPLATE  # the fallback when no sample file is shipped
