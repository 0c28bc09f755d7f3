"""Where a run's weights started: the `init` of a run record, without torch.

A run record says `"init": "fresh"` (new weights, initialised with training.seed) or
`{"from_run": RUN_ID}` (a warm start from the weights that run left; RUN_ID None when
the project's weights come from no recorded run: imported, or edited by hand; for a
project made by `cnnstudio import`, `{"from_run": null, "imported": SOURCE}`). Records
that left weights carry their SHA-256 (`weights_sha256`, None when the run left none),
which is how the run whose weights the project holds is found. Records written before
these keys existed have neither; they still load and are taken at their word.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cnnstudio.project.model import Project
from cnnstudio.project.weights import RESUME_MEMBER

FRESH = "fresh"


_last_digest: tuple[bytes, str] | None = None  # the last weights hashed (by identity)


def weights_digest(weights: bytes) -> str:
    """The SHA-256 of a project's weights file, as run records keep it (`weights_sha256`).
    The last one is remembered: tens of MB take 20–30 ms, and Train asks again on the GUI
    thread for the weights a run just left (hashed on its worker) or that it asked about
    a moment ago (the start choice)."""
    global _last_digest
    last = _last_digest
    if last is not None and last[0] is weights:  # bytes are immutable: same object, same hash
        return last[1]
    digest = hashlib.sha256(weights).hexdigest()
    if type(weights) is bytes:
        _last_digest = (weights, digest)
    return digest


def _wrote_weights(record: dict[str, Any]) -> bool:
    """Whether an older record (without `weights_sha256`) left weights behind: any run
    that was not a failure did; a failed one only if it validated an epoch."""
    return record.get("status") != "failed" or record.get("best_epoch") is not None


def weights_run(project: Project) -> str | None:
    """The id of the latest run whose weights the project holds; None when it has no
    weights, or they come from no recorded run."""
    if project.weights is None:
        return None
    digest = None
    for record in reversed(project.runs):
        if not isinstance(record, dict):
            continue
        if "weights_sha256" in record:
            kept = record["weights_sha256"]
            digest = digest or weights_digest(project.weights)
            if isinstance(kept, str) and kept == digest:
                return str(record.get("id"))
        elif _wrote_weights(record):
            return str(record.get("id"))
    return None


def imported_from(project: Project) -> str | None:
    """The model file an imported project came from (its top-level `"imported": {"from":
    SOURCE, "kind": ...}`), or None for a project that was not imported."""
    imported = project.extra.get("imported")
    source = imported.get("from") if isinstance(imported, dict) else None
    return source if isinstance(source, str) and source else None


def starting_point(project: Project, fresh: bool = False) -> str | dict[str, Any]:
    """The `init` a new (not resumed) run of `project` records: "fresh" with `fresh` or
    without weights, else {"from_run": `weights_run(project)`}, plus `"imported": SOURCE`
    when those weights come from no run and the project was imported (`imported_from`).
    Training may still start fresh when the weights turn out not to fit the graph."""
    if fresh or project.weights is None:
        return FRESH
    run = weights_run(project)
    source = imported_from(project) if run is None else None
    return {"from_run": None, "imported": source} if source else {"from_run": run}


def stopped_run(project: Project) -> dict[str, Any] | None:
    """The record of the stopped run that training (without fresh) would try to resume:
    the last record, when it is "stopped" and its resume state is attached. (The resume
    can still be refused when the settings or the data changed since.)"""
    last = project.runs[-1] if project.runs else None
    if (isinstance(last, dict) and last.get("status") == "stopped"
            and RESUME_MEMBER in project.attachments):
        return last
    return None


def describe_init(init: Any) -> str:
    """A record's `init` in words: "new weights", "the weights of run-2", …"""
    if init == FRESH:
        return "new weights"
    if isinstance(init, dict) and init.get("from_run"):
        return f"the weights of {init['from_run']}"
    if isinstance(init, dict) and isinstance(init.get("imported"), str):
        return f"the imported weights ({init['imported']})"
    if isinstance(init, dict):
        return "the project's weights (from no recorded run)"
    return "unrecorded weights"  # a record older than `init`
