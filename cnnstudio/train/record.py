"""What a run leaves behind: the `RunResult` of `Trainer.fit()` and the JSON run record
appended to `project.runs`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import torch

from cnnstudio.train.resume import ResumeState

COMPLETED, STOPPED, FAILED = "completed", "stopped", "failed"

# Per-epoch keys kept in the run record (per-class lists stay in `best` only).
EPOCH_KEYS = ("epoch", "train_loss", "val_loss", "val_accuracy", "val_top5", "val_iou",
              "val_dice", "val_pixel_accuracy", "lr", "seconds")


def now_iso() -> str:
    """The current time as ISO 8601 with the local UTC offset, to the second."""
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


@dataclass
class RunResult:
    """The outcome of `Trainer.fit()`; never raised, always returned.

    `status` is "completed", "stopped" or "failed"; `message` one line for the user (empty
    when nothing needs saying). `state_dict` holds the weights to keep (CPU tensors): the
    best epoch's by validation loss or the last, per the `checkpoint` setting; None when
    training failed before its first step, or its loss became NaN/inf before an epoch was
    validated (the module then holds the weights the run started from). `best_epoch`
    (from 1) and `best` (its metrics, per-class lists included) describe those weights;
    `confusion_matrix` is that epoch's (classification and segmentation). `resume_state`
    is set when the run was stopped.
    """

    status: str
    message: str = ""
    device: str = "cpu"
    settings: dict[str, Any] = field(default_factory=dict)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best: dict[str, Any] = field(default_factory=dict)
    confusion_matrix: list[list[int]] | None = None
    class_names: list[str] = field(default_factory=list)
    state_dict: dict[str, torch.Tensor] | None = None
    resume_state: ResumeState | None = None
    started: str = ""
    finished: str = ""
    normalization: dict[str, Any] = field(default_factory=dict)  # mean, std, normalize
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) not used


def json_safe(value: Any) -> Any:
    """`value` with NaN/inf floats as None, tuples as lists and tensors as (nested) lists,
    so `json.dumps(..., allow_nan=False)` accepts it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, torch.Tensor):
        return json_safe(value.tolist())
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def epoch_entry(record: dict[str, Any]) -> dict[str, Any]:
    """The run-record form of one epoch's record: the scalar keys only, JSON-safe."""
    return json_safe({k: record[k] for k in EPOCH_KEYS if k in record})


def run_record(result: RunResult, run_id: str, *, started: str | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-safe run record for `project.runs` (docs/PROJECT_FORMAT.md: id, started, finished, status,
    message, device, settings, epochs, best_epoch, best, confusion_matrix, class_names,
    plus `normalization` so predictions can preprocess like training did). `train_project`
    adds `init` (where the weights started: "fresh" or {"from_run": RUN_ID or None}) and
    `weights_sha256` (of the weights the run left, None when it left none) through
    `extra`; older records lack both and still load."""
    record = {
        "id": run_id,
        "started": started or result.started,
        "finished": result.finished,
        "status": result.status,
        "message": result.message,
        "device": result.device,
        "settings": result.settings,
        "epochs": [epoch_entry(e) for e in result.epochs],
        "best_epoch": result.best_epoch,
        "best": result.best,
        "confusion_matrix": result.confusion_matrix,
        "class_names": list(result.class_names),
        "normalization": result.normalization,
    }
    record.update(extra or {})
    return json_safe(record)
