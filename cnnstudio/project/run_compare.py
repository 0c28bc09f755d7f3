"""Runs side by side: the list of a project's runs and what differs between two of them
(the settings, the graph each trained, the metrics), for `cnnstudio runs` / `compare` and
History's compare view. Pure Python on run records (dicts); no torch, no Qt."""

from __future__ import annotations

from typing import Any

# Keys of a run record's `best` that are per-class lists or bookkeeping, not metrics.
_NOT_METRICS = ("epoch", "seconds", "lr")


class UnknownRun(LookupError):
    """A run id the project has no record of; the message is one line naming the known ids."""


def find_run(runs: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    """The record of run `run_id`; raises UnknownRun (one line, the known ids) if absent."""
    for run in runs:
        if isinstance(run, dict) and str(run.get("id")) == run_id:
            return run
    known = ", ".join(str(r.get("id")) for r in runs if isinstance(r, dict)) or "none"
    raise UnknownRun(f"no run {run_id!r} in this project (runs: {known})")


def run_metrics(run: dict[str, Any]) -> dict[str, Any]:
    """The run's best-epoch metrics: the scalar numbers of its `best` record."""
    best = run.get("best") or {}
    if not isinstance(best, dict):
        return {}
    return {k: v for k, v in best.items() if k not in _NOT_METRICS
            and (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)))}


def list_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`runs --json`: one `{"id", "status", "init", "best_epoch", "best"}` per run, oldest
    first; `init` is None for records that predate it."""
    return [{"id": run.get("id"), "status": run.get("status"), "init": run.get("init"),
             "best_epoch": run.get("best_epoch"), "best": run_metrics(run)}
            for run in runs if isinstance(run, dict)]


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    # Dicts become dotted paths; lists and scalars are leaves (compared whole).
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}", out)
    else:
        out[prefix] = value


def run_settings(run: dict[str, Any]) -> dict[str, Any]:
    """A run's recorded settings as dotted paths: `training.*` from its `settings` (filled
    training settings), `data.*` from its `data` (absent in records that predate it)."""
    out: dict[str, Any] = {}
    for section, key in (("training", "settings"), ("data", "data")):
        value = run.get(key)
        if isinstance(value, dict):
            for name, inner in value.items():
                _flatten(inner, f"{section}.{name}", out)
    return out


_MISSING = object()


def settings_diff(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """`[{"key", "a", "b"}]` for every dotted setting whose values differ (None where a run
    has no such key), sorted by key."""
    sa, sb = run_settings(a), run_settings(b)
    out = []
    for key in sorted(set(sa) | set(sb)):
        va, vb = sa.get(key, _MISSING), sb.get(key, _MISSING)
        if va != vb:
            out.append({"key": key, "a": None if va is _MISSING else va,
                        "b": None if vb is _MISSING else vb})
    return out


def _nodes(run: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    graph = run.get("graph")
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
        return None
    return {str(n["id"]): {"type": n.get("type"), "params": n.get("params") or {},
                           "inputs": list(n.get("inputs") or [])}
            for n in graph["nodes"] if isinstance(n, dict) and "id" in n}


def graph_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    """`{"added", "removed", "changed"}` between the graphs runs `a` and `b` trained: node
    ids only in b / only in a (in graph order), and `{"id", "a", "b"}` for nodes whose
    type, params or inputs differ (a/b hold only the differing fields). Empty lists when a
    record predates keeping its graph (nothing can be said)."""
    na, nb = _nodes(a), _nodes(b)
    if na is None or nb is None:
        return {"added": [], "removed": [], "changed": []}
    changed = []
    for node_id, node in na.items():
        other = nb.get(node_id)
        if other is None:
            continue
        fields = [f for f in ("type", "params", "inputs") if node[f] != other[f]]
        if fields:
            changed.append({"id": node_id, "a": {f: node[f] for f in fields},
                            "b": {f: other[f] for f in fields}})
    return {"added": [i for i in nb if i not in na], "removed": [i for i in na if i not in nb],
            "changed": changed}


def metrics_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`{"a": {...}, "b": {...}}`: the best-epoch metrics whose values differ."""
    ma, mb = run_metrics(a), run_metrics(b)
    keys = [k for k in sorted(set(ma) | set(mb)) if ma.get(k) != mb.get(k)]
    return {"a": {k: ma[k] for k in keys if k in ma}, "b": {k: mb[k] for k in keys if k in mb}}


def compare_runs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """`compare --json`: `{"settings", "graph", "metrics"}` — only what differs."""
    return {"settings": settings_diff(a, b), "graph": graph_diff(a, b),
            "metrics": metrics_diff(a, b)}


def has_graph(run: dict[str, Any]) -> bool:
    """Whether the record keeps the graph it trained (older records do not)."""
    return _nodes(run) is not None


def changed_nodes(diff: dict[str, Any]) -> list[str]:
    """The node ids of a graph diff that exist in run b's graph (added or changed): the
    ones to point at on a canvas showing that graph."""
    return [*diff["added"], *(c["id"] for c in diff["changed"])]


def settings_table(runs: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """For several runs: `(dotted key, [value per run])` for every setting whose values are
    not all the same (None where a run lacks it), sorted by key."""
    flat = [run_settings(run) for run in runs]
    keys = sorted(set().union(*flat)) if flat else []
    rows = []
    for key in keys:
        values = [f.get(key, _MISSING) for f in flat]
        if any(v != values[0] for v in values[1:]):
            rows.append((key, [None if v is _MISSING else v for v in values]))
    return rows


def metrics_table(runs: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """For several runs: `(metric, [best-epoch value per run])` for every scalar metric any
    of them recorded, sorted by name (None where a run has none)."""
    per_run = [run_metrics(run) for run in runs]
    keys = sorted(set().union(*per_run)) if per_run else []
    return [(key, [m.get(key) for m in per_run]) for key in keys]
