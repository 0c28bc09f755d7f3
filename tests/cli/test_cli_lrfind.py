"""`cnnstudio lr-find` on a real project file."""

import json
import math

import numpy as np
import pytest

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
    project.training.update({"device": "cpu", "batch_size": 32})
    write_project(project, path)
    capsys.readouterr()
    return path


def test_json_shape_and_the_project_file_is_unchanged(project_path, capsys):
    before = project_path.read_bytes()
    assert main(["lr-find", str(project_path), "--json", "--batches", "12"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"lrs", "losses", "suggested_lr"}
    lrs, losses = out["lrs"], out["losses"]
    assert 2 <= len(lrs) == len(losses) <= 12
    assert all(isinstance(v, float) and math.isfinite(v) for v in lrs + losses)
    ratios = np.array(lrs[1:]) / np.array(lrs[:-1])  # exponentially rising from 1e-7
    np.testing.assert_allclose(ratios, (10 / 1e-7) ** (1 / 11), rtol=1e-9)
    assert lrs[0] == pytest.approx(1e-7)
    assert isinstance(out["suggested_lr"], float) and min(lrs) <= out["suggested_lr"] <= max(lrs)
    assert project_path.read_bytes() == before


def test_text_table_names_the_suggestion(project_path, capsys):
    assert main(["lr-find", str(project_path), "--batches", "6", "--start-lr", "1e-4",
                 "--end-lr", "1"]) == 0
    out = capsys.readouterr().out
    assert "learning rate" in out and "<- suggested" in out
    assert "suggested learning rate:" in out.splitlines()[-1]


@pytest.mark.parametrize(("options", "said"), [
    (["--start-lr", "1", "--end-lr", "0.1"], "below --end-lr"),
    (["--start-lr", "-1"], "positive"),
    (["--batches", "0"], "at least 1"),
    (["--device", "tpu"], "device"),
])
def test_bad_options_are_one_line_usage_errors(project_path, capsys, options, said):
    assert main(["lr-find", str(project_path), *options]) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1
