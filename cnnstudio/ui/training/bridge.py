"""The training-thread side of the GUI: a Callback that turns hooks into plain data.

Everything here runs on the training thread, between batches. It copies what the views
need into Python/NumPy values (never live tensors) and hands them to a `Sink` (the
worker's signals), coalesced: batch losses are gathered into arrays and sent at most
every `interval` seconds; filters and feature maps of the watched layers at most every
`snapshot_interval` seconds (and at once after the user picked another layer or sample).
Imported only from the worker thread: it imports torch.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Protocol

import numpy as np
import torch

from cnnstudio.data import Dataset
from cnnstudio.train import BatchInfo, Callback, Trainer
from cnnstudio.train.record import epoch_entry
from cnnstudio.train.snapshots import take_snapshot, view_index
from cnnstudio.ui.training.controls import RunControls

# Weights copied at each epoch's end for inspection (clicking a confusion cell mid-run).
MAX_STATE_VALUES = 50_000_000


class Sink(Protocol):
    def started(self, context: dict[str, Any]) -> None: ...
    def progressed(self, batch: dict[str, Any]) -> None: ...
    def epoch_finished(self, epoch: dict[str, Any]) -> None: ...
    def snapshot(self, snap: dict[str, Any]) -> None: ...


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", copy=True).numpy()


def samples_context(dataset: Dataset, normalize: bool) -> tuple[dict[str, Any], torch.Tensor]:
    """The samples the views show (validation, else training; bounded in memory) as NumPy
    copies, with their labels, class names and preprocessing; and their dataset indices."""
    split, index = view_index(dataset)  # the rule rank 0 of a distributed run follows too
    return {"split": split, "total": int(len(dataset.splits[split])),
            "x": _numpy(dataset.x[index]), "y": _numpy(dataset.y[index]),
            "class_names": list(dataset.class_names), "mean": list(dataset.mean),
            "std": list(dataset.std), "normalize": bool(normalize),
            "task": dataset.task}, index


def load_samples_context(project: Any) -> dict[str, Any]:
    """Load `project`'s data as training would (same split) and return its context.
    Raises DataError, FormatError or BuildError with a one-line message."""
    from cnnstudio.data import load_dataset
    from cnnstudio.nn import BuildError
    from cnnstudio.project import fill_data

    data = fill_data(project.data)
    inputs = [n for n in project.graph if n.type == "Input"]
    if not inputs:
        raise BuildError("the network has no Input node")
    seed = data.get("seed", 0)
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0
    base = project.path.parent if project.path is not None else "."
    dataset = load_dataset(data["source"], input_shape=inputs[0].resolved_params()["shape"],
                           task=project.task, base_dir=base, val_fraction=data["val_fraction"],
                           seed=seed)
    return samples_context(dataset, data["normalize"])[0]


class _TrainAccuracy:
    """Counts right answers on the training batches, on the device (no extra sync): the
    loss function is wrapped, since only it sees logits and labels together."""

    def __init__(self, trainer: Trainer) -> None:
        loss, module = trainer.loss, trainer.module
        self.hits: list[torch.Tensor] = []  # per batch; summed once, at the epoch's end
        self.total = 0

        def counted(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            value = loss.fn(z, y)
            if module.training:  # validation calls the loss too, in eval mode
                with torch.no_grad():
                    self.hits.append((loss.predict(z.detach()) == y).sum())
                self.total += y.numel()
            return value

        trainer.loss = dataclasses.replace(loss, fn=counted)

    def take(self) -> float | None:
        """The accuracy since the last call (None without batches); starts afresh."""
        if not self.hits or not self.total:
            return None
        value = float(torch.stack(self.hits).sum()) / self.total
        self.hits, self.total = [], 0
        return value


class LiveBridge(Callback):
    """Feeds the live views of one run."""

    def __init__(self, sink: Sink, controls: RunControls, token: int, *,
                 interval: float = 0.1, snapshot_interval: float = 1.0) -> None:
        self.sink, self.controls, self.token = sink, controls, token
        self.interval, self.snapshot_interval = interval, snapshot_interval
        self._steps: list[int] = []
        self._losses: list[float] = []
        self._lrs: list[float] = []
        self._info: BatchInfo | None = None
        self._last_emit = 0.0
        self._last_snapshot = 0.0
        self._accuracy: _TrainAccuracy | None = None
        self._samples: torch.Tensor | None = None

    # ---- hooks -----------------------------------------------------------------------

    def on_fit_start(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self._accuracy = _TrainAccuracy(trainer)
        self.sink.started(self._context(trainer))
        self.controls.attach(trainer)  # after the context: a stop may end the run at once
        self._last_emit = time.perf_counter()

    def on_batch_end(self, trainer: Trainer, info: BatchInfo) -> None:
        self._steps.append((info.epoch - 1) * info.batches + info.batch)
        self._losses.append(info.loss)
        self._lrs.append(info.lr)
        self._info = info
        now = time.perf_counter()
        controls = self.controls
        # Trailing batches are sent at once when the run is about to wait or end.
        if now - self._last_emit >= self.interval or controls.paused or controls.stop_requested:
            self._flush(now)
        if controls.refresh_requested or now - self._last_snapshot >= self.snapshot_interval:
            self._snapshot(trainer, now)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        now = time.perf_counter()
        self._flush(now)
        cm = trainer.confusion_matrix
        entry = epoch_entry(record)
        entry["train_accuracy"] = self._accuracy.take() if self._accuracy else None
        metrics = {k: v for k, v in trainer.last_metrics.items() if isinstance(v, list)}
        state = None
        module = trainer.module
        if sum(t.numel() for t in module.state_dict().values()) <= MAX_STATE_VALUES:
            state = {k: _numpy(v) for k, v in module.state_dict().items()}
        self.sink.epoch_finished({"token": self.token, "record": entry, "per_class": metrics,
                                  "confusion": None if cm is None else _numpy(cm),
                                  "state": state})
        self._snapshot(trainer, now)

    def on_fit_end(self, trainer: Trainer, result: Any) -> None:
        now = time.perf_counter()
        self._flush(now)
        if getattr(self, "trainer", None) is not None:
            self._snapshot(trainer, now)  # the weights the run ends with

    # ---- what is sent ----------------------------------------------------------------

    def _context(self, trainer: Trainer) -> dict[str, Any]:
        """Once per run: the samples the views show, and how the run goes."""
        context, self._samples = samples_context(trainer.dataset, trainer.normalize)
        context.update({
            "token": self.token, "device": str(trainer.device),
            "threads": torch.get_num_threads(), "epochs": trainer.epochs,
            "batches": trainer.batches_per_epoch, "batch_size": trainer.batch_size,
            "amp": bool(getattr(trainer, "amp", False)),
            "records": [epoch_entry(r) for r in trainer.records],  # earlier epochs (resume)
            "init": getattr(trainer, "init", None),  # where the weights really started
        })
        return context

    def _flush(self, now: float) -> None:
        self._last_emit = now
        info = self._info
        if not self._steps or info is None:
            return
        batch = {"token": self.token, "steps": np.asarray(self._steps, np.int64),
                 "losses": np.asarray(self._losses, np.float64),
                 "lrs": np.asarray(self._lrs, np.float64),
                 "epoch": info.epoch, "batch": info.batch, "batches": info.batches,
                 "images_per_second": info.images_per_second,
                 "samples_seen": info.samples_seen}
        self._steps, self._losses, self._lrs = [], [], []
        self.sink.progressed(batch)

    def _snapshot(self, trainer: Trainer, now: float) -> None:
        controls = self.controls
        controls.refresh_requested = False
        self._last_snapshot = now
        snap = take_snapshot(trainer.module, trainer.dataset, trainer.normalize, self._samples,
                             filter_node=controls.filter_node,
                             activation_node=controls.activation_node,
                             sample=controls.sample_index)
        self.sink.snapshot({"token": self.token, **snap})
