"""`cnnstudio sweep` on real project files."""

import json
import os
import subprocess
import sys

import pytest

from cnnstudio.cli import main
from cnnstudio.cli_lines import SIGINT_AT_VAR
from cnnstudio.project import read_project, write_project


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


def _project(path, seed=0):
    assert main(["new", "--template", "digits-lenet", str(path)]) == 0
    project = read_project(path)
    project.training.update({"epochs": 3, "max_batches_per_epoch": 2, "device": "cpu",
                             "seed": seed})
    write_project(project, path)
    return path


@pytest.fixture
def project_path(tmp_path, capsys):
    path = _project(tmp_path / "digits.cnnproj")
    capsys.readouterr()
    return path


def _lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


GRID = ["--set", "training.optimizer.lr=0.001,0.05", "--set", "training.batch_size=16,32",
        "--epochs", "1"]


def test_json_prints_a_line_per_trial_then_the_ranking_and_saves_the_runs(project_path,
                                                                          capsys):
    assert main(["sweep", str(project_path), *GRID, "--json"]) == 0
    *trials, last = _lines(capsys)
    assert [t["event"] for t in trials] == ["trial"] * 4
    assert [t["trial"] for t in trials] == [0, 1, 2, 3]
    assert not any(t["skipped"] for t in trials)
    assert last["event"] == "ranking" and last["status"] == "completed"
    assert last["planned"] == last["recorded"] == 4 and last["metric"] == "val_accuracy"
    saved = read_project(project_path)
    assert saved.training["epochs"] == 3  # the project's settings are not the sweep's
    records = {r["id"]: r for r in saved.runs}
    assert sorted(records) == sorted(t["run"] for t in trials)
    for t in trials:
        record = records[t["run"]]
        assert record["sweep"] == {"id": last["sweep"], "trial": t["trial"],
                                   "settings": t["settings"]}
        assert len(record["epochs"]) == 1  # --epochs 1
        assert record["settings"]["batch_size"] == t["settings"]["training.batch_size"]
    # The ranking is the saved records sorted by their best accuracy, then loss.
    expected = sorted(records.values(), key=lambda r: (-r["best"]["val_accuracy"],
                                                       r["best"]["val_loss"]))
    assert [row["run"] for row in last["ranking"]] == [r["id"] for r in expected]
    assert [row["value"] for row in last["ranking"]] == \
        [r["best"]["val_accuracy"] for r in expected]


def test_running_the_same_sweep_again_trains_nothing_new(project_path, capsys):
    assert main(["sweep", str(project_path), *GRID, "--json"]) == 0
    first = _lines(capsys)[-1]
    assert main(["sweep", str(project_path), *GRID, "--json"]) == 0
    *trials, last = _lines(capsys)
    assert all(t["skipped"] for t in trials) and last["sweep"] == first["sweep"]
    assert last["ranking"] == first["ranking"] and last["saved"] is None
    assert len(read_project(project_path).runs) == 4
    # Another grid is another sweep: its trials are trained and recorded too.
    assert main(["sweep", str(project_path), "--set", "training.optimizer.lr=0.001",
                 "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "rank" in out and "run-5" in out
    assert len(read_project(project_path).runs) == 5


@pytest.mark.parametrize("args, said", [
    (["--set", "training.bogus=1,2"], "no setting 'bogus'"),
    (["--set", "lr=1"], "dotted path"),
    (["--set", "training.optimizer.lr=-1"], "must be > 0"),
    (["--set", "training.seed=1", "--trials", "0"], "--trials"),
    ([], "--set"),
    (["--set", "training.seed=1", "--nproc", "2"], "--nproc"),
])
def test_bad_settings_are_one_line_usage_errors(project_path, capsys, args, said):
    before = project_path.read_bytes()
    assert main(["sweep", str(project_path), *args]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1
    assert project_path.read_bytes() == before


def test_random_trials_follow_the_projects_seed(tmp_path, capsys):
    grid = ["--set", "training.optimizer.lr=0.001,0.002,0.003,0.004",
            "--set", "training.batch_size=8,16,32", "--trials", "2", "--epochs", "1", "--json"]
    drawn = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        path = _project(tmp_path / f"{name}.cnnproj", seed=seed)
        capsys.readouterr()
        assert main(["sweep", str(path), *grid]) == 0
        trials = _lines(capsys)[:-1]
        assert len(trials) == 2 and trials[0]["settings"] != trials[1]["settings"]
        drawn.append([t["settings"] for t in trials])
    assert drawn[0] == drawn[1] and drawn[0] != drawn[2]


def test_ctrl_c_stops_the_sweep_and_the_same_command_resumes_it(project_path, tmp_path):
    command = [sys.executable, "-m", "cnnstudio", "sweep", str(project_path),
               "--set", "training.optimizer.lr=0.001,0.002", "--epochs", "1", "--json"]
    env = {**os.environ, "CNNSTUDIO_CACHE_DIR": str(tmp_path / "cache")}
    stopped = subprocess.run(command, env={**env, SIGINT_AT_VAR: "1:1"}, capture_output=True,
                             text=True, timeout=120)
    assert stopped.returncode == 1, stopped.stderr
    lines = [json.loads(line) for line in stopped.stdout.splitlines()]
    assert lines[0]["status"] == "stopped" and lines[0]["run"] is None
    assert lines[-1]["status"] == "stopped" and lines[-1]["recorded"] == 0
    assert "run the same command again to resume" in stopped.stderr
    assert read_project(project_path).runs == []
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    last = json.loads(resumed.stdout.splitlines()[-1])
    assert last["sweep"] == lines[-1]["sweep"] and last["recorded"] == 2
    assert len(read_project(project_path).runs) == 2
