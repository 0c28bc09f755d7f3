"""Resume: serialization without pickle, and bit-exact continuation of stopped runs."""

from __future__ import annotations

import math

import pytest
import torch

from cnnstudio.train import ResumeError, ResumeState, Trainer
from cnnstudio.train.resume import decode, encode

from .helpers import Recorder, build, cpu_copy, make_dataset, settings, small_graph, state_equal

AUGMENT = {"flip": True, "crop_padding": 1, "rotation": 10}


def test_encode_round_trip_of_awkward_values() -> None:
    value = {"state": {0: {"step": torch.tensor(3.0), "buf": torch.arange(4.0)}},
             "groups": [{"betas": (0.9, 0.999), "lr": 0.1, "params": [0]}],
             "best": math.inf, "worst": -math.inf, "$odd": None, "flag": True}
    tensors: dict[str, torch.Tensor] = {}
    doc = encode(value, tensors, "x")
    back = decode(doc, tensors)
    assert back["state"][0]["buf"].tolist() == [0, 1, 2, 3] and 0 in back["state"]
    assert back["groups"][0]["betas"] == (0.9, 0.999)
    assert back["best"] == math.inf and back["worst"] == -math.inf
    assert back["$odd"] is None and back["flag"] is True
    with pytest.raises(TypeError):
        encode({"f": object()}, {}, "x")


def test_resume_state_bytes_round_trip_without_pickle() -> None:
    state = ResumeState(epoch=2, batch=3, model={"fc.weight": torch.randn(2, 3)},
                        optimizer={"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]},
                        rng={"cpu": torch.get_rng_state()}, epoch_loss_sum=1.5,
                        records=[{"epoch": 1, "val_loss": math.nan}],
                        settings={"epochs": 5})
    data = state.to_bytes()
    assert data[8:9] == b"{"  # a safetensors header, not a pickle
    back = ResumeState.from_bytes(data)
    assert (back.epoch, back.batch, back.epoch_loss_sum) == (2, 3, 1.5)
    assert torch.equal(back.model["fc.weight"], state.model["fc.weight"])
    assert torch.equal(back.rng["cpu"], state.rng["cpu"])
    assert math.isnan(back.records[0]["val_loss"])
    assert back.optimizer["param_groups"][0]["params"] == [0]


@pytest.mark.parametrize("junk", [b"", b"\x80\x04junk", b"12345678" + b"x" * 20])
def test_resume_state_rejects_junk(junk: bytes) -> None:
    with pytest.raises(ResumeError):
        ResumeState.from_bytes(junk)


def _run(stop: Recorder | None, s: dict, resume: ResumeState | None = None,
         init_seed: int = 0, stop_in_validation: int | None = None):
    module = build(small_graph(dropout=0.3, batch_norm=True), seed=init_seed)
    callbacks = [stop] if stop else []
    trainer = Trainer(module, make_dataset(n=90, val=27), s, augmentation=AUGMENT,
                      callbacks=callbacks, resume=resume)
    if stop_in_validation is not None:
        def hook(mod, args):  # the first validation batch of that epoch asks to stop
            if not mod.training and trainer.epoch == stop_in_validation:
                trainer.request_stop()
        module.get_submodule("conv1").register_forward_pre_hook(hook)
    return trainer.fit(), module


@pytest.mark.parametrize("where", ["mid-epoch", "epoch-boundary", "validation"])
@pytest.mark.parametrize("optimizer,schedule", [
    ({"name": "Adam", "lr": 0.01}, {"name": "onecycle", "max_lr": 0.05}),
    ({"name": "SGD", "lr": 0.05, "momentum": 0.9, "nesterov": True},
     {"name": "plateau", "patience": 0, "factor": 0.5}),
    ({"name": "RMSprop", "lr": 0.005, "momentum": 0.5}, {"name": "step", "step_size": 1}),
])
def test_resume_is_bit_exact(where: str, optimizer: dict, schedule: dict) -> None:
    s = settings(epochs=3, optimizer=optimizer, schedule=schedule)
    full, full_module = _run(None, s)
    assert full.status == "completed", full.message

    if where == "validation":
        stopped, _ = _run(None, s, stop_in_validation=2)
    else:
        stop = Recorder(stop_at=(2, 2)) if where == "mid-epoch" else Recorder(stop_after_epoch=1)
        stopped, _ = _run(stop, s)
    assert stopped.status == "stopped"
    data = stopped.resume_state.to_bytes()
    expected = {"mid-epoch": (1, 2), "epoch-boundary": (1, 0), "validation": (1, 4)}[where]
    assert (stopped.resume_state.epoch, stopped.resume_state.batch) == expected

    torch.manual_seed(12345)  # disturb the global RNG: resume must restore it
    torch.rand(100)
    resumed, resumed_module = _run(None, s, ResumeState.from_bytes(data), init_seed=99)
    assert resumed.status == "completed", resumed.message
    assert state_equal(cpu_copy(resumed_module), cpu_copy(full_module))
    assert state_equal(resumed.state_dict, full.state_dict)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in full.epochs]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.epochs] == strip
    assert resumed.best_epoch == full.best_epoch


def test_resume_refuses_changed_settings() -> None:
    s = settings(epochs=3)
    stopped, _ = _run(Recorder(stop_at=(1, 1)), s)
    state = stopped.resume_state
    with pytest.raises(ResumeError, match="batch_size"):
        Trainer(build(small_graph(dropout=0.3, batch_norm=True)), make_dataset(n=90, val=27),
                settings(epochs=3, batch_size=8), resume=state)
    # the device may change
    Trainer(build(small_graph(dropout=0.3, batch_norm=True)), make_dataset(n=90, val=27),
            {**s, "device": "auto"}, resume=state)
