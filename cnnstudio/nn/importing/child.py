"""The window's import, in a child process: `import_model` + `imported_project`, written
to a project file the window then reads.

Why a process and not a thread: ONNX's dependencies hold the GIL in C for up to 1.4 s as
they import (see cnnstudio.nn.export.child), a user's class may run anything for as long
as it likes (or crash the interpreter), and Cancel must stop it at once. The parent side
is `cnnstudio.ui.import_job`; the two speak one JSON object per line on a channel that
is the child's original stdout. The child's file descriptor 1 is pointed at stderr
before any user code runs, so what that code prints cannot be taken for an answer.

    python -m cnnstudio.nn.importing.child '{"model": ..., "output": ..., ...}'

Lines: `{"progress": [stage, done, total]}`…, then `{"summary": str, "notes": [...],
"source": str, "kind": str}` or `{"error": one line}`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import IO, Any


def _channel() -> IO[str]:
    """The answer channel (the original stdout); fd 1 and sys.stdout go to stderr."""
    sys.stdout.flush()
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def run(options: dict[str, Any], channel: IO[str]) -> int:
    """Import as `options` say (model, output, input_shape, weights, name) and answer on
    `channel`; returns the exit status (0 written, 2 not importable)."""
    from cnnstudio.nn.importing import (
        ModelImportError,
        import_model,
        import_summary,
        imported_project,
    )
    from cnnstudio.project import ProjectError, write_project

    def say(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    def progress(stage: str, done: int, total: int) -> None:
        say({"progress": [str(stage), int(done), int(total)]})

    try:
        model = import_model(options["model"], input_shape=options.get("input_shape"),
                             weights=options.get("weights"), progress=progress)
        project = imported_project(model, options.get("name"))
        progress("saving", 0, 1)
        write_project(project, options["output"], backup=False)
    except (ModelImportError, ProjectError) as err:
        say({"error": " ".join(str(err).split())})
        return 2
    say({"summary": import_summary(model), "notes": list(model.notes),
         "source": model.source, "kind": model.kind})
    return 0


def main(argv: list[str]) -> int:
    channel = _channel()
    with contextlib.suppress(OSError, AttributeError):  # not on Windows
        os.nice(10)  # on a small machine, the window's process goes first
    try:
        options = json.loads(argv[0])
        return run(options, channel)
    except Exception as err:  # a bug of ours, or a user's class that escaped the importer
        channel.write(json.dumps({"error": f"the import failed: {type(err).__name__}:"
                                           f" {' '.join(str(err).split())}"}) + "\n")
        channel.flush()
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
