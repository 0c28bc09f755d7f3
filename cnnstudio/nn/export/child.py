"""`export_project` in a child process, for the window's ONNX export.

Measured on the window's GUI thread: ONNX export's dependencies hold the GIL in C for
0.4–1.4 s while they import (ml_dtypes' module init alone takes 0.5 s; the import machinery
cannot let go of the GIL meanwhile), whatever thread imports them. In a child process they
cost the window nothing, and Cancel can stop the export at once by ending the child. The
child reads a copy of the project (written to a temporary folder), exports it with the
same `export_project` and prints one JSON line: the result, or the one-line error.

    python -m cnnstudio.nn.export.child PROJECT FORMAT OUTPUT [ORIGINAL_PROJECT_PATH]
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from cnnstudio.nn.export.compiled import INSTALL_HINT
from cnnstudio.nn.export.facts import ExportError, MissingDependency
from cnnstudio.nn.export.formats import ExportCancelled, ExportResult
from cnnstudio.project import Project, write_project

POLL_S = 0.05  # how often the parent looks at `cancelled` while the child works


def export_in_child(project: Project, format_name: str, path: str | os.PathLike[str],
                    cancelled: Callable[[], bool] = lambda: False) -> ExportResult:
    """What `export_project(project, format_name, path)` does, in a child process. Raises
    ExportError (one line) as it does, and ExportCancelled when `cancelled()` turned True
    before the child ended: the child is killed, no file is left half-written (atomic
    writes) and its temporary file, if any, is removed."""
    for package in ("onnx", "onnxscript") if format_name == "onnx" else ():
        if importlib.util.find_spec(package) is None:  # said at once, as `require_onnx` does
            raise MissingDependency(f"ONNX export needs the optional package {package}:"
                                    f" {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="cnnstudio-export-") as folder:
        source = Path(folder) / "project.cnnproj"
        write_project(project, source, backup=False)
        command = [sys.executable, "-m", __name__, str(source), format_name,
                   os.path.abspath(path), os.path.abspath(project.path or "") if
                   project.path else ""]
        # Run from the temporary folder: `-m` puts the working folder first on sys.path,
        # and a folder that holds another `cnnstudio` must not answer for this one.
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, text=True, cwd=folder)
        while True:
            try:
                out, err = child.communicate(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                if cancelled():
                    child.kill()
                    child.communicate()
                    _remove_temporary_files(Path(path))
                    raise ExportCancelled(f"the export to {Path(path).name} was cancelled"
                                          ) from None
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            answer = json.loads(line)
            if "error" in answer:
                raise ExportError(answer["error"])
            return ExportResult(Path(answer["path"]), answer["format"], answer["trained"],
                                answer["size"], answer["warnings"])
    last = (err.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
    raise ExportError(f"the export process failed: {last}")


def _remove_temporary_files(target: Path) -> None:
    """The temporary file `atomic_write` was writing when the child was killed."""
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def main(argv: list[str]) -> int:
    from cnnstudio.nn.export.formats import export_project
    from cnnstudio.project import ProjectError, read_project

    source, format_name, output, original = (argv + [""])[:4]
    with contextlib.suppress(OSError, AttributeError):  # not on Windows
        os.nice(10)  # on a small machine, the window's process goes first
    try:
        project = read_project(source)
        project.path = Path(original) if original else None  # its own name, data paths
        result = export_project(project, format_name, output)
    except (ExportError, ProjectError) as err:
        print(json.dumps({"error": str(err)}))
        return 1
    print(json.dumps({"path": str(result.path), "format": result.format,
                      "trained": result.trained, "size": result.size,
                      "warnings": result.warnings}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
