"""The data and training sections: documented defaults, validation paths, unknown keys."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import given, settings

from cnnstudio.core.data_sources import BUILTINS, SOURCE_KINDS, path_keys
from cnnstudio.core.errors import FormatError
from cnnstudio.project import fill_data, fill_training

from .strategies import datas, trainings

TRAINING_DEFAULTS = {
    "epochs": 10,
    "batch_size": 64,
    "optimizer": {"name": "Adam", "lr": 0.001, "weight_decay": 0.0, "betas": [0.9, 0.999]},
    "schedule": {"name": "none"},
    "loss": {"name": "auto", "label_smoothing": 0.0},
    "early_stopping": {"patience": None},
    "seed": 0,
    "device": "auto",
    "amp": True,
    "checkpoint": "best",
    "max_batches_per_epoch": None,
}
DATA_DEFAULTS = {
    "source": {"kind": "builtin", "name": "digits"},
    "val_fraction": 0.2,
    "normalize": True,
    "augmentation": {"flip": False, "crop_padding": 0, "rotation": 0},
    "seed": 0,
}


def test_empty_sections_fill_every_documented_default_in_order():
    assert fill_training({}) == TRAINING_DEFAULTS
    assert list(fill_training({})) == list(TRAINING_DEFAULTS)
    assert fill_data({}) == DATA_DEFAULTS
    assert list(fill_data({})) == list(DATA_DEFAULTS)


@pytest.mark.parametrize(("optimizer", "expected"), [
    ({"name": "SGD"}, {"name": "SGD", "lr": 0.001, "weight_decay": 0.0, "momentum": 0.9,
                       "nesterov": False}),
    ({"name": "adamw", "lr": 0.01}, {"name": "AdamW", "lr": 0.01, "weight_decay": 0.01,
                                     "betas": [0.9, 0.999]}),
    ({"name": "RMSprop"}, {"name": "RMSprop", "lr": 0.001, "weight_decay": 0.0,
                           "momentum": 0.0, "alpha": 0.99}),
    ({"name": "Adam", "lr": 1, "betas": [0, 0.5]},
     {"name": "Adam", "lr": 1.0, "weight_decay": 0.0, "betas": [0.0, 0.5]}),
])
def test_optimizer_defaults_per_name(optimizer: dict[str, Any], expected: dict[str, Any]):
    assert fill_training({"optimizer": optimizer})["optimizer"] == expected


@pytest.mark.parametrize(("schedule", "expected"), [
    ({"name": "step"}, {"name": "step", "step_size": 10, "gamma": 0.1}),
    ({"name": "cosine"}, {"name": "cosine"}),
    ({"name": "OneCycle"}, {"name": "onecycle", "max_lr": pytest.approx(0.02)}),
    ({"name": "plateau", "patience": 0}, {"name": "plateau", "patience": 0, "factor": 0.1}),
])
def test_schedule_defaults_per_name(schedule: dict[str, Any], expected: dict[str, Any]):
    filled = fill_training({"optimizer": {"lr": 0.002}, "schedule": schedule})
    assert filled["schedule"] == expected


def test_source_kinds_and_their_keys():
    assert fill_data({"source": {"kind": "builtin"}})["source"] == {"kind": "builtin",
                                                                    "name": "digits"}
    for name in BUILTINS:
        assert fill_data({"source": {"kind": "builtin", "name": name}})["source"]["name"] == name
    for kind, keys in ((k, path_keys(k)) for k in SOURCE_KINDS):
        source = {"kind": kind, **{key: f"some/{key}" for key in keys}}
        assert fill_data({"source": source})["source"] == (
            {**source, "name": "digits"} if kind == "builtin" else source)


def test_unknown_keys_are_kept_and_the_input_is_not_changed():
    training = {"optimizer": {"name": "Adam", "momentum": 0.5, "foreach": True},
                "schedule": {"name": "step", "verbose": 1}, "clip": {"norm": 1.0},
                "early_stopping": {"patience": 3, "min_delta": 0.01}}
    before = copy.deepcopy(training)
    filled = fill_training(training)
    assert training == before
    assert filled["optimizer"]["momentum"] == 0.5 and filled["optimizer"]["foreach"] is True
    assert filled["schedule"]["verbose"] == 1
    assert filled["clip"] == {"norm": 1.0}
    assert filled["early_stopping"] == {"patience": 3, "min_delta": 0.01}
    filled["clip"]["norm"] = 2.0
    assert training["clip"]["norm"] == 1.0
    data = {"source": {"kind": "csv", "path": "x.csv", "delimiter": ";"}, "cache": False,
            "augmentation": {"flip": True, "noise": 0.1}}
    filled = fill_data(data)
    assert filled["source"]["delimiter"] == ";" and filled["cache"] is False
    assert filled["augmentation"] == {"flip": True, "crop_padding": 0, "rotation": 0,
                                      "noise": 0.1}
    assert fill_data({"augmentation": {"flip": 0.25}})["augmentation"]["flip"] == 0.25


def test_choices_are_matched_without_case_and_canonical_values_returned():
    filled = fill_training({"optimizer": {"name": "rmsPROP"}, "loss": {"name": "BCE_Dice"},
                            "checkpoint": "LAST", "device": "CUDA:1"})
    assert filled["optimizer"]["name"] == "RMSprop"
    assert filled["loss"]["name"] == "bce_dice"
    assert (filled["checkpoint"], filled["device"]) == ("last", "cuda:1")


@pytest.mark.parametrize(("training", "path", "words"), [
    ([], "training", "must be an object"),
    ({"epochs": "ten"}, "training.epochs", 'must be an integer, got "ten"'),
    ({"epochs": 0}, "training.epochs", "between 1 and 100000, got 0"),
    ({"epochs": 10.0}, "training.epochs", "must be an integer"),
    ({"batch_size": True}, "training.batch_size", "must be an integer, got true"),
    ({"batch_size": 65537}, "training.batch_size", "between 1 and 65536"),
    ({"optimizer": {"lr": -1}}, "training.optimizer.lr", "must be > 0, got -1"),
    ({"optimizer": {"lr": 0}}, "training.optimizer.lr", "must be > 0"),
    ({"optimizer": {"lr": "0.1"}}, "training.optimizer.lr", 'must be a number, got "0.1"'),
    ({"optimizer": {"lr": math.nan}}, "training.optimizer.lr", "finite"),
    ({"optimizer": {"lr": math.inf}}, "training.optimizer.lr", "finite"),
    ({"optimizer": {"name": "Lion"}}, "training.optimizer.name", "SGD, Adam, AdamW, RMSprop"),
    ({"optimizer": {"weight_decay": -0.1}}, "training.optimizer.weight_decay", "≥ 0"),
    ({"optimizer": {"name": "SGD", "momentum": 1}}, "training.optimizer.momentum", "< 1"),
    ({"optimizer": {"name": "SGD", "momentum": 0, "nesterov": True}},
     "training.optimizer.nesterov", "momentum > 0"),
    ({"optimizer": {"name": "SGD", "nesterov": 1}}, "training.optimizer.nesterov",
     "true or false"),
    ({"optimizer": {"betas": [0.9]}}, "training.optimizer.betas", "two numbers"),
    ({"optimizer": {"betas": [0.9, 1.0]}}, "training.optimizer.betas[1]", "< 1"),
    ({"optimizer": {"name": "RMSprop", "alpha": 2}}, "training.optimizer.alpha", "≤ 1"),
    ({"optimizer": []}, "training.optimizer", "must be an object"),
    ({"schedule": {"name": "exp"}}, "training.schedule.name", "none, step, cosine"),
    ({"schedule": {"name": "step", "step_size": 0}}, "training.schedule.step_size", "≥ 1"),
    ({"schedule": {"name": "step", "gamma": 0}}, "training.schedule.gamma", "> 0"),
    ({"schedule": {"name": "onecycle", "max_lr": -2}}, "training.schedule.max_lr", "> 0"),
    ({"schedule": {"name": "plateau", "factor": 1}}, "training.schedule.factor", "< 1"),
    ({"schedule": {"name": "plateau", "patience": -1}}, "training.schedule.patience", "≥ 0"),
    ({"loss": {"name": "mse"}}, "training.loss.name", "auto, cross_entropy, bce, dice"),
    ({"loss": {"label_smoothing": 1}}, "training.loss.label_smoothing", "< 1"),
    ({"early_stopping": {"patience": 0}}, "training.early_stopping.patience", "≥ 1"),
    ({"early_stopping": {"patience": "5"}}, "training.early_stopping.patience",
     "integer or null"),
    ({"early_stopping": None}, "training.early_stopping", "must be an object"),
    ({"seed": -1}, "training.seed", "between 0 and 4294967295"),
    ({"seed": None}, "training.seed", "must be an integer, got null"),
    ({"device": "gpu"}, "training.device", "auto, cpu, cuda, cuda:N or mps"),
    ({"device": "cuda:x"}, "training.device", '"cuda:x"'),
    ({"device": 0}, "training.device", "got 0"),
    ({"amp": "yes"}, "training.amp", "true or false"),
    ({"checkpoint": "first"}, "training.checkpoint", "best, last"),
    ({"max_batches_per_epoch": 0}, "training.max_batches_per_epoch", "≥ 1"),
])
def test_training_errors_name_the_path(training: Any, path: str, words: str):
    with pytest.raises(FormatError) as info:
        fill_training(training)
    assert info.value.path == path
    assert words in info.value.message
    assert str(info.value).startswith(path + ": ")


@pytest.mark.parametrize(("data", "path", "words"), [
    (None, "data", "must be an object"),
    ({"source": "digits"}, "data.source", "must be an object"),
    ({"source": {}}, "data.source.kind", "missing; one of builtin, folder"),
    ({"source": {"kind": "url"}}, "data.source.kind", 'got "url"'),
    ({"source": {"kind": "builtin", "name": "mnist"}}, "data.source.name", "digits, xo"),
    ({"source": {"kind": "folder"}}, "data.source.path", "missing"),
    ({"source": {"kind": "folder", "path": ""}}, "data.source.path", "non-empty string"),
    ({"source": {"kind": "idx", "images": "a"}}, "data.source.labels", "missing"),
    ({"source": {"kind": "segmentation_folder", "images": "a", "masks": 3}},
     "data.source.masks", "non-empty string"),
    ({"val_fraction": 1.0}, "data.val_fraction", "≥ 0 and < 1, got 1"),
    ({"val_fraction": -0.1}, "data.val_fraction", "≥ 0"),
    ({"val_fraction": False}, "data.val_fraction", "must be a number, got false"),
    ({"normalize": 1}, "data.normalize", "true or false"),
    ({"augmentation": {"flip": "h"}}, "data.augmentation.flip", "true, false or a probability"),
    ({"augmentation": {"flip": 1.5}}, "data.augmentation.flip", "≤ 1"),
    ({"augmentation": {"crop_padding": 2.5}}, "data.augmentation.crop_padding", "integer"),
    ({"augmentation": {"crop_padding": 1000}}, "data.augmentation.crop_padding", "0 and 256"),
    ({"augmentation": {"rotation": 400}}, "data.augmentation.rotation", "≤ 180"),
    ({"augmentation": []}, "data.augmentation", "must be an object"),
])
def test_data_errors_name_the_path(data: Any, path: str, words: str):
    with pytest.raises(FormatError) as info:
        fill_data(data)
    assert info.value.path == path
    assert words in info.value.message


def test_error_messages_cut_long_values_short():
    with pytest.raises(FormatError) as info:
        fill_training({"device": "x" * 500})
    assert len(str(info.value)) < 150


# ---- property: any valid settings fill idempotently and keep what they were given -------

@settings(max_examples=60, deadline=None)
@given(training=trainings, data=datas)
def test_valid_settings_fill_idempotently_and_keep_their_values(training, data):
    filled = fill_training(training)
    assert fill_training(filled) == filled
    for key, value in training.items():
        if key not in ("optimizer", "schedule", "loss", "early_stopping"):
            assert filled[key] == value
    filled_data = fill_data(data)
    assert fill_data(filled_data) == filled_data
    assert filled_data.get("x_unknown") == data.get("x_unknown")
