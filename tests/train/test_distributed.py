"""Distributed training: sharding, agreement between ranks, and real 2-process runs.

The 2-process tests start real worker processes with torch's elastic launcher (gloo on the
loopback) and take 10-20 s each on a 2-core machine, most of it importing torch twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cnnstudio.core.templates import get_template
from cnnstudio.nn import build_module, load_weights
from cnnstudio.project import project_from_dict, read_project, write_project
from cnnstudio.train import ResumeError, Trainer
from cnnstudio.train.distributed import DistContext, DistError, rank_device, torchrun_env
from cnnstudio.train.distributed_launch import _judge, launch, run_local
from cnnstudio.train.distributed_run import STOP_FILE, StopFileWatch

from . import distributed_worker as W
from .helpers import build, make_dataset, settings, small_graph

WORKER = Path(W.__file__)


# ---- pure parts --------------------------------------------------------------------------


@pytest.mark.parametrize("n,world", [(64, 2), (61, 2), (10, 4), (3, 4), (1, 2)])
def test_shards_are_equal_sized_and_cover_the_epoch(n: int, world: int) -> None:
    order = torch.randperm(n)
    shards = [DistContext(r, world).shard(order) for r in range(world)]
    size = DistContext(0, world).shard_size(n)
    assert all(len(s) == size for s in shards)  # same batch count everywhere: no DDP hang
    assert set(torch.cat(shards).tolist()) == set(order.tolist())
    assert size * world - n < world  # padding repeats at most world - 1 samples


def test_rank_batches_are_parts_of_the_global_batch() -> None:
    """Rank r's batch k is inside batch k of one process with batch size world × B: the
    reason 2 processes × B equal 1 process × 2B."""
    order, world, b = torch.randperm(64), 2, 8
    for k in range(4):
        global_batch = set(order[k * world * b:(k + 1) * world * b].tolist())
        parts = [DistContext(r, world).shard(order)[k * b:(k + 1) * b] for r in range(world)]
        assert set(torch.cat(parts).tolist()) == global_batch


def test_validation_shards_are_disjoint_and_unpadded() -> None:
    index = torch.arange(100, 113)
    parts = [DistContext(r, 3).val_shard(index) for r in range(3)]
    assert sorted(torch.cat(parts).tolist()) == index.tolist()


def test_torchrun_environment_and_devices() -> None:
    env = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    assert torchrun_env(env) == {"rank": 1, "world_size": 4, "local_rank": 1,
                                 "local_world_size": 2}
    assert torchrun_env({**env, "MASTER_PORT": ""}) is None
    assert torchrun_env({}) is None
    assert rank_device("cpu", 3) == torch.device("cpu")
    with pytest.raises(DistError, match="not on MPS"):
        rank_device("mps", 0)
    if not torch.cuda.is_available():
        assert rank_device("auto", 1) == torch.device("cpu")
        with pytest.raises(DistError, match="CUDA is not available"):
            rank_device("cuda", 0)


def test_a_resume_needs_the_same_number_of_processes() -> None:
    dataset = make_dataset()
    stopper = Trainer(build(small_graph(3)), dataset, settings(epochs=2))
    stopper.request_stop()
    state = stopper.fit().resume_state
    assert state is not None and state.extra == {}  # single-process state is unchanged
    state.extra["world_size"] = 2
    with pytest.raises(ResumeError, match="2 process"):
        Trainer(build(small_graph(3)), dataset, settings(epochs=2), resume=state)


def test_a_stop_file_stops_the_trainer(tmp_path: Path) -> None:
    """The launcher's Ctrl-C and the GUI's Stop write it; every rank watches for it."""
    (tmp_path / STOP_FILE).touch()
    watch = StopFileWatch(tmp_path, interval=0.01)
    time.sleep(0.1)  # seen before training starts: the stop waits for on_fit_start
    result = Trainer(build(small_graph(3)), make_dataset(), settings(epochs=50),
                     callbacks=[watch]).fit()
    assert result.status == "stopped"


def test_the_root_cause_is_the_first_failure() -> None:
    peer = {"rank": 0, "world_size": 2, "status": "failed", "together": False, "time": 2.0,
            "message": "training failed at epoch 1, batch 2: RuntimeError: Connection closed"}
    cause = {"rank": 1, "world_size": 2, "status": "failed", "together": False, "time": 1.0,
             "message": "training failed at epoch 1, batch 2: RuntimeError: boom"}
    outcome = _judge([peer, cause], None, False, 2)
    assert outcome.status == "failed" and outcome.main is None
    assert outcome.message == cause["message"] + " (in process 1 of 2)"
    main = {"rank": 0, "world_size": 2, "status": "stopped", "together": True, "message": "x"}
    assert _judge([main, cause], None, False, 2).main == main
    assert "ended" in _judge([], None, True, 2).message


# ---- two real processes ------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the worker's scenarios on 2 CPU processes once; their files for every test."""
    out = tmp_path_factory.mktemp("ranks")
    outcome = run_local([str(WORKER), str(out)], 2)
    assert outcome.status == "failed" and outcome.main is None  # no project, no outcome
    assert len(list(out.glob("*.safetensors"))) == 14, outcome.message
    return out


