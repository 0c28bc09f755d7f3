"""Devices, callbacks plumbing, records and the thread policy."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch

from cnnstudio.train import (
    Callback,
    DeviceError,
    ProgressPrinter,
    RunResult,
    Trainer,
    default_cpu_threads,
    resolve_device,
    run_record,
)
from cnnstudio.train.batches import epoch_permutation, mix_seed
from cnnstudio.train.callbacks import overriding
from cnnstudio.train.optim import warm_up
from cnnstudio.train.record import json_safe

from .helpers import build, make_dataset, settings, small_graph


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda", "mps")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto").type in ("cpu", "mps")
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")


def test_thread_policy_leaves_a_core_free() -> None:
    assert default_cpu_threads(1) == 1
    assert default_cpu_threads(2) == 1
    assert 1 <= default_cpu_threads(16) <= 15


def test_seeds_are_mixed_and_stable() -> None:
    assert mix_seed(1, 2) != mix_seed(2, 1)
    assert mix_seed(1, 2) == mix_seed(1, 2) < 2**63
    assert torch.equal(epoch_permutation(0, 3, 10), epoch_permutation(0, 3, 10))
    assert not torch.equal(epoch_permutation(0, 3, 50), epoch_permutation(0, 4, 50))


def test_only_overriding_hooks_are_called() -> None:
    class OnlyBatches(Callback):
        def on_batch_end(self, trainer, info):
            pass

    cbs = (Callback(), OnlyBatches())
    assert len(overriding(cbs, "on_batch_end")) == 1
    assert overriding(cbs, "on_epoch_end") == []


def test_progress_printer_writes_lines() -> None:
    stream = io.StringIO()
    result = Trainer(build(small_graph()), make_dataset(), settings(),
                     callbacks=[ProgressPrinter(stream, interval=0.0)]).fit()
    assert result.status == "completed"
    text = stream.getvalue()
    assert "epoch 1/2 [" in text and "img/s" in text and "val_accuracy" in text
    assert text.count("\n") == 2


def test_run_record_is_json_safe() -> None:
    result = RunResult("failed", "boom", epochs=[{"epoch": 1, "train_loss": math.nan,
                                                  "lr": 0.1, "seconds": 1.0, "extra": [1]}],
                       best={"val_loss": math.inf, "f1": [math.nan, 0.5]})
    record = run_record(result, "run-3")
    text = json.dumps(record, allow_nan=False)
    assert record["id"] == "run-3" and record["epochs"][0]["train_loss"] is None
    assert "extra" not in record["epochs"][0] and record["best"]["f1"] == [None, 0.5]
    assert json.loads(text)["status"] == "failed"
    assert json_safe((1.0, torch.tensor([math.inf]))) == [1.0, [None]]


def test_warm_up_runs() -> None:
    warm_up()
