"""The `cnnstudio` command line. The GUI is one of its commands.

Exit status: 0 success, 1 the project or run has errors, 2 the input could not be
read or the command line is wrong. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from cnnstudio.cli_common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    fail,
    failure,
    load_project,
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line (no usage dump) with exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ---- commands -------------------------------------------------------------------------


def cmd_summary(args: argparse.Namespace) -> int:
    from cnnstudio.core.data_sources import builtin_classes
    from cnnstudio.core.shapes import ERROR, infer_shapes
    from cnnstudio.core.summary import summary_rows, summary_text

    project = load_project(args.project)
    inference = infer_shapes(project.graph, task=project.task,
                             num_classes=builtin_classes(project.data))
    if args.json:
        rows = summary_rows(project.graph, inference)
        doc = {
            "layers": [{"id": r.id, "type": r.type, "output_shape": r.shape, "params": r.params,
                        "macs": r.macs, "trainable": r.trainable} for r in rows],
            "total_params": inference.total_params,
            "frozen_params": inference.frozen_params,
            "total_macs": inference.total_macs,
            "errors": [{"node": p.node, "message": p.message} for p in inference.problems
                       if p.severity == ERROR],
            "warnings": [{"node": p.node, "message": p.message} for p in inference.problems
                         if p.severity != ERROR],
        }
        print(json.dumps(doc, ensure_ascii=False))
    else:
        print(summary_text(project.name, project.graph, inference))
    return EXIT_OK if inference.ok else EXIT_PROBLEMS


def cmd_templates(args: argparse.Namespace) -> int:
    from cnnstudio.core.shapes import infer_shapes
    from cnnstudio.core.templates import TEMPLATES

    if args.json:
        print(json.dumps([{"name": t.name, "title": t.title, "description": t.description,
                           "task": t.task, "dataset": t.dataset} for t in TEMPLATES.values()],
                         ensure_ascii=False))
        return EXIT_OK
    width = max(len(name) for name in TEMPLATES)
    for t in TEMPLATES.values():
        params = infer_shapes(t.graph()).total_params
        print(f"{t.name:<{width}}  {t.title} — {t.description} "
              f"[{t.dataset}, {params:,} params]")
    return EXIT_OK


def cmd_new(args: argparse.Namespace) -> int:
    from cnnstudio.core.templates import get_template
    from cnnstudio.project import ProjectError, project_from_dict, write_project

    try:
        template = get_template(args.template)
    except KeyError as err:
        raise UsageError(err.args[0]) from None
    path = Path(args.project)
    if path.suffix.lower() not in (".cnnproj", ".json"):
        raise UsageError(f"{path}: a project file ends in .cnnproj (or .json: the graph and"
                         f" settings without weights); e.g. {path.with_suffix('.cnnproj')}")
    if path.exists() and not args.force:
        raise UsageError(f"{path} already exists (use --force to replace it)")
    name = path.stem.replace("_", " ").replace("-", " ").strip() or template.title
    project = project_from_dict(template.project_dict(name))
    try:
        write_project(project, path)
    except ProjectError as err:
        raise UsageError(err.full()) from None
    print(f"created {path} from template {template.name}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from cnnstudio.cli_train import cmd_train as run  # imports torch: only when training

    return run(args)


def cmd_predict(args: argparse.Namespace) -> int:
    from cnnstudio.cli_train import cmd_predict as run

    return run(args)


def cmd_export(args: argparse.Namespace) -> int:
    from cnnstudio.cli_export import cmd_export as run  # imports torch: only when exporting

    return run(args)


def cmd_explain(args: argparse.Namespace) -> int:
    from cnnstudio.cli_explain import cmd_explain as run  # imports torch: only when explaining

    return run(args)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnstudio.cli_evaluate import cmd_evaluate as run  # imports torch: only when evaluating

    return run(args)


def cmd_import(args: argparse.Namespace) -> int:
    from cnnstudio.cli_import import cmd_import as run  # imports torch: only when importing

    return run(args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from cnnstudio.cli_sweep import cmd_sweep as run  # imports torch: only when sweeping

    return run(args)


# Qt platform plugins that draw without a display server (into memory, a framebuffer, VNC).
_HEADLESS_PLATFORMS = ("offscreen", "minimal", "minimalegl", "eglfs", "linuxfb", "vnc",
                       "vkkhrdisplay")


def display_problem(environ: Mapping[str, str], platform: str) -> str | None:
    """Why the window cannot open on this machine (a one-line message), or None when it
    can, told before Qt loads: Qt itself aborts the process (exit 134) when its platform
    plugin finds no display. Only Linux and the BSDs need a display server named in the
    environment."""
    if not platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    wanted = environ.get("QT_QPA_PLATFORM", "").strip()
    # "wayland;xcb" lists fallbacks; "vnc:size=800x600" carries options.
    names = [name.split(":")[0].strip().lower() for name in wanted.split(";") if name.strip()]
    if any(name in _HEADLESS_PLATFORMS for name in names):
        return None
    has_x, has_wayland = bool(environ.get("DISPLAY")), bool(environ.get("WAYLAND_DISPLAY"))
    if not names and (has_x or has_wayland):
        return None
    if ("xcb" in names and has_x) or ("wayland" in names and has_wayland):
        return None
    if names and not {"xcb", "wayland"} & set(names):
        return None  # a platform we do not know: let Qt try it
    needs = [var for name, var in (("xcb", "DISPLAY"), ("wayland", "WAYLAND_DISPLAY"))
             if name in names]
    why = (f"QT_QPA_PLATFORM={wanted} and {' or '.join(needs)} is not set" if names
           else "DISPLAY and WAYLAND_DISPLAY are not set")
    return (f"there is no display to open the window on ({why}); the command-line"
            " commands (summary, train, predict, export, explain, import, evaluate, runs, compare,"
            " lr-find, sweep, new, templates) work"
            " without one. For the window: connect with 'ssh -X', run"
            " 'xvfb-run cnnstudio', or set QT_QPA_PLATFORM=offscreen (draws it nowhere,"
            " for scripts)")


def cmd_gui(args: argparse.Namespace) -> int:
    problem = display_problem(os.environ, sys.platform)
    if problem is not None:
        raise UsageError(problem)
    try:
        from cnnstudio.ui.app import run_app
    except ImportError as err:  # e.g. Qt's system libraries are missing
        raise UsageError(f"cannot start the window: {err}") from None
    return run_app(args.project)


# ---- parsing --------------------------------------------------------------------------


def _command_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cnnstudio",
                     description="Design, train and understand convolutional neural networks.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    def command(name: str, func: Any, help: str, project: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=func)
        if project:
            p.add_argument("project", metavar="PROJECT")
        return p

    p = command("summary", cmd_summary, "per-layer table: shapes, parameters, problems")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = command("templates", cmd_templates, "list the templates", project=False)
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p = command("new", cmd_new, "create a project from a template")
    p.add_argument("--template", required=True, metavar="NAME")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p = command("train", cmd_train, "train headless; save weights and run history")
    p.add_argument("--epochs", type=int, metavar="N", help="override the project's epochs")
    p.add_argument("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--out", metavar="PATH", help="save the trained project here instead")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--nproc", type=int, metavar="N", help="worker processes (distributed)")
    p.add_argument("--fresh", action="store_true",
                   help="start from new weights (seeded by training.seed) instead of the"
                        " project's trained ones; a stopped run is not resumed")
    p = command("predict", cmd_predict, "top-K classes with probabilities per image")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=int, default=5, metavar="K")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p = command("export", cmd_export, "export the model: Python source, TorchScript, ONNX,"
                " safetensors weights or a Markdown model card")
    p.add_argument("--format", choices=EXPORT_FORMATS,
                   help="what to write (default: from FILE's suffix: .py .pt .onnx"
                        " .safetensors .md)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    p = command("explain", cmd_explain, "what each filter of a layer responds to: the samples"
                " that excite it most; with --image, occlusion and Grad-CAM maps")
    p.add_argument("--layer", required=True, metavar="ID", help="the layer's id (see summary)")
    p.add_argument("--top", type=int, default=9, metavar="K",
                   help="samples per filter (default 9)")
    p.add_argument("--split", choices=("val", "train", "all"), default="val",
                   help="which samples to search (default val; all when val is empty)")
    p.add_argument("--image", metavar="IMG", help="also map where this image's evidence lies")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="write the pictures (PNG) and report.json into this folder")
    p = command("evaluate", cmd_evaluate, "the trained model's metrics on a test set"
                " (the data's test/ split by default); -o writes a report with pictures")
    p.add_argument("--data", metavar="PATH", help="another folder with the same classes"
                   " (segmentation: with images/ and masks/): all its samples")
    p.add_argument("--split", choices=("test", "val"), default=None,
                   help="which split of the project's data (default test; val when there"
                        " is no test split)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-o", "--output", metavar="REPORT",
                   help="write a report: REPORT.md (PNG pictures beside it) or REPORT.html")
    p = command("import", cmd_import, "import an ONNX model or a PyTorch class (with its"
                " weights) into a new project; FILE.py:CLASS runs that file's code",
                project=False)
    p.add_argument("model", metavar="MODEL",
                   help="an .onnx file, or FILE.py:CLASS: an nn.Module class in your own"
                        " file, created with no arguments and traced with torch.fx (this"
                        " RUNS the file's code: import only code you trust). Pickle-based"
                        " files (.pt, .pth, .pt2, TorchScript) are not read")
    p.add_argument("-o", "--output", required=True, metavar="PROJECT",
                   help="the .cnnproj file to write")
    p.add_argument("--input-shape", metavar="C,H,W",
                   help="the per-sample input shape, channels first, e.g. 3,32,32 (needed"
                        " when the model does not say it)")
    p.add_argument("--name", metavar="NAME", help="the project's name (default: the"
                   " model file's name)")
    p.add_argument("--weights", metavar="FILE.safetensors",
                   help="the class's state_dict as safetensors (FILE.py:CLASS only)")
    p.add_argument("--force", action="store_true", help="replace an existing PROJECT")
    p = command("sweep", cmd_sweep, "train every combination (or N random ones) of the"
                " settings given, record each run, rank them")
    p.add_argument("--set", action="append", metavar="KEY=V1,V2,...",
                   help="a dotted key into training or data and its values, e.g."
                        " training.optimizer.lr=0.001,0.003 (repeatable)")
    p.add_argument("--trials", type=int, metavar="N",
                   help="train N combinations drawn at random (seeded by training.seed)")
    p.add_argument("--epochs", type=int, metavar="N", help="override the project's epochs")
    p.add_argument("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--nproc", type=int, metavar="N", help="only 1 is supported")
    p.add_argument("--json", action="store_true", help="one JSON object per trial, then"
                   " the ranking")
    from cnnstudio.cli_runs import add_commands as add_run_commands

    add_run_commands(command)  # runs, compare
    from cnnstudio.cli_lrfind import add_command as add_lr_find

    add_lr_find(command)  # lr-find
    return parser


COMMANDS = ("summary", "templates", "new", "train", "predict", "export", "explain",
            "import", "evaluate", "runs", "compare", "sweep", "lr-find")
# cnnstudio.nn.export.FORMATS, repeated so that parsing the command line needs no torch.
EXPORT_FORMATS = ("python", "torchscript", "onnx", "safetensors", "card")


def _version() -> str:
    from cnnstudio import __version__

    return f"cnnstudio {__version__}"


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line; a first word that is no command opens the GUI on it."""
    argv = list(argv)
    if argv and (argv[0] in COMMANDS or argv[0].startswith("-")):
        args = _command_parser().parse_args(argv)
        if args.command is None:
            raise UsageError("no command given (see 'cnnstudio --help')")
        return args
    if argv and Path(argv[0]).suffix.lower() not in (".cnnproj", ".json") \
            and not Path(argv[0]).exists():
        raise UsageError(f"unknown command {argv[0]!r} (commands: {', '.join(COMMANDS)}; "
                         "or give a .cnnproj/.json project to open)")
    gui = _Parser(prog="cnnstudio", description="Open the CNN Studio window.")
    gui.add_argument("project", nargs="?", metavar="PROJECT")
    args = gui.parse_args(argv)
    args.func = cmd_gui
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
        return args.func(args)
    except UsageError as err:
        if os.environ.get("CNNSTUDIO_DEBUG"):  # where the message came from, for a report
            traceback.print_exc()
        fail(failure(err))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    except BrokenPipeError:
        return EXIT_OK
    except Exception as err:  # a bug of ours: still one line, never a traceback
        if os.environ.get("CNNSTUDIO_DEBUG"):
            raise
        fail(failure(err))
        return EXIT_PROBLEMS
    finally:
        if argv is None:  # the real command, not a caller in-process (tests)
            # A late Ctrl-C (the second of a double press, after a stopped run was saved)
            # would otherwise raise inside Python's shutdown hooks and print a traceback.
            # The work is done: ignore it, so the exit status stays the command's own.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