def _rank(out: Path, name: str, rank: int) -> tuple[dict[str, torch.Tensor], dict]:
    return (load_file(str(out / f"{name}-rank{rank}.safetensors")),
            json.loads((out / f"{name}-rank{rank}.json").read_text()))


def _identical_on_both_ranks(out: Path, name: str) -> tuple[dict[str, torch.Tensor], dict]:
    (w0, r0), (w1, r1) = _rank(out, name, 0), _rank(out, name, 1)
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    for report in (r0, r1):  # each rank times itself; everything else must agree
        for epoch in report["epochs"]:
            epoch.pop("seconds")
    assert r0 == r1
    return w0, r0


def test_two_processes_equal_one_with_the_global_batch(two_ranks: Path) -> None:
    weights, report = _identical_on_both_ranks(two_ranks, "equal")
    assert report["status"] == "completed" and report["batches_per_epoch"] == 4
    reference = Trainer(build(small_graph(3)), make_dataset(W.N, val=W.VAL),
                        settings(batch_size=2 * W.BATCH, epochs=W.EPOCHS, checkpoint="last"))
    result = reference.fit()
    assert result.status == "completed" and reference.batches_per_epoch == 4
    for key, value in reference.module.state_dict().items():
        assert torch.allclose(weights[key], value, atol=1e-5, rtol=0), key
    for mine, theirs in zip(report["epochs"], result.epochs, strict=True):
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert mine[key] == pytest.approx(theirs[key], abs=1e-5), key
    # The metrics cover the whole validation split, not one rank's half of it.
    assert sum(map(sum, report["confusion_matrix"])) == W.VAL
    assert report["confusion_matrix"] == reference.confusion_matrix.tolist()


def test_uneven_shards_finish_with_identical_weights(two_ranks: Path) -> None:
    _, report = _identical_on_both_ranks(two_ranks, "uneven")
    assert report["status"] == "completed" and report["batches_per_epoch"] == 4


def test_batchnorm_buffers_stay_identical(two_ranks: Path) -> None:
    weights, report = _identical_on_both_ranks(two_ranks, "batchnorm")
    assert report["status"] == "completed" and "bn1.running_mean" in weights


def test_a_frozen_backbone_stays_as_built_under_ddp(two_ranks: Path) -> None:
    weights, report = _identical_on_both_ranks(two_ranks, "frozen")
    assert report["status"] == "completed", report["message"]
    initial = build(small_graph(3, batch_norm=True)).state_dict()
    for key, value in initial.items():  # conv1.* and bn1.* (running stats too) untouched
        assert torch.equal(weights[key], value) == key.startswith(("conv1.", "bn1.")), key


def test_a_nan_on_one_rank_fails_every_rank_at_the_same_batch(two_ranks: Path) -> None:
    _, r0 = _rank(two_ranks, "nan", 0)
    _, r1 = _rank(two_ranks, "nan", 1)
    assert r0["status"] == r1["status"] == "failed"
    assert r0["message"] == r1["message"]
    assert "NaN at epoch 1, batch 3" in r0["message"] and "no step" not in r0["message"]
    _identical_on_both_ranks(two_ranks, "nan")


def test_a_stop_on_one_rank_stops_all_and_resumes_exactly(two_ranks: Path) -> None:
    _, stopped = _identical_on_both_ranks(two_ranks, "stop")
    assert stopped["status"] == "stopped" and stopped["position"] == [1, 2]
    resumed, report = _identical_on_both_ranks(two_ranks, "resumed")
    uninterrupted, _ = _rank(two_ranks, "equal", 0)
    assert report["status"] == "completed"
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


# ---- the command line, through the GUI's launch() ----------------------------------------


@pytest.fixture
def project_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    doc = get_template("digits-lenet").project_dict()
    doc["training"] = {"epochs": 2, "batch_size": 16, "max_batches_per_epoch": 4,
                       "device": "cpu", "optimizer": {"name": "SGD", "lr": 0.05}}
    path = tmp_path / "digits.cnnproj"
    write_project(project_from_dict(doc), path)
    return path


