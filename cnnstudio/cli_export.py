"""`cnnstudio export`: the model as Python source, TorchScript, ONNX, safetensors or a
model card.

Imported only when the command runs, so `summary` and friends start without torch.
Exit status: 0 exported (an untrained project too, with a warning on stderr); 1 the
project cannot be exported (graph errors, weights that do not fit, a layer the format
cannot express); 2 the project cannot be read, the file cannot be written, the format
is unknown or needs a package that is not installed.
"""

from __future__ import annotations

import argparse

from cnnstudio.cli_common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    fail,
    load_project,
)
from cnnstudio.core.data_sources import builtin_classes
from cnnstudio.nn.export import (
    FORMATS,
    DestinationError,
    ExportError,
    MissingDependency,
    ProjectProblem,
    check_destination,
    export_project,
    format_for_path,
)
from cnnstudio.nn.export.classes import class_count_warning


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def choose_format(output: str, given: str | None) -> str:
    """`given`, or the format the file suffix stands for; raises UsageError when neither
    says (the user then adds --format)."""
    if given:
        return given
    found = format_for_path(output)
    if found is None:
        raise UsageError(f"cannot tell the format from {output!r}; add --format "
                         f"{'|'.join(FORMATS)} (or use a suffix: "
                         + ", ".join(f.suffixes[0] for f in FORMATS.values()) + ")")
    return found


def cmd_export(args: argparse.Namespace) -> int:
    try:
        check_destination(args.output)  # "it is a folder" says more than "no suffix"
    except DestinationError as err:
        raise UsageError(str(err)) from None
    fmt = choose_format(args.output, args.format)
    project = load_project(args.project)
    try:
        result = export_project(project, fmt, args.output)
    except ProjectProblem as err:
        fail(str(err))
        return EXIT_PROBLEMS
    except (DestinationError, MissingDependency, ExportError) as err:
        raise UsageError(str(err)) from None
    classes = class_count_warning(project, builtin_classes(project.data))
    for warning in [*result.warnings, *([classes] if classes else [])]:
        fail(f"warning: {warning}")
    print(f"exported {project.name} as {FORMATS[fmt].title} to {result.path}"
          f" ({_size(result.size)})")
    return EXIT_OK
