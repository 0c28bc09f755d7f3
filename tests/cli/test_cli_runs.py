"""`cnnstudio runs` and `cnnstudio compare` on a project trained twice, with different
settings and graphs between the runs."""

from __future__ import annotations

import json

import pytest

from cnnstudio.cli import main
from cnnstudio.project import read_project, write_project


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """digits-lenet trained once, then its seed and the first conv's width changed, and
    trained again from fresh weights."""
    path = tmp_path_factory.mktemp("runs") / "digits.cnnproj"
    assert main(["new", "--template", "digits-lenet", str(path)]) == 0
    project = read_project(path)
    project.training.update({"epochs": 1, "max_batches_per_epoch": 2, "device": "cpu"})
    write_project(project, path)
    assert main(["train", str(path), "--json"]) == 0
    project = read_project(path)
    seed = project.runs[0]["settings"]["seed"]
    project.training["seed"] = seed + 1
    conv = next(n for n in project.graph if n.type == "Conv2d")
    conv.params["out_channels"] = conv.params["out_channels"] + 2
    write_project(project, path)
    assert main(["train", str(path), "--json", "--fresh"]) == 0
    return path, conv.id, seed


def test_runs_json_lists_each_run(trained, capsys):
    path, _conv, _seed = trained
    capsys.readouterr()
    assert main(["runs", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    runs = read_project(path).runs
    assert [set(r) for r in rows] == [{"id", "status", "init", "best_epoch", "best"}] * 2
    assert [r["id"] for r in rows] == [r["id"] for r in runs]
    assert [r["init"] for r in rows] == ["fresh", "fresh"]
    for row, run in zip(rows, runs, strict=True):
        assert row["status"] == "completed" and row["best_epoch"] == run["best_epoch"] == 1
        assert row["best"]["val_loss"] == run["best"]["val_loss"]
        assert row["best"]["val_accuracy"] == run["best"]["val_accuracy"]


def test_compare_json_shows_only_what_differs(trained, capsys):
    path, conv, seed = trained
    runs = read_project(path).runs
    capsys.readouterr()
    assert main(["compare", str(path), runs[0]["id"], runs[1]["id"], "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert set(diff) == {"settings", "graph", "metrics"}
    assert diff["settings"] == [{"key": "training.seed", "a": seed, "b": seed + 1}]
    assert diff["graph"]["added"] == [] and diff["graph"]["removed"] == []
    assert [c["id"] for c in diff["graph"]["changed"]] == [conv]
    change = diff["graph"]["changed"][0]
    assert set(change["a"]) == set(change["b"]) == {"params"}
    assert change["b"]["params"]["out_channels"] == change["a"]["params"]["out_channels"] + 2
    assert set(diff["metrics"]) == {"a", "b"}
    for key, value in diff["metrics"]["a"].items():
        assert runs[0]["best"][key] == value != runs[1]["best"][key]
    # A run compared with itself differs in nothing.
    assert main(["compare", str(path), runs[0]["id"], runs[0]["id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "settings": [], "graph": {"added": [], "removed": [], "changed": []},
        "metrics": {"a": {}, "b": {}}}


def test_an_unknown_run_is_one_line_and_exit_2(trained, capsys):
    path, _conv, _seed = trained
    capsys.readouterr()
    assert main(["compare", str(path), "run-1", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run 'nope'" in err


def test_text_output_names_the_differences(trained, capsys):
    path, conv, _seed = trained
    runs = read_project(path).runs
    capsys.readouterr()
    assert main(["compare", str(path), runs[0]["id"], runs[1]["id"]]) == 0
    out = capsys.readouterr().out
    assert "training.seed" in out and f"~ {conv}" in out


def test_tensorboard_export(trained, tmp_path, capsys):
    path, _conv, _seed = trained
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert main(["runs", str(path), "--tensorboard", str(tmp_path / "tb")]) == 2
        assert "pip install tensorboard" in capsys.readouterr().err
        pytest.skip("tensorboard is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert main(["runs", str(path), "--tensorboard", str(tmp_path / "tb")]) == 0
    run = read_project(path).runs[0]
    events = EventAccumulator(str(tmp_path / "tb" / run["id"]))
    events.Reload()
    assert [s.value for s in events.Scalars("val_loss")] == pytest.approx(
        [e["val_loss"] for e in run["epochs"]])
