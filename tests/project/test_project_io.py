"""Reading and writing .cnnproj archives and bare JSON: round trips and malformed files."""

from __future__ import annotations

import copy
import json
import os
import pickle
import random
import zipfile
from pathlib import Path

import pytest

from cnnstudio.project import (
    Project,
    ProjectError,
    project_to_dict,
    read_project,
    write_project,
)
from cnnstudio.project import io as project_io

from .helpers import chain_graph, dag_graph, full_project, minimal_doc, weights_bytes, write_zip

RESUME = weights_bytes()[::-1][::-1]  # equal content, a distinct object


@pytest.mark.parametrize("make_graph", [chain_graph, dag_graph])
@pytest.mark.parametrize("suffix", [".cnnproj", ".json"])
def test_round_trip(tmp_path: Path, make_graph, suffix: str):
    project = full_project(make_graph())
    project.weights = weights_bytes()
    project.attachments = {"resume.safetensors": RESUME, "notes.txt": b"\x00\x01 raw"}
    path = tmp_path / f"net{suffix}"
    write_project(project, path)
    back = read_project(path)
    assert project_to_dict(back) == project_to_dict(project)
    assert back.path == path
    assert project.path is None  # write_project leaves the caller's project alone
    if suffix == ".cnnproj":
        assert back.weights == project.weights
        assert back.attachments == project.attachments
    else:  # a bare project.json holds no weights, by design
        assert back.weights is None and back.attachments == {}


def test_unknown_keys_survive_a_file_round_trip(tmp_path: Path):
    doc = minimal_doc(future={"a": [1, 2]})
    doc["graph"]["grid"] = 20
    doc["graph"]["nodes"][0]["note"] = "first"
    doc["data"]["source"]["mirror"] = "x"
    doc["training"]["optimizer"]["capturable"] = False
    (tmp_path / "in.json").write_text(json.dumps(doc), encoding="utf-8")
    write_project(read_project(tmp_path / "in.json"), tmp_path / "out.cnnproj")
    write_project(read_project(tmp_path / "out.cnnproj"), tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text("utf-8")) == {**doc, "runs": []}


def test_json_is_written_readably(tmp_path: Path):
    write_project(full_project(), tmp_path / "p.json")
    text = (tmp_path / "p.json").read_text("utf-8")
    assert text.endswith("}\n") and '\n  "version": 1,' in text
    assert "ünïcode" in text  # ensure_ascii=False
    with zipfile.ZipFile(_saved(tmp_path, full_project())) as archive:
        assert archive.read("project.json").decode() == text
        assert archive.namelist() == ["project.json"]


def _saved(tmp_path: Path, project: Project, name: str = "p.cnnproj") -> Path:
    write_project(project, tmp_path / name)
    return tmp_path / name


def test_files_are_recognised_by_content_not_extension(tmp_path: Path):
    project = full_project()
    project.weights = weights_bytes()
    archive = _saved(tmp_path, project)
    os.replace(archive, tmp_path / "archive.json")
    assert read_project(tmp_path / "archive.json").weights == project.weights
    write_project(project, tmp_path / "bare.json")
    os.replace(tmp_path / "bare.json", tmp_path / "bare.cnnproj")
    assert read_project(tmp_path / "bare.cnnproj").name == project.name
    (tmp_path / "bom.project").write_bytes(b"\xef\xbb\xbf\n " + json.dumps(minimal_doc()).encode())
    assert read_project(tmp_path / "bom.project").name == "Digits LeNet"


def test_an_empty_project_saves_and_reads(tmp_path: Path):
    back = read_project(_saved(tmp_path, Project()))
    assert (back.name, len(back.graph), back.runs) == ("Untitled", 0, [])


# ---- malformed files ---------------------------------------------------------------------

def _error(path: Path) -> str:
    with pytest.raises(ProjectError) as info:
        read_project(path)
    text = str(info.value)
    assert "\n" not in text and "\r" not in text
    return text


def _doc_bytes(**changes) -> bytes:
    return json.dumps(minimal_doc(**changes)).encode()


def test_bad_json_names_line_and_column(tmp_path: Path):
    path = tmp_path / "x.json"
    path.write_text('{\n  "format": "cnnstudio.project",\n  "version": 1\n  "name": 2}')
    assert _error(path) == "x.json: invalid JSON at line 4, column 3: Expecting ',' delimiter"
    write_zip(tmp_path / "x.cnnproj", {"project.json": "{]"})
    assert _error(tmp_path / "x.cnnproj") == (
        "x.cnnproj: invalid JSON in project.json at line 1, column 2:"
        " Expecting property name enclosed in double quotes")


