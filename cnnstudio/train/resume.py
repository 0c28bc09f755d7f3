"""Everything needed to continue a stopped run exactly, serialized without pickle.

`ResumeState.to_bytes()` writes one safetensors file: every tensor (model weights,
optimizer buffers, RNG states, the best checkpoint so far) under a flat key, and all the
rest as JSON in the safetensors metadata (`__metadata__`, string values). Nested
structures such as `optimizer.state_dict()` are encoded by `encode`: tensors become
`{"$t": key}` references, and the few things JSON cannot say are tagged (`$tuple`, `$map`
for dicts with non-string keys, `$float` for inf/NaN). Reading never executes code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from cnnstudio.nn.weights import weights_metadata

FORMAT = "cnnstudio.resume"
VERSION = 1
_META_KEY = "cnnstudio.resume"
# Settings a resumed run may change without making the resume meaningless.
RESUME_FREE_KEYS = ("device", "amp")


class ResumeError(ValueError):
    """The resume data cannot be read (corrupt, or written by an unknown version)."""


@dataclass
class ResumeState:
    """Where a run stopped and what it had learned, enough to continue bit-exactly on CPU.

    `epoch` and `batch` are the 0-based position of the next batch to train. Tensor-holding
    fields (`model`, `optimizer`, `scheduler`, `scaler`, `rng`, `best_state`) may hold
    nested dicts/lists of tensors and plain values, as torch's `state_dict()`s do.
    """

    epoch: int = 0
    batch: int = 0
    model: dict[str, torch.Tensor] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)
    scheduler: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    rng: dict[str, Any] = field(default_factory=dict)  # "cpu", "cuda" (list), "mps"
    best_state: dict[str, torch.Tensor] | None = None
    # Plain values: progress of the interrupted epoch, history, best-so-far bookkeeping.
    epoch_loss_sum: float = 0.0
    epoch_samples: int = 0
    epoch_seconds: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)  # best_epoch, best_loss, metrics, …
    bad_epochs: int = 0  # epochs without improvement, for early stopping
    settings: dict[str, Any] = field(default_factory=dict)  # the filled training settings
    train_samples: int = 0  # size of the training split, to refuse a changed dataset
    extra: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Serialize to safetensors bytes (tensors copied to CPU); raises TypeError for a
        value that is neither a tensor nor JSON-like."""
        tensors: dict[str, torch.Tensor] = {}
        doc = {"format": FORMAT, "version": VERSION,
               **{f.name: encode(getattr(self, f.name), tensors, f.name) for f in fields(self)}}
        return st_save(tensors, metadata={_META_KEY: json.dumps(doc, allow_nan=False)})

    @classmethod
    def from_bytes(cls, data: bytes) -> ResumeState:
        """Read bytes written by `to_bytes`; raises ResumeError if they are not such data."""
        try:
            tensors = st_load(bytes(data))
            doc = json.loads(weights_metadata(bytes(data)).get(_META_KEY, "null"))
        except Exception as exc:  # safetensors raises its own error types
            raise ResumeError(f"the resume data cannot be read ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ResumeError("the resume data is not CNN Studio resume state")
        if doc.get("version") != VERSION:
            raise ResumeError(f"resume data version {doc.get('version')} is not supported")
        try:  # crafted metadata may hold any JSON: every surprise is "malformed"
            values = {f.name: decode(doc[f.name], tensors) for f in fields(cls) if f.name in doc}
            if not isinstance(values.get("settings", {}), dict):
                raise TypeError("settings")
            return cls(**values)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError,
                RecursionError) as exc:
            raise ResumeError(f"the resume data is malformed ({type(exc).__name__})") from None


def encode(value: Any, tensors: dict[str, torch.Tensor], key: str) -> Any:
    """Return a JSON-safe form of `value`, moving its tensors into `tensors` under keys
    derived from `key`. Raises TypeError for unsupported values."""
    if isinstance(value, torch.Tensor):
        # A private contiguous CPU copy: safetensors refuses shared or strided storage.
        tensors[key] = value.detach().to("cpu", copy=True).contiguous()
        return {"$t": key}
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v, tensors, f"{key}.{k}") for k, v in value.items()}
        items = []
        for k, v in value.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"cannot store a dict key of type {type(k).__name__} at {key}")
            items.append([k, encode(v, tensors, f"{key}.{k}")])
        return {"$map": items}
    raise TypeError(f"cannot store a value of type {type(value).__name__} at {key}")


def decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Invert `encode`; raises ResumeError for a reference to a missing tensor."""
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag == "$t":
            try:
                return tensors[inner]
            except KeyError:
                raise ResumeError(f"the resume data lacks tensor {inner!r}") from None
        if tag == "$float":
            return float(inner)  # only 'inf', '-inf' and 'nan' are ever written
        if tag == "$tuple":
            return tuple(decode(v, tensors) for v in inner)
        if tag == "$map":
            return {k: decode(v, tensors) for k, v in inner}
    return {k: decode(v, tensors) for k, v in value.items()}


def capture_rng() -> dict[str, Any]:
    """The global random states torch draws from (dropout, init): CPU, CUDA, MPS."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        state["mps"] = mps.get_rng_state()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back states from `capture_rng`; devices absent now (or then) are skipped."""
    if "cpu" in state:
        torch.set_rng_state(state["cpu"].to(torch.uint8))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in cuda])
    if "mps" in state and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"].to(torch.uint8))


def resume_mismatch(state: ResumeState, settings: dict[str, Any], train_samples: int,
                    epochs: int, batches_per_epoch: int, processes: int,
                    frozen: Sequence[str] = ()) -> str:
    """Why `state` cannot continue a run with these filled settings, this many training
    samples, `processes` and `frozen` parameter names ('' when it can): changed settings
    (device and amp may change), changed data, a stop position outside the run, another
    process count, or other frozen layers (the optimizer's state fits one trainable set)."""
    mine = {k: v for k, v in settings.items() if k not in RESUME_FREE_KEYS}
    theirs = {k: v for k, v in state.settings.items() if k not in RESUME_FREE_KEYS}
    if mine != theirs:
        changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        return f"the training settings changed ({', '.join(changed)})"
    if state.train_samples != train_samples:
        return "the training data changed"
    if not 0 <= state.epoch <= epochs or not 0 <= state.batch <= batches_per_epoch:
        return "the stop position is outside this run"
    ran = state.extra.get("world_size", 1)
    if ran != processes:  # positions count a rank's batches
        return f"it ran in {ran} process(es), this run has {processes}; batch positions differ"
    if sorted(state.extra.get("frozen", [])) != sorted(frozen):
        return "the frozen layers changed"
    return ""
