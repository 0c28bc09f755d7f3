"""Snapshots of the watched layers: what the live filter and feature-map views show.

`take_snapshot()` is the one recipe, used by the GUI's in-process bridge between batches
and by rank 0 of a distributed run (`SnapshotFiles`) at each epoch's end. The samples the
views show are the first ones of the validation split (else of training), bounded in
memory (`view_index`): a process that loaded the same data (same source, split seed and
fraction) finds the same sample at the same index.

A distributed run talks to the window through its job folder (the launcher's
`CNNSTUDIO_DIST_DIR`): the window writes `watch.json` (which layers and which sample, see
`write_watch`); rank 0 reads it at each epoch's end, writes the arrays to a `.npz` file
there (JSON lines are no place for megabytes of floats) and announces it with an
`{"event": "snapshot", …}` line. Files appear atomically (a temporary name, then
`os.replace`), so a reader never sees half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnstudio.data import Dataset
from cnnstudio.nn.internals import layer_filters, node_activation
from cnnstudio.train.callbacks import Callback

# Samples copied for the views (activations, confusion-cell thumbnails): bounded memory.
MAX_CONTEXT_BYTES = 200 << 20
MAX_CONTEXT_SAMPLES = 20_000
WATCH_FILE = "watch.json"
ARRAYS = ("filters", "activation")  # the snapshot's keys that hold arrays
SNAPSHOT_NAME = re.compile(r"snapshot-\d+\.npz")  # what SnapshotFiles writes


def view_index(dataset: Dataset) -> tuple[str, torch.Tensor]:
    """(split, dataset indices) of the samples the views show: the validation split's
    first ones, else the training split's, at most MAX_CONTEXT_SAMPLES and about
    MAX_CONTEXT_BYTES of images."""
    split = "val" if len(dataset.splits.get("val", ())) else "train"
    index = dataset.splits[split]
    per_sample = max(1, dataset.x[0].numel() * dataset.x.element_size())
    count = min(len(index), MAX_CONTEXT_SAMPLES, max(1, MAX_CONTEXT_BYTES // per_sample))
    return split, index[:count]


def take_snapshot(module: nn.Module, dataset: Dataset, normalize: bool,
                  samples: torch.Tensor | None, *, filter_node: str | None,
                  activation_node: str | None, sample: int) -> dict[str, Any]:
    """The filters of `filter_node` and the feature maps of `activation_node` for view
    sample `sample` (an index into `samples`, clamped), as NumPy copies:
    `{"sample", "filter_node", "filters", "activation_node", "activation"}`. Never raises:
    a node the module lacks gives `"missing": True`, any other trouble `"error"`."""
    snap: dict[str, Any] = {"sample": sample}
    try:
        if filter_node:
            snap["filter_node"] = filter_node
            snap["filters"] = layer_filters(module, filter_node)
        if activation_node and samples is not None and len(samples):
            index = samples[min(max(0, sample), len(samples) - 1)]
            xb = dataset.batch_to_float(dataset.x[index][None], normalize)
            snap["activation_node"] = activation_node
            snap["activation"] = node_activation(module, activation_node, xb)[0].numpy()
    except KeyError:
        snap["missing"] = True  # a node the running model does not have (added since)
    except Exception as err:  # a view's trouble must never end the run
        snap["error"] = f"{type(err).__name__}: {err}"
    return snap


def initial_module(graph: Any, seed: int) -> nn.Module:
    """The network as a run with this training `seed` starts it, before any step: the
    same recipe as `train_project` (seed torch, then build), so the untrained filters a
    view shows are the ones training will begin from. torch's global random state is
    left as it was. Raises BuildError for a graph that cannot be built."""
    from cnnstudio.nn import build_module

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_module(graph)


# ---- the job folder: watch file and snapshot files ---------------------------------------


def _replace_into(folder: Path, name: str, write: Callable[[Any], None], mode: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
        os.replace(tmp, folder / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return folder / name


def write_watch(folder: Path, *, filter_node: str | None, activation_node: str | None,
                sample_index: int) -> None:
    """Tell rank 0 what to snapshot from now on (atomically). Raises OSError."""
    text = json.dumps({"filter_node": filter_node, "activation_node": activation_node,
                       "sample_index": int(sample_index)})
    _replace_into(folder, WATCH_FILE, lambda f: f.write(text), "w")


def read_watch(folder: Path) -> dict[str, Any] | None:
    """What the window watches, or None when it has not said (or said nonsense)."""
    try:
        watch = json.loads((folder / WATCH_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(watch, dict):
        return None
    nodes = [watch.get(k) if isinstance(watch.get(k), str) else None
             for k in ("filter_node", "activation_node")]
    sample = watch.get("sample_index")
    return {"filter_node": nodes[0], "activation_node": nodes[1],
            "sample_index": sample if type(sample) is int else 0}


def read_arrays(folder: Path, name: str) -> dict[str, np.ndarray]:
    """The arrays of the snapshot file `name` in `folder` (no pickles), which is then
    deleted. Raises OSError or ValueError when it cannot be read."""
    base = Path(name).name  # only ever a file of the job's own folder,
    if not SNAPSHOT_NAME.fullmatch(base):  # and only a snapshot: never stop, watch, outcome
        raise ValueError(f"{base!r} is not a snapshot file name")
    path = folder / base
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f"{path.name} is not a snapshot file")
        with loaded as npz:
            return {key: npz[key] for key in npz.files if key in ARRAYS}
    except zipfile.BadZipFile as err:  # a damaged file: not the caller's kind of error
        raise ValueError(f"{path.name}: {err}") from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


class SnapshotFiles(Callback):
    """Rank 0's side: at each epoch's end (and once at the end, when the weights moved
    since), a snapshot of what `watch.json` asks for, written to `folder` and announced
    through `emit({"event": "snapshot", "epoch", "path", "sample", "filter_node",
    "activation_node", ["missing" | "error"]})`. Nothing happens before the window wrote a
    watch file; no fault here ever reaches the run."""

    def __init__(self, folder: Path, emit: Callable[[dict[str, Any]], None]) -> None:
        self.folder, self.emit = folder, emit
        self._samples: torch.Tensor | None = None
        self._started = False
        self._count = 0
        self._taken: tuple[Any, ...] | None = None  # (epoch, batch, watch) of the last one

    def on_fit_start(self, trainer: Any) -> None:
        self._started = True
        with contextlib.suppress(Exception):
            self._samples = view_index(trainer.dataset)[1]

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        self.snapshot(trainer)

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        # This rank may have failed alone and must leave at once: no snapshot at the end.
        self._started = False

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        if self._started:
            self.snapshot(trainer)  # a stop mid-epoch or a NaN fallback moved the weights

    def snapshot(self, trainer: Any) -> None:
        """Take, write and announce one snapshot (skipped when the weights and the watch
        are those of the last one)."""
        watch = read_watch(self.folder)
        key = (trainer.epoch, trainer.batch, tuple(sorted((watch or {}).items())))
        if watch is None or key == self._taken:
            return
        self._taken = key
        event: dict[str, Any] = {"event": "snapshot", "epoch": trainer.epoch, "path": None}
        try:
            # trainer.module is the plain module (during training DDP wraps it and shares
            # its parameters): no collective runs here, the other ranks need not wait.
            snap = take_snapshot(trainer.module, trainer.dataset, trainer.normalize,
                                 self._samples, filter_node=watch["filter_node"],
                                 activation_node=watch["activation_node"],
                                 sample=watch["sample_index"])
            arrays = {k: v for k in ARRAYS if isinstance(v := snap.pop(k, None), np.ndarray)}
            event.update(snap)  # names, sample, missing / error: small, in the line itself
            if arrays:
                self._count += 1
                event["path"] = str(_replace_into(
                    self.folder, f"snapshot-{self._count}.npz",
                    lambda f: np.savez(f, **arrays), "wb"))
        except Exception as err:  # a full disk, …: the views wait for the next one
            event["error"] = f"{type(err).__name__}: {err}"
        try:
            self.emit(event)
        except Exception:  # nobody will read it (stdout closed): leave nothing behind
            if event["path"]:
                with contextlib.suppress(OSError):
                    os.remove(event["path"])