@pytest.mark.parametrize(("content", "words"), [
    (b"\x89PNG" + random.Random(0).randbytes(256),
     "x.cnnproj: not a CNN Studio project (not a zip archive or JSON file)"),
    (b"", "the file is empty"),
    (b"PK\x03\x04 this is no zip at all", "damaged zip archive"),
    (_doc_bytes().replace(b"0.001", b"NaN"), "invalid JSON: NaN is not allowed"),
    (_doc_bytes().replace(b"0.001", b"-Infinity"), "-Infinity is not allowed"),
    (b"[1, 2]", "project.json must hold a JSON object"),
    (b'{"a": "\xff"}', "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
    (b'{"n": 1' + b"0" * 5000 + b"}", "invalid JSON"),
    (_doc_bytes(format="other"), 'format: expected "cnnstudio.project", got "other"'),
    (_doc_bytes(version=2), "x.cnnproj: this project was saved by a newer CNN Studio"
                            " (format version 2); this version reads up to 1"),
    (_doc_bytes(version="1"), 'version: must be an integer, got "1"'),
    (_doc_bytes(graph=...), "graph: missing"),
    (_doc_bytes(training={"optimizer": {"lr": -1}}),
     "x.cnnproj: training.optimizer.lr: must be > 0, got -1"),
    (_doc_bytes(training={"epochs": "ten"}), 'training.epochs: must be an integer, got "ten"'),
    (_doc_bytes(training={"batch_size": True}), "training.batch_size: must be an integer"),
])
def test_malformed_files_give_one_clear_line(tmp_path: Path, content: bytes, words: str):
    (tmp_path / "x.cnnproj").write_bytes(content)
    assert words in _error(tmp_path / "x.cnnproj")
    assert _error(tmp_path / "x.cnnproj").startswith("x.cnnproj: ")


def test_graph_faults_carry_the_full_json_path(tmp_path: Path):
    doc = minimal_doc()
    doc["graph"]["nodes"][1]["params"]["kernel_size"] = 0
    write_zip(tmp_path / "digits.cnnproj", {"project.json": json.dumps(doc)})
    with pytest.raises(ProjectError) as info:
        read_project(tmp_path / "digits.cnnproj")
    assert str(info.value) == ("digits.cnnproj: graph.nodes[1].params.kernel_size:"
                               " must be between 1 and 1024, got 0")
    assert info.value.cause is not None
    assert info.value.cause.path == "graph.nodes[1].params.kernel_size"
    assert info.value.path == tmp_path / "digits.cnnproj"


@pytest.mark.parametrize(("members", "words"), [
    ({}, "x.cnnproj: project.json is missing from the archive"),
    ({"weights.safetensors": weights_bytes()}, "project.json is missing from the archive"),
    ({"project.json": _doc_bytes(), "weights.safetensors": pickle.dumps({"a": 1})},
     "x.cnnproj: weights.safetensors is not a safetensors file"
     " (a pickle? CNN Studio never unpickles)"),
    ({"project.json": _doc_bytes(), "weights.safetensors": b"PK\x03\x04" + bytes(60)},
     "(a pickle? CNN Studio never unpickles)"),
    ({"project.json": _doc_bytes(), "weights.safetensors": weights_bytes()[:-10]},
     "weights.safetensors is truncated"),
    ({"project.json": _doc_bytes(), "resume.safetensors": pickle.dumps([1])},
     "resume.safetensors is not a safetensors file"),
])
def test_malformed_archives(tmp_path: Path, members: dict, words: str):
    write_zip(tmp_path / "x.cnnproj", members)
    assert words in _error(tmp_path / "x.cnnproj")


def test_a_torch_checkpoint_as_weights_is_never_unpickled(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    torch_like = write_zip(tmp_path / "model.pt", {"archive/data.pkl": pickle.dumps({"w": 1}),
                                                   "archive/version": "3"}).read_bytes()
    write_zip(tmp_path / "x.cnnproj", {"project.json": _doc_bytes(),
                                       "weights.safetensors": torch_like})
    assert "CNN Studio never unpickles" in _error(tmp_path / "x.cnnproj")


def test_member_over_the_size_limit_is_refused_before_reading(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    write_zip(tmp_path / "x.cnnproj", {"project.json": _doc_bytes(),
                                       "weights.safetensors": weights_bytes()})
    monkeypatch.setattr(project_io, "MAX_WEIGHTS_BYTES", 1000)
    opened: list[str] = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open",
                        lambda self, info, *a, **k: opened.append(info.filename)
                        or real_open(self, info, *a, **k))
    assert _error(tmp_path / "x.cnnproj") == (
        "x.cnnproj: weights.safetensors is 10.5 KiB; at most 1000 bytes allowed")
    assert opened == ["project.json"]  # weights refused on their declared size alone
    monkeypatch.setattr(project_io, "MAX_JSON_BYTES", 100)
    assert "x.cnnproj: project.json is 726 bytes; at most 100 bytes allowed" == _error(
        tmp_path / "x.cnnproj")


def test_a_member_that_lies_about_its_size_is_cut_at_the_declared_size(tmp_path: Path):
    path = write_zip(tmp_path / "x.cnnproj", {"project.json": _doc_bytes()},
                     compression=zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    true_size = len(_doc_bytes())
    small = true_size.to_bytes(4, "little")
    # Claim 100 bytes in both the local header and the central directory.
    for at in (22, data.rfind(b"PK\x01\x02") + 24):
        assert data[at:at + 4] == small
        data[at:at + 4] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert "project.json is damaged in the archive" in _error(path)


def test_too_many_members_is_refused_before_parsing_them(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    write_zip(tmp_path / "x.cnnproj", {"project.json": _doc_bytes(),
                                       **{f"junk{i}.txt": b"" for i in range(10)}})
    monkeypatch.setattr(project_io, "MAX_MEMBERS", 5)
    monkeypatch.setattr(zipfile, "ZipFile", lambda *a, **k: 1 / 0)
    assert "the archive has 11 members; a project has at most 5" in _error(tmp_path / "x.cnnproj")


def test_unsupported_compression_is_refused(tmp_path: Path):
    write_zip(tmp_path / "x.cnnproj", {"project.json": _doc_bytes()},
              compression=zipfile.ZIP_BZIP2)
    assert "unsupported compression method" in _error(tmp_path / "x.cnnproj")


def test_duplicate_members_are_refused(tmp_path: Path):
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(tmp_path / "x.cnnproj", {"project.json": _doc_bytes()})
        with zipfile.ZipFile(tmp_path / "x.cnnproj", "a") as archive:
            archive.writestr("project.json", _doc_bytes(name="evil"))
    assert "project.json appears twice in the archive" in _error(tmp_path / "x.cnnproj")


def test_members_with_paths_are_ignored_and_nothing_is_written(tmp_path: Path):
    folder = tmp_path / "inside"
    folder.mkdir()
    members = {"project.json": _doc_bytes(), "../evil.txt": b"x", "/abs.txt": b"x",
               "sub/../../evil2": b"x", "dir/resume.safetensors": b"x", "..": b"x",
               "a..b": b"x", ".hidden": b"x", "ok-name_1.bin": b"kept"}
    write_zip(folder / "x.cnnproj", members)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    project = read_project(folder / "x.cnnproj")
    assert project.attachments == {"ok-name_1.bin": b"kept"}
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_unreadable_paths(tmp_path: Path):
    assert _error(tmp_path / "missing.cnnproj") == (
        "cannot read missing.cnnproj: No such file or directory")
    (tmp_path / "dir.cnnproj").mkdir()
    assert _error(tmp_path / "dir.cnnproj").startswith("cannot read dir.cnnproj: ")


def test_a_big_bare_json_is_refused_before_reading(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "x.json").write_bytes(_doc_bytes())
    monkeypatch.setattr(project_io, "MAX_JSON_BYTES", 100)
    assert _error(tmp_path / "x.json") == "x.json: the file is larger than 100 bytes"


def test_entry_count_is_read_from_a_zip64_directory_too(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    with monkeypatch.context() as patch:
        patch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)  # forces a zip64 end record
        write_zip(tmp_path / "x.cnnproj", {"project.json": _doc_bytes(),
                                           **{f"junk{i}.txt": b"" for i in range(10)}})
    assert b"PK\x06\x06" in (tmp_path / "x.cnnproj").read_bytes()
    assert read_project(tmp_path / "x.cnnproj").name == "Digits LeNet"
    monkeypatch.setattr(project_io, "MAX_MEMBERS", 5)
    monkeypatch.setattr(zipfile, "ZipFile", lambda *a, **k: 1 / 0)
    assert "the archive has 11 members" in _error(tmp_path / "x.cnnproj")


def test_project_error_copies_keep_their_line(tmp_path: Path):
    err = ProjectError(tmp_path / "x.cnnproj", "No space\nleft", action="save")
    assert str(err) == "cannot save x.cnnproj: No space left"
    clone = copy.copy(err)
    assert (str(clone), clone.path, clone.reason) == (str(err), err.path, err.reason)


def test_relative_data_paths_resolve_against_the_project_folder(tmp_path: Path):
    project = full_project()
    assert project.resolve_path("images") == Path("images")
    write_project(project, tmp_path / "p.cnnproj")
    project = read_project(tmp_path / "p.cnnproj")
    source = project.data_settings()["source"]
    assert project.resolve_path(source["path"]) == tmp_path / "images"
    assert project.resolve_path(tmp_path / "abs") == tmp_path / "abs"
