"""The model card: a Markdown summary of a project to paste into a report.

Title and task, the layer table with totals, the data and training settings, the best
metrics of the latest completed run with its confusion matrix, and the run history. An
untrained project gets a card too, which says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cnnstudio import __version__
from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.summary import human_bytes, summary_rows
from cnnstudio.nn.export.facts import ExportFacts

# Metrics shown first, in this order, when a run has them; others follow by name.
_METRICS = ("val_accuracy", "val_top5", "val_iou", "val_dice", "val_pixel_accuracy",
            "val_loss", "train_loss")
_SKIP = {"epoch", "seconds", "lr"}


def md(text: Any) -> str:
    """`text` safe inside a Markdown table cell: one line, pipes and backslashes escaped."""
    return " ".join(str(text).split()).replace("\\", "\\\\").replace("|", "\\|")


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return md(value)


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 99) -> list[str]:
    align = ["---:" if i >= numeric_from else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _layers(facts: ExportFacts) -> list[str]:
    rows = [[f"`{r.id}`", md(f"{r.type} {r.caption}".strip()),
             fmt_shape(r.shape) if r.shape is not None else "?", f"{r.params:,}", f"{r.macs:,}"]
            for r in summary_rows(facts.graph, facts.inference)]
    inf = facts.inference
    return ["## Architecture", "",
            *_table(["Layer", "Type", "Output shape", "Params", "MACs"], rows, 3), "",
            f"**Total:** {inf.total_params:,} trainable parameters · {inf.total_macs:,}"
            f" multiply-adds per sample · {human_bytes(inf.total_memory)} of activations"
            " per sample.", ""]


def _source(source: dict[str, Any]) -> str:
    kind = source.get("kind")
    if kind == "builtin":
        return f"built-in dataset `{md(source.get('name'))}`"
    paths = [f"{key} `{md(source[key])}`" for key in ("path", "images", "masks", "labels")
             if key in source]
    return f"{md(kind)}: " + ", ".join(paths) if paths else md(kind or "unknown")


def _augmentation(aug: Any) -> str:
    if not isinstance(aug, dict):
        return "none"
    parts = []
    if aug.get("flip"):
        flip = aug["flip"]
        parts.append("horizontal flip" + ("" if flip is True else f" (p = {flip:g})"))
    if aug.get("crop_padding"):
        parts.append(f"random crop with {aug['crop_padding']} px padding")
    if aug.get("rotation"):
        parts.append(f"rotation up to {aug['rotation']:g}°")
    return ", ".join(parts) or "none"


def _data(facts: ExportFacts) -> list[str]:
    data = facts.data
    lines = ["## Data", ""]
    if isinstance(data.get("source"), dict):
        lines.append(f"- Source: {_source(data['source'])}")
    if isinstance(data.get("val_fraction"), int | float):
        lines.append(f"- Validation split: {data['val_fraction']:.0%} of the samples")
    norm = facts.normalization
    if norm is None:
        lines.append("- Normalization: not measured yet (the project is untrained)"
                     if not facts.trained else "- Normalization: unknown")
    elif not norm.get("normalize", True):
        lines.append("- Normalization: none (inputs scaled to 0…1)")
    else:
        mean = ", ".join(f"{v:.4f}" for v in norm["mean"])
        std = ", ".join(f"{v:.4f}" for v in norm["std"])
        lines.append(f"- Normalization: per-channel mean ({mean}), std ({std}) of the"
                     " training split, after scaling to 0…1")
    lines.append(f"- Augmentation: {_augmentation(data.get('augmentation'))}")
    if facts.class_names:
        names = ", ".join(md(n) for n in facts.class_names)
        lines.append(f"- Classes ({len(facts.class_names)}): {names}")
    else:
        lines.append(f"- Classes: {facts.output_shape[0]} outputs; names unknown until trained")
    return lines + [""]


def _optimizer(opt: Any) -> str:
    if not isinstance(opt, dict):
        return "—"
    extras = [f"{key.replace('_', ' ')} {value:g}" for key, value in opt.items()
              if key in ("weight_decay", "momentum", "alpha") and isinstance(value, int | float)]
    if opt.get("nesterov"):
        extras.append("Nesterov")
    lr = opt.get("lr")
    text = f"{md(opt.get('name', '?'))}, lr {lr:g}" if isinstance(lr, int | float) else \
        md(opt.get("name", "?"))
    return ", ".join([text, *extras])


def _schedule(sched: Any) -> str:
    if not isinstance(sched, dict) or sched.get("name", "none") == "none":
        return "none"
    extras = [f"{k.replace('_', ' ')} {v:g}" for k, v in sched.items()
              if k != "name" and isinstance(v, int | float) and not isinstance(v, bool)]
    return ", ".join([md(sched["name"]), *extras])


def _training(facts: ExportFacts, record: dict[str, Any] | None) -> list[str]:
    used = record.get("settings") if record and isinstance(record.get("settings"), dict) \
        else None
    settings = used or facts.training
    where = f"as run `{md(record.get('id'))}` used them" if used and record else \
        "the project's settings"
    loss = settings.get("loss") if isinstance(settings.get("loss"), dict) else {}
    smoothing = loss.get("label_smoothing")
    early = settings.get("early_stopping") if isinstance(settings.get("early_stopping"),
                                                         dict) else {}
    rows = [
        ["Optimizer", _optimizer(settings.get("optimizer"))],
        ["Schedule", _schedule(settings.get("schedule"))],
        ["Epochs", _number(settings.get("epochs"))],
        ["Batch size", _number(settings.get("batch_size"))],
        ["Loss", md(loss.get("name", "auto")) + (f", label smoothing {smoothing:g}"
                                                  if smoothing else "")],
        ["Augmentation", _augmentation(facts.data.get("augmentation"))],
        ["Early stopping", f"patience {early['patience']}" if early.get("patience") else "off"],
        ["Seed", _number(settings.get("seed"))],
    ]
    if settings.get("max_batches_per_epoch"):
        rows.append(["Batches per epoch", f"at most {settings['max_batches_per_epoch']}"])
    return [f"## Training ({where})", "", *_table(["Setting", "Value"], rows), ""]


def _metric_names(best: dict[str, Any]) -> list[str]:
    scalars = [k for k, v in best.items() if k not in _SKIP and isinstance(v, int | float)
               and not isinstance(v, bool)]
    return [k for k in _METRICS if k in scalars] + sorted(k for k in scalars if k not in _METRICS)


def _confusion(matrix: Any, names: list[str]) -> list[str]:
    if not (isinstance(matrix, list) and matrix and all(isinstance(r, list) for r in matrix)):
        return []
    labels = [md(names[i]) if i < len(names) else str(i) for i in range(len(matrix))]
    rows = [[f"**{labels[i]}**", *(_number(v) for v in row)] for i, row in enumerate(matrix)]
    return ["### Confusion matrix", "",
            "Rows: the true class; columns: the predicted class (validation set, best epoch).",
            "", *_table(["true \\ predicted", *labels], rows, 1), ""]


def _per_class(best: dict[str, Any], names: list[str]) -> list[str]:
    keys = [k for k in ("precision", "recall", "f1", "iou") if isinstance(best.get(k), list)]
    if not keys:
        return []
    count = max(len(best[k]) for k in keys)
    rows = [[md(names[i]) if i < len(names) else str(i),
             *(_number(best[k][i]) if i < len(best[k]) else "—" for k in keys)]
            for i in range(count)]
    return ["### Per class", "", *_table(["Class", *keys], rows, 1), ""]


def _results(facts: ExportFacts, record: dict[str, Any] | None) -> list[str]:
    lines = ["## Results", ""]
    if record is None or not isinstance(record.get("best"), dict) or not record["best"]:
        why = "the project is untrained" if not facts.trained else "no run recorded metrics"
        return lines + [f"No results: {why}.", ""]
    best, epochs = record["best"], record.get("epochs")
    count = len(epochs) if isinstance(epochs, list) else "?"
    lines.append(f"Run `{md(record.get('id'))}` ({md(record.get('status'))}, finished"
                 f" {md(record.get('finished') or '—')} on {md(record.get('device') or '?')}):"
                 f" best epoch {_number(record.get('best_epoch'))} of {count}."
                 + _started(record))
    lines.append("")
    rows = [[name, _number(best[name])] for name in _metric_names(best)]
    lines += _table(["Metric", "Value"], rows, 1) + [""]
    names = record.get("class_names") if isinstance(record.get("class_names"), list) else []
    names = [str(n) for n in names] or facts.class_names
    return lines + _per_class(best, names) + _confusion(record.get("confusion_matrix"), names)


def _init(record: dict[str, Any]) -> str:
    """Where a run's weights started, for the history table."""
    init = record.get("init")
    if init == "fresh":
        return "fresh"
    if isinstance(init, dict):
        run = init.get("from_run")
        if run:
            return f"from `{md(run)}`"
        imported = init.get("imported")
        return f"from the imported `{md(str(imported))}`" if imported \
            else "from weights of no recorded run"
    return "—"  # a record older than `init`


