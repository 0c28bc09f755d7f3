"""House rules checked in CI: import direction (import-linter), lint (ruff), file size."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install -e '.[test]')")
    return found


def test_import_contracts_hold():
    """core imports neither torch nor Qt; only ui imports Qt; layers point down."""
    result = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean():
    result = subprocess.run([_tool("ruff"), "check", "cnnstudio", "tests", "benchmarks"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_loads_without_torch_or_qt():
    code = ("import sys, cnnstudio.core.templates, cnnstudio.core.shapes, cnnstudio.core.summary;"
            "bad = [m for m in ('torch', 'PySide6', 'pyqtgraph') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_source_files_stay_under_500_lines():
    long = [f"{p.relative_to(ROOT)} ({n})" for p in (ROOT / "cnnstudio").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500]
    assert not long, "split these by meaning: " + ", ".join(long)


def test_no_import_cycles():
    """No module imports, through any chain, a module that imports it (run-time imports,
    lazy ones included): a cycle is two modules that should be one, or a third missing."""
    import grimp

    graph = grimp.build_graph("cnnstudio", exclude_type_checking_imports=True)
    cycles = [f"{a} -> {b} -> ... -> {a}" for a in sorted(graph.modules)
              for b in sorted(graph.find_modules_directly_imported_by(a))
              if graph.find_shortest_chain(importer=b, imported=a)]
    assert not cycles, "\n".join(cycles)
