"""`cnnstudio train` and `cnnstudio predict` on real project files."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnstudio.cli import main
from cnnstudio.project import read_project, write_project


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def project_path(tmp_path, capsys):
    path = tmp_path / "digits.cnnproj"
    assert main(["new", "--template", "digits-lenet", str(path)]) == 0
    project = read_project(path)
    project.training.update({"epochs": 2, "max_batches_per_epoch": 3, "device": "cpu"})
    write_project(project, path)
    capsys.readouterr()
    return path


def test_train_json_prints_epoch_lines_and_an_end_line(project_path, capsys):
    code = main(["train", str(project_path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["event"] for line in lines] == ["epoch", "epoch", "end"]
    for number, line in enumerate(lines[:2], 1):
        assert line["epoch"] == number
        assert {"train_loss", "val_loss", "val_accuracy", "seconds"} <= set(line)
        assert 0 <= line["val_accuracy"] <= 1 and line["seconds"] > 0
        assert "confusion_matrix" not in line  # only the GUI's jobs ask for it
    assert lines[-1]["status"] == "completed"
    project = read_project(project_path)
    assert project.weights is not None
    assert [run["status"] for run in project.runs] == ["completed"]
    assert len(project.runs[0]["epochs"]) == 2


def test_train_json_for_the_gui_adds_confusion_matrices_and_snapshots(
        project_path, tmp_path, capsys, monkeypatch):
    """What `launch(snapshots=True)` asks for (here in one process, as `--nproc 1` runs):
    the variable alone changes nothing; with the job folder, each epoch line holds its
    confusion matrix and a snapshot line follows it, its arrays in the folder."""
    from cnnstudio.train.distributed_launch import SNAPSHOTS_VAR
    from cnnstudio.train.distributed_run import OUTCOME_DIR_VAR
    from cnnstudio.train.snapshots import read_arrays, write_watch

    monkeypatch.setenv(SNAPSHOTS_VAR, "1")
    assert main(["train", str(project_path), "--json", "--epochs", "1"]) == 0
    kinds = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [k["event"] for k in kinds] == ["epoch", "end"] and "confusion_matrix" not in kinds[0]
    folder = tmp_path / "job"
    folder.mkdir()
    monkeypatch.setenv(OUTCOME_DIR_VAR, str(folder))
    write_watch(folder, filter_node="conv1", activation_node="conv2", sample_index=1)
    assert main(["train", str(project_path), "--json", "--epochs", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == ["epoch", "snapshot", "epoch", "snapshot",
                                                 "end"]
    classes = len(read_project(project_path).runs[-1]["class_names"])
    for epoch, snap in (lines[0:2], lines[2:4]):
        matrix = np.asarray(epoch["confusion_matrix"])
        assert matrix.shape == (classes, classes) == (10, 10) and matrix.sum() == 359
        assert snap["epoch"] == epoch["epoch"] and snap["sample"] == 1
        arrays = read_arrays(folder, snap["path"])
        assert arrays["filters"].shape == (16, 1, 3, 3) and arrays["activation"].ndim == 3
    assert lines[-1]["status"] == "completed"


def test_train_epochs_override_and_out_path(project_path, tmp_path, capsys):
    out_path = tmp_path / "trained.cnnproj"
    code = main(["train", str(project_path), "--epochs", "1", "--out", str(out_path)])
    out, _ = capsys.readouterr()
    assert code == 0 and "saved" in out
    assert len(read_project(out_path).runs[0]["epochs"]) == 1
    assert read_project(project_path).weights is None  # the original is untouched


def test_train_failure_is_one_line_and_leaves_the_project(project_path, capsys):
    project = read_project(project_path)
    project.data = {"source": {"kind": "folder", "path": "no/such/folder"}}
    write_project(project, project_path)
    before = project_path.read_bytes()
    code = main(["train", str(project_path)])
    _, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert project_path.read_bytes() == before


def test_predict_top_k_json_and_text(project_path, tmp_path, capsys):
    assert main(["train", str(project_path)]) == 0
    image = tmp_path / "seven.png"
    pixels = np.zeros((8, 8), np.uint8)
    pixels[1, 1:7] = 255
    pixels[2:7, 5] = 255
    Image.fromarray(pixels).save(image)
    capsys.readouterr()
    assert main(["predict", str(project_path), str(image), "--top", "3", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["image"] == str(image) and len(result["top"]) == 3
    probs = [entry["probability"] for entry in result["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert {entry["class"] for entry in result["top"]} <= {str(d) for d in range(10)}
    assert main(["predict", str(project_path), str(image)]) == 0
    assert "%" in capsys.readouterr().out


def test_predict_errors(project_path, tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    assert main(["predict", str(project_path), str(image)]) == 1  # untrained
    assert "train it first" in capsys.readouterr().err
    assert main(["train", str(project_path)]) == 0
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    capsys.readouterr()
    assert main(["predict", str(project_path), str(image), str(bad), "--json"]) == 2
    out, err = capsys.readouterr()
    assert [bool(r.get("error")) for r in json.loads(out)] == [False, True]
    assert err.count("\n") == 1
    assert main(["predict", str(project_path), str(image), "--top", "0"]) == 2


def test_train_through_the_entry_point(project_path):
    result = subprocess.run([sys.executable, "-m", "cnnstudio", "train", str(project_path),
                             "--epochs", "1", "--json"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "completed"
    assert "Traceback" not in result.stderr


def nan_model(monkeypatch):
    """Every training batch of the next run gets NaN inputs: its loss is NaN at batch 1."""
    import math

    import cnnstudio.train.api as api
    from cnnstudio.nn import build_module

    def build(graph):
        module = build_module(graph)
        module.register_forward_pre_hook(
            lambda mod, args: (args[0] * math.nan,) if mod.training else None)
        return module

    monkeypatch.setattr(api, "build_module", build)


@pytest.mark.parametrize("json_lines", [False, True])
def test_a_run_that_fails_at_its_first_batch_is_recorded(project_path, capsys, monkeypatch,
                                                         json_lines):
    nan_model(monkeypatch)
    code = main(["train", str(project_path), *(["--json"] if json_lines else [])])
    out, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("cnnstudio: training failed: the loss became NaN at epoch 1, batch 1")
    project = read_project(project_path)
    [run] = project.runs
    assert run["status"] == "failed" and run["epochs"] == []
    assert run["message"].startswith("the loss became NaN at epoch 1, batch 1")
    assert run["message"].endswith("no weights are kept (the project had none before this"
                                   " run)")
    assert project.weights is None  # it had none; a random init is not kept
    if json_lines:
        end = json.loads(out.splitlines()[-1])
        assert end["status"] == "failed" and end["saved"] == str(project_path)
    else:  # where the weights started; no epoch ended
        assert out == "starting from new weights (seed 0)\n"


def test_text_mode_prints_a_completed_runs_message(project_path, capsys):
    import torch

    from cnnstudio.nn import weights_to_bytes

    project = read_project(project_path)
    project.weights = weights_to_bytes(torch.nn.Linear(2, 2))  # not this graph's
    write_project(project, project_path)
    assert main(["train", str(project_path), "--epochs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # The start line, the epoch line (not on a terminal), the result and the message.
    assert len(lines) == 4 and lines[1].startswith("epoch 1/1  train_loss")
    assert lines[0] == "starting from new weights (seed 0)"  # those weights do not fit
    assert lines[2].startswith("trained 1 epoch(s)")
    assert lines[3] == ("the saved weights do not fit the graph; training started from new"
                        " weights")
    assert read_project(project_path).runs[-1]["message"] == lines[3]


# ---- options checked before any data loads; SPEC keys; skipped files -----------------


@pytest.mark.parametrize("option,said", [(["--epochs", "0"], "--epochs must be at least 1"),
                                         (["--epochs", "-3"], "--epochs must be at least 1"),
                                         (["--device", "nope"], "--device 'nope': use auto")])
def test_bad_options_are_usage_errors_before_training(project_path, capsys, option, said):
    before = project_path.read_bytes()
    code = main(["train", str(project_path), *option])
    _, err = capsys.readouterr()
    assert code == 2 and said in err and err.count("\n") == 1
    assert project_path.read_bytes() == before


def test_a_missing_gpu_is_a_usage_error_with_one_process_too(project_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(["train", str(project_path), "--device", "cuda"])
    _, err = capsys.readouterr()
    assert code == 2 and "CUDA is not available" in err


def test_a_json_project_is_not_trained_into_itself(project_path, tmp_path, capsys):
    bare = tmp_path / "bare.json"
    write_project(read_project(project_path), bare)
    before = bare.read_bytes()
    code = main(["train", str(bare)])
    _, err = capsys.readouterr()
    assert code == 2 and "bare.json cannot hold the trained weights" in err
    assert f"--out {tmp_path / 'bare.cnnproj'}" in err and bare.read_bytes() == before
    out = tmp_path / "trained.cnnproj"
    assert main(["train", str(bare), "--out", str(out)]) == 0
    assert read_project(out).weights is not None and bare.read_bytes() == before


def test_json_epoch_lines_name_the_validation_keys_without_validation(project_path, capsys):
    project = read_project(project_path)
    project.data["val_fraction"] = 0.0
    write_project(project, project_path)
    assert main(["train", str(project_path), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr()[0].splitlines()]
    epochs = [line for line in lines if line["event"] == "epoch"]
    assert len(epochs) == 2
    assert all(e["val_loss"] is None and e["val_accuracy"] is None for e in epochs)
    assert all(isinstance(e["train_loss"], float) for e in epochs)


def _folder_project(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(6):
            pixels = np.full((8, 8), 20 * i + (0 if label == "a" else 130), np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    (root / "a" / "broken.png").write_bytes(b"not an image")
    path = tmp_path / "folder.cnnproj"
    assert main(["new", "--template", "digits-lenet", str(path)]) == 0
    project = read_project(path)
    project.data = {"source": {"kind": "folder", "path": "images"}, "val_fraction": 0.25}
    project.training.update({"epochs": 1, "device": "cpu"})
    for node in project.graph:  # two classes
        if node.type == "Linear" and not any(node.id in n.inputs for n in project.graph):
            node.params["out_features"] = 2
    write_project(project, path)
    return path


def test_skipped_files_are_listed_by_the_command_line(tmp_path, capsys):
    path = _folder_project(tmp_path)
    capsys.readouterr()
    assert main(["train", str(path)]) == 0
    out = capsys.readouterr()[0]
    assert "skipped 1 file(s) the data could not use: " in out
    assert f"{tmp_path / 'images' / 'a' / 'broken.png'} (" in out
    assert main(["train", str(path), "--json"]) == 0
    end = json.loads(capsys.readouterr()[0].splitlines()[-1])
    [skipped] = end["skipped"]
    assert skipped["file"].endswith("images/a/broken.png") and skipped["reason"]


def test_out_elsewhere_keeps_relative_data_paths_pointing_at_the_data(tmp_path, capsys):
    path = _folder_project(tmp_path)
    out = tmp_path / "elsewhere" / "deeper" / "moved.cnnproj"
    out.parent.mkdir(parents=True)
    assert main(["train", str(path), "--out", str(out)]) == 0
    moved = read_project(out)
    assert moved.data["source"]["path"] == "../../images"
    assert main(["train", str(out), "--epochs", "1"]) == 0  # its data is found from there
    assert read_project(path).data["source"]["path"] == "images"  # the original untouched
