"""The training-thread side of the GUI: a Callback that turns hooks into plain data.

Everything here runs on the training thread, between batches. It copies what the views
need into Python/NumPy values (never live tensors) and sends them with the worker's
signals, coalesced: batch losses are gathered into arrays and sent at most every
`interval` seconds (`train.events.BatchCoalescer`, as for distributed runs); filters and
feature maps of the watched layers at most every `snapshot_interval` seconds (and at once
after the user picked another layer or sample).
Imported only from the worker thread: it imports torch.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cnnstudio.data import Dataset
from cnnstudio.train import BatchInfo, Callback, Trainer
from cnnstudio.train.events import BatchCoalescer, batch_line
from cnnstudio.train.model_io import DataRequest, ProgressFn
from cnnstudio.train.record import epoch_entry
from cnnstudio.train.snapshots import take_snapshot, view_index
from cnnstudio.ui.training.controls import RunControls

if TYPE_CHECKING:
    from cnnstudio.ui.training.worker import TrainingWorker  # it imports this module

# Weights copied at each epoch's end for inspection (clicking a confusion cell mid-run).
MAX_STATE_VALUES = 50_000_000


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", copy=True, memory_format=torch.contiguous_format).numpy()


def samples_context(dataset: Dataset, normalize: bool) -> tuple[dict[str, Any], torch.Tensor]:
    """The samples the views show (validation, else training; bounded in memory) as NumPy
    copies, with their labels, class names and preprocessing; and their dataset indices."""
    split, index = view_index(dataset)  # the rule rank 0 of a distributed run follows too
    return {"split": split, "total": int(len(dataset.splits[split])),
            "x": _numpy(dataset.x[index]), "y": _numpy(dataset.y[index]),
            "class_names": list(dataset.class_names), "mean": list(dataset.mean),
            "std": list(dataset.std), "normalize": bool(normalize),
            "task": dataset.task}, index


def load_samples_context(project: Any, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Load `project`'s data as training does (same request, same split) and return its
    context. Raises DataError, FormatError or GraphError with a one-line message."""
    from cnnstudio.project import fill_data

    dataset = DataRequest.of(project).load(progress)
    return samples_context(dataset, fill_data(project.data)["normalize"])[0]


class LiveBridge(Callback):
    """Feeds the live views of one run."""

    counts_correct = True  # the training accuracy, from `BatchInfo.correct`

    def __init__(self, sink: TrainingWorker, controls: RunControls, token: int, *,
                 interval: float = 0.1, snapshot_interval: float = 1.0) -> None:
        self.sink, self.controls, self.token = sink, controls, token
        self.interval, self.snapshot_interval = interval, snapshot_interval
        self._batches = BatchCoalescer(interval)
        self._last_snapshot = 0.0
        self._hits: list[torch.Tensor] = []  # per batch, on the device: summed per epoch
        self._scored = 0
        self._samples: torch.Tensor | None = None

    # ---- hooks -----------------------------------------------------------------------

    def on_fit_start(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.sink.run_started.emit(self._context(trainer))
        self.controls.attach(trainer)  # after the context: a stop may end the run at once
        self._batches = BatchCoalescer(self.interval)  # its clock starts with the run

    def on_batch_end(self, trainer: Trainer, info: BatchInfo) -> None:
        if info.correct is not None:
            self._hits.append(info.correct)
            self._scored += info.scored
        now = time.perf_counter()
        controls = self.controls
        # Trailing batches are sent at once when the run is about to wait or end.
        if self._batches.add(batch_line(info)) or controls.paused or controls.stop_requested:
            self._flush()
        if controls.refresh_requested or now - self._last_snapshot >= self.snapshot_interval:
            self._snapshot(trainer, now)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        now = time.perf_counter()
        self._flush()
        cm = trainer.confusion_matrix
        entry = epoch_entry(record)
        entry["train_accuracy"] = (float(torch.stack(self._hits).sum()) / self._scored
                                   if self._hits and self._scored else None)
        self._hits, self._scored = [], 0
        metrics = {k: v for k, v in trainer.last_metrics.items() if isinstance(v, list)}
        state = None
        module = trainer.module
        if sum(t.numel() for t in module.state_dict().values()) <= MAX_STATE_VALUES:
            state = {k: _numpy(v) for k, v in module.state_dict().items()}
        self.sink.epoch_finished.emit({"token": self.token, "record": entry, "per_class": metrics,
                                       "confusion": None if cm is None else _numpy(cm),
                                       "state": state})
        self._snapshot(trainer, now)

    def on_fit_end(self, trainer: Trainer, result: Any) -> None:
        self._flush()
        if getattr(self, "trainer", None) is not None:
            self._snapshot(trainer, time.perf_counter())  # the weights the run ends with

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

    def _flush(self) -> None:
        batch = self._batches.take()
        if batch is not None:
            self.sink.batches_done.emit({"token": self.token, **batch})

    def _snapshot(self, trainer: Trainer, now: float) -> None:
        controls = self.controls
        controls.refresh_requested = False
        self._last_snapshot = now
        snap = take_snapshot(trainer.module, trainer.dataset, trainer.normalize, self._samples,
                             filter_node=controls.filter_node,
                             activation_node=controls.activation_node,
                             sample=controls.sample_index)
        self.sink.snapshot_taken.emit({"token": self.token, **snap})
