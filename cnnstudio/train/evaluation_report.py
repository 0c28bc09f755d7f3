"""An evaluation as a Markdown or HTML report with pictures drawn by matplotlib (Agg).

Markdown: the PNGs are written beside the .md (`NAME-confusion.png`, …) and linked;
HTML: the PNGs are embedded (base64), one self-contained file. matplotlib is imported
only here, inside functions.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from cnnstudio.train.evaluation import ClassificationResult, curves
from cnnstudio.train.evaluation_run import Evaluation


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: pictures only
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def _confusion_png(res: ClassificationResult) -> bytes:
    plt = _pyplot()
    k = len(res.class_names)
    size = min(3 + 0.45 * k, 14)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(res.confusion, cmap="Blues")
    ax.set_xticks(range(k), res.class_names, rotation=90 if k > 6 else 0)
    ax.set_yticks(range(k), res.class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:
        top = res.confusion.max() or 1
        for i in range(k):
            for j in range(k):
                v = res.confusion[i, j]
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                        color="white" if v > top / 2 else "black")
    ax.set_title(f"confusion matrix (accuracy {res.accuracy:.3f})")
    return _png(fig)


def _curves_png(ev: Evaluation) -> bytes:
    plt = _pyplot()
    res = ev.result
    assert isinstance(res, ClassificationResult) and ev.y is not None
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(11, 4.8))
    for c, name in enumerate(res.class_names):
        if res.support[c] == 0:
            continue
        pts = curves(ev.y == c, ev.probabilities[:, c])
        auc = res.roc_auc[c]
        roc.plot(pts["fpr"], pts["tpr"], label=f"{name} (AUC {auc:.3f})" if auc is not None
                 else name)
        pr.step(pts["recall"], pts["precision"], where="post",
                label=f"{name} (AP {res.average_precision[c]:.3f})")
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc.set(xlabel="false positive rate", ylabel="true positive rate",
            title="ROC (one vs rest)")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall (one vs rest)",
           ylim=(0, 1.02))
    if len(res.class_names) <= 12:
        roc.legend(fontsize=7)
        pr.legend(fontsize=7)
    return _png(fig)


def _sweep_png(ev: Evaluation) -> bytes:
    plt = _pyplot()
    sweep, best = ev.result.sweep, ev.result.best_threshold  # type: ignore[union-attr]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in ("precision", "recall", "f1", "accuracy"):
        ax.plot(sweep["threshold"], sweep[key], label=key)
    ax.axvline(best, color="grey", linestyle="--", label=f"best F1 at {best:.2f}")
    ax.set(xlabel="foreground probability threshold", ylabel="score", ylim=(0, 1.02),
           title="threshold sweep (pixels)")
    ax.legend()
    return _png(fig)


def _worst_png(ev: Evaluation) -> bytes:
    plt = _pyplot()
    shown = ev.worst
    fig, axes = plt.subplots(len(shown), 3, figsize=(7.5, 2.6 * len(shown)), squeeze=False)
    for row, item in zip(axes, shown, strict=True):
        image = np.asarray(item["image"], np.float64)
        image = image - image.min()
        image = image / (image.max() or 1)
        picture = image[0] if image.shape[0] == 1 else np.moveaxis(image[:3], 0, -1)
        for ax, (title, mask) in zip(row, (("image", None), ("true", item["truth"]),
                                           ("predicted", item["predicted"])), strict=True):
            ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
            if mask is not None:
                ax.imshow(np.ma.masked_where(~mask, mask), cmap="autumn", alpha=0.5)
            ax.set_title(f"#{item['index']} {title}" + (f" (IoU {item['iou']:.3f})"
                                                        if title == "predicted" else ""),
                         fontsize=8)
            ax.axis("off")
    return _png(fig)


def _num(v: Any) -> str:
    return "—" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def _tables(ev: Evaluation) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the report's tables."""
    doc = ev.to_json()
    if ev.task == "classification":
        res = ev.result
        keys = ("precision", "recall", "f1", "support", "roc_auc", "average_precision")
        rows = [[c["class"], *(_num(c[k]) for k in keys)] for c in doc["classes"]]
        for name in ("macro", "weighted"):
            rows.append([f"**{name}**", *(_num(doc[name].get(k)) for k in keys)])
        mistakes = [[str(m["index"]), res.class_names[m["true"]],
                     res.class_names[m["predicted"]], _num(m["probability"]),
                     str(ev.files[m["index"]] or "—")] for m in res.mistakes]
        return [("Per class", ["class", "precision", "recall", "F1", "support", "ROC AUC",
                               "average precision"], rows),
                ("Most confident mistakes", ["sample", "true", "predicted", "probability",
                                             "file"], mistakes)]
    images = sorted(enumerate(doc["images"]), key=lambda r: r[1]["iou"])
    rows = [[str(i), str(img["file"] or "—"), *(_num(img[k]) for k in
                                                 ("iou", "dice", "precision", "recall", "f1"))]
            for i, img in images]
    return [("Per image (worst first)", ["sample", "file", "IoU", "Dice", "precision",
                                         "recall", "F1"], rows)]


def _summary(ev: Evaluation) -> list[str]:
    doc = ev.to_json()
    keys = (("accuracy", "top5") if ev.task == "classification"
            else ("iou", "dice", "precision", "recall", "f1", "best_threshold"))
    lines = [f"{doc['samples']} samples from {ev.samples_from}."]
    lines += [f"{key}: {_num(doc[key])}" for key in keys if key in doc]
    return lines + ([ev.note] if ev.note else [])


def pictures(ev: Evaluation) -> dict[str, bytes]:
    """name → PNG bytes of the report's pictures."""
    if ev.task == "classification":
        return {"confusion": _confusion_png(ev.result), "curves": _curves_png(ev)}  # type: ignore[arg-type]
    out = {"sweep": _sweep_png(ev)}
    if ev.worst:
        out["worst"] = _worst_png(ev)
    return out


def write_report(ev: Evaluation, path: Path, title: str) -> list[Path]:
    """Write the report to `path` (.md: PNGs beside it; .html: embedded); return the files
    written. Raises ValueError for another suffix, OSError when a file cannot be written."""
    suffix = path.suffix.lower()
    if suffix not in (".md", ".html", ".htm"):
        raise ValueError(f"{path.name}: the report is .md or .html")
    pngs = pictures(ev)
    if suffix == ".md":
        written = []
        lines = [f"# Evaluation of {title}", "", *(f"- {line}" for line in _summary(ev)), ""]
        for name, data in pngs.items():
            png = path.with_name(f"{path.stem}-{name}.png")
            png.write_bytes(data)
            written.append(png)
            lines += [f"![{name}]({png.name})", ""]
        for caption, header, rows in _tables(ev):
            cells = [[c.replace("|", "\\|") for c in row] for row in rows]
            lines += [f"## {caption}", "", "| " + " | ".join(header) + " |",
                      "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in cells),
                      ""]
        path.write_text("\n".join(lines), encoding="utf-8")
        return [path, *written]
    esc = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>{esc(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
             "</style>", f"<h1>Evaluation of {esc(title)}</h1><ul>",
             *(f"<li>{esc(line)}</li>" for line in _summary(ev)), "</ul>"]
    for name, data in pngs.items():
        parts.append(f"<p><img alt='{name}' src='data:image/png;base64,"
                     f"{base64.b64encode(data).decode('ascii')}'></p>")
    for caption, header, rows in _tables(ev):
        parts.append(f"<h2>{esc(caption)}</h2><table><tr>"
                     + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(c.strip('*'))}</td>" for c in row) + "</tr>"
                  for row in rows]
        parts.append("</table>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return [path]
