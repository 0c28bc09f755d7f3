"""`cnnstudio explain` end to end on a small project whose data is a folder of PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnstudio.cli import main
from cnnstudio.data import load_dataset
from cnnstudio.nn import build_module, load_weights
from cnnstudio.project import read_project, write_project
from cnnstudio.project.settings import training_seed
from cnnstudio.train.snapshots import initial_module

CLASSES = ("circle", "cross", "line")
PER_CLASS = 10  # 2 of each class go to validation (val_fraction 0.2)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def project_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> Path:
    """digits-lenet (Input 1×8×8) on a folder of random 8×8 PNGs, 3 classes."""
    rng = np.random.default_rng(0)
    for name in CLASSES:
        for i in range(PER_CLASS):
            folder = tmp_path / "pics" / name
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(
                folder / f"{i:02d}.png")
    path = tmp_path / "shapes.cnnproj"
    assert main(["new", "--template", "digits-lenet", str(path)]) == 0
    project = read_project(path)
    project.data["source"] = {"kind": "folder", "path": "pics"}
    project.graph.set_param("classifier", "out_features", len(CLASSES))
    project.training.update({"epochs": 1, "max_batches_per_epoch": 2, "device": "cpu"})
    write_project(project, path)
    capsys.readouterr()
    return path


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["explain", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def expected_top(project_path: Path, layer: str, split: str, k: int,
                 module: torch.nn.Module | None = None) -> list[list[tuple[int, float, tuple]]]:
    """Per filter, the k (sample, activation, argmax position) of a direct computation:
    every sample of the split through the whole network, each filter's map maximum."""
    project = read_project(project_path)
    ds = load_dataset(project.data["source"], input_shape=[1, 8, 8],
                      base_dir=project_path.parent, val_fraction=0.2)
    if module is None:
        module = initial_module(project.graph, training_seed(project.training))
    index = torch.arange(len(ds.x)) if split == "all" else ds.splits[split]
    with torch.no_grad():
        maps = module.eval().forward_all(ds.batch_to_float(ds.x[index]))[layer]
    flat = maps.reshape(len(index), maps.shape[1], -1).numpy()
    result = []
    for f in range(maps.shape[1]):
        peaks = flat[:, f].max(axis=1)
        order = np.argsort(-peaks, kind="stable")[:k]
        result.append([(int(index[i]), float(peaks[i]),
                        np.unravel_index(int(flat[i, f].argmax()), maps.shape[2:]))
                       for i in order])
    return result


def box_of(position: tuple, half: int) -> list[int]:
    """A (2·half+1)² field centred on `position` in an 8×8 input, clipped."""
    y, x = (int(v) for v in position)
    return [max(0, y - half), max(0, x - half), min(8, y + half + 1), min(8, x + half + 1)]


@pytest.mark.parametrize("split", ["val", "train", "all"])
def test_json_equals_a_direct_computation(project_path: Path, capsys, split: str) -> None:
    code, out, err = run(capsys, project_path, "--layer", "conv2", "--top", 3, "--split", split,
                         "--json")
    assert code == 0, err
    assert "no trained weights" in err and "untrained" in err
    doc = json.loads(out)
    assert set(doc) == {"layer", "split", "filters"}
    assert doc["layer"] == "conv2" and doc["split"] == split
    want = expected_top(project_path, "conv2", split, 3)
    assert [f["filter"] for f in doc["filters"]] == list(range(32))
    ds = load_dataset({"kind": "folder", "path": str(project_path.parent / "pics")},
                      input_shape=[1, 8, 8])
    for got, expected in zip(doc["filters"], want, strict=True):
        assert [set(hit) for hit in got["top"]] == [{"sample", "file", "activation", "box"}] * 3
        assert [hit["sample"] for hit in got["top"]] == [s for s, _, _ in expected]
        np.testing.assert_allclose([hit["activation"] for hit in got["top"]],
                                   [a for _, a, _ in expected], rtol=1e-5, atol=1e-6)
        for hit, (_, _, position) in zip(got["top"], expected, strict=True):
            # conv1 and conv2 are 3×3, stride 1, padding 1: conv2 sees a 5×5 field
            assert hit["box"] == box_of(position, 2)
            y0, x0, y1, x1 = hit["box"]
            assert 0 <= y0 < y1 <= 8 and 0 <= x0 < x1 <= 8
            file = Path(hit["file"])
            assert file.parent.parent == project_path.parent / "pics"
            assert file.parent.name == CLASSES[int(ds.y[hit["sample"]])]
            np.testing.assert_array_equal(np.asarray(Image.open(file)),
                                          ds.x[hit["sample"], 0].numpy())
    if split != "all":
        members = set(ds.splits[split].tolist())
        assert {h["sample"] for f in doc["filters"] for h in f["top"]} <= members


