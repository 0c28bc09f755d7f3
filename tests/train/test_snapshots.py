"""Snapshots of the watched layers: the recipe shared by the GUI bridge and rank 0, the
sample rule, and rank 0's writer (`SnapshotFiles`) driven by a watch file, in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cnnstudio.nn.internals import node_activation
from cnnstudio.train import Callback, Trainer
from cnnstudio.train import snapshots as S
from cnnstudio.train.snapshots import (
    SnapshotFiles,
    read_arrays,
    read_watch,
    take_snapshot,
    view_index,
    write_watch,
)

from .helpers import build, make_dataset, settings, small_graph


def test_the_views_show_the_first_validation_samples_else_training(monkeypatch) -> None:
    dataset = make_dataset(60, val=12)
    assert view_index(dataset)[0] == "val"
    assert view_index(dataset)[1].tolist() == list(range(48, 60))
    dataset.splits["val"] = torch.empty(0, dtype=torch.int64)
    split, index = view_index(dataset)
    assert split == "train" and index.tolist() == list(range(48))
    monkeypatch.setattr(S, "MAX_CONTEXT_BYTES", 64 * 10)  # 8×8 uint8 images: 10 fit
    assert view_index(dataset)[1].tolist() == list(range(10))


def test_a_snapshot_holds_copies_of_the_watched_layers() -> None:
    dataset, module = make_dataset(), build(small_graph(3))
    samples = view_index(dataset)[1]
    snap = take_snapshot(module, dataset, True, samples, filter_node="conv1",
                         activation_node="relu1", sample=5)
    assert set(snap) == {"sample", "filter_node", "filters", "activation_node", "activation"}
    assert np.array_equal(snap["filters"], module.module_for("conv1").weight.detach().numpy())
    x = dataset.batch_to_float(dataset.x[samples[5]][None], True)
    assert np.array_equal(snap["activation"], node_activation(module, "relu1", x)[0].numpy())
    with torch.no_grad():
        module.module_for("conv1").weight.add_(1.0)
    assert not np.array_equal(snap["filters"], layer_weight(module))  # a copy, not a view
    far = take_snapshot(module, dataset, True, samples, filter_node=None,
                        activation_node="input", sample=999)  # clamped to the last sample
    last = dataset.batch_to_float(dataset.x[samples[-1]][None], True)[0]
    assert "filters" not in far and np.array_equal(far["activation"], last.numpy())
    assert take_snapshot(module, dataset, True, samples, filter_node="relu1",
                         activation_node=None, sample=0)["filters"] is None  # not a conv
    gone = take_snapshot(module, dataset, True, samples, filter_node="conv9",
                         activation_node="conv1", sample=0)
    assert gone["missing"] is True and "activation" not in gone
    wrong = take_snapshot(module, dataset, True, torch.tensor([10_000]), filter_node=None,
                          activation_node="conv1", sample=0)  # an index beyond the data
    assert wrong["error"].startswith("IndexError")


def layer_weight(module: Any) -> np.ndarray:
    return module.module_for("conv1").weight.detach().numpy()


def test_watch_files_are_read_forgivingly(tmp_path: Path) -> None:
    assert read_watch(tmp_path) is None  # the window has not said yet
    write_watch(tmp_path, filter_node="conv1", activation_node=None, sample_index=4)
    assert read_watch(tmp_path) == {"filter_node": "conv1", "activation_node": None,
                                    "sample_index": 4}
    assert [p.name for p in tmp_path.iterdir()] == [S.WATCH_FILE]  # no temporary left
    (tmp_path / S.WATCH_FILE).write_text('{"filter_node": 3, "sample_index": true}')
    assert read_watch(tmp_path) == {"filter_node": None, "activation_node": None,
                                    "sample_index": 0}
    (tmp_path / S.WATCH_FILE).write_text("[1, 2")
    assert read_watch(tmp_path) is None


def test_snapshot_files_refuse_pickles_and_are_deleted_once_read(tmp_path: Path) -> None:
    np.savez(tmp_path / "snapshot-1.npz", filters=np.ones((2, 1, 3, 3), np.float32),
             other=np.zeros(1))
    arrays = read_arrays(tmp_path, "/elsewhere/snapshot-1.npz")  # only the name counts
    assert set(arrays) == {"filters"} and arrays["filters"].sum() == 18
    assert not (tmp_path / "snapshot-1.npz").exists()
    np.savez(tmp_path / "snapshot-2.npz", filters=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        read_arrays(tmp_path, "snapshot-2.npz")
    (tmp_path / "snapshot-3.npz").write_bytes(b"PK\x03\x04 cut short")  # a damaged zip
    with pytest.raises(ValueError, match="snapshot-3.npz"):
        read_arrays(tmp_path, "snapshot-3.npz")
    np.save(tmp_path / "snapshot-4.npz", np.zeros(3))  # an .npy under a snapshot's name
    (tmp_path / "snapshot-4.npz.npy").rename(tmp_path / "snapshot-4.npz")
    with pytest.raises(ValueError, match="not a snapshot"):
        read_arrays(tmp_path, "snapshot-4.npz")
    assert not list(tmp_path.iterdir())  # each was deleted, read or not


@pytest.mark.parametrize("name", ["stop", "watch.json", "rank0.json", "snapshot-1.npz.tmp",
                                  "../snapshot-1.npz/x"])
def test_a_snapshot_line_cannot_name_the_jobs_other_files(tmp_path: Path, name: str) -> None:
    target = tmp_path / Path(name).name
    target.write_text("the job's own")
    with pytest.raises(ValueError, match="not a snapshot file name"):
        read_arrays(tmp_path, name)
    assert target.read_text() == "the job's own"  # neither read nor deleted


class _Watcher(Callback):
    """Plays the window: changes the watch file before epoch 2 and asks for a stop in
    epoch 3 (after its 2nd batch)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        if epoch == 2:
            write_watch(self.folder, filter_node="conv1", activation_node="relu1",
                        sample_index=7)

    def on_batch_end(self, trainer: Any, info: Any) -> None:
        if info.epoch == 3 and info.batch == 2:
            trainer.request_stop()


