"""Sweeps: train a project once per combination of settings and rank the runs.

A sweep is given axes (`KEY=V1,V2,...`, KEY a dotted path into the project's `training` or
`data`) and trains every combination of their values (the cartesian product, in the order
the axes and values were given), or `trials` of them drawn at random without replacement
(seeded by the project's `training.seed`). Each trial trains a copy of the project with
its settings applied, from new weights (seeded by `training.seed`: every trial starts
alike, so they compare fairly), and its run record is appended to the project's runs with
`"sweep": {"id": SWEEP_ID, "trial": i, "settings": {KEY: value, ...}}`. The project's own
settings and weights are left as they were.

The sweep id is the first 12 hex digits of the SHA-256 of the canonical JSON (sorted keys,
no spaces) of `{"axes": [[KEY, [values...]], ...], "trials": N or null, "seed": seed,
"epochs": E or null}`: the same command on the same project gives the same id, so running
it again resumes it. A trial is done when a record with this sweep id and the trial's
settings exists ("completed" or "failed"); a stopped trial is not recorded and is trained
again from the start when the sweep resumes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnstudio.core.errors import FormatError
from cnnstudio.project import Project, fill_data, fill_training
from cnnstudio.train.callbacks import Callback
from cnnstudio.train.record import COMPLETED, STOPPED

SECTIONS = ("training", "data")
# The most combinations a grid sweep may plan: more is a typo, not a plan (use --trials).
MAX_GRID = 10_000


class SweepError(ValueError):
    """A sweep's settings are wrong (unknown key, bad value, bad count); one line."""


@dataclass(frozen=True)
class SweepAxis:
    """One `--set`: a dotted key and the values it takes, in the order given."""

    key: str
    values: tuple[Any, ...]


def parse_value(text: str) -> Any:
    """A value as written on the command line: a JSON scalar when it reads as one (numbers,
    true/false, null, "quoted"), else the text itself (e.g. SGD)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if value is None or isinstance(value, (bool, int, float, str)) else text


def parse_set(text: str) -> SweepAxis:
    """`KEY=V1,V2,...` as a SweepAxis. Raises SweepError when the form is wrong or KEY
    does not start with training. or data. (whether KEY exists is checked against the
    project by `plan_sweep`)."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SweepError(f"--set {text!r}: write KEY=V1,V2,... (e.g."
                         " training.optimizer.lr=0.001,0.003)")
    parts = key.split(".")
    if parts[0] not in SECTIONS or len(parts) < 2 or not all(parts):
        raise SweepError(f"--set {key}: the key is a dotted path into training or data"
                         " (e.g. training.batch_size, data.val_fraction)")
    items = [v.strip() for v in values.split(",")]
    if not any(items) or not all(items):
        raise SweepError(f"--set {key}: give one or more values separated by commas, none"
                         " empty")
    parsed = tuple(parse_value(v) for v in items)
    if len(set(map(json.dumps, parsed))) != len(parsed):
        raise SweepError(f"--set {key}: a value is given twice")
    return SweepAxis(key, parsed)


def sweep_id(axes: Sequence[SweepAxis], trials: int | None, seed: int,
             epochs: int | None) -> str:
    """The id of a sweep (see the module's docstring for how it is derived)."""
    doc = {"axes": [[a.key, list(a.values)] for a in axes], "trials": trials, "seed": seed,
           "epochs": epochs}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _combination(axes: Sequence[SweepAxis], index: int) -> dict[str, Any]:
    """The `index`-th combination of the grid (the last axis varies fastest), computed
    without listing the grid: a random draw from a huge one stays cheap."""
    chosen: list[Any] = []
    for axis in reversed(axes):
        index, digit = divmod(index, len(axis.values))
        chosen.append(axis.values[digit])
    return dict(zip((a.key for a in axes), reversed(chosen), strict=True))


def combinations(axes: Sequence[SweepAxis], trials: int | None,
                 seed: int) -> list[dict[str, Any]]:
    """The settings of each trial: the whole grid in order, or `trials` distinct
    combinations drawn with `random.Random(seed)` (the whole grid, shuffled, when it has
    no more). Raises SweepError for a count below 1 or a grid too large to train whole."""
    size = math.prod(len(a.values) for a in axes)
    if trials is None:
        if size > MAX_GRID:
            raise SweepError(f"the settings make {size} combinations; train a random few"
                             " with --trials N")
        return [_combination(axes, i) for i in range(size)]
    if trials < 1:
        raise SweepError("--trials must be at least 1")
    picked = random.Random(seed).sample(range(size), min(trials, size))
    return [_combination(axes, i) for i in picked]