def test_trained_weights_are_the_ones_explained(project_path: Path, capsys) -> None:
    assert main(["train", str(project_path)]) == 0
    capsys.readouterr()
    project = read_project(project_path)
    module = build_module(project.graph)
    load_weights(module, project.weights)
    code, out, err = run(capsys, project_path, "--layer", "conv1", "--top", 2, "--split",
                         "all", "--json")
    assert code == 0, err
    assert err == ""  # neither the untrained notice nor progress (--json)
    want = expected_top(project_path, "conv1", "all", 2, module)
    for got, expected in zip(json.loads(out)["filters"], want, strict=True):
        assert [h["sample"] for h in got["top"]] == [s for s, _, _ in expected]
        np.testing.assert_allclose([h["activation"] for h in got["top"]],
                                   [a for _, a, _ in expected], rtol=1e-5, atol=1e-6)
        assert [h["box"] for h in got["top"]] == [box_of(p, 1) for _, _, p in expected]


def test_pictures_table_and_image_maps(project_path: Path, tmp_path: Path, capsys) -> None:
    image = project_path.parent / "pics" / "cross" / "03.png"
    out_dir = tmp_path / "explained"
    code, out, err = run(capsys, project_path, "--layer", "conv1", "--top", 2, "--image",
                         image, "-o", out_dir)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("layer conv1 (Conv2d), 16 filters:")
    rows = [line.split() for line in lines[2:2 + 16 * 2]]
    assert [(int(r[0]), int(r[1])) for r in rows] == [(f, k) for f in range(16) for k in (1, 2)]
    assert all(Path(r[-1]).is_file() for r in rows)
    assert "occlusion and Grad-CAM" in out and "wrote 18 picture(s) and report.json to" in out
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == sorted([f"conv1_filter_{i}.png" for i in range(16)]
                           + ["grad_cam.png", "occlusion.png", "report.json"])
    for name in (n for n in names if n.endswith(".png")):
        with Image.open(out_dir / name) as picture:
            picture.load()
            assert picture.format == "PNG" and min(picture.size) >= 96
            assert max(picture.size) <= 1200
    report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    assert report["image"]["file"] == str(image)
    assert report["image"]["class"] in CLASSES and report["image"]["grad_cam_layer"]
    # the same numbers as --json prints
    code, json_out, _ = run(capsys, project_path, "--layer", "conv1", "--top", 2, "--image",
                            image, "--json")
    assert code == 0 and json.loads(json_out) == report


def test_a_linear_layers_units_have_no_box(project_path: Path, capsys) -> None:
    code, out, err = run(capsys, project_path, "--layer", "classifier", "--top", 1, "--json")
    assert code == 0, err
    filters = json.loads(out)["filters"]
    assert len(filters) == len(CLASSES)
    assert all(f["top"][0]["box"] is None for f in filters)


