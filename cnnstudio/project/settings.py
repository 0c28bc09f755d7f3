"""The `data` and `training` sections of a project: their schema, defaults and validation.

A project file stores these sections as the user (or the GUI) gave them; `fill_data` and
`fill_training` check them and return a copy with every default filled in, which is what
the data loader and the trainer read. Unknown keys are kept at every level, so a file
written by a newer CNN Studio survives a round trip through this one. Choice values are
matched without regard to case and returned in their canonical spelling (`"adam"` →
`"Adam"`); `canonical_data` and `canonical_training` put that spelling into a section
as stored (reading a project does), so no reader ever meets another spelling. That is
the one rule for names everywhere (files, the window, the command line): any case in,
the canonical spelling kept.

**data**

| key | default | accepted |
| --- | --- | --- |
| `source` | `{"kind": "builtin", "name": "digits"}` | an object; `kind` and its keys below |
| `val_fraction` | `0.2` | a number, 0 ≤ f < 1 (share of the data held out for validation) |
| `normalize` | `true` | boolean: scale each channel to zero mean, unit variance |
| `augmentation.flip` | `false` | boolean (true: flip half the samples), or a probability 0…1 |
| `augmentation.crop_padding` | `0` | integer 0…256: pad, then crop randomly back to size |
| `augmentation.rotation` | `0` | number 0…180: random rotation of up to ± this many degrees |
| `seed` | `0` | integer 0…4294967295: seed of the train/validation split (not of training) |

`source.kind`, its path keys and a built-in's `name` (default `digits`) are those of
`cnnstudio.core.data_sources`; relative paths are relative to the project file's folder.

**training**

| key | default | accepted |
| --- | --- | --- |
| `epochs` | `10` | integer 1…100000 |
| `batch_size` | `64` | integer 1…65536 |
| `optimizer.name` | `"Adam"` | `SGD`, `Adam`, `AdamW`, `RMSprop` |
| `optimizer.lr` | `0.001` | a number > 0 |
| `optimizer.weight_decay` | `0.0` (`0.01` for AdamW, torch's default) | a number ≥ 0 |
| `optimizer.momentum` | SGD `0.9`, RMSprop `0.0` | a number, 0 ≤ m < 1 |
| `optimizer.nesterov` | `false` (SGD) | boolean; needs momentum > 0 |
| `optimizer.betas` | `[0.9, 0.999]` (Adam, AdamW) | two numbers, each 0 ≤ b < 1 |
| `optimizer.alpha` | `0.99` (RMSprop) | a number, 0 ≤ a ≤ 1 |
| `schedule.name` | `"none"` | `none`, `step`, `cosine`, `onecycle`, `plateau` |
| `schedule.step_size` | `10` (step) | integer ≥ 1, in epochs |
| `schedule.gamma` | `0.1` (step) | a number > 0 |
| `schedule.max_lr` | 10 × `optimizer.lr` (onecycle) | a number > 0 |
| `schedule.patience` | `5` (plateau) | integer ≥ 0, in epochs |
| `schedule.factor` | `0.1` (plateau) | a number, 0 < f < 1 |
| `loss.name` | `"auto"` | `auto` (by task), `cross_entropy`, `bce`, `dice`, `bce_dice` |
| `loss.label_smoothing` | `0.0` | a number, 0 ≤ s < 1 |
| `early_stopping.patience` | `null` (off) | integer ≥ 1, or null |
| `seed` | `0` | integer 0…4294967295 |
| `device` | `"auto"` | `auto` (CUDA > MPS > CPU), `cpu`, `cuda`, `cuda:N`, `mps` |
| `amp` | `true` | boolean: mixed precision (used only on CUDA) |
| `checkpoint` | `"best"` | `best` (lowest validation loss) or `last` |
| `max_batches_per_epoch` | `null` (all) | integer ≥ 1, or null (for quick tries) |

Keys that belong to another optimizer or schedule than the chosen one (say `momentum`
with Adam) are kept as unknown keys; the trainer reads only the keys listed for the name.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from cnnstudio.core.data_sources import BUILTINS, DEFAULT_SOURCE, SOURCE_KINDS, path_keys
from cnnstudio.core.errors import FormatError, show_value

OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop")
SCHEDULES = ("none", "step", "cosine", "onecycle", "plateau")
LOSSES = ("auto", "cross_entropy", "bce", "dice", "bce_dice")
CHECKPOINTS = ("best", "last")
MAX_SEED = 2**32 - 1  # NumPy's seed range, the narrowest of the generators we seed
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,3})?)$")


# ---- value checks: each returns the value (canonical) or raises FormatError(path, …) ----


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not 1


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(path, f"must be an object, got {show_value(value)}")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise FormatError(path, f"must be true or false, got {show_value(value)}")
    return value


def _int(value: Any, path: str, low: int, high: int | None = None, *,
         nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if not _is_int(value):
        what = "an integer or null" if nullable else "an integer"
        raise FormatError(path, f"must be {what}, got {show_value(value)}")
    if value < low or (high is not None and value > high):
        bounds = f"≥ {low}" if high is None else f"between {low} and {high}"
        raise FormatError(path, f"must be {bounds}, got {value}")
    return value


def _number(value: Any, path: str, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False) -> float:
    """A finite number within [low, high] (or open at either end); ints become floats."""
    if not (_is_int(value) or isinstance(value, float)):
        raise FormatError(path, f"must be a number, got {show_value(value)}")
    if not math.isfinite(value):
        raise FormatError(path, f"must be a finite number, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '≥'} {low:g}")
        if high is not None:
            parts.append(f"{'<' if high_open else '≤'} {high:g}")
        raise FormatError(path, f"must be {' and '.join(parts)}, got {value:g}")
    return float(value)


def _choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    if isinstance(value, str):
        for choice in choices:
            if value.casefold() == choice.casefold():
                return choice
    raise FormatError(path, f"must be one of {', '.join(choices)}; got {show_value(value)}")


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FormatError(path, f"must be a non-empty string, got {show_value(value)}")
    return value


def _fill(given: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    """`known` (checked values, in schema order) followed by `given`'s unknown keys."""
    out = dict(known)
    for key, value in given.items():
        if key not in out:
            out[key] = copy.deepcopy(value)
    return out