def _has_path(tree: Any, parts: Sequence[str]) -> bool:
    for part in parts:
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def _set_path(tree: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    for part in parts[:-1]:
        child = tree.get(part)
        if not isinstance(child, dict):
            child = tree[part] = {}
        tree = child
    tree[parts[-1]] = value


_FILL = {"training": fill_training, "data": fill_data}


def apply_settings(project: Project, settings: dict[str, Any]) -> Project:
    """A copy of `project` with `settings` (dotted key → value) applied. Raises SweepError
    when a key is not one of the settings its section holds (given the other settings:
    `training.optimizer.momentum` exists once the optimizer is SGD) or a value is refused
    by the section's checks."""
    trial = project.copy()
    for key, value in settings.items():
        section, *parts = key.split(".")
        _set_path(getattr(trial, section), parts, value)
    for key in settings:
        section, *parts = key.split(".")
        without = project.copy()  # the section as filled with every other setting applied
        for other, value in settings.items():
            if other != key:
                other_section, *other_parts = other.split(".")
                _set_path(getattr(without, other_section), other_parts, value)
        try:
            known = _FILL[section](getattr(without, section))
        except FormatError:
            known = _FILL[section]({})
        if not _has_path(known, parts) and not _has_path(getattr(project, section), parts):
            parent, where, missing = known, section, parts[-1]
            for part in parts[:-1]:  # name the settings of the deepest level that exists
                if not isinstance(parent.get(part), dict):
                    missing = part
                    break
                parent, where = parent[part], f"{where}.{part}"
            raise SweepError(f"--set {key}: {where} has no setting {missing!r} here (its"
                             f" settings: {', '.join(sorted(parent))})")
    for section in SECTIONS:
        try:
            _FILL[section](getattr(trial, section))
        except FormatError as err:
            raise SweepError(f"{err} (in the sweep's settings)") from None
    return trial


def metric_name(task: str) -> str:
    """The validation metric a sweep ranks by: accuracy, or IoU for segmentation."""
    return "val_iou" if task == "segmentation" else "val_accuracy"


@dataclass
class SweepPlan:
    """What `Sweep.run` trains: the id, each trial's settings, and which are done."""

    id: str
    trials: list[dict[str, Any]]
    metric: str
    done: dict[int, str] = field(default_factory=dict)  # trial index → run id


def _recorded(project: Project, sid: str) -> dict[int, dict[str, Any]]:
    """This sweep's recorded trials: trial index → its latest run record."""
    found: dict[int, dict[str, Any]] = {}
    for run in project.runs:
        tag = run.get("sweep") if isinstance(run, dict) else None
        if isinstance(tag, dict) and tag.get("id") == sid and isinstance(tag.get("trial"), int):
            found[tag["trial"]] = run
    return found


def plan_sweep(project: Project, axes: Sequence[SweepAxis], *, trials: int | None = None,
               epochs: int | None = None) -> SweepPlan:
    """Check the sweep against `project` and plan it: its id, the settings of each trial
    (each checked by `apply_settings`), and the trials already recorded with this id and
    the same settings. Raises SweepError (one line) for no axes, a key given twice, an
    unknown key or a refused value."""
    if not axes:
        raise SweepError("give the settings to sweep: --set KEY=V1,V2,...")
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise SweepError(f"--set {twice} is given twice; list all its values in one --set")
    if epochs is not None and epochs < 1:
        raise SweepError("--epochs must be at least 1")
    try:
        seed = int(fill_training(project.training)["seed"])
    except FormatError as err:
        raise SweepError(str(err)) from None
    sid = sweep_id(axes, trials, seed, epochs)
    planned = combinations(axes, trials, seed)
    for settings in planned:
        apply_settings(project, settings)
    done = {i: str(run.get("id")) for i, run in _recorded(project, sid).items()
            if i < len(planned) and run["sweep"].get("settings") == planned[i]}
    return SweepPlan(sid, planned, metric_name(project.task), done)


@dataclass
class TrialOutcome:
    """One trial as the sweep ran (or skipped) it."""

    trial: int
    settings: dict[str, Any]
    status: str  # completed, failed or stopped (a stopped trial is not recorded)
    run: str | None  # the run id in the project, None when not recorded
    message: str = ""
    skipped: bool = False  # recorded by an earlier run of this sweep


class _Current(Callback):
    """Keeps the trainer of the trial in progress, for `Sweep.stop`."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep

    def on_fit_start(self, trainer: Any) -> None:
        with self.sweep._lock:
            self.sweep._trainer = trainer
            if self.sweep._stop:
                trainer.request_stop()


class Sweep:
    """Runs a planned sweep on `project` (which receives the run records). `stop()` may
    be called from any thread: the trial in progress stops after its batch, is not
    recorded, and no other trial starts."""

    def __init__(self, project: Project, plan: SweepPlan, *, epochs: int | None = None,
                 device: str | None = None) -> None:
        self.project, self.plan = project, plan
        self.epochs, self.device = epochs, device
        self._lock = threading.Lock()
        self._trainer: Any = None
        self._stop = False

    @property
    def stopped(self) -> bool:
        return self._stop

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            if self._trainer is not None:
                self._trainer.request_stop()

    def run(self, *, callbacks: Iterable[Callback] = (),
            on_trial_start: Callable[[int, dict[str, Any]], None] | None = None,
            on_trial_end: Callable[[TrialOutcome], None] | None = None) -> list[TrialOutcome]:
        """Train each trial not yet done, in order; return every trial's outcome (the done
        ones `skipped`). `on_trial_end` is called after a trial's record is appended to
        the project (the place to save it). Stops early when `stop()` is called or a trial
        ends "stopped" (a Ctrl-C the callbacks turned into a stop)."""
        from cnnstudio.train.api import train_project

        outcomes: list[TrialOutcome] = []
        for index, settings in enumerate(self.plan.trials):
            if index in self.plan.done:
                outcome = TrialOutcome(index, settings, COMPLETED, self.plan.done[index],
                                       skipped=True)
                outcomes.append(outcome)
                if on_trial_end is not None:
                    on_trial_end(outcome)
                continue
            if self._stop:
                break
            if on_trial_start is not None:
                on_trial_start(index, settings)
            trial = apply_settings(self.project, settings)
            trial.runs = list(self.project.runs)  # the next run id follows the project's
            before = len(trial.runs)
            result = train_project(trial, epochs=self.epochs, device=self.device,
                                   callbacks=[_Current(self), *callbacks], resume=False,
                                   fresh=True)
            with self._lock:
                self._trainer = None
            if result.status == STOPPED or self._stop:
                self._stop = True
                outcome = TrialOutcome(index, settings, STOPPED, None, result.message)
            elif len(trial.runs) == before:  # failed before training began: no record
                outcome = TrialOutcome(index, settings, result.status, None, result.message)
            else:
                record = trial.runs[-1]
                record["sweep"] = {"id": self.plan.id, "trial": index, "settings": settings}
                self.project.runs.append(record)
                self.plan.done[index] = str(record["id"])
                outcome = TrialOutcome(index, settings, result.status, str(record["id"]),
                                       result.message)
            outcomes.append(outcome)
            if on_trial_end is not None:
                on_trial_end(outcome)
            if self._stop:
                break
        return outcomes


def ranking(project: Project, sid: str) -> list[dict[str, Any]]:
    """The sweep's recorded trials, best first: by the best epoch's validation metric
    (accuracy; IoU for segmentation), higher first, then by its validation loss, lower
    first; trials without the metric (failed) last, in trial order. Each row:
    `{"rank", "trial", "run", "status", "settings", "metric", "value", "val_loss",
    "best_epoch"}` (value and val_loss None when unknown)."""
    name = metric_name(project.task)
    rows = []
    for index, run in sorted(_recorded(project, sid).items()):
        best = run.get("best") if isinstance(run.get("best"), dict) else {}
        value, loss = best.get(name), best.get("val_loss")
        rows.append({"trial": index, "run": run.get("id"), "status": run.get("status"),
                     "settings": run["sweep"].get("settings", {}), "metric": name,
                     "value": value if isinstance(value, (int, float)) else None,
                     "val_loss": loss if isinstance(loss, (int, float)) else None,
                     "best_epoch": run.get("best_epoch")})
    rows.sort(key=lambda r: (r["value"] is None, -(r["value"] or 0.0),
                             r["val_loss"] if r["val_loss"] is not None else math.inf,
                             r["trial"]))
    return [{"rank": i + 1, **row} for i, row in enumerate(rows)]


def ranking_table(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> str:
    """The ranking as a text table: rank, run, one column per swept key, the metric and
    the validation loss."""
    metric = rows[0]["metric"] if rows else "val_accuracy"
    head = ["rank", "run", *keys, metric, "val_loss"]
    body = [[str(r["rank"]), str(r["run"]),
             *(json.dumps(r["settings"].get(k)) if not isinstance(r["settings"].get(k), str)
               else r["settings"][k] for k in keys),
             "—" if r["value"] is None else f"{r['value']:.4f}",
             "—" if r["val_loss"] is None else f"{r['val_loss']:.4f}"] for r in rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip() for row in [head, *body])


__all__ = ["MAX_GRID", "Sweep", "SweepAxis", "SweepError", "SweepPlan", "TrialOutcome",
           "apply_settings", "combinations", "metric_name", "parse_set", "parse_value",
           "plan_sweep", "ranking", "ranking_table", "sweep_id"]
