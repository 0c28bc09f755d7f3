"""Training faults end in a clear message and lose nothing: NaN/inf losses, out of
memory, Stop and Ctrl-C mid-epoch (faults of the data itself: test_data_faults.py).

Each case checks the same four promises: one clear line, the last good weights kept (and
finite), the run recorded as `failed` or `stopped` (when any step was taken), and that a
following run can continue.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from cnnstudio.cli import main
from cnnstudio.nn import build_module, load_weights
from cnnstudio.project import read_project, write_project
from cnnstudio.train import Callback, train_project

from .helpers import assert_one_line, cli_env, template_project

pytestmark = pytest.mark.timeout(180)


def project_with(template: str, tmp_path: Path, *, data: dict | None = None,
                 **training: Any) -> Path:
    project = template_project(template)
    project.training = {"epochs": 2, "batch_size": 16, "seed": 0, **training}
    if data is not None:
        project.data = data
    path = tmp_path / f"{template}.cnnproj"
    write_project(project, path)
    return path


def assert_sound_weights(path: Path) -> dict[str, torch.Tensor]:
    """The saved weights load into the saved graph and are all finite."""
    project = read_project(path)
    assert project.weights is not None
    module = build_module(project.graph)
    load_weights(module, project.weights)
    state = module.state_dict()
    assert all(bool(torch.isfinite(v).all()) for v in state.values())
    return state


class At(Callback):
    """Run `action(trainer)` once, after batch `batch` of epoch `epoch` (from 1)."""

    def __init__(self, epoch: int, batch: int, action) -> None:  # noqa: ANN001
        self.epoch, self.batch, self.action, self.done = epoch, batch, action, False

    def on_batch_end(self, trainer, info) -> None:  # noqa: ANN001
        if not self.done and (info.epoch, info.batch) >= (self.epoch, self.batch):
            self.done = True
            self.action(trainer)


# ---- NaN and infinite losses ------------------------------------------------------------------


def diverge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, bytes]:
    """A good first run, then a second with a learning rate that blows up (via the CLI);
    returns the path and the first run's weights."""
    path = project_with("xo", tmp_path, epochs=1)
    assert main(["train", str(path)]) == 0  # a good first run: weights to protect
    project = read_project(path)
    assert project.weights is not None
    good = bytes(project.weights)
    project.training = {**project.training, "epochs": 3,
                        "optimizer": {"name": "SGD", "lr": 1e15, "momentum": 0.9}}
    write_project(project, path)
    capsys.readouterr()
    assert main(["train", str(path)]) == 1
    err = capsys.readouterr().err
    assert_one_line(err)
    assert "training failed: the loss became" in err and "learning rate" in err
    return path, good


def test_a_huge_learning_rate_fails_cleanly_and_records_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = diverge(tmp_path, capsys)
    saved = read_project(path)
    assert [r["status"] for r in saved.runs] == ["completed", "failed"]
    assert_one_line(saved.runs[-1]["message"])
    assert_sound_weights(path)  # present, loadable, finite


def test_after_a_nan_loss_the_kept_weights_train_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, good = diverge(tmp_path, capsys)
    saved = read_project(path)
    # The diverging run validated no epoch: the first run's weights stay, untouched.
    assert saved.runs[-1]["message"].endswith("the weights from before this run are kept")
    assert saved.weights is not None and bytes(saved.weights) == good
    assert "resume.safetensors" not in saved.attachments
    saved.training["optimizer"]["lr"] = 0.01  # the fix the message suggests
    write_project(saved, path)
    assert main(["train", str(path)]) == 0, capsys.readouterr().err
    assert read_project(path).runs[-1]["status"] == "completed"


def nan_after(batches: int):  # noqa: ANN201
    """build_module whose model's training inputs turn NaN after `batches` batches."""

    def build(graph):  # noqa: ANN001, ANN202
        module = build_module(graph)
        seen = [0]

        def poison(mod, args):  # noqa: ANN001, ANN202
            if not mod.training:  # the output check and validation stay sound
                return None
            seen[0] += 1
            return (args[0] * math.nan,) if seen[0] > batches else None

        module.register_forward_pre_hook(poison)
        return module

    return build


@pytest.mark.parametrize("checkpoint,kept", [("last", "from before this run"),
                                              ("best", "of epoch 1")])
def test_a_nan_loss_in_a_resumed_run_keeps_its_checkpoint_and_drops_the_resume_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checkpoint: str, kept: str) -> None:
    import cnnstudio.train.api as api

    path = project_with("xo", tmp_path, epochs=3, checkpoint=checkpoint)
    project = read_project(path)
    stopped = train_project(project, callbacks=[At(2, 1, lambda t: t.request_stop())])
    assert stopped.status == "stopped" and "resume.safetensors" in project.attachments
    assert project.weights is not None
    before = bytes(project.weights)
    monkeypatch.setattr(api, "build_module", nan_after(1))  # resumes, then NaN next batch
    result = train_project(project)
    assert result.status == "failed"
    assert_one_line(result.message)
    assert result.message.startswith("the loss became NaN at epoch 2, batch 3 (")
    assert result.message.endswith(f"the weights {kept} are kept")
    # One run, now failed; its weights are the stopped run's (no step since is kept), and
    # the resume state is gone: its optimizer state took in the step that diverged.
    assert [r["status"] for r in project.runs] == ["failed"]
    assert [e["epoch"] for e in project.runs[0]["epochs"]] == [1]
    assert bytes(project.weights) == before
    assert "resume.safetensors" not in project.attachments
    monkeypatch.undo()
    assert train_project(project).status == "completed"
    assert [r["status"] for r in project.runs] == ["failed", "completed"]


# ---- out of memory ----------------------------------------------------------------------------


