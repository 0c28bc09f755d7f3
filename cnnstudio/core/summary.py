"""The model summary table (Keras/torchinfo-like), shared by the CLI and the window, and
the facts of one group (a folded block's card and summary row)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnstudio.core.graph import Graph
from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.shapes import ERROR, Inference, Problem


@dataclass
class SummaryRow:
    id: str
    type: str
    caption: str
    shape: list[int] | None
    params: int
    macs: int
    memory: int
    trainable: bool = True  # False: a frozen node (training leaves its parameters)


def summary_rows(graph: Graph, inference: Inference) -> list[SummaryRow]:
    """One row per node in topological order (nodes on a cycle last)."""
    ordered = set(inference.order)
    ids = inference.order + [nid for nid in graph.ids if nid not in ordered]
    rows = []
    for nid in ids:
        info = inference.nodes[nid]
        rows.append(SummaryRow(nid, info.type, info.caption,
                               list(info.shape) if info.shape is not None else None,
                               info.params, info.macs, info.memory,
                               nid not in inference.frozen))
    return rows


@dataclass
class GroupSummary:
    """A block as seen from outside: the shape entering it (the output of the first node
    outside that feeds it; a block holding the Input node: that node's shape), the shape
    leaving it (the last of its nodes that something outside uses, or its last node when
    nothing does), and the sums over every node inside, nested groups' too."""

    in_shape: tuple[int, ...] | None
    out_shape: tuple[int, ...] | None
    params: int
    macs: int
    layers: int
    problems: list[Problem] = field(default_factory=list)
    severity: str | None = None  # "error", "warning" or None
    memory: int = 0  # activation bytes per sample of the nodes inside
    # Every distinct shape entering / leaving, for blocks with several (a U-Net decoder
    # stage takes the upsampled map and the encoder's skip).
    in_shapes: list[tuple[int, ...] | None] = field(default_factory=list)
    out_shapes: list[tuple[int, ...] | None] = field(default_factory=list)
    frozen_params: int = 0  # of `params`, those in frozen nodes
    frozen_layers: int = 0  # of `layers`, the frozen ones


def _flow_index(graph: Graph, inference: Inference) -> tuple[
        dict[str, int], dict[str, list[str]], dict[str, list[Problem]]]:
    """(topological position, consumers, problems) per node, computed once per graph
    revision and inference: the summary table asks for every group of a 1,000-node graph
    after each edit."""
    cache = graph.caches.setdefault("group_summary", {})
    if cache.get("revision") != graph.revision or cache.get("inference") is not inference:
        position = {nid: i for i, nid in enumerate(inference.order)}
        for nid in graph.ids:  # nodes on a cycle: after the rest, in graph order
            position.setdefault(nid, len(position))
        consumers: dict[str, list[str]] = {}
        for node in graph:
            for src in node.inputs:
                consumers.setdefault(src, []).append(node.id)
        problems: dict[str, list[Problem]] = {}
        for problem in inference.problems:
            if problem.node is not None:
                problems.setdefault(problem.node, []).append(problem)
        cache.update(revision=graph.revision, inference=inference,
                     index=(position, consumers, problems))
    return cache["index"]


def _shape(inference: Inference, node_id: str) -> tuple[int, ...] | None:
    info = inference.nodes.get(node_id)
    return tuple(info.shape) if info is not None and info.shape is not None else None


def group_summary(graph: Graph, inference: Inference, group_id: str) -> GroupSummary:
    """The facts of group `group_id` (nested groups' nodes included); raises
    MissingNodeError for an unknown group. An empty group gives zeros and no shapes."""
    members = graph.groups.nodes(group_id)
    position, consumers, problems_of = _flow_index(graph, inference)
    inside = set(members)
    ordered = sorted(members, key=lambda nid: position.get(nid, len(position)))
    entering = list(dict.fromkeys(src for nid in ordered for src in graph.node(nid).inputs
                                  if src not in inside))
    if not entering:  # the block starts the network: data enters at its Input node
        entering = [nid for nid in ordered if not graph.node(nid).inputs][:1]
    leaving = [nid for nid in ordered
               if any(user not in inside for user in consumers.get(nid, ()))]
    if not leaving:  # the block ends the network: its last node that feeds nothing
        leaving = [nid for nid in ordered if nid not in consumers][-1:] or ordered[-1:]
    infos = [inference.nodes[nid] for nid in ordered if nid in inference.nodes]
    problems = [p for nid in ordered for p in problems_of.get(nid, ())]
    severity = (ERROR if any(p.severity == ERROR for p in problems)
                else problems[0].severity if problems else None)
    return GroupSummary(
        in_shape=_shape(inference, entering[0]) if entering else None,
        out_shape=_shape(inference, leaving[-1]) if leaving else None,
        params=sum(i.params for i in infos), macs=sum(i.macs for i in infos),
        layers=len(members), problems=problems, severity=severity,
        memory=sum(i.memory for i in infos),
        frozen_params=sum(i.params for i in infos if i.id in inference.frozen),
        frozen_layers=sum(1 for nid in members if nid in inference.frozen),
        in_shapes=list(dict.fromkeys(_shape(inference, nid) for nid in entering)),
        out_shapes=list(dict.fromkeys(_shape(inference, nid) for nid in leaving)))


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def summary_text(name: str, graph: Graph, inference: Inference) -> str:
    """The table as plain text, with totals and the problems list; with frozen nodes, a
    Trainable column and the trainable / frozen totals."""
    rows = summary_rows(graph, inference)
    frozen = bool(inference.frozen)
    table = [("Layer", "Type", "Output shape", "Params", "MACs") + (("Trainable",) if frozen
                                                                   else ())]
    for r in rows:
        shape = fmt_shape(r.shape) if r.shape is not None else "?"
        table.append((r.id, f"{r.type} {r.caption}".strip(), shape, f"{r.params:,}",
                      f"{r.macs:,}") + ((("yes" if r.trainable else "no (frozen)"),) if frozen
                                        else ()))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [f"Model: {name}"]
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) if j < 3 or j > 4 else cell.rjust(w)
                               for j, (cell, w) in enumerate(zip(row, widths, strict=True)))
                     .rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"Total params: {inference.total_params:,}")
    if frozen:
        lines.append(f"Trainable params: {inference.trainable_params:,}")
        lines.append(f"Frozen params: {inference.frozen_params:,}"
                     f" ({len(inference.frozen)} frozen layer(s))")
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