def _run(folder: Path, events: list[dict[str, Any]]) -> tuple[Trainer, Any]:
    trainer = Trainer(build(small_graph(3)), make_dataset(),
                      settings(epochs=4, batch_size=8, checkpoint="last"),
                      callbacks=[_Watcher(folder), SnapshotFiles(folder, events.append)])
    return trainer, trainer.fit()


def test_rank_zero_writes_a_snapshot_per_epoch_of_what_the_window_watches(
        tmp_path: Path) -> None:
    write_watch(tmp_path, filter_node="conv1", activation_node="conv9", sample_index=0)
    events: list[dict[str, Any]] = []
    trainer, result = _run(tmp_path, events)
    assert result.status == "stopped"
    # Epochs 1 and 2, then the end (a stop inside epoch 3 moved the weights since).
    assert [e["epoch"] for e in events] == [1, 2, 3]
    first, second, last = events
    assert first["missing"] is True and first["activation_node"] == "conv9"  # not here
    assert second["activation_node"] == "relu1" and second["sample"] == 7  # the new watch
    arrays = [read_arrays(tmp_path, e["path"]) for e in events]
    assert all(a["filters"].shape == (4, 1, 3, 3) for a in arrays)
    assert "activation" not in arrays[0] and arrays[1]["activation"].shape == (4, 8, 8)
    assert not np.array_equal(arrays[0]["filters"], arrays[1]["filters"])  # it trained
    # The last one shows the weights the run ends with, and view sample 7's maps.
    module = trainer.module
    assert np.array_equal(arrays[2]["filters"], layer_weight(module))
    dataset = trainer.dataset
    x = dataset.batch_to_float(dataset.x[view_index(dataset)[1][7]][None], True)
    assert np.allclose(arrays[2]["activation"], node_activation(module, "relu1", x)[0].numpy())
    assert sorted(p.name for p in tmp_path.iterdir()) == [S.WATCH_FILE]  # all read, deleted
    assert json.dumps(events)  # the lines are plain JSON


def test_no_watch_no_snapshot_and_no_trouble_reaches_the_run(tmp_path: Path,
                                                             monkeypatch) -> None:
    events: list[dict[str, Any]] = []
    trainer, result = _run(tmp_path, events)  # no watch file until epoch 2
    assert result.status == "stopped" and [e["epoch"] for e in events] == [2, 3]
    for event in events:
        read_arrays(tmp_path, event["path"])
    events.clear()

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", full)
    writer = SnapshotFiles(tmp_path, events.append)
    writer.on_fit_start(trainer)
    writer.on_epoch_end(trainer, {})
    [event] = events
    assert event["error"] == "OSError: No space left on device" and event["path"] is None
    assert event["filter_node"] == "conv1"  # what it was about
    assert sorted(p.name for p in tmp_path.iterdir()) == [S.WATCH_FILE]  # no temporary left
    writer.on_epoch_end(trainer, {})
    assert len(events) == 1  # the same weights and watch: not again

    def closed(line: dict[str, Any]) -> None:
        raise BrokenPipeError

    monkeypatch.undo()
    trainer.epoch += 1  # the weights "moved": a new snapshot is due
    SnapshotFiles(tmp_path, closed).snapshot(trainer)  # a closed stdout: no exception
    assert sorted(p.name for p in tmp_path.iterdir()) == [S.WATCH_FILE]  # nor a file left


class _StartWeights(Callback):
    def on_fit_start(self, trainer: Any) -> None:
        self.state = {k: v.detach().clone() for k, v in trainer.module.state_dict().items()}


def test_initial_module_is_the_network_a_run_starts_from(tmp_path, monkeypatch) -> None:
    from cnnstudio.core.templates import TEMPLATES
    from cnnstudio.project import project_from_dict
    from cnnstudio.train import train_project

    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    project = project_from_dict(TEMPLATES["digits-lenet"].project_dict())
    project.training.update({"epochs": 1, "max_batches_per_epoch": 1, "seed": 7})
    start = _StartWeights()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    module = S.initial_module(project.graph, 7)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global state is kept
    assert train_project(project, callbacks=[start]).status == "completed"
    assert start.state.keys() == module.state_dict().keys()
    assert all(torch.equal(start.state[k], v) for k, v in module.state_dict().items())
    other = S.initial_module(project.graph, 8).state_dict()
    assert not torch.equal(other["conv1.weight"], start.state["conv1.weight"])