# ---- data ---------------------------------------------------------------------------


def fill_data(data: Any, path: str = "data") -> dict[str, Any]:
    """Validate a project's `data` section; return a new dict with every default filled.

    Unknown keys are kept (copied). Raises FormatError whose `path` is the JSON path at
    fault, e.g. `data.val_fraction: must be ≥ 0 and < 1, got 1`.
    """
    data = _object(data, path)
    source = _fill_source(data.get("source", DEFAULT_SOURCE), f"{path}.source")
    aug_path = f"{path}.augmentation"
    aug = _object(data.get("augmentation", {}), aug_path)
    augmentation = _fill(aug, {
        "flip": _flip(aug.get("flip", False), f"{aug_path}.flip"),
        "crop_padding": _int(aug.get("crop_padding", 0), f"{aug_path}.crop_padding", 0, 256),
        "rotation": _rotation(aug.get("rotation", 0), f"{aug_path}.rotation"),
    })
    return _fill(data, {
        "source": source,
        "val_fraction": _number(data.get("val_fraction", 0.2), f"{path}.val_fraction",
                                low=0.0, high=1.0, high_open=True),
        "normalize": _bool(data.get("normalize", True), f"{path}.normalize"),
        "augmentation": augmentation,
        # The split has its own seed, so runs with other training seeds share a val set.
        "seed": _int(data.get("seed", 0), f"{path}.seed", 0, MAX_SEED),
    })


def _flip(value: Any, path: str) -> bool | float:
    if isinstance(value, bool):
        return value
    if _is_int(value) or isinstance(value, float):  # the data loader takes a probability too
        return _number(value, path, low=0.0, high=1.0)
    raise FormatError(path, f"must be true, false or a probability 0…1, got {show_value(value)}")


