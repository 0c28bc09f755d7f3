"""What a new user trips over on the command line (issue 12 points 2–4, 10): --out checked
before the data loads, no display, predict on folders and 1-D nets, per-epoch lines in a
pipe, the Ctrl-C line, paths as given, CNNSTUDIO_DEBUG, `new` suffixes, one rule for names,
and `train --fresh`."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnstudio.cli import display_problem, main
from cnnstudio.cli_lines import SIGINT_AT_VAR
from cnnstudio.project import read_project, write_project


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNSTUDIO_DEBUG", raising=False)


def _project(tmp_path: Path, template: str = "digits-lenet", name: str = "p", **training
             ) -> Path:
    path = tmp_path / f"{name}.cnnproj"
    assert main(["new", "--template", template, str(path)]) == 0
    project = read_project(path)
    project.training.update({"epochs": 2, "max_batches_per_epoch": 3, "device": "cpu",
                             **training})
    write_project(project, path)
    return path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CNNSTUDIO_DEBUG"}
    return {**env, "CNNSTUDIO_CACHE_DIR": str(tmp_path / "cache"), **extra}


@pytest.fixture
def project_path(tmp_path, capsys):
    path = _project(tmp_path)
    capsys.readouterr()
    return path


@pytest.fixture
def no_data_loads(monkeypatch):
    """Fails the test if training gets as far as loading data."""
    import cnnstudio.train.api as api

    def refuse(*args, **kwargs):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(api, "load_project_data", refuse)


# ---- point 2: --out is checked before any data loads ----------------------------------


def _out_cases(tmp_path: Path) -> list[tuple[str, str]]:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "folder.cnnproj").mkdir()
    cases = [(str(tmp_path / "nowhere" / "x.cnnproj"), "does not exist"),
             (str(tmp_path / "a-file" / "x.cnnproj"), "is not a folder"),
             (str(tmp_path / "folder.cnnproj"), "it is a folder"),
             (str(tmp_path / "x.txt"), "give a .cnnproj file")]
    if sys.platform.startswith("linux") and Path("/sys").is_dir():
        cases.append(("/sys/x.cnnproj", "cannot write in the folder /sys"))  # even as root
    return cases


def test_train_out_that_cannot_be_saved_is_refused_before_any_data_loads(
        project_path, tmp_path, capsys, no_data_loads):
    before = project_path.read_bytes()
    for out, said in _out_cases(tmp_path):
        code = main(["train", str(project_path), "--out", out])
        stdout, err = capsys.readouterr()
        assert code == 2 and stdout == "", (out, err)
        assert err.count("\n") == 1 and err.startswith(f"cnnstudio: --out {out}: "), err
        assert said in err, err
    assert project_path.read_bytes() == before
    assert not (tmp_path / "nowhere").exists()
    assert not [p for p in tmp_path.rglob("*") if p.suffix == ".probe"]


def test_a_project_in_a_folder_it_cannot_be_saved_to_is_refused_first(
        project_path, tmp_path, capsys, no_data_loads, monkeypatch):
    import tempfile

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as patch:
        patch.setattr(tempfile, "mkstemp", refused)  # as a read-only folder answers
        assert main(["train", str(project_path)]) == 2
    assert capsys.readouterr().err == (
        f"cnnstudio: cannot save the trained project to {project_path}: cannot write in the"
        f" folder {tmp_path} (Permission denied); give --out a .cnnproj in a folder you can"
        " write to\n")
    missing = tmp_path / "nowhere" / "p.cnnproj"
    assert main(["train", str(missing)]) == 2  # reading it is what fails, and says so
    assert capsys.readouterr().err.startswith(f"cnnstudio: cannot read {missing}: ")


def test_train_out_into_a_writable_folder_still_works(project_path, tmp_path, capsys):
    out = tmp_path / "runs" / "trained.cnnproj"
    out.parent.mkdir()
    assert main(["train", str(project_path), "--out", str(out), "--epochs", "1"]) == 0
    assert read_project(out).weights is not None
    assert [p.name for p in out.parent.iterdir()] == ["trained.cnnproj"]  # no probe left


# ---- point 3: no display -----------------------------------------------------------------


def test_the_window_without_a_display_is_one_line_and_exit_2(tmp_path):
    env = {k: v for k, v in _env(tmp_path).items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    for argv in ([], [str(tmp_path / "x.cnnproj")]):
        result = subprocess.run([sys.executable, "-m", "cnnstudio", *argv], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
        line = result.stderr
        assert line.startswith("cnnstudio: there is no display")
        for words in ("summary, train, predict, export", "ssh -X", "xvfb-run",
                      "QT_QPA_PLATFORM=offscreen"):
            assert words in line


@pytest.mark.parametrize("environ, problem", [
    ({}, "DISPLAY and WAYLAND_DISPLAY are not set"),
    ({"DISPLAY": ":0"}, None),
    ({"WAYLAND_DISPLAY": "wayland-0"}, None),
    ({"QT_QPA_PLATFORM": "offscreen"}, None),
    ({"QT_QPA_PLATFORM": "vnc:size=800x600"}, None),
    ({"QT_QPA_PLATFORM": "xcb"}, "QT_QPA_PLATFORM=xcb and DISPLAY is not set"),
    ({"QT_QPA_PLATFORM": "wayland", "DISPLAY": ":0"},
     "QT_QPA_PLATFORM=wayland and WAYLAND_DISPLAY is not set"),
    ({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":0"}, None),
])
def test_which_environments_have_a_display(environ, problem):
    said = display_problem(environ, "linux")
    assert (said is None) == (problem is None)
    if problem is not None:
        assert problem in said
    assert display_problem({}, "darwin") is None and display_problem({}, "win32") is None


# ---- point 4: predict --------------------------------------------------------------------


def test_predict_on_a_folder_classifies_its_images_in_name_order(project_path, tmp_path,
                                                                  capsys):
    assert main(["train", str(project_path), "--epochs", "1"]) == 0
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.png", "a.PNG", "sub/c.png"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / name, format="PNG")
    (folder / "notes.txt").write_text("not an image")
    single = tmp_path / "z.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(single)
    capsys.readouterr()
    assert main(["predict", str(project_path), str(single), str(folder), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == [str(single), str(folder / "a.PNG"),
                                             str(folder / "b.png")]
    assert all(len(r["top"]) == 5 for r in results)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("#")
    assert main(["predict", str(project_path), str(empty)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"cnnstudio: {empty} is a folder with no image files in it"
                                 " (.png, .jpg, …; its subfolders are not searched)\n")


def test_predict_on_a_1d_network_says_what_it_accepts(tmp_path, capsys):
    path = _project(tmp_path, "cnn1d")
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    capsys.readouterr()
    assert main(["predict", str(path), str(image)]) == 1
    assert capsys.readouterr().err == (
        "cnnstudio: predict classifies image files, for networks whose Input is [channels,"
        " height, width]; this network's Input is [1, 128]\n")


# ---- point 4: what train prints ---------------------------------------------------------


def test_text_mode_in_a_pipe_prints_a_line_per_epoch(project_path, tmp_path):
    result = subprocess.run([sys.executable, "-m", "cnnstudio", "train", str(project_path)],
                            env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "starting from new weights (seed 0)"
    assert [line.split("  ")[0] for line in lines[1:3]] == ["epoch 1/2", "epoch 2/2"]
    assert all("train_loss" in line and "val_accuracy" in line for line in lines[1:3])
    assert lines[3].startswith("trained 2 epoch(s) on cpu") and len(lines) == 4
    assert "\r" not in result.stdout and result.stderr == ""  # no bar in a pipe
    warm = subprocess.run([sys.executable, "-m", "cnnstudio", "train", str(project_path)],
                          env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert warm.stdout.splitlines()[0] == ("continuing from the weights of run-1 (--fresh"
                                           " starts from new weights instead)")


def _read_all(fd: int, process: subprocess.Popen) -> str:
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX terminal (pty)")
def test_the_ctrl_c_message_starts_a_line_of_its_own_on_a_terminal(tmp_path):
    path = _project(tmp_path, epochs=2, max_batches_per_epoch=4)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnstudio", "train", str(path)], stdout=subprocess.PIPE,
        stderr=follower, env=_env(tmp_path, **{SIGINT_AT_VAR: "1:2"}))
    os.close(follower)
    try:
        shown = _read_all(leader, process)
        process.wait(timeout=300)
    finally:
        os.close(leader)
    assert process.returncode == 1, shown
    assert "[" in shown  # a progress bar was drawn: this is the terminal case
    lines = shown.replace("\r\n", "\n").split("\n")
    stop = [line for line in lines if "stopping after this batch" in line]
    assert stop == ["stopping after this batch (Ctrl-C again to abort)"], lines
    end = [line for line in lines if "training stopped" in line]
    assert end == ["cnnstudio: training stopped: stopped during epoch 1 after batch 2 of 4;"
                   " run 'cnnstudio train' again to resume"], lines


def test_the_progress_bar_line_is_ended_before_other_output():
    import io

    from cnnstudio.train import ProgressPrinter
    from cnnstudio.train.callbacks import BatchInfo

    class Trainer:
        epochs, batch_size, world_size, stop_requested = 2, 8, 1, False

    stream = io.StringIO()
    printer = ProgressPrinter(stream)
    printer.on_batch_end(Trainer(), BatchInfo(1, 1, 4, 0.5, 0.1, 8, 100.0))
    assert printer.open and not stream.getvalue().endswith("\n")
    printer.end_line()
    printer.end_line()  # once only
    assert stream.getvalue().endswith(" \n") and stream.getvalue().count("\n") == 1
    stopping = Trainer()
    stopping.stop_requested = True
    printer.on_batch_end(stopping, BatchInfo(1, 2, 4, 0.5, 0.1, 16, 100.0))
    assert not printer.open  # a stopping run does not draw the bar again


# ---- point 4: paths as given, CNNSTUDIO_DEBUG, `new`, names in any case --------------------


def test_errors_show_the_project_path_as_given(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "bad.cnnproj").write_text("{not json")
    assert main(["summary", "runs/bad.cnnproj"]) == 2
    assert capsys.readouterr().err.startswith("cnnstudio: runs/bad.cnnproj: invalid JSON")
    assert main(["summary", "runs/missing.cnnproj"]) == 2
    assert capsys.readouterr().err.startswith("cnnstudio: cannot read runs/missing.cnnproj:")


def test_cnnstudio_debug_shows_the_traceback(tmp_path):
    missing = str(tmp_path / "missing.cnnproj")
    argv = [sys.executable, "-m", "cnnstudio", "summary", missing]
    plain = subprocess.run(argv, env=_env(tmp_path), capture_output=True, text=True,
                           timeout=120)
    debug = subprocess.run(argv, env=_env(tmp_path, CNNSTUDIO_DEBUG="1"), capture_output=True,
                           text=True, timeout=120)
    assert plain.returncode == debug.returncode == 2
    assert "Traceback" not in plain.stderr and plain.stderr.count("\n") == 1
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert debug.stderr.splitlines()[-1] == plain.stderr.strip()


def _failing_model(monkeypatch):
    """The next run's model raises at its first training batch (a fault of the run)."""
    import cnnstudio.train.api as api
    from cnnstudio.nn import build_module

    def build(graph):
        module = build_module(graph)

        def boom(mod, args):
            if mod.training:
                raise RuntimeError("boom in forward")

        module.register_forward_pre_hook(boom)
        return module

    monkeypatch.setattr(api, "build_module", build)


