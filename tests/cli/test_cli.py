"""The command line: exit codes, one-line errors, summary output vs torch's counts."""

import json
import subprocess
import sys

import pytest

from cnnstudio.cli import main
from cnnstudio.core.templates import TEMPLATES


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_json(path, doc):
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def test_templates_lists_every_template(capsys):
    code, out, _ = run(capsys, "templates", "--json")
    assert code == 0
    assert [t["name"] for t in json.loads(out)] == list(TEMPLATES)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_new_then_summary_json_matches_torch(capsys, tmp_path, name):
    import torch

    from cnnstudio.nn import build_module
    from cnnstudio.project import read_project

    path = tmp_path / f"{name}.cnnproj"
    code, out, _ = run(capsys, "new", "--template", name, str(path))
    assert code == 0 and path.exists()
    code, out, err = run(capsys, "summary", str(path), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["errors"] == []
    module = build_module(read_project(path).graph)
    assert doc["total_params"] == sum(p.numel() for p in module.parameters())
    for layer in doc["layers"]:
        sub = getattr(module, layer["id"], None)
        if sub is not None:
            assert layer["params"] == sum(p.numel() for p in sub.parameters())
    x = torch.zeros(2, *doc["layers"][0]["output_shape"])
    outputs = module.forward_all(x)
    for layer in doc["layers"]:
        assert list(outputs[layer["id"]].shape[1:]) == layer["output_shape"]


def test_summary_text_shows_table_totals_and_problems(capsys, tmp_path):
    path = write_json(tmp_path / "p.json", {
        "format": "cnnstudio.project", "version": 1, "name": "Broken",
        "graph": {"nodes": [
            {"id": "input", "type": "Input", "params": {"shape": [1, 3, 3]}, "inputs": []},
            {"id": "conv", "type": "Conv2d", "params": {"out_channels": 2, "kernel_size": 5},
             "inputs": ["input"]},
        ]},
    })
    code, out, _ = run(capsys, "summary", path)
    assert code == 1
    assert "Model: Broken" in out and "Total params: 0" in out
    assert "error: conv: kernel 5×5 is larger than its input 3×3" in out
    code, out, _ = run(capsys, "summary", path, "--json")
    assert code == 1
    assert json.loads(out)["errors"] == [
        {"node": "conv", "message": "kernel 5×5 is larger than its input 3×3 with padding 0"}]


def test_summary_checks_the_class_count_of_builtin_data(capsys, tmp_path):
    path = write_json(tmp_path / "p.json", {
        "format": "cnnstudio.project", "version": 1, "name": "x",
        "graph": {"nodes": [
            {"id": "input", "type": "Input", "params": {"shape": [4]}, "inputs": []},
            {"id": "fc", "type": "Linear", "params": {"out_features": 3}, "inputs": ["input"]},
        ]},
        "data": {"source": {"kind": "builtin", "name": "digits"}},
    })
    code, out, _ = run(capsys, "summary", path, "--json")
    assert code == 1
    assert "10 classes" in json.loads(out)["errors"][0]["message"]


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "invalid JSON"),
    ('{"format": "cnnstudio.project", "version": 2, "graph": {"nodes": []}}', "newer"),
    ('{"format": "cnnstudio.project", "version": 1, "graph": {"nodes": ['
     '{"id": "a", "type": "Conv2d", "params": {"out_channels": 1, "kernel_size": 0}}]}}',
     "graph.nodes[0].params.kernel_size"),
])
def test_unreadable_projects_exit_2_with_one_line(capsys, tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "summary", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["summary"], ["new", "x.cnnproj"], ["new", "--template", "nope", "x.cnnproj"],
    ["bogus-command"], ["summary", "a.json", "--frobnicate"],
])
def test_wrong_command_lines_exit_2_with_one_line(capsys, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("cnnstudio: ")


def test_new_refuses_to_overwrite_without_force(capsys, tmp_path):
    path = tmp_path / "p.cnnproj"
    assert run(capsys, "new", "--template", "xo", str(path))[0] == 0
    assert run(capsys, "new", "--template", "xo", str(path))[0] == 2
    assert run(capsys, "new", "--template", "lenet5", str(path), "--force")[0] == 0


def test_python_dash_m_is_the_same_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cnnstudio", "templates", "--json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert len(json.loads(result.stdout)) == len(TEMPLATES)
    result = subprocess.run([sys.executable, "-m", "cnnstudio", "summary", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def _zip(path, members):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


GOOD_NODES = [{"id": "input", "type": "Input", "params": {"shape": [4]}, "inputs": []},
              {"id": "fc", "type": "Linear", "params": {"out_features": 2}, "inputs": ["input"]}]


def _doc(**changes):
    doc = {"format": "cnnstudio.project", "version": 1, "name": "x",
           "graph": {"nodes": GOOD_NODES}}
    doc.update(changes)
    return json.dumps(doc)


@pytest.mark.parametrize("case, fragment", [
    ("wrong types", "training.epochs"),
    ("missing id", "graph.nodes[0].id"),
    ("dangling input", "graph.nodes[1].inputs[0]"),
    ("cycle", "cycle"),
    ("zip without project.json", "project.json"),
    ("pickle weights", "pickle"),
])
def test_malformed_projects_exit_2_with_one_line(capsys, tmp_path, case, fragment):
    import pickle

    path = tmp_path / "bad.cnnproj"
    if case == "wrong types":
        _zip(path, {"project.json": _doc(training={"epochs": "ten"})})
    elif case == "missing id":
        _zip(path, {"project.json": _doc(graph={"nodes": [{"type": "ReLU"}]})})
    elif case == "dangling input":
        nodes = [GOOD_NODES[0], dict(GOOD_NODES[1], inputs=["ghost"])]
        _zip(path, {"project.json": _doc(graph={"nodes": nodes})})
    elif case == "cycle":
        nodes = [{"id": "a", "type": "ReLU", "inputs": ["b"]},
                 {"id": "b", "type": "ReLU", "inputs": ["a"]}]
        _zip(path, {"project.json": _doc(graph={"nodes": nodes})})
    elif case == "zip without project.json":
        _zip(path, {"readme.txt": "hello"})
    else:  # bytes a pickle would run; CNN Studio must refuse them unread
        _zip(path, {"project.json": _doc(), "weights.safetensors": pickle.dumps({"a": 1})})
    code, out, err = run(capsys, "summary", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err