def _rotation(value: Any, path: str) -> int | float:
    degrees = _number(value, path, low=0.0, high=180.0)
    return value if _is_int(value) else degrees  # keep 15 as 15, not 15.0


def _fill_source(source: Any, path: str) -> dict[str, Any]:
    source = _object(source, path)
    if "kind" not in source:
        raise FormatError(f"{path}.kind", f"missing; one of {', '.join(SOURCE_KINDS)}")
    kind = _choice(source["kind"], f"{path}.kind", tuple(SOURCE_KINDS))
    known: dict[str, Any] = {"kind": kind}
    if kind == "builtin":
        known["name"] = _choice(source.get("name", DEFAULT_SOURCE["name"]), f"{path}.name",
                                tuple(BUILTINS))
    for key in path_keys(kind):
        if key not in source:
            raise FormatError(f"{path}.{key}", f"missing; a {kind} source needs {key!r}")
        known[key] = _text(source[key], f"{path}.{key}")
    return _fill(source, known)


# ---- training -----------------------------------------------------------------------


def training_seed(training: Any) -> int:
    """The seed a run of these settings starts its weights from; 0 when the seed itself is
    invalid (the window's views and exports still show an initialisation; Train says what
    is wrong)."""
    seed = training.get("seed", 0) if isinstance(training, dict) else 0
    return seed if _is_int(seed) and 0 <= seed <= MAX_SEED else 0


def fill_training(training: Any, path: str = "training") -> dict[str, Any]:
    """Validate a project's `training` section; return a new dict with every default filled.

    Unknown keys are kept (copied). Raises FormatError whose `path` is the JSON path at
    fault, e.g. `training.optimizer.lr: must be > 0, got -1`.
    """
    t = _object(training, path)
    optimizer = _fill_optimizer(t.get("optimizer", {}), f"{path}.optimizer")
    es_path = f"{path}.early_stopping"
    early = _object(t.get("early_stopping", {}), es_path)
    device = t.get("device", "auto")
    if not isinstance(device, str) or not _DEVICE.match(device.lower()):
        raise FormatError(f"{path}.device",
                          f"must be auto, cpu, cuda, cuda:N or mps; got {show_value(device)}")
    return _fill(t, {
        "epochs": _int(t.get("epochs", 10), f"{path}.epochs", 1, 100_000),
        "batch_size": _int(t.get("batch_size", 64), f"{path}.batch_size", 1, 65_536),
        "optimizer": optimizer,
        "schedule": _fill_schedule(t.get("schedule", {}), f"{path}.schedule", optimizer["lr"]),
        "loss": _fill_loss(t.get("loss", {}), f"{path}.loss"),
        "early_stopping": _fill(early, {
            "patience": _int(early.get("patience"), f"{es_path}.patience", 1, nullable=True),
        }),
        "seed": _int(t.get("seed", 0), f"{path}.seed", 0, MAX_SEED),
        "device": device.lower(),
        "amp": _bool(t.get("amp", True), f"{path}.amp"),
        "checkpoint": _choice(t.get("checkpoint", "best"), f"{path}.checkpoint", CHECKPOINTS),
        "max_batches_per_epoch": _int(t.get("max_batches_per_epoch"),
                                      f"{path}.max_batches_per_epoch", 1, nullable=True),
    })


