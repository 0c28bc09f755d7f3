"""Hypothesis strategies for valid `data` and `training` sections (with unknown keys)."""

from __future__ import annotations

from hypothesis import strategies as st

from cnnstudio.core.data_sources import BUILTINS

_finite = st.floats(allow_nan=False, allow_infinity=False)
_optimizers = st.fixed_dictionaries(
    {"name": st.sampled_from(["SGD", "Adam", "AdamW", "RMSprop"])},
    optional={"lr": st.floats(1e-8, 10), "weight_decay": st.floats(0, 1),
              "momentum": st.floats(0, 0.99), "alpha": st.floats(0, 1),
              "betas": st.lists(st.floats(0, 0.999), min_size=2, max_size=2)},
)
_schedules = st.one_of(
    st.just({"name": "none"}), st.just({"name": "cosine"}),
    st.fixed_dictionaries({"name": st.just("step")},
                          optional={"step_size": st.integers(1, 1000),
                                    "gamma": st.floats(1e-3, 1)}),
    st.fixed_dictionaries({"name": st.just("onecycle")}, optional={"max_lr": st.floats(1e-6, 1)}),
    st.fixed_dictionaries({"name": st.just("plateau")},
                          optional={"patience": st.integers(0, 50),
                                    "factor": st.floats(0.01, 0.99)}),
)
trainings = st.fixed_dictionaries({}, optional={
    "epochs": st.integers(1, 100_000), "batch_size": st.integers(1, 65_536),
    "optimizer": _optimizers, "schedule": _schedules,
    "loss": st.fixed_dictionaries({}, optional={
        "name": st.sampled_from(["auto", "cross_entropy", "bce", "dice", "bce_dice"]),
        "label_smoothing": st.floats(0, 0.99)}),
    "early_stopping": st.fixed_dictionaries({}, optional={
        "patience": st.none() | st.integers(1, 100)}),
    "seed": st.integers(0, 2**32 - 1),
    "device": st.sampled_from(["auto", "cpu", "cuda", "mps", "cuda:0", "cuda:7"]),
    "amp": st.booleans(), "checkpoint": st.sampled_from(["best", "last"]),
    "max_batches_per_epoch": st.none() | st.integers(1, 10_000),
    "x_unknown": st.dictionaries(st.text(max_size=5), _finite | st.text(max_size=5), max_size=3),
})
datas = st.fixed_dictionaries({}, optional={
    "source": st.one_of(
        st.fixed_dictionaries({"kind": st.just("builtin"),
                               "name": st.sampled_from(list(BUILTINS))}),
        st.fixed_dictionaries({"kind": st.just("npz"), "path": st.text(min_size=1).filter(
            str.strip)})),
    "val_fraction": st.floats(0, 0.999),
    "normalize": st.booleans(),
    "augmentation": st.fixed_dictionaries({}, optional={
        "flip": st.booleans() | st.floats(0, 1), "crop_padding": st.integers(0, 256),
        "rotation": st.integers(0, 180) | st.floats(0, 180)}),
    "x_unknown": st.lists(st.integers(), max_size=3),
})
