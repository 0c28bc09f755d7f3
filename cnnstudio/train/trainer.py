"""The training loop: a plain PyTorch loop plus hooks, a stop flag and a pause event.

`Trainer.fit()` never raises: faults (a NaN loss, out of memory, any exception) end the
run with status "failed" and a one-line message, and the module keeps usable weights.
Nothing here knows about Qt; the GUI drives a Trainer from a worker thread through
`request_stop()`, `pause()`, `resume()` and callbacks (ARCHITECTURE, pattern 6).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnstudio.data.augment import augment_batch
from cnnstudio.data.dataset import Dataset
from cnnstudio.project.settings import fill_training
from cnnstudio.train.batches import (
    DeviceData,
    augmentation_generator,
    batch_count,
    epoch_permutation,
)
from cnnstudio.train.callbacks import BatchInfo, Callback, overriding
from cnnstudio.train.checkpoint import Checkpointing
from cnnstudio.train.device import amp_usable, default_cpu_threads, resolve_device
from cnnstudio.train.evaluate import evaluate
from cnnstudio.train.losses import (
    LogitsTap,
    TaskLoss,
    final_activation,
    make_loss,
    output_channels,
)
from cnnstudio.train.optim import (
    ON_METRIC,
    PER_BATCH,
    PER_EPOCH,
    current_lr,
    make_optimizer,
    make_scheduler,
)
from cnnstudio.train.record import COMPLETED, FAILED, STOPPED, RunResult, now_iso
from cnnstudio.train.resume import (
    ResumeError,
    ResumeState,
    resume_mismatch,
)
from cnnstudio.train.steps import (
    EpochStats,
    NonFiniteLoss,
    cpu_state,
    debug_traceback,
    failure_message,
)

if TYPE_CHECKING:
    from cnnstudio.train.distributed import DistContext


class Trainer(Checkpointing):
    """Trains `module` on `dataset` with the `training` settings (filled or not).

    `augmentation` is the project's `data.augmentation` (flip, crop_padding, rotation) or
    None; `task` defaults to the dataset's; `device` overrides `training["device"]`;
    `normalize` applies the dataset's mean/std; `num_threads` overrides the CPU thread
    policy (`default_cpu_threads`). `resume` continues a stopped run; it raises ResumeError
    here when it does not fit these settings or this data. Raises FormatError for invalid
    settings. A Trainer runs once: build a new one (with `resume=`) to continue.

    During `fit()` the module is moved to the device and, when the graph ends in Softmax or
    Sigmoid, returns its logits (a forward hook, removed at the end). Afterwards the module
    holds the last weights (after a NaN/inf loss: the validated checkpoint the run keeps,
    or the weights it started from); `RunResult.state_dict` holds the checkpoint to keep.

    With `dist` (a `DistContext`, see `cnnstudio.train.distributed`) this is one rank of a
    distributed run: it trains on its shard with the model in DistributedDataParallel on
    `dist.device`, batch_size per process; losses, stops and validation sums are agreed
    over the ranks. Pause is not available then (stop is).
    """

    def __init__(self, module: nn.Module, dataset: Dataset, training: dict[str, Any], *,
                 augmentation: dict[str, Any] | None = None, task: str | None = None,
                 device: str | torch.device | None = None, callbacks: Iterable[Callback] = (),
                 resume: ResumeState | None = None, normalize: bool = True,
                 num_threads: int | None = None, dist: DistContext | None = None) -> None:
        self.module = module
        self.dataset = dataset
        self.settings = fill_training(training)
        self.augmentation = augmentation if augmentation and any(augmentation.values()) else None
        self.task = task or dataset.task
        self.callbacks = tuple(callbacks)
        self.normalize = normalize
        self.num_threads = num_threads
        self.dist = dist
        self.world_size = dist.world_size if dist is not None else 1
        self._device_name = device if device is not None else self.settings["device"]
        self.epochs: int = self.settings["epochs"]
        self.batch_size: int = self.settings["batch_size"]
        self.seed: int = self.settings["seed"]
        self.num_classes = dataset.num_classes
        self.train_index = dataset.splits["train"]
        self.val_index = dataset.splits.get("val", torch.empty(0, dtype=torch.int64))
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
        # A rank counts the batches of its shard: the same number on every rank.
        samples = len(self.train_index) if dist is None else dist.shard_size(len(self.train_index))
        self.batches_per_epoch = batch_count(samples, self.batch_size,
                                             self.settings["max_batches_per_epoch"], has_bn)
        self._resume = resume
        if resume is not None:
            reason = resume_mismatch(resume, self.settings, len(self.train_index),
                                     self.epochs, self.batches_per_epoch)
            processes = resume.extra.get("world_size", 1)
            if not reason and processes != self.world_size:
                reason = (f"it ran in {processes} process(es), this run has {self.world_size};"
                          " batch positions differ")
            if reason:
                raise ResumeError(f"cannot resume: {reason}")
        # Control, set from any thread: a plain bool is atomic under the GIL.
        self._stop = False
        self._unpaused = threading.Event()
        self._unpaused.set()
        # Progress, readable by callbacks.
        self.epoch = 0  # current epoch, from 1 (0 before the first)
        self.batch = 0  # last finished batch of the epoch, from 1
        self.records: list[dict[str, Any]] = []
        self.last_metrics: dict[str, Any] = {}
        self.confusion_matrix: torch.Tensor | None = None
        self.device = torch.device("cpu")
        self._net: nn.Module = module  # what trains: the module, or DDP around it
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        # Where the weights started, as the run record says it ("fresh" or {"from_run":
        # ID}); `train_project` sets it before `fit()`, None for a bare Trainer.
        self.init: str | dict[str, Any] | None = None

    # ---- control (any thread) --------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the run to stop before its next batch (also while paused)."""
        self._stop = True
        self._unpaused.set()

    def pause(self) -> None:
        """Hold the run before its next batch until `resume()` or `request_stop()`."""
        self._unpaused.clear()

    def resume(self) -> None:
        """Continue a paused run."""
        self._unpaused.set()

    @property
    def paused(self) -> bool:
        return not self._unpaused.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop

    @property
    def resumed_at(self) -> tuple[int, int] | None:
        """(epoch, batch), 0-based, where this run continues a stopped one; else None."""
        return None if self._resume is None else (self._resume.epoch, self._resume.batch)

    # ---- the run ---------------------------------------------------------------------

    def fit(self) -> RunResult:
        """Train; return the RunResult (status completed, stopped or failed). Never raises
        for training faults; KeyboardInterrupt and other BaseExceptions pass through."""
        self._started = now_iso()
        self._status, self._message = FAILED, ""
        self._best: dict[str, Any] = {}
        self._best_state: dict[str, torch.Tensor] | None = None
        self._start_state: dict[str, torch.Tensor] | None = None
        # The last validated epoch's weights, with checkpoint "last" (see _handle_non_finite).
        self._last_state: dict[str, torch.Tensor] | None = None
        self._last_state_epoch: int | None = None
        self._non_finite = False
        self._kept: dict[str, torch.Tensor] | None = None
        self._bad_epochs = 0
        self._position = (0, 0)  # next (epoch, batch) to train, 0-based
        self._stats = EpochStats()
        self._stepped = False
        self._in_loop = False
        self._paused_seconds = 0.0
        threads = torch.get_num_threads()
        try:
            self._setup()
            for hook in overriding(self.callbacks, "on_fit_start"):
                hook(self)
            self._in_loop = True
            with LogitsTap(self.module, self._tap):
                self._status, self._message = self._run()
        except NonFiniteLoss as bad:
            self._message = self._handle_non_finite(bad)
        except Exception as err:
            debug_traceback(err)
            self._message = failure_message(err, self._where() if self._in_loop else None,
                                            self.batch_size, self.device)
            if isinstance(err, torch.OutOfMemoryError) and self.device.type == "cuda":
                torch.cuda.empty_cache()
            for hook in overriding(self.callbacks, "on_exception"):
                with contextlib.suppress(Exception):  # a failing hook must not hide the fault
                    hook(self, err)
        finally:
            torch.set_num_threads(threads)
            self._net = self.module  # let DDP go: its gradient hooks end with it
        result = self._result()
        for hook in overriding(self.callbacks, "on_fit_end"):
            with contextlib.suppress(Exception):
                hook(self, result)
        return result

    def _setup(self) -> None:
        dist = self.dist
        self.device = dist.device if dist is not None else resolve_device(self._device_name)
        if self.device.type == "cpu":
            torch.set_num_threads(self.num_threads or (dist.cpu_threads if dist is not None
                                                       else default_cpu_threads()))
        if len(self.train_index) == 0 or self.batches_per_epoch == 0:
            raise ValueError("the training split is empty: there is nothing to train on")
        self.module.to(self.device)
        self.data = DeviceData(self.dataset.x, self.dataset.y, self.device)
        self.amp = amp_usable(self.device, self.settings["amp"])
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self._autocast: Callable[[], Any] = (
            (lambda: torch.autocast("cuda", dtype=torch.float16)) if self.amp
            else contextlib.nullcontext)
        out_rank = 2 if self.task == "classification" else self.dataset.y.dim() + 1
        tap = final_activation(self.module, out_rank)
        self._tap = tap[0] if tap else None
        with LogitsTap(self.module, self._tap):
            channels = self._check_output()
        self.loss: TaskLoss = make_loss(self.task, self.settings["loss"], channels)
        self.optimizer = make_optimizer(self.module.parameters(), self.settings["optimizer"])
        self.scheduler, self._sched_when = make_scheduler(
            self.optimizer, self.settings["schedule"], epochs=self.epochs,
            batches_per_epoch=self.batches_per_epoch)
        self._on_batch_end = overriding(self.callbacks, "on_batch_end")
        self._on_epoch_start = overriding(self.callbacks, "on_epoch_start")
        self._on_epoch_end = overriding(self.callbacks, "on_epoch_end")
        self._samples_seen = 0
        # DDP shares the module's parameters (the optimizer's) and starts from rank 0's.
        self._net = dist.wrap(self.module) if dist is not None else self.module
        if self._resume is not None:
            self._apply_resume(self._resume)
            if dist is not None and dist.rank:  # only rank 0's RNG state was kept
                torch.manual_seed(dist.rank_seed(self.seed, *self._position))
        else:
            self._start_state = cpu_state(self.module)
            torch.manual_seed(self.seed if dist is None else dist.rank_seed(self.seed))

    def _where(self) -> str:
        """The place in the run being worked on, in words (epochs and batches from 1)."""
        epoch, batch = self._position
        if batch >= self.batches_per_epoch:
            return f"the validation of epoch {epoch + 1}"
        return f"epoch {epoch + 1}, batch {batch + 1}"

    def _check_output(self) -> int:
        """Run one sample through the model (eval mode, no RNG drawn); return its output
        channels. Raises ValueError when the output does not fit the data."""
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                xb, _ = self.data.batch(self.data.index(self.train_index[:1]))
                out = self.module(self.dataset.batch_to_float(xb, self.normalize))
        finally:
            self.module.train(was_training)
        return output_channels(tuple(out.shape[1:]), self.task, self.num_classes,
                               tuple(self.dataset.y.shape[1:]))

    def _run(self) -> tuple[str, str]:
        """The epochs; return (status, message)."""
        start_epoch, start_batch = self._position
        for epoch in range(start_epoch, self.epochs):
            if self._stop if self.dist is None else self.dist.any(self._stop):
                self._position = (epoch, 0)
                return STOPPED, f"stopped after epoch {epoch}" if epoch else "stopped"
            self.epoch = epoch + 1
            for hook in self._on_epoch_start:
                hook(self, self.epoch)
            first = start_batch if epoch == start_epoch else 0
            if not self._train_epoch(epoch, first):
                return STOPPED, (f"stopped during epoch {epoch + 1} after batch"
                                 f" {self._position[1]} of {self.batches_per_epoch}")
            if self.dist is not None:  # one model to validate and keep, on every rank
                self.dist.average_buffers(self.module)
            metrics = self._validate()
            if metrics is None:
                return STOPPED, f"stopped during the validation of epoch {epoch + 1}"
            message = self._end_epoch(epoch, metrics)
            self._position = (epoch + 1, 0)
            if message:
                return COMPLETED, message
        return COMPLETED, ""

    def _train_epoch(self, epoch: int, first: int) -> bool:
        """Train the batches of `epoch` from `first`; False if stopped before the end."""
        module, optimizer, loss_fn, data = self._net, self.optimizer, self.loss, self.data
        assert optimizer is not None
        normalize, augmentation, scaler = self.normalize, self.augmentation, self.scaler
        per_batch = self.scheduler if self._sched_when == PER_BATCH else None
        bs, batches, stats = self.batch_size, self.batches_per_epoch, self._stats
        dist, rank = self.dist, self.dist.rank if self.dist is not None else 0
        order = epoch_permutation(self.seed, epoch, len(self.train_index))
        order = data.index(self.train_index[order if dist is None else dist.shard(order)])
        module.train()
        tick = time.perf_counter()
        for b in range(first, batches):
            # Distributed: a local flag must not decide alone; the stop is agreed below.
            if dist is None and (self._stop or not self._unpaused.is_set()):
                stats.seconds += time.perf_counter() - tick
                if self._wait_while_paused():
                    self._position = (epoch, b)
                    return False
                tick = time.perf_counter()
            self._position = (epoch, b)
            xb, yb = data.batch(order[b * bs:(b + 1) * bs])
            xb = self.dataset.batch_to_float(xb, normalize)
            if augmentation is not None:
                xb, yb = augment_batch(xb, yb, augmentation,
                                       augmentation_generator(self.seed, epoch, b, rank))
            with self._autocast():
                loss = loss_fn(module(xb), yb)
            # One sync per batch, needed anyway: a non-finite step must never be applied.
            if dist is None:
                value, stop = loss.item(), False
            else:  # every rank gets the same mean loss and stop decision, before any step
                value, stop = dist.loss_and_stop(loss, self._stop)
            if not math.isfinite(value):
                raise NonFiniteLoss(value, epoch, b, current_lr(optimizer))
            if stop:  # this batch is not applied: a resume starts with it
                stats.seconds += time.perf_counter() - tick
                return False
            lr = current_lr(optimizer)
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            self._stepped = True
            if per_batch is not None:
                per_batch.step()
            n = len(yb) * self.world_size  # every rank's batch has this size
            stats.loss_sum += value * n
            stats.samples += n
            self._samples_seen += n
            self.batch = b + 1
            if self._on_batch_end:
                elapsed = stats.seconds + time.perf_counter() - tick
                info = BatchInfo(epoch + 1, b + 1, batches, value, lr, self._samples_seen,
                                 stats.samples / elapsed if elapsed > 0 else 0.0)
                for hook in self._on_batch_end:
                    hook(self, info)
        stats.seconds += time.perf_counter() - tick
        self._position = (epoch, batches)
        return True

    def _wait_while_paused(self) -> bool:
        """Block while paused; return True if a stop was requested."""
        start = time.perf_counter()
        while not self._stop and not self._unpaused.is_set():
            self._unpaused.wait(0.5)
        self._paused_seconds += time.perf_counter() - start
        return self._stop

    def _halt(self) -> bool:
        """Between validation batches: wait while paused; True if a stop was requested."""
        return (self._stop or not self._unpaused.is_set()) and self._wait_while_paused()

    def _validate(self) -> dict[str, Any] | None:
        """Validation metrics ({} without a validation split), timed into the epoch
        (pauses excluded); None if stopped meanwhile (resume then validates again)."""
        if len(self.val_index) == 0:
            return {}
        tick, paused = time.perf_counter(), self._paused_seconds
        dist = self.dist  # distributed: each rank a slice, sums all-reduced, never halted
        out = evaluate(self.module, self.data,
                       self.val_index if dist is None else dist.val_shard(self.val_index),
                       batch_size=self.batch_size,
                       to_float=lambda xb: self.dataset.batch_to_float(xb, self.normalize),
                       loss=self.loss, num_classes=self.num_classes, task=self.task,
                       autocast=self._autocast,
                       halt=self._halt if dist is None else lambda: False,
                       reduce=None if dist is None else dist.all_sum)
        self._stats.seconds += time.perf_counter() - tick - (self._paused_seconds - paused)
        if out is None:
            return None
        metrics, self.confusion_matrix = out
        return metrics

    def _end_epoch(self, epoch: int, metrics: dict[str, Any]) -> str:
        """Record, step the schedule, keep the best; return an early-stop message."""
        assert self.optimizer is not None
        stats = self._stats
        train_loss = stats.loss_sum / max(1, stats.samples)
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss}
        record.update({k: v for k, v in metrics.items() if not isinstance(v, list)})
        record["lr"] = current_lr(self.optimizer)
        record["seconds"] = stats.seconds
        self.last_metrics = metrics
        monitor = metrics.get("val_loss", train_loss)
        if self._sched_when == PER_EPOCH:
            self.scheduler.step()
        elif self._sched_when == ON_METRIC:
            self.scheduler.step(monitor)
        self.records.append(record)
        self._stats = EpochStats()
        if self.settings["checkpoint"] == "last":  # what a later NaN loss falls back to
            self._last_state, self._last_state_epoch = cpu_state(self.module), epoch + 1
        if not self._best or monitor < self._best["loss"]:
            self._best = {"epoch": epoch + 1, "loss": monitor, "metrics": {**record, **metrics},
                          "confusion_matrix": self._cm_list()}
            if self.settings["checkpoint"] == "best":
                self._best_state = cpu_state(self.module)
            self._bad_epochs = 0
        else:
            self._bad_epochs += 1
        for hook in self._on_epoch_end:
            hook(self, record)
        patience = self.settings["early_stopping"]["patience"]
        if patience is not None and self._bad_epochs >= patience and epoch + 1 < self.epochs:
            what = "validation" if "val_loss" in metrics else "training"
            return (f"stopped early at epoch {epoch + 1}: the {what} loss did not improve for"
                    f" {patience} epoch{'s' if patience > 1 else ''} (best: epoch"
                    f" {self._best['epoch']})")
        return ""

    def _cm_list(self) -> list[list[int]] | None:
        return None if self.confusion_matrix is None else self.confusion_matrix.tolist()
