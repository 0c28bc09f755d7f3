"""`cnnstudio import MODEL -o PROJECT`: an ONNX file or a PyTorch class (`FILE.py:CLASS`,
which runs that file's code) becomes a project with the graph and the weights.

Imported only when the command runs: it loads torch. Exit status: 0 written; 2 the model
cannot be imported (a pickle-based file, an operator without a mapping — each named with
its count —, a malformed file, weights that do not fit), a bad option, or PROJECT exists
(without --force) or cannot be written. The project file is written atomically: a failed
import leaves no file and an existing one untouched.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cnnstudio.cli_common import EXIT_OK, UsageError


def check_output(output: str, force: bool) -> Path:
    """The project path to write; raises UsageError for a path that is not a `.cnnproj`
    (a bare .json cannot hold the weights), that exists without `force`, or whose folder
    does not exist or cannot be written."""
    path = Path(output)
    if not output.strip():
        raise UsageError("the project path is empty: give a .cnnproj file")
    if path.suffix.lower() != ".cnnproj":
        hint = (" (a .json project cannot hold the imported weights)"
                if path.suffix.lower() == ".json" else "")
        raise UsageError(f"{output}: the project file must end in .cnnproj{hint};"
                         f" e.g. {path.with_suffix('.cnnproj').name}")
    if path.is_dir():
        raise UsageError(f"{output} is a folder; give a .cnnproj file to write")
    if path.exists() and not force:
        raise UsageError(f"{output} already exists (use --force to replace it)")
    # Known before a long import (and before the user's code runs), not after it.
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"{output}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{output}: the folder {folder} is not writable")
    return path


def cmd_import(args: argparse.Namespace) -> int:
    from cnnstudio.nn.importing import (
        ModelImportError,
        import_model,
        import_summary,
        imported_project,
        parse_input_shape,
    )
    from cnnstudio.project import ProjectError, write_project

    path = check_output(args.output, args.force)
    try:
        shape = parse_input_shape(args.input_shape)
        model = import_model(args.model, input_shape=shape, weights=args.weights)
        project = imported_project(model, args.name)
    except ModelImportError as err:
        raise UsageError(" ".join(str(err).split()) or "the model cannot be imported"
                         ) from None
    try:
        write_project(project, path)
    except ProjectError as err:
        raise UsageError(err.full()) from None
    notes = len(model.notes)
    print(f"imported {model.source} ({model.kind}) into {path}: {import_summary(model)}"
          + (f", {notes} note{'s' * (notes != 1)}:" if notes else ""))
    for note in model.notes:
        print(f"  {note}")
    return EXIT_OK
