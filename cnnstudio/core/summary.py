"""The model summary table (Keras/torchinfo-like), shared by the CLI and the window."""

from __future__ import annotations

from dataclasses import dataclass

from cnnstudio.core.graph import Graph
from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.shapes import ERROR, Inference


@dataclass
class SummaryRow:
    id: str
    type: str
    caption: str
    shape: list[int] | None
    params: int
    macs: int
    memory: int


def summary_rows(graph: Graph, inference: Inference) -> list[SummaryRow]:
    """One row per node in topological order (nodes on a cycle last)."""
    ordered = set(inference.order)
    ids = inference.order + [nid for nid in graph.ids if nid not in ordered]
    rows = []
    for nid in ids:
        info = inference.nodes[nid]
        rows.append(SummaryRow(nid, info.type, info.caption,
                               list(info.shape) if info.shape is not None else None,
                               info.params, info.macs, info.memory))
    return rows


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def summary_text(name: str, graph: Graph, inference: Inference) -> str:
    """The table as plain text, with totals and the problems list."""
    rows = summary_rows(graph, inference)
    table = [("Layer", "Type", "Output shape", "Params", "MACs")]
    for r in rows:
        shape = fmt_shape(r.shape) if r.shape is not None else "?"
        table.append((r.id, f"{r.type} {r.caption}".strip(), shape, f"{r.params:,}",
                      f"{r.macs:,}"))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    lines = [f"Model: {name}"]
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) if j < 3 else cell.rjust(w)
                               for j, (cell, w) in enumerate(zip(row, widths, strict=True))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"Total params: {inference.total_params:,}")
    lines.append(f"Multiply-adds per sample: {inference.total_macs:,}")
    lines.append(f"Activation memory per sample: {human_bytes(inference.total_memory)}")
    errors = [p for p in inference.problems if p.severity == ERROR]
    warnings = [p for p in inference.problems if p.severity != ERROR]
    if errors or warnings:
        lines.append("")
        lines.append(f"Problems: {len(errors)} error(s), {len(warnings)} warning(s)")
        for p in errors + warnings:
            lines.append(f"  {p.severity}: {p}")
    return "\n".join(lines)