def guarded_build(limit: int, error: str, after: int = 0):  # noqa: ANN201
    """build_module whose model refuses batches larger than `limit` (after `after` calls
    that pass): a CUDA-style OutOfMemoryError, or a real failed CPU allocation."""

    def build(graph):  # noqa: ANN001, ANN202
        module = build_module(graph)
        calls = [0]

        def guard(_module, args) -> None:  # noqa: ANN001
            calls[0] += 1
            if args[0].shape[0] > limit and calls[0] > after:
                if error == "cuda":
                    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
                # A real allocator failure: the CPU's, or the GPU's where there is one.
                torch.empty(args[0].shape[0] << 40, device=args[0].device)

        module.register_forward_pre_hook(guard)
        return module

    return build


@pytest.mark.parametrize("after", [0, 5])
def test_out_of_memory_suggests_a_smaller_batch_and_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    import cnnstudio.train.api as api

    path = project_with("xo", tmp_path, epochs=2, batch_size=64)
    monkeypatch.setattr(api, "build_module", guarded_build(32, "cuda", after))
    project = read_project(path)
    result = train_project(project)
    assert result.status == "failed"
    assert_one_line(result.message)
    assert "out of memory" in result.message and "smaller batch size, e.g. 32" in result.message
    assert project.runs[-1]["status"] == "failed"
    if after:  # steps were taken: their weights are kept, finite
        write_project(project, path)
        assert_sound_weights(path)
    project.training["batch_size"] = 32  # what the message suggested
    assert train_project(project).status == "completed"


def test_a_real_cpu_allocation_failure_suggests_a_smaller_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cnnstudio.train.api as api

    monkeypatch.setattr(api, "build_module", guarded_build(32, "cpu"))
    project = read_project(project_with("xo", tmp_path, batch_size=64))
    result = train_project(project)
    assert result.status == "failed" and project.runs[-1]["status"] == "failed"
    assert_one_line(result.message)
    assert "ran out of memory" in result.message and "e.g. 32" in result.message


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_real_cuda_out_of_memory_suggests_a_smaller_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cnnstudio.train.api as api

    monkeypatch.setattr(api, "build_module", guarded_build(32, "gpu"))
    project = read_project(project_with("xo", tmp_path, batch_size=64, device="cuda"))
    result = train_project(project)
    assert result.status == "failed" and project.runs[-1]["status"] == "failed"
    assert_one_line(result.message)
    assert "GPU ran out of memory" in result.message and "e.g. 32" in result.message
    project.training["batch_size"] = 32
    assert train_project(project).status == "completed"


# ---- Stop and Ctrl-C mid-epoch -------------------------------------------------------------------


def test_stop_mid_epoch_records_the_run_and_the_file_resumes(tmp_path: Path) -> None:
    path = project_with("digits-lenet", tmp_path, epochs=3, batch_size=32)
    project = read_project(path)
    result = train_project(project, callbacks=[At(2, 5, lambda t: t.request_stop())])
    assert result.status == "stopped"
    assert_one_line(result.message)
    write_project(project, path)
    saved = read_project(path)
    assert saved.runs[-1]["status"] == "stopped"
    assert "resume.safetensors" in saved.attachments
    assert_sound_weights(path)
    resumed = train_project(saved)
    assert resumed.status == "completed"
    assert len(saved.runs) == 1 and saved.runs[0]["status"] == "completed"
    assert [e["epoch"] for e in saved.runs[0]["epochs"]] == [1, 2, 3]


def cli_train(path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cnnstudio", "train", str(path), "--json",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env())


def test_ctrl_c_mid_epoch_saves_a_stopped_run_that_the_next_train_resumes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project_with("digits-lenet", tmp_path, epochs=4, batch_size=32)
    proc = cli_train(path)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # the first epoch is done: now mid-epoch 2
    assert first["event"] == "epoch" and first["epoch"] == 1
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("cnnstudio: training stopped:") and "to resume" in last
    end = json.loads(out.splitlines()[-1])
    assert end["event"] == "end" and end["status"] == "stopped"
    saved = read_project(path)
    assert saved.runs[-1]["status"] == "stopped" and "resume.safetensors" in saved.attachments
    assert_sound_weights(path)
    stopped_epochs = len(saved.runs[-1]["epochs"])
    assert 1 <= stopped_epochs < 4
    # The same command again (in this process: torch is already imported) continues the
    # stopped run to its end.
    capsys.readouterr()
    assert main(["train", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    epochs = [json.loads(line)["epoch"] for line in out.splitlines()
              if json.loads(line)["event"] == "epoch"]
    assert epochs == list(range(stopped_epochs + 1, 5))
    saved = read_project(path)
    assert len(saved.runs) == 1 and saved.runs[0]["status"] == "completed"
    assert [e["epoch"] for e in saved.runs[0]["epochs"]] == list(range(1, 5))
    assert "resume.safetensors" not in saved.attachments
    assert all(math.isfinite(e["train_loss"]) for e in saved.runs[0]["epochs"])


@pytest.mark.slow
def test_a_second_ctrl_c_aborts_at_once_and_the_file_is_untouched(tmp_path: Path) -> None:
    path = project_with("digits-lenet", tmp_path, epochs=50, batch_size=8)
    before = path.read_bytes()
    proc = cli_train(path)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    assert "stopping after this batch" in proc.stderr.readline() + proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (1, 130), err  # stopped cleanly, or aborted at once
    assert "Traceback" not in err
    if proc.returncode == 130:
        assert err.strip().splitlines()[-1] == "cnnstudio: interrupted"
        assert path.read_bytes() == before
    else:
        assert read_project(path).runs[-1]["status"] == "stopped"
