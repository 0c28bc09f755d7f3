"""The Trainer: equality with a plain loop, stop/pause, faults, Softmax heads, schedules."""

from __future__ import annotations

import copy
import dataclasses
import math
import threading

import pytest
import torch
import torch.nn.functional as F

from cnnstudio.train import Callback, Trainer
from cnnstudio.train.batches import batch_count, epoch_permutation

from .helpers import (
    Recorder,
    build,
    cpu_copy,
    make_dataset,
    settings,
    small_graph,
    state_equal,
)


def plain_loop(module: torch.nn.Module, dataset, *, epochs: int, batch_size: int, seed: int,
               lr: float, momentum: float) -> None:
    """What anyone would write by hand: same shuffles, same float conversion."""
    torch.manual_seed(seed)
    opt = torch.optim.SGD(module.parameters(), lr=lr, momentum=momentum)
    train = dataset.splits["train"]
    for epoch in range(epochs):
        module.train()
        order = train[epoch_permutation(seed, epoch, len(train))]
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            xb = dataset.batch_to_float(dataset.x[idx])
            loss = F.cross_entropy(module(xb), dataset.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def test_trainer_equals_plain_loop_bit_for_bit() -> None:
    dataset = make_dataset(n=70, val=10)
    module = build(small_graph(dropout=0.3))
    reference = copy.deepcopy(module)
    result = Trainer(module, dataset, settings(epochs=2)).fit()
    assert result.status == "completed", result.message
    plain_loop(reference, dataset, epochs=2, batch_size=16, seed=3, lr=0.05, momentum=0.9)
    assert state_equal(cpu_copy(module), cpu_copy(reference))


def test_channels_last_trains_the_same_model_and_hands_back_default_layout_weights() -> None:
    """The CUDA default, asked for on the CPU: the same training up to rounding; the module,
    the kept weights and a stopped run's resume state come back in the default layout."""
    dataset = make_dataset(n=70, val=10)
    module = build(small_graph(batch_norm=True))
    reference = copy.deepcopy(module)
    result = Trainer(module, dataset, settings(epochs=2), channels_last=True).fit()
    assert result.status == "completed", result.message
    Trainer(reference, dataset, settings(epochs=2)).fit()
    assert module.conv1.weight.is_contiguous()
    assert all(t.is_contiguous() for t in result.state_dict.values())
    for (name, ours), theirs in zip(cpu_copy(module).items(), cpu_copy(reference).values(),
                                    strict=True):
        assert torch.allclose(ours.float(), theirs.float(), atol=1e-4), name
    stopped = Trainer(build(small_graph(batch_norm=True)), dataset, settings(epochs=2),
                      channels_last=True, callbacks=[Recorder(stop_at=(1, 2))]).fit()
    state = stopped.resume_state
    resumed = Trainer(build(small_graph(batch_norm=True)), dataset, settings(epochs=2),
                      channels_last=True, resume=type(state).from_bytes(state.to_bytes())).fit()
    assert resumed.status == "completed", resumed.message


def test_channels_last_is_not_forced_on_a_3d_convolution() -> None:
    """channels_last is a 4-D layout: a Conv3d model trains in its own (the CUDA default
    would otherwise fail every such run at its first step)."""
    from cnnstudio.core.graph import Graph

    g = Graph()
    g.add_node("Input", {"shape": [1, 4, 8, 8]}, id="input")
    g.add_node("Conv3d", {"out_channels": 2, "kernel_size": 3, "padding": 1}, id="conv1",
               inputs=["input"])
    g.add_node("Flatten", {}, id="flat", inputs=["conv1"])
    g.add_node("Linear", {"out_features": 3}, id="fc", inputs=["flat"])
    flat = make_dataset(n=40, val=8)
    data = dataclasses.replace(flat, x=flat.x.unsqueeze(2).expand(-1, -1, 4, -1, -1).clone())
    result = Trainer(build(g), data, settings(epochs=1), channels_last=True).fit()
    assert result.status == "completed", result.message


def test_records_and_hooks() -> None:
    dataset = make_dataset()
    rec = Recorder()
    result = Trainer(build(small_graph()), dataset, settings(epochs=2), callbacks=[rec]).fit()
    assert result.status == "completed"
    assert rec.calls == ["fit_start", "epoch_start 1", "epoch_start 2", "fit_end completed"]
    assert [(b.epoch, b.batch, b.batches) for b in rec.batches] == [
        (e, b, 3) for e in (1, 2) for b in (1, 2, 3)]
    assert rec.batches[-1].samples_seen == 2 * 48
    assert all(b.images_per_second > 0 and math.isfinite(b.loss) for b in rec.batches)
    assert [r["epoch"] for r in result.epochs] == [1, 2]
    for record in result.epochs:
        assert {"train_loss", "val_loss", "val_accuracy", "lr", "seconds"} <= record.keys()
        assert "val_top5" not in record  # 3 classes
    # train_loss is the sample-weighted mean of the batch losses
    losses = [(b.loss, 16) for b in rec.batches[:3]]
    assert result.epochs[0]["train_loss"] == pytest.approx(sum(v * n for v, n in losses) / 48)
    assert result.confusion_matrix is not None and sum(map(sum, result.confusion_matrix)) == 12
    assert result.best_epoch in (1, 2)
    assert len(result.best["precision"]) == 3


def test_stop_mid_epoch_acts_within_one_batch() -> None:
    rec = Recorder(stop_at=(1, 2))
    module = build(small_graph())
    trainer = Trainer(module, make_dataset(), settings(epochs=3), callbacks=[rec])
    result = trainer.fit()
    assert result.status == "stopped"
    assert len(rec.batches) == 2 and result.epochs == []
    assert result.resume_state is not None
    assert (result.resume_state.epoch, result.resume_state.batch) == (0, 2)
    assert result.state_dict is not None and state_equal(result.state_dict, cpu_copy(module))
    assert "epoch 1" in result.message


def test_stop_from_another_thread_while_paused() -> None:
    reached = threading.Event()

    class PauseAtTwo(Callback):
        def on_batch_end(self, trainer, info):
            if info.batch == 2:
                trainer.pause()
                reached.set()

    rec = Recorder()
    trainer = Trainer(build(small_graph()), make_dataset(), settings(epochs=3),
                      callbacks=[PauseAtTwo(), rec])
    out: list = []
    worker = threading.Thread(target=lambda: out.append(trainer.fit()))
    worker.start()
    assert reached.wait(30)
    worker.join(0.3)
    assert worker.is_alive() and trainer.paused and len(rec.batches) == 2  # held
    trainer.request_stop()
    worker.join(30)
    assert not worker.is_alive()
    assert out[0].status == "stopped" and len(rec.batches) == 2


def test_pause_and_resume_from_another_thread() -> None:
    reached = threading.Event()

    class PauseOnce(Callback):
        def on_batch_end(self, trainer, info):
            if (info.epoch, info.batch) == (1, 1):
                trainer.pause()
                reached.set()

    rec = Recorder()
    trainer = Trainer(build(small_graph()), make_dataset(), settings(epochs=2),
                      callbacks=[PauseOnce(), rec])
    out: list = []
    worker = threading.Thread(target=lambda: out.append(trainer.fit()))
    worker.start()
    assert reached.wait(30)
    worker.join(0.3)
    assert len(rec.batches) == 1
    trainer.resume()
    worker.join(60)
    assert out[0].status == "completed" and len(rec.batches) == 6


class NanAt(Callback):
    """Makes the model's output NaN from batch `at` (counted from 1) on, remembering the
    weights after the batch before it."""

    def __init__(self, module: torch.nn.Module, at: int) -> None:
        self.at, self.seen, self.good = at, 0, None
        module.get_submodule("fc").register_forward_hook(self._hook)

    def _hook(self, mod, args, out):
        return out * float("nan") if self.seen + 1 >= self.at and mod.training else out

    def on_batch_end(self, trainer, info):
        self.seen += 1
        self.good = cpu_copy(trainer.module)


class Keep(Callback):
    """Copies of the weights the run started from (key 0) and of each validated epoch."""

    def __init__(self) -> None:
        self.states: dict[int, dict[str, torch.Tensor]] = {}

    def on_fit_start(self, trainer):
        self.states[0] = cpu_copy(trainer.module)

    def on_epoch_end(self, trainer, record):
        self.states[record["epoch"]] = cpu_copy(trainer.module)


@pytest.mark.parametrize("checkpoint", ["last", "best"])
def test_nan_loss_fails_and_keeps_a_validated_epoch(checkpoint: str) -> None:
    module = build(small_graph())
    nan, keep = NanAt(module, at=8), Keep()  # 3 batches an epoch: epoch 3, batch 2
    s = settings(epochs=4, checkpoint=checkpoint, optimizer={"name": "Adam", "lr": 0.3})
    result = Trainer(module, make_dataset(), s, callbacks=[keep, nan]).fit()
    assert result.status == "failed" and result.resume_state is None
    assert [r["epoch"] for r in result.epochs] == [1, 2]
    losses = [r["val_loss"] for r in result.epochs]
    kept = 2 if checkpoint == "last" else losses.index(min(losses)) + 1
    if checkpoint == "best":
        assert kept == 1  # Adam at 0.3 is noisy: the best is not the last, as wanted here
    assert result.best_epoch == kept
    assert result.message.startswith("the loss became NaN at epoch 3, batch 2 (learning rate")
    best = ", the best so far," if kept != 2 else ""
    assert result.message.endswith(f"; the weights of epoch {kept}{best} are kept")
    # The step of epoch 3 batch 1 led to the NaN: its (finite) weights are not kept.
    assert not state_equal(nan.good, keep.states[kept])
    assert state_equal(result.state_dict, keep.states[kept])
    assert state_equal(cpu_copy(module), keep.states[kept])


@pytest.mark.parametrize("at", [1, 2])
def test_nan_loss_before_the_first_epoch_keeps_the_starting_weights(at: int) -> None:
    module = build(small_graph())
    nan, keep = NanAt(module, at=at), Keep()
    result = Trainer(module, make_dataset(), settings(epochs=2, checkpoint="last"),
                     callbacks=[keep, nan]).fit()
    assert result.status == "failed" and result.epochs == [] and result.best_epoch is None
    assert result.message.startswith(f"the loss became NaN at epoch 1, batch {at} (")
    assert result.message.endswith("; the weights from before this run are kept")
    # Nothing of the run is kept: whoever started it keeps the weights it had, if any.
    assert result.state_dict is None and result.resume_state is None
    assert state_equal(cpu_copy(module), keep.states[0])
    if at == 2:  # a step was applied, and undone
        assert not state_equal(nan.good, keep.states[0])


@pytest.mark.parametrize("epoch,kept", [(1, "from before this run"), (2, "of epoch 1")])
def test_infinite_weights_fall_back_to_sound_ones(epoch: int, kept: str) -> None:
    class Poison(Callback):
        def on_batch_end(self, trainer, info):
            if (info.epoch, info.batch) == (epoch, 2):
                with torch.no_grad():
                    trainer.module.get_submodule("fc").weight.fill_(math.inf)

    module = build(small_graph())
    keep = Keep()
    result = Trainer(module, make_dataset(), settings(epochs=3),
                     callbacks=[keep, Poison()]).fit()
    assert result.status == "failed"
    assert result.message.endswith(f"the weights {kept} are kept")
    assert state_equal(cpu_copy(module), keep.states[epoch - 1])


def test_huge_learning_rate_fails_with_finite_weights() -> None:
    module = build(small_graph())
    s = settings(epochs=20, optimizer={"name": "SGD", "lr": 1e6, "momentum": 0.9},
                 checkpoint="last")
    result = Trainer(module, make_dataset(), s).fit()
    assert result.status == "failed"
    assert "learning rate 1e+06 is probably too high" in result.message
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_out_of_memory_suggests_half_the_batch_size() -> None:
    module = build(small_graph())

    def boom(mod, args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    module.get_submodule("conv1").register_forward_pre_hook(boom)
    rec = Recorder()
    result = Trainer(module, make_dataset(), settings(batch_size=32), callbacks=[rec]).fit()
    assert result.status == "failed"
    assert "ran out of memory" in result.message and "batch size, e.g. 16" in result.message
    assert "exception OutOfMemoryError" in rec.calls and rec.calls[-1] == "fit_end failed"


def test_other_exceptions_become_one_line_failures() -> None:
    class Broken(Callback):
        def on_batch_end(self, trainer, info):
            raise RuntimeError("callback broke\nsecond line")

    rec = Recorder()
    result = Trainer(build(small_graph()), make_dataset(), settings(),
                     callbacks=[Broken(), rec]).fit()
    assert result.status == "failed"
    assert result.message == "training failed at epoch 1, batch 1: RuntimeError: callback broke"
    assert rec.calls[-2:] == ["exception RuntimeError", "fit_end failed"]


def test_wrong_class_count_is_a_clear_failure() -> None:
    result = Trainer(build(small_graph(classes=5)), make_dataset(classes=3), settings()).fit()
    assert result.status == "failed"
    assert result.message == "the model outputs 5 values per sample but the data has 3 classes"
    assert result.state_dict is None


def test_softmax_head_trains_on_logits() -> None:
    module = build(small_graph(final="Softmax"))
    dataset = make_dataset()
    s = settings(epochs=1, max_batches_per_epoch=1)
    first = dataset.splits["train"][epoch_permutation(3, 0, 48)][:16]
    xb, yb = dataset.batch_to_float(dataset.x[first]), dataset.y[first]
    with torch.no_grad():
        outputs = module.forward_all(xb)
    expected = F.cross_entropy(outputs["fc"], yb).item()
    on_probabilities = F.cross_entropy(outputs["out"], yb).item()
    rec = Recorder()
    result = Trainer(module, dataset, s, callbacks=[rec]).fit()
    assert result.status == "completed"
    assert rec.batches[0].loss == pytest.approx(expected, abs=1e-6)
    assert abs(rec.batches[0].loss - on_probabilities) > 1e-3
    with torch.no_grad():  # the hook is gone: the model gives probabilities again
        assert torch.allclose(module(xb).sum(1), torch.ones(16))


def test_early_stopping_on_a_flat_validation_loss() -> None:
    s = settings(epochs=10, optimizer={"name": "SGD", "lr": 1e-30, "momentum": 0.0},
                 early_stopping={"patience": 2})
    result = Trainer(build(small_graph()), make_dataset(), s).fit()
    assert result.status == "completed"
    assert len(result.epochs) == 3 and result.best_epoch == 1
    assert result.message.startswith("stopped early at epoch 3")


def test_best_checkpoint_is_a_copy_of_the_best_epoch() -> None:
    keep = Keep()
    s = settings(epochs=4, optimizer={"name": "Adam", "lr": 0.3})  # noisy: the best is early
    result = Trainer(build(small_graph()), make_dataset(), s, callbacks=[keep]).fit()
    losses = [r["val_loss"] for r in result.epochs]
    best = losses.index(min(losses)) + 1
    assert result.best_epoch == best
    assert state_equal(result.state_dict, keep.states[best])
    assert result.best["val_loss"] == min(losses)


@pytest.mark.parametrize("optimizer", [
    {"name": "SGD", "lr": 0.05, "momentum": 0.9, "nesterov": True},
    {"name": "Adam", "lr": 0.01}, {"name": "AdamW", "lr": 0.01},
    {"name": "RMSprop", "lr": 0.01, "momentum": 0.5}])
@pytest.mark.parametrize("schedule", [
    {"name": "none"}, {"name": "step", "step_size": 1, "gamma": 0.5}, {"name": "cosine"},
    {"name": "onecycle", "max_lr": 0.05}, {"name": "plateau", "patience": 0, "factor": 0.5}])
def test_every_optimizer_and_schedule_runs(optimizer: dict, schedule: dict) -> None:
    module = build(small_graph())
    before = cpu_copy(module)
    s = settings(epochs=2, max_batches_per_epoch=2, optimizer=optimizer, schedule=schedule)
    result = Trainer(module, make_dataset(), s).fit()
    assert result.status == "completed", result.message
    assert not state_equal(before, cpu_copy(module))
    lrs = [r["lr"] for r in result.epochs]
    if schedule["name"] == "step":
        assert lrs == pytest.approx([optimizer["lr"], optimizer["lr"] / 2])
    if schedule["name"] == "cosine":  # half-way down the cosine over 2 epochs
        assert lrs == pytest.approx([optimizer["lr"], optimizer["lr"] / 2])


def test_max_batches_and_batchnorm_single_sample() -> None:
    assert batch_count(33, 16, None, drop_single=True) == 2
    assert batch_count(33, 16, None, drop_single=False) == 3
    assert batch_count(33, 16, 1, drop_single=False) == 1
    # 49 training samples, batch 16: the lone 49th would break BatchNorm, so it is skipped.
    result = Trainer(build(small_graph(batch_norm=True)), make_dataset(n=61), settings()).fit()
    assert result.status == "completed", result.message


def test_no_validation_split_monitors_training_loss() -> None:
    dataset = make_dataset(val=0)
    result = Trainer(build(small_graph()), dataset, settings()).fit()
    assert result.status == "completed"
    assert "val_loss" not in result.epochs[0] and result.best_epoch is not None


def test_unknown_device_fails_cleanly() -> None:
    result = Trainer(build(small_graph()), make_dataset(), settings(device="cuda:7")).fit()
    assert result.status == "failed"
    if not torch.cuda.is_available():
        assert result.message.startswith("device 'cuda:7' was asked for, but CUDA is not")


def test_thread_count_is_restored() -> None:
    before = torch.get_num_threads()
    Trainer(build(small_graph()), make_dataset(), settings(epochs=1), num_threads=1).fit()
    assert torch.get_num_threads() == before
