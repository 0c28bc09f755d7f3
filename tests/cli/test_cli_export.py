"""`cnnstudio export`: every format, format from the suffix, warnings for untrained
projects, and one-line errors with the documented exit status."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from cnnstudio.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved digits-lenet project trained for three batches."""
    from cnnstudio.core.templates import get_template
    from cnnstudio.project import project_from_dict, write_project
    from cnnstudio.train import train_project

    doc = get_template("digits-lenet").project_dict()
    doc["training"] = {"epochs": 1, "batch_size": 32, "max_batches_per_epoch": 3,
                       "device": "cpu"}
    project = project_from_dict(doc)
    folder = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNSTUDIO_CACHE_DIR", str(folder / "cache"))
        assert train_project(project).status == "completed"
    write_project(project, folder / "digits.cnnproj")
    return folder / "digits.cnnproj"


@pytest.fixture
def untrained_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "xo.cnnproj"
    assert main(["new", "--template", "xo", str(path)]) == 0
    capsys.readouterr()
    return path


def test_every_format_from_the_suffix(trained_file: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    for package in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(package)
    for name in ("model.py", "model.pt", "model.onnx", "model.safetensors", "MODEL.md"):
        code, out, err = run(capsys, "export", str(trained_file), "-o", str(tmp_path / name))
        assert code == 0, err
        assert err == ""  # trained: nothing to warn about
        assert out.startswith("exported Digits LeNet as ") and out.count("\n") == 1
        assert (tmp_path / name).stat().st_size > 0
    assert "# Digits LeNet" in (tmp_path / "MODEL.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["model.py", "model.pt", "model.onnx", "model.safetensors", "MODEL.md"])  # no temps


def test_format_option_overrides_the_suffix(trained_file: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "weights.bin"
    code, out, _ = run(capsys, "export", str(trained_file), "--format", "safetensors",
                       "-o", str(target))
    assert code == 0 and "as safetensors weights" in out
    from cnnstudio.nn import weights_metadata

    meta = weights_metadata(target.read_bytes())
    assert json.loads(meta["cnnstudio.class_names"]) == [str(i) for i in range(10)]
    assert "cnnstudio.normalization" in meta


def test_untrained_project_exports_with_a_warning(untrained_file: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("xo.py", "xo.pt", "xo.md"):
        code, out, err = run(capsys, "export", str(untrained_file), "-o", str(tmp_path / name))
        assert code == 0 and out.startswith("exported xo as ")
        assert err.startswith("cnnstudio: warning: xo is untrained") and err.count("\n") == 1
    assert "UNTRAINED" in (tmp_path / "xo.py").read_text(encoding="utf-8")
    assert "**Untrained.**" in (tmp_path / "xo.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("where", ["missing folder", "a folder", "under a file"])
def test_unwritable_destination_is_one_line_exit_2(where: str, untrained_file: Path,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    target = {"missing folder": tmp_path / "nope" / "m.py", "a folder": tmp_path,
              "under a file": untrained_file / "m.py"}[where]
    before = sorted(tmp_path.iterdir())
    code, out, err = run(capsys, "export", str(untrained_file), "-o", str(target))
    assert code == 2 and out == ""
    assert err.startswith(f"cnnstudio: cannot write {target}: ") and err.count("\n") == 1
    assert sorted(tmp_path.iterdir()) == before


def test_the_project_file_is_never_overwritten(untrained_file: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    before = untrained_file.read_bytes()
    code, _, err = run(capsys, "export", str(untrained_file), "--format", "safetensors",
                       "-o", str(untrained_file))
    assert code == 2 and "it is the project file itself" in err
    assert untrained_file.read_bytes() == before


def test_permission_denied_is_one_line_exit_2(untrained_file: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnstudio.nn.export import formats

    def refuse(path, write, **kwargs):  # what atomic_write raises in a read-only folder
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(formats, "atomic_write", refuse)
    code, _, err = run(capsys, "export", str(untrained_file), "-o", str(tmp_path / "m.md"))
    assert code == 2
    assert err == f"cnnstudio: cannot write {tmp_path / 'm.md'}: Permission denied\n"


@pytest.mark.skipif(sys.platform == "win32" or not hasattr(__import__("os"), "geteuid")
                    or __import__("os").geteuid() == 0, reason="root may write anywhere")
def test_read_only_folder_is_exit_2(untrained_file: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, _, err = run(capsys, "export", str(untrained_file), "-o", str(folder / "m.py"))
    finally:
        folder.chmod(0o700)
    assert code == 2 and "Permission denied" in err and err.count("\n") == 1


def test_graph_errors_are_exit_1_with_the_first_problem(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"format": "cnnstudio.project", "version": 1, "name": "Broken",
                                "graph": {"nodes": [
                                    {"id": "input", "type": "Input",
                                     "params": {"shape": [1, 3, 3]}, "inputs": []},
                                    {"id": "conv", "type": "Conv2d",
                                     "params": {"out_channels": 2, "kernel_size": 5},
                                     "inputs": ["input"]}]}}), encoding="utf-8")
    code, out, err = run(capsys, "export", str(path), "-o", str(tmp_path / "m.pt"))
    assert code == 1 and out == ""
    assert err.startswith("cnnstudio: conv: kernel 5×5 is larger than its input")
    assert err.count("\n") == 1 and not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("missing", ["onnx", "onnxscript"])
def test_missing_onnx_says_what_to_install(missing: str, untrained_file: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # `import onnx…` now raises ImportError
    code, out, err = run(capsys, "export", str(untrained_file), "-o", str(tmp_path / "m.onnx"))
    assert code == 2 and out == ""
    # Names the first missing package (onnx itself, where it is not installed at all).
    assert re.fullmatch(r"cnnstudio: ONNX export needs the optional package (onnx|onnxscript): "
                        r"pip install 'cnnstudio\[onnx\]'\n", err), err
    if missing == "onnx" or importlib.util.find_spec("onnx") is not None:
        assert f"package {missing}:" in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["-o", "model.bin"], "cannot tell the format from 'model.bin'; add --format"),
    (["-o", "m.py", "--format", "keras"], "argument --format: invalid choice: 'keras'"),
    ([], "the following arguments are required: -o/--output"),
])
def test_command_line_mistakes_are_exit_2(argv: list[str], message: str, untrained_file: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "export", str(untrained_file), *argv)
    assert code == 2 and err.startswith(f"cnnstudio: {message}") and err.count("\n") == 1


def test_unreadable_project_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "export", str(tmp_path / "none.cnnproj"), "-o",
                       str(tmp_path / "m.py"))
    # The path as given (not only the file's name): the user can tell which file it is.
    assert code == 2 and err.startswith(f"cnnstudio: cannot read {tmp_path / 'none.cnnproj'}")
    assert err.count("\n") == 1


def test_outputs_that_differ_from_the_trained_classes_warn_in_one_line(
        trained_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnstudio.project import read_project, write_project

    project = read_project(trained_file)
    project.graph.set_param("classifier", "out_features", 7)  # ten digits trained, 7 outputs now
    project.weights = None  # the old weights no longer fit: exported untrained
    edited = tmp_path / "edited.cnnproj"
    write_project(project, edited)
    code, out, err = run(capsys, "export", str(edited), "-o", str(tmp_path / "m.py"))
    assert code == 0 and (tmp_path / "m.py").is_file()  # the export still happens
    lines = err.splitlines()
    assert lines[-1] == ("cnnstudio: warning: the classifier gives 7 outputs but the trained"
                         " run has 10 classes (0, 1, 2, 3, …): its outputs and the class"
                         " names do not match")


def test_an_untrained_builtin_project_is_checked_against_its_dataset(
        untrained_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnstudio.project import read_project, write_project

    project = read_project(untrained_file)  # xo: 2 classes
    output = [n for n in project.graph if n.type == "Linear"][-1]
    project.graph.set_param(output.id, "out_features", 3)
    write_project(project, untrained_file)
    code, _out, err = run(capsys, "export", str(untrained_file), "-o", str(tmp_path / "m.md"))
    assert code == 0
    assert err.splitlines()[-1] == ("cnnstudio: warning: the classifier gives 3 outputs but"
                                    " the data has 2 classes: it cannot be trained on this"
                                    " data as it is")