@pytest.mark.parametrize(("args", "words"), [
    (["--layer", "conv9"], ["conv9", "feature maps: conv1, relu1, conv2"]),
    (["--layer", "input"], ["the Input"]),
    (["--layer", "conv1", "--top", "0"], ["--top"]),
    (["--layer", "conv1", "--split", "test"], ["--split"]),
    (["--layer", "conv1", "--image", "{tmp}/missing.png"], ["--image", "missing.png"]),
    (["--layer", "conv1", "--image", "{tmp}/notes.png"], ["--image", "notes.png"]),
    (["--layer", "conv1", "-o", "{tmp}/notes.png"], ["-o", "not a folder"]),
    (["--layer", "conv1", "--top"], ["--top"]),
])
def test_bad_input_is_one_line_and_status_2(project_path: Path, tmp_path: Path, capsys,
                                            args: list[str], words: list[str]) -> None:
    (tmp_path / "notes.png").write_text("not a picture")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, out, err = run(capsys, project_path, *args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("cnnstudio: "), err
    for word in words:
        assert word in err


def test_no_data_is_one_line_and_status_2(project_path: Path, capsys) -> None:
    project = read_project(project_path)
    project.data["source"] = {"kind": "folder", "path": "nowhere"}
    write_project(project, project_path)
    code, out, err = run(capsys, project_path, "--layer", "conv1")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "nowhere" in err and "cannot load the data" in err
    empty = project_path.parent / "empty"
    (empty / "a").mkdir(parents=True)
    project.data["source"] = {"kind": "folder", "path": "empty"}
    write_project(project, project_path)
    code, out, err = run(capsys, project_path, "--layer", "conv1")
    assert code == 2 and len(err.splitlines()) == 1 and "no usable image" in err


def test_progress_goes_to_a_terminals_stderr_but_not_with_json(project_path: Path, capsys,
                                                               monkeypatch) -> None:
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code, out, err = run(capsys, project_path, "--layer", "conv1", "--top", 1)
    assert code == 0 and out.startswith("layer conv1")
    steps = err.replace("\r", "\n").split("\n")
    assert any(s.startswith("finding the samples that excite each filter: 6/6 (100%)")
               for s in steps), err
    assert err.rstrip("\n").splitlines()[-1].startswith("cnnstudio: the project has no trained")
    code, out, err = run(capsys, project_path, "--layer", "conv1", "--top", 1, "--json")
    assert code == 0 and "finding" not in err and "\r" not in err


def test_an_empty_validation_split_searches_all_samples(project_path: Path, capsys) -> None:
    project = read_project(project_path)
    project.data["val_fraction"] = 0.0
    write_project(project, project_path)
    code, out, err = run(capsys, project_path, "--layer", "conv1", "--top", 1, "--json")
    assert code == 0 and json.loads(out)["split"] == "all"
    assert "the val split is empty: searched all samples" in err


def test_a_network_with_errors_is_status_1(project_path: Path, capsys) -> None:
    project = read_project(project_path)
    project.graph.set_param("conv2", "kernel_size", 20)  # larger than its 8×8 input
    write_project(project, project_path)
    code, out, err = run(capsys, project_path, "--layer", "conv1")
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and "the network has errors" in err and "conv2" in err


def test_pictures_of_two_layers_share_a_folder(project_path: Path, tmp_path: Path,
                                               capsys) -> None:
    out_dir = tmp_path / "both"
    for layer in ("conv1", "conv2"):
        code, _, err = run(capsys, project_path, "--layer", layer, "--top", 1, "-o", out_dir)
        assert code == 0, err
    names = {p.name for p in out_dir.iterdir()}
    assert {f"conv1_filter_{i}.png" for i in range(16)} <= names
    assert {f"conv2_filter_{i}.png" for i in range(32)} <= names
    assert not any(n.startswith("filter_") for n in names)


def test_an_image_for_a_segmentation_network_is_refused_before_the_data_loads(
        tmp_path: Path, capsys, monkeypatch) -> None:
    from cnnstudio.train.model_io import DataRequest

    path = tmp_path / "seg.cnnproj"
    assert main(["new", "--template", "unet", str(path)]) == 0
    image = tmp_path / "any.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    capsys.readouterr()

    def no_loading(*args, **kwargs):
        raise AssertionError("the data were loaded before the image was refused")

    monkeypatch.setattr(DataRequest, "load", no_loading)
    project = read_project(path)
    assert project.task == "segmentation"
    layer = next(n.id for n in project.graph if n.type == "Conv2d")
    code, out, err = run(capsys, path, "--layer", layer, "--image", image)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "classification" in err, err


def test_a_file_name_that_is_not_utf8_is_written_to_report_json(
        project_path: Path, tmp_path: Path, capsys) -> None:
    folder = project_path.parent / "pics" / "line"
    odd = bytes(folder) + b"/\xff\xfe.png"
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(odd.decode("utf-8", "surrogateescape"))
    out_dir = tmp_path / "odd"
    code, _, err = run(capsys, project_path, "--layer", "conv1", "--top", 40, "--split", "all",
                       "-o", out_dir)
    assert code == 0, err
    text = (out_dir / "report.json").read_bytes()
    assert text.isascii()
    files = {hit["file"] for f in json.loads(text)["filters"] for hit in f["top"]}
    assert odd.decode("utf-8", "surrogateescape") in files
    # stdout (table and JSON) escapes the name rather than failing
    for args in ((), ("--json",)):
        code, out, err = run(capsys, project_path, "--layer", "conv1", "--top", 40, "--split",
                             "all", *args)
        assert code == 0 and "\\udcff" in out, err
    assert odd.decode("utf-8", "surrogateescape") in {
        hit["file"] for f in json.loads(out)["filters"] for hit in f["top"]}


def test_the_untrained_notice_is_not_printed_when_writing_fails(project_path: Path,
                                                                tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "blocked"
    (out_dir / "report.json").mkdir(parents=True)  # a folder where the file should go
    code, out, err = run(capsys, project_path, "--layer", "conv1", "--top", 1, "-o", out_dir)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "cannot write" in err, err