def test_cnnstudio_debug_shows_where_a_failed_run_failed(project_path, capsys, monkeypatch):
    _failing_model(monkeypatch)
    assert main(["train", str(project_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == ("cnnstudio: training failed: training failed at epoch 1,"
                                    " batch 1: RuntimeError: boom in forward")
    monkeypatch.setenv("CNNSTUDIO_DEBUG", "1")
    assert main(["train", str(project_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err and "in boom" in err
    assert err.splitlines()[-1].startswith("cnnstudio: training failed: training failed at")


def test_cnnstudio_debug_raises_internal_errors(capsys, monkeypatch):
    import cnnstudio.cli as cli

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "cmd_templates", broken)
    assert main(["templates"]) == 1
    assert capsys.readouterr().err == "cnnstudio: internal error: ZeroDivisionError: a bug\n"
    monkeypatch.setenv("CNNSTUDIO_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["templates"])


@pytest.mark.parametrize("name", ["foo.txt", "foo", "foo.cnnproj.zip"])
def test_new_refuses_a_name_that_is_no_project_file(tmp_path, capsys, name):
    target = tmp_path / name
    assert main(["new", "--template", "xo", str(target)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "ends in .cnnproj" in err
    assert not target.exists()
    assert main(["new", "--template", "xo", str(tmp_path / "foo.JSON")]) == 0


def test_names_in_any_case_mean_the_same_everywhere(tmp_path, capsys):
    """One rule: any case in, the canonical spelling kept. The summary's class check reads
    the builtin data's name as training does, whatever its case."""
    doc = {"format": "cnnstudio.project", "version": 1, "name": "x",
           "graph": {"nodes": [
               {"id": "input", "type": "Input", "params": {"shape": [4]}, "inputs": []},
               {"id": "fc", "type": "Linear", "params": {"out_features": 3},
                "inputs": ["input"]}]},
           "data": {"source": {"kind": "BuiltIn", "name": "Digits"}},
           "training": {"optimizer": {"name": "adam"}, "schedule": {"name": "Cosine"},
                        "loss": {"name": "CROSS_ENTROPY"}, "checkpoint": "Last"}}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    assert main(["summary", str(path), "--json"]) == 1
    assert "10 classes" in json.loads(capsys.readouterr().out)["errors"][0]["message"]
    project = read_project(path)
    assert project.data["source"] == {"kind": "builtin", "name": "digits"}
    assert project.training == {"optimizer": {"name": "Adam"}, "schedule": {"name": "cosine"},
                                "loss": {"name": "cross_entropy"}, "checkpoint": "last"}


# ---- point 10: train --fresh -----------------------------------------------------------


def test_train_fresh_on_the_command_line(project_path, capsys):
    assert main(["train", str(project_path), "--json"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert first["init"] == "fresh"
    assert main(["train", str(project_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["init"] == {"from_run": "run-1"}
    assert main(["train", str(project_path), "--fresh"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "starting from new weights (seed 0)" and err == ""
    runs = read_project(project_path).runs
    assert [r["init"] for r in runs] == ["fresh", {"from_run": "run-1"}, "fresh"]
    # The model card says where each run's weights started.
    card = project_path.with_suffix(".md")
    assert main(["export", str(project_path), "-o", str(card)]) == 0
    text = card.read_text()
    assert "It started from a new random initialisation." in text
    history = text[text.index("## Run history"):]
    rows = [line for line in history.splitlines() if line.startswith("| `run-")]
    assert [row.split(" | ")[3] for row in rows] == ["fresh", "from `run-1`", "fresh"]


def test_the_distributed_command_takes_fresh_too(project_path, tmp_path, capsys):
    assert main(["train", str(project_path), "--epochs", "1"]) == 0
    result = subprocess.run([sys.executable, "-m", "cnnstudio", "train", str(project_path),
                             "--nproc", "2", "--epochs", "1", "--fresh"], env=_env(tmp_path),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "starting from new weights (seed 0)"
    runs = read_project(project_path).runs
    assert [r["init"] for r in runs] == ["fresh", "fresh"]
    assert runs[-1]["distributed"]["world_size"] == 2


# ---- review: an empty path (`--out "$UNSET"`) is not the current folder ------------------


def test_an_empty_path_is_refused_not_taken_for_the_current_folder(project_path, tmp_path,
                                                                   capsys, no_data_loads,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)  # "" must not mean this folder (nor the project itself)
    before = project_path.read_bytes()
    for argv, said in [(["train", str(project_path), "--out", ""], "--out is empty"),
                       (["train", ""], "the project path is empty"),
                       (["summary", " "], "the project path is empty"),
                       (["predict", str(project_path), ""], "an image path is empty")]:
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and said in err, (argv, err)
    assert project_path.read_bytes() == before


def test_a_ctrl_c_while_the_command_exits_shows_no_traceback(tmp_path):
    # Review: a double Ctrl-C whose second press lands after a stopped run was saved, while
    # Python shuts down (torch's atexit hooks), printed "Exception ignored in atexit
    # callback … KeyboardInterrupt". The signal arrives there, deterministically, here.
    code = ("import atexit, os, signal\n"
            "from cnnstudio.cli import main\n"
            "atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))\n"
            "raise SystemExit(main())\n")
    result = subprocess.run([sys.executable, "-c", code, "templates"], env=_env(tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert "xo" in result.stdout
    # Ignored: the command's own exit status (0 here) stands.
    assert result.stderr == "" and result.returncode == 0, result.stderr