def _started(record: dict[str, Any]) -> str:
    """A sentence on where the run's weights started ('' for older records)."""
    init = record.get("init")
    if init == "fresh":
        return " It started from a new random initialisation."
    if isinstance(init, dict) and init.get("from_run"):
        return f" It continued from the weights of run `{md(init['from_run'])}` (a warm start)."
    if isinstance(init, dict) and init.get("imported"):
        return f" It started from the weights imported from `{md(str(init['imported']))}`."
    if isinstance(init, dict):
        return " It continued from weights of no recorded run (a warm start)."
    return ""


def _history(facts: ExportFacts) -> list[str]:
    if not facts.runs:
        return ["## Run history", "", "No runs yet.", ""]
    metric = "val_iou" if facts.task == "segmentation" else "val_accuracy"
    rows = []
    for r in facts.runs:
        best = r.get("best") if isinstance(r.get("best"), dict) else {}
        epochs = r.get("epochs")
        rows.append([f"`{md(r.get('id', '?'))}`", md(r.get("status", "?")),
                     md(r.get("started") or "—"), _init(r),
                     str(len(epochs)) if isinstance(epochs, list)
                     else "—", _number(r.get("best_epoch")), _number(best.get(metric)),
                     _number(best.get("val_loss")), md(r.get("device") or "—"),
                     md(r.get("message") or "")])
    header = ["Run", "Status", "Started", "Weights", "Epochs", "Best epoch", f"Best {metric}",
              "Best val_loss", "Device", "Message"]
    return ["## Run history", "",
            "Weights: where each run's weights started — fresh (a new random"
            " initialisation) or from an earlier run's weights (a warm start).", "",
            *_table(header, rows), ""]


def model_card(facts: ExportFacts) -> str:
    """The project's model card as Markdown text."""
    record = facts.latest_result()
    today = datetime.now(UTC).astimezone().date().isoformat()
    task = "Segmentation" if facts.task == "segmentation" else "Classification"
    what = "per-pixel classes" if facts.task == "segmentation" else "classes"
    lines = [f"# {md(facts.name)}", "",
             f"Model card written by CNN Studio {__version__} on {today}.", ""]
    if not facts.trained:
        lines += ["> **Untrained.** This project has no trained weights yet: exported models"
                  f" hold the random initial weights (seed {facts.seed}).", ""]
    lines += ["## Task", "",
              f"{task} of {fmt_shape(facts.input_shape)} inputs into"
              f" {facts.output_shape[0]} {what}; the output is"
              f" {fmt_shape(facts.output_shape)} per sample.", ""]
    lines += _layers(facts) + _data(facts) + _training(facts, record)
    lines += _results(facts, record) + _history(facts)
    return "\n".join(lines).rstrip("\n") + "\n"