def test_train_nproc_2_json_end_to_end(project_path: Path) -> None:
    job = launch(project_path, 2, batch_events=0.0)
    events = list(job.events())
    assert job.wait(timeout=120) == 0, job.error
    kinds = [e["event"] for e in events]
    assert kinds.count("epoch") == 2 and kinds[-1] == "end" and kinds.count("end") == 1
    assert kinds.count("batch") == 8  # rank 0 alone speaks: 2 epochs × 4 batches
    batch = next(e for e in events if e["event"] == "batch")
    assert batch["batches"] == 4 and batch["samples_seen"] == 32  # 2 processes × 16
    end = events[-1]
    assert end["status"] == "completed" and end["processes"] == 2
    assert end["saved"] == str(project_path)
    project = read_project(project_path)
    [run] = project.runs
    assert run["status"] == "completed" and len(run["epochs"]) == 2
    assert run["distributed"] == {"world_size": 2, "backend": "gloo",
                                  "batch_size_per_process": 16, "global_batch_size": 32}
    assert sum(map(sum, run["confusion_matrix"])) == 359  # the whole validation split
    load_weights(build_module(project.graph), project.weights)


def test_a_distributed_run_diverging_before_its_first_epoch_is_recorded(
        project_path: Path) -> None:
    project = read_project(project_path)
    project.training["optimizer"] = {"name": "SGD", "lr": 1e30}  # NaN after a step or two
    write_project(project, project_path)
    job = launch(project_path, 2, batch_events=0.0)
    end = list(job.events())[-1]
    job.wait(timeout=120)
    assert end["event"] == "end" and end["status"] == "failed"
    assert end["saved"] == str(project_path)  # the failed run is on record
    saved = read_project(project_path)
    [run] = saved.runs
    assert run["status"] == "failed" and run["epochs"] == []
    assert run["message"].endswith("no weights are kept (the project had none before this"
                                   " run)")
    assert saved.weights is None  # the diverged weights are not stored


def _cli(project: Path, *args: str, env: dict[str, str] | None = None,
         **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cnnstudio", "train", str(project),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})}, **kwargs)


@pytest.mark.slow
def test_a_failing_rank_ends_all_with_one_line(project_path: Path, tmp_path: Path) -> None:
    # Python imports `sitecustomize` at start-up: it breaks rank 1 in epoch 2.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('RANK') == '1':\n"
        "    from cnnstudio.train import trainer\n"
        "    real = trainer.Trainer._train_epoch\n"
        "    def broken(self, epoch, first):\n"
        "        if epoch == 1:\n"
        "            raise RuntimeError('boom')\n"
        "        return real(self, epoch, first)\n"
        "    trainer.Trainer._train_epoch = broken\n")
    before = project_path.read_bytes()
    path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    proc = _cli(project_path, "--nproc", "2", "--json", env={"PYTHONPATH": path})
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 1
    assert err.strip() == ("cnnstudio: training failed: training failed at epoch 2, batch 1:"
                           " RuntimeError: boom (in process 1 of 2)")
    end = json.loads(out.splitlines()[-1])
    assert end["event"] == "end" and end["status"] == "failed" and end["saved"] is None
    assert project_path.read_bytes() == before  # a rank that failed alone saves nothing


@pytest.mark.slow
def test_ctrl_c_stops_every_rank_and_keeps_the_weights(project_path: Path) -> None:
    project = read_project(project_path)
    project.training.update({"epochs": 500, "max_batches_per_epoch": None})
    write_project(project, project_path)
    proc = _cli(project_path, "--nproc", "2", "--json")
    assert proc.stdout is not None
    first = proc.stdout.readline()  # an epoch has passed: there are weights to keep
    assert json.loads(first)["event"] == "epoch"
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 30
    assert proc.returncode == 1, err
    end = json.loads(out.splitlines()[-1])
    assert end["status"] == "stopped" and end["saved"] == str(project_path)
    assert "stopping all processes" in err and err.strip().endswith("to resume")
    [run] = read_project(project_path).runs
    assert run["status"] == "stopped" and len(run["epochs"]) >= 1
    assert read_project(project_path).weights is not None


@pytest.mark.slow
def test_torchrun_runs_each_rank_directly(project_path: Path, tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2",
                           "--log-dir", str(tmp_path / "logs"), "-m",
                           "cnnstudio", "train", str(project_path), "--json"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    kinds = [json.loads(line)["event"] for line in proc.stdout.splitlines()]
    assert kinds == ["epoch", "epoch", "end"]
    assert read_project(project_path).runs[0]["distributed"]["world_size"] == 2
