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
from cnnstudio.nn.internals import LogitsTap, final_activation
from cnnstudio.project.settings import fill_training
from cnnstudio.train import freezing
from cnnstudio.train.batches import (
    DeviceData,
    augmentation_generator,
    batch_count,
    epoch_permutation,
)
from cnnstudio.train.callbacks import BatchInfo, Callback, overriding
from cnnstudio.train.checkpoint import Checkpoint, EarlyStopping, private
from cnnstudio.train.device import LocalStrategy, amp_usable
from cnnstudio.train.evaluate import evaluate
from cnnstudio.train.losses import TaskLoss, make_loss, output_channels
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
    capture_rng,
    restore_rng,
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


class Trainer:
    """Trains `module` on `dataset` with the `training` settings (filled or not).

    `augmentation` is the project's `data.augmentation` (flip, crop_padding, rotation) or
    None; `task` defaults to the dataset's; `device` overrides `training["device"]`;
    `normalize` applies the dataset's mean/std; `num_threads` overrides the CPU thread
    policy (`default_cpu_threads`). `channels_last` trains in the channels-last layout
    (None: on CUDA only; see `_setup`; the module is back in the default layout after
    `fit()`). `resume` continues a stopped run; it raises ResumeError
    here when it does not fit these settings or this data. Raises FormatError for invalid
    settings. A Trainer runs once: build a new one (with `resume=`) to continue.

    During `fit()` the module is moved to the device and, when the graph ends in Softmax or
    Sigmoid, returns its logits (a forward hook, removed at the end). Afterwards the module
    holds the last weights (after a NaN/inf loss: the validated checkpoint the run keeps,
    or the weights it started from); `RunResult.state_dict` holds the checkpoint to keep.

    With `dist` (a `DistContext`, see `cnnstudio.train.distributed`) as its `strategy`
    this is one rank of a distributed run: it trains on its shard with the model in
    DistributedDataParallel on `dist.device`, batch_size per process; losses, stops and
    validation sums are agreed over the ranks. Pause is not available then (stop is).
    """

    def __init__(self, module: nn.Module, dataset: Dataset, training: dict[str, Any], *,
                 augmentation: dict[str, Any] | None = None, task: str | None = None,
                 device: str | torch.device | None = None, callbacks: Iterable[Callback] = (),
                 resume: ResumeState | None = None, normalize: bool = True,
                 num_threads: int | None = None, dist: DistContext | None = None,
                 channels_last: bool | None = None) -> None:
        self.module = module
        self.dataset = dataset
        self.settings = fill_training(training)
        self.augmentation = augmentation if augmentation and any(augmentation.values()) else None
        self.task = task or dataset.task
        self.callbacks = tuple(callbacks)
        self.normalize = normalize
        self.num_threads = num_threads
        self.channels_last = channels_last
        self.strategy = dist or LocalStrategy(
            device if device is not None else self.settings["device"])
        self.world_size = self.strategy.world_size
        self.epochs: int = self.settings["epochs"]
        self.batch_size: int = self.settings["batch_size"]
        self.seed: int = self.settings["seed"]
        self.num_classes = dataset.num_classes
        self.train_index = dataset.splits["train"]
        self.val_index = dataset.splits.get("val", torch.empty(0, dtype=torch.int64))
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
        # A rank counts the batches of its shard: the same number on every rank.
        samples = self.strategy.shard_size(len(self.train_index))
        self.batches_per_epoch = batch_count(samples, self.batch_size,
                                             self.settings["max_batches_per_epoch"], has_bn)
        self._resume = resume
        if resume is not None and (reason := resume_mismatch(
                resume, self.settings, len(self.train_index), self.epochs,
                self.batches_per_epoch, self.world_size, freezing.frozen_parameter_names(module))):
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
        self.had_weights = True  # False: `train_project` on a project without weights

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
        self.checkpoint = Checkpoint(self.settings["checkpoint"])
        self.early_stopping = EarlyStopping(self.settings["early_stopping"]["patience"])
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
            # No resume state is made: the optimizer's state took in the diverging steps.
            kept = self.checkpoint.fall_back(self.module, self.records[-1]["epoch"]
                                             if self.records else None)
            self._message = f"{bad.words()}; {kept.words(self.had_weights)}"
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
            if self.channels_last:  # after a sticky CUDA fault this fails too: keep the first
                with contextlib.suppress(Exception):
                    self.module.to(memory_format=torch.contiguous_format)
        result = self._result()
        for hook in overriding(self.callbacks, "on_fit_end"):
            with contextlib.suppress(Exception):
                hook(self, result)
        return result

    def _setup(self) -> None:
        strategy = self.strategy
        self.device = strategy.device
        if self.device.type == "cpu":
            torch.set_num_threads(self.num_threads or strategy.cpu_threads)
        if len(self.train_index) == 0 or self.batches_per_epoch == 0:
            raise ValueError("the training split is empty: there is nothing to train on")
        # Channels-last weights make every 2-D convolution, BatchNorm and pool run in NHWC
        # (tensor cores' layout on CUDA; on the CPU oneDNN's, and max_pool2d's vectorised
        # kernel: 0.14 ms a call against 2.5 ms in NCHW, epochs 2-47 % shorter). Default on
        # CUDA only: on the CPU the rounding would differ from a default-layout loop.
        if self.channels_last is None:
            self.channels_last = self.device.type == "cuda"
        # A 4-D layout: a model with 3-D convolutions (5-D weights) cannot take it.
        self.channels_last = self.channels_last and all(
            p.dim() != 5 for p in self.module.parameters())
        self.module.to(self.device, memory_format=torch.channels_last if self.channels_last
                       else torch.preserve_format)
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
        self.optimizer = make_optimizer(freezing.trainable_parameters(self.module),  # unfrozen
                                        self.settings["optimizer"])
        self._frozen_norms = freezing.frozen_norms(self.module)
        self.scheduler, self._sched_when = make_scheduler(
            self.optimizer, self.settings["schedule"], epochs=self.epochs,
            batches_per_epoch=self.batches_per_epoch)
        self._on_batch_end = overriding(self.callbacks, "on_batch_end")
        self._on_epoch_start = overriding(self.callbacks, "on_epoch_start")
        self._on_epoch_end = overriding(self.callbacks, "on_epoch_end")
        self._samples_seen = 0
        # DDP shares the module's parameters (the optimizer's) and starts from rank 0's.
        self._net = strategy.wrap(self.module)
        if self._resume is not None:
            self._apply_resume(self._resume)
            if strategy.rank:  # only rank 0's RNG state was kept
                torch.manual_seed(strategy.rank_seed(self.seed, *self._position))
        else:
            torch.manual_seed(strategy.rank_seed(self.seed))
        self.checkpoint.start_state = cpu_state(self.module)

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
            if self.strategy.any(self._stop):
                self._position = (epoch, 0)
                return STOPPED, f"stopped after epoch {epoch}" if epoch else "stopped"
            self.epoch = epoch + 1
            for hook in self._on_epoch_start:
                hook(self, self.epoch)
            first = start_batch if epoch == start_epoch else 0
            if not self._train_epoch(epoch, first):
                return STOPPED, (f"stopped during epoch {epoch + 1} after batch"
                                 f" {self._position[1]} of {self.batches_per_epoch}")
            self.strategy.average_buffers(self.module)  # one model to validate and keep
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
        strategy, pausable = self.strategy, self.strategy.pausable
        count = any(getattr(cb, "counts_correct", False) for cb in self.callbacks)
        order = epoch_permutation(self.seed, epoch, len(self.train_index))
        order = data.index(self.train_index[strategy.shard(order)])
        freezing.train_mode(module, self._frozen_norms)  # frozen BatchNorm keeps its stats
        tick = time.perf_counter()
        for b in range(first, batches):
            # Distributed: a local flag must not decide alone; the stop is agreed below.
            self._position = (epoch, b)
            if pausable and (self._stop or not self._unpaused.is_set()):
                stats.seconds += time.perf_counter() - tick
                if self._wait_while_paused():
                    return False
                tick = time.perf_counter()
            xb, yb = data.batch(order[b * bs:(b + 1) * bs])
            xb = self.dataset.batch_to_float(xb, normalize)
            if augmentation is not None:
                xb, yb = augment_batch(xb, yb, augmentation,
                                       augmentation_generator(self.seed, epoch, b,
                                                              strategy.rank))
            with self._autocast():
                out = module(xb)
                loss = loss_fn(out, yb)
                correct = (loss_fn.predict(out.detach()) == yb).sum() if count else None
            del out  # not held through the backward pass
            # One sync per batch, needed anyway: a non-finite step must never be applied
            # (every rank gets the same mean loss and stop decision, before any step).
            value, stop = strategy.loss_and_stop(loss, self._stop)
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
                                 stats.samples / elapsed if elapsed > 0 else 0.0,
                                 correct, yb.numel())
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
        """Between validation batches: wait while paused; True if a stop was requested.
        Never for a rank: each validates its part, and the sums need every rank."""
        return (self.strategy.pausable and (self._stop or not self._unpaused.is_set())
                and self._wait_while_paused())

    def _validate(self) -> dict[str, Any] | None:
        """Validation metrics ({} without a validation split), timed into the epoch
        (pauses excluded); None if stopped meanwhile (resume then validates again)."""
        if len(self.val_index) == 0:
            return {}
        tick, paused = time.perf_counter(), self._paused_seconds
        strategy = self.strategy  # distributed: each rank a slice, the sums all-reduced
        out = evaluate(self.module, self.data, strategy.val_shard(self.val_index),
                       batch_size=self.batch_size,
                       to_float=lambda xb: self.dataset.batch_to_float(xb, self.normalize),
                       loss=self.loss, num_classes=self.num_classes, task=self.task,
                       autocast=self._autocast, halt=self._halt, reduce=strategy.all_sum)
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
        improved = self.checkpoint.epoch_end(self.module, epoch + 1, monitor,
                                             {**record, **metrics}, self.confusion_matrix)
        message = self.early_stopping.epoch_end(
            improved, epoch + 1, epoch + 1 == self.epochs,
            "validation" if "val_loss" in metrics else "training", self.checkpoint.best["epoch"])
        for hook in self._on_epoch_end:
            hook(self, record)
        return message

    # ---- what a run leaves ------------------------------------------------------------

    def _result(self) -> RunResult:
        checkpoint, cm, best = self.checkpoint, self.confusion_matrix, {}
        if checkpoint.best_state is not None:
            best = checkpoint.best
        elif self.records:  # the last epoch
            best = {"epoch": self.records[-1]["epoch"], "confusion_matrix": cm if cm is None
                    else cm.tolist(), "metrics": {**self.records[-1], **self.last_metrics}}
        return RunResult(
            status=self._status, message=self._message, device=str(self.device),
            settings=self.settings, epochs=list(self.records),
            best_epoch=best.get("epoch"), best=best.get("metrics", {}),
            confusion_matrix=best.get("confusion_matrix"),
            class_names=list(self.dataset.class_names),
            state_dict=checkpoint.final_state(self.module,
                                              self._stepped or self._resume is not None),
            resume_state=self._resume_state() if self._status == STOPPED else None,
            started=self._started, finished=now_iso(),
            normalization={"normalize": self.normalize, "mean": list(self.dataset.mean),
                           "std": list(self.dataset.std)})

    def _resume_state(self) -> ResumeState:
        assert self.optimizer is not None
        epoch, batch = self._position
        stats, scheduler, scaler = self._stats, self.scheduler, self.scaler
        # Private copies, never views: `state_dict()` shares the live tensors, and the
        # caller then loads the checkpoint to keep (with checkpoint "best", the best
        # epoch's weights) into the same module, which silently rewrote a resume state
        # made of views into the best weights: the resumed run continued from those.
        return ResumeState(
            epoch=epoch, batch=batch, model=cpu_state(self.module),
            optimizer=private(self.optimizer.state_dict()),
            scheduler=private(scheduler.state_dict()) if scheduler is not None else None,
            scaler=private(scaler.state_dict()) if scaler is not None else None,
            rng=capture_rng(), best_state=self.checkpoint.best_state,
            epoch_loss_sum=stats.loss_sum, epoch_samples=stats.samples,
            epoch_seconds=stats.seconds, records=list(self.records),
            best=dict(self.checkpoint.best), bad_epochs=self.early_stopping.bad_epochs,
            settings=self.settings, train_samples=len(self.train_index),
            # Positions count a rank's batches: a resume needs as many processes.
            extra={**({"world_size": self.world_size} if self.world_size > 1 else {}),
                   **freezing.resume_extra(self.module)})

    def _apply_resume(self, state: ResumeState) -> None:
        assert self.optimizer is not None
        self.module.load_state_dict(state.model)
        # After the scheduler's constructor, which sets the lr: the saved lr wins.
        self.optimizer.load_state_dict(state.optimizer)
        if self.scheduler is not None and state.scheduler is not None:
            self.scheduler.load_state_dict(state.scheduler)
        if self.scaler is not None and state.scaler:
            self.scaler.load_state_dict(state.scaler)
        self.checkpoint = Checkpoint(self.checkpoint.mode, state.best, state.best_state)
        self.early_stopping = EarlyStopping(self.early_stopping.patience, state.bad_epochs)
        self.records = list(state.records)
        self._stats = EpochStats(state.epoch_loss_sum, state.epoch_samples, state.epoch_seconds)
        self._position = (state.epoch, state.batch)
        self._stepped = True
        restore_rng(state.rng)  # last: nothing may draw between here and the first batch