def _fill_optimizer(opt: Any, path: str) -> dict[str, Any]:
    opt = _object(opt, path)
    name = _choice(opt.get("name", "Adam"), f"{path}.name", OPTIMIZERS)
    decay_default = 0.01 if name == "AdamW" else 0.0  # torch's own defaults
    known: dict[str, Any] = {
        "name": name,
        "lr": _number(opt.get("lr", 0.001), f"{path}.lr", low=0.0, low_open=True),
        "weight_decay": _number(opt.get("weight_decay", decay_default), f"{path}.weight_decay",
                                low=0.0),
    }
    if name in ("SGD", "RMSprop"):
        known["momentum"] = _number(opt.get("momentum", 0.9 if name == "SGD" else 0.0),
                                    f"{path}.momentum", low=0.0, high=1.0, high_open=True)
    if name == "SGD":
        known["nesterov"] = _bool(opt.get("nesterov", False), f"{path}.nesterov")
        if known["nesterov"] and known["momentum"] == 0:
            # torch.optim.SGD refuses this combination; say so before training starts.
            raise FormatError(f"{path}.nesterov", "needs momentum > 0")
    if name in ("Adam", "AdamW"):
        betas = opt.get("betas", [0.9, 0.999])
        if not isinstance(betas, list) or len(betas) != 2:
            raise FormatError(f"{path}.betas",
                              f"must be a list of two numbers, got {show_value(betas)}")
        known["betas"] = [_number(b, f"{path}.betas[{i}]", low=0.0, high=1.0, high_open=True)
                          for i, b in enumerate(betas)]
    if name == "RMSprop":
        known["alpha"] = _number(opt.get("alpha", 0.99), f"{path}.alpha", low=0.0, high=1.0)
    return _fill(opt, known)


def _fill_schedule(sched: Any, path: str, lr: float) -> dict[str, Any]:
    sched = _object(sched, path)
    name = _choice(sched.get("name", "none"), f"{path}.name", SCHEDULES)
    known: dict[str, Any] = {"name": name}
    if name == "step":
        known["step_size"] = _int(sched.get("step_size", 10), f"{path}.step_size", 1)
        known["gamma"] = _number(sched.get("gamma", 0.1), f"{path}.gamma", low=0.0, low_open=True)
    elif name == "onecycle":
        known["max_lr"] = _number(sched.get("max_lr", 10 * lr), f"{path}.max_lr",
                                  low=0.0, low_open=True)
    elif name == "plateau":
        known["patience"] = _int(sched.get("patience", 5), f"{path}.patience", 0)
        known["factor"] = _number(sched.get("factor", 0.1), f"{path}.factor",
                                  low=0.0, high=1.0, low_open=True, high_open=True)
    return _fill(sched, known)


def _fill_loss(loss: Any, path: str) -> dict[str, Any]:
    loss = _object(loss, path)
    return _fill(loss, {
        "name": _choice(loss.get("name", "auto"), f"{path}.name", LOSSES),
        "label_smoothing": _number(loss.get("label_smoothing", 0.0), f"{path}.label_smoothing",
                                   low=0.0, high=1.0, high_open=True),
    })


# ---- canonical spelling of the names a section holds -----------------------------------

_DATA_NAMES = (("source", "kind"), ("source", "name"))
_TRAINING_NAMES = (("optimizer", "name"), ("schedule", "name"), ("loss", "name"),
                   ("checkpoint",), ("device",))


def _canonical(given: Any, filled: dict[str, Any], paths: tuple[tuple[str, ...], ...]
               ) -> dict[str, Any]:
    """A copy of `given` with the names at `paths` spelled as `filled` (the checked
    section) spells them; keys `given` lacks stay absent (no defaults are added)."""
    out = copy.deepcopy(given)
    for path in paths:
        holder, fill = out, filled
        for key in path[:-1]:
            holder, fill = holder.get(key), fill.get(key)
            if not isinstance(holder, dict) or not isinstance(fill, dict):
                break
        else:
            if path[-1] in holder and isinstance(holder[path[-1]], str):
                holder[path[-1]] = fill[path[-1]]
    return out


def canonical_data(data: Any, path: str = "data") -> dict[str, Any]:
    """`data` as given, with its names (`source.kind`, a builtin's `name`) in canonical
    spelling. Raises FormatError as `fill_data` does."""
    return _canonical(data, fill_data(data, path), _DATA_NAMES)


def canonical_training(training: Any, path: str = "training") -> dict[str, Any]:
    """`training` as given, with its names (optimizer, schedule, loss, checkpoint, device)
    in canonical spelling. Raises FormatError as `fill_training` does."""
    return _canonical(training, fill_training(training, path), _TRAINING_NAMES)
