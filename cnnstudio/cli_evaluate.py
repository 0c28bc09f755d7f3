"""`cnnstudio evaluate`: the trained model's metrics on a test set, headless.

Exit status: 0 evaluated; 1 the project has no trained weights (as `predict`), or its
network cannot be built or run on the data; 2 bad arguments, data that cannot be loaded,
`--data` with other classes, a report that cannot be written. Imported only when the
command runs: it imports torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cnnstudio.cli_common import EXIT_OK, EXIT_PROBLEMS, UsageError, fail, load_project
from cnnstudio.cli_lines import DataProgress
from cnnstudio.train.evaluation_run import (
    Evaluation,
    EvaluationError,
    ModelRunError,
    NotTrainedError,
    evaluate_project,
)


def _text(ev: Evaluation) -> str:
    """The evaluation as a table for the terminal."""
    doc = ev.to_json()
    lines = [f"{doc['samples']} samples from {ev.samples_from}"]
    if ev.task == "classification":
        top5 = f", top-5 {doc['top5']:.4f}" if "top5" in doc else ""
        lines.append(f"accuracy {doc['accuracy']:.4f}{top5}")
        width = max(8, *(len(c["class"]) for c in doc["classes"]))
        lines.append(f"{'class':<{width}}  precision  recall      f1  support  roc_auc"
                     "  avg_prec")
        rows = [(c["class"], c) for c in doc["classes"]]
        rows += [(name, {**doc[name], "support": doc["samples"]})
                 for name in ("macro", "weighted")]
        for name, c in rows:
            auc = c.get("roc_auc")
            ap = c.get("average_precision")
            lines.append(f"{name:<{width}}  {c['precision']:9.4f}  {c['recall']:6.4f}"
                         f"  {c['f1']:6.4f}  {c['support']:7d}  "
                         + (f"{auc:7.4f}" if auc is not None else f"{'—':>7}")
                         + ("  " + (f"{ap:8.4f}" if ap is not None else f"{'—':>8}")))
        lines.append("confusion matrix (rows true, columns predicted):")
        lines += ["  " + " ".join(f"{v:5d}" for v in row) for row in doc["confusion_matrix"]]
    else:
        lines.append("  ".join(f"{key} {doc[key]:.4f}" for key in
                               ("iou", "dice", "precision", "recall", "f1"))
                     + f"; best-F1 threshold {doc['best_threshold']:.2f}")
        worst = ev.result.worst(5)  # type: ignore[union-attr]
        lines.append("worst images (IoU): " + ", ".join(
            f"{Path(doc['images'][i]['file']).name if doc['images'][i]['file'] else i}"
            f" ({doc['images'][i]['iou']:.3f})" for i in worst))
    return "\n".join(lines)


def _report_path(given: str | None) -> Path | None:
    if given is None:
        return None
    path = Path(given)
    if path.suffix.lower() not in (".md", ".html", ".htm"):
        raise UsageError(f"-o {given}: the report is a .md or .html file")
    if not path.parent.is_dir():  # before minutes of work
        raise UsageError(f"-o {given}: the folder {path.parent} does not exist")
    return path


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, allow_nan=False)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """`cnnstudio evaluate PROJECT [--data PATH] [--split test|val] [--json] [-o REPORT]`.
    Returns EXIT_OK or EXIT_PROBLEMS (untrained, or the model cannot run); raises
    UsageError (status 2, one line) for the rest."""
    from cnnstudio.train.evaluation_report import write_report

    project = load_project(args.project)
    report = _report_path(args.output)
    if args.data is not None and not args.data.strip():
        raise UsageError("--data is empty: give a folder")
    terminal = not args.json and sys.stderr.isatty()
    progress = DataProgress(sys.stderr, "") if terminal else None
    try:
        ev = evaluate_project(project, data=args.data, split=args.split, progress=progress)
    except (NotTrainedError, ModelRunError) as err:
        fail(str(err))
        return EXIT_PROBLEMS
    except EvaluationError as err:
        raise UsageError(str(err)) from None
    finally:
        if progress is not None:
            progress.end_line()
    written: list[Path] = []
    if report is not None:
        try:
            written = write_report(ev, report, project.name or Path(args.project).stem)
        except (OSError, ValueError) as err:
            reason = getattr(err, "strerror", None) or err
            raise UsageError(f"-o {args.output}: cannot write the report: {reason}") from None
    if args.json:
        print(_json(ev.to_json()))
    else:
        print(_text(ev))
        if written:
            print(f"wrote {', '.join(str(p) for p in written)}")
    if ev.note:
        print(f"cnnstudio: {ev.note}", file=sys.stderr)
    return EXIT_OK
