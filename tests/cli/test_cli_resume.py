"""A run stopped by a real Ctrl-C (SIGINT) and resumed by `cnnstudio train` ends exactly as
an uninterrupted run does: the same per-epoch losses and metrics, bit-identical weights,
for both checkpoint settings and wherever the signal lands (mid-epoch, on an epoch
boundary, mid-validation).

The signal is real: the command's test hook (CNNSTUDIO_TEST_SIGINT_AT) has the process
send SIGINT to itself at the chosen point, and the command's own handler takes it as
it takes a user's Ctrl-C.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load as load_tensors

from cnnstudio.cli import main
from cnnstudio.cli_lines import SIGINT_AT_VAR
from cnnstudio.project import read_project, write_project

# Small steps at a high rate: the validation loss is lowest after epoch 2 and rises after
# it, so a run stopped in or after epoch 3 holds other weights than its best checkpoint.
EPOCHS, BATCHES = 4, 2
TRAINING = {"epochs": EPOCHS, "max_batches_per_epoch": BATCHES, "batch_size": 8,
            "optimizer": {"name": "Adam", "lr": 0.01}, "device": "cpu"}


def _cli(*args: str, env: dict[str, str], at: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    run_env = {**env, **({SIGINT_AT_VAR: at} if at else {})}
    return subprocess.run([sys.executable, "-m", "cnnstudio", "train", *args, "--json"],
                          capture_output=True, text=True, timeout=300, env=run_env)


def _made(tmp: Path, name: str, checkpoint: str) -> Path:
    path = tmp / f"{name}.cnnproj"
    assert main(["new", "--template", "digits-lenet", str(path)]) == 0
    project = read_project(path)
    project.training.update({**TRAINING, "checkpoint": checkpoint})
    write_project(project, path)
    return path


def _epochs(path: Path) -> list[dict]:
    # Everything an epoch records but its duration.
    return [{k: v for k, v in e.items() if k != "seconds"}
            for e in read_project(path).runs[-1]["epochs"]]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("cache")
    return {**os.environ, "CNNSTUDIO_CACHE_DIR": str(cache)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    """checkpoint → the project file of an uninterrupted run."""
    made: dict[str, Path] = {}

    def get(checkpoint: str) -> Path:
        if checkpoint not in made:
            path = _made(tmp_path_factory.mktemp("ref"), "ref", checkpoint)
            result = _cli(str(path), env=env)
            assert result.returncode == 0, result.stderr
            made[checkpoint] = path
        return made[checkpoint]

    return get


# Where the SIGINT lands → what the stopped run's message says.
STOPS = {
    "3:1": "stopped during epoch 3 after batch 1 of 2",
    "3:end": "stopped after epoch 3",
    "3:val": "stopped during the validation of epoch 3",
}


@pytest.mark.parametrize("checkpoint", ["best", "last"])
@pytest.mark.parametrize("at", list(STOPS))
def test_a_run_stopped_by_sigint_resumes_bit_identically(tmp_path, env, reference, checkpoint,
                                                         at):
    path = _made(tmp_path, "stopped", checkpoint)
    stopped = _cli(str(path), env=env, at=at)
    assert stopped.returncode == 1, stopped.stderr
    end = json.loads(stopped.stdout.splitlines()[-1])
    assert (end["status"], end["message"]) == ("stopped", STOPS[at])
    assert "stopping after this batch" in stopped.stderr and "Traceback" not in stopped.stderr
    project = read_project(path)
    assert project.runs[-1]["status"] == "stopped" and "resume.safetensors" in project.attachments
    # With checkpoint "best" the saved weights may be an earlier epoch's: the resume must
    # not start from those, but from the weights the run had when it stopped.
    resumed = _cli(str(path), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.splitlines()[-1])["init"] == "fresh"  # kept from run-1
    ref = reference(checkpoint)
    assert read_project(ref).runs[-1]["best_epoch"] == (2 if checkpoint == "best" else EPOCHS)
    assert _epochs(path) == _epochs(ref)
    assert len(_epochs(path)) == EPOCHS
    mine, theirs = load_tensors(read_project(path).weights), load_tensors(read_project(ref).weights)
    assert mine.keys() == theirs.keys()
    assert all(mine[k].equal(theirs[k]) for k in mine), "the weights differ"
    done = read_project(path)
    assert [r["id"] for r in done.runs] == ["run-1"]  # the resumed run replaced its record
    assert "resume.safetensors" not in done.attachments
