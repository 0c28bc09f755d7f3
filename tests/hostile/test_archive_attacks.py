"""Hostile archives: zip bombs, lying sizes, `../` members, pickles and torch checkpoints
in place of the weights, and weights that do not fit the graph.

Promises: size limits hold before a byte is decompressed, memory stays bounded (checked
under RLIMIT_AS in a subprocess and with tracemalloc), nothing is written outside the
archive, nothing is ever unpickled (tripwires on pickle and torch.load, and a payload that
would leave a marker file if it ever ran), and every case is one clear line.
"""

from __future__ import annotations

import io
import json
import pickle
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from cnnstudio.cli import main
from cnnstudio.project import ProjectError, project_to_dict, read_project, write_project
from cnnstudio.project import io as project_io

from .helpers import (
    Member,
    assert_clean_exit,
    assert_one_line,
    deflate_bomb,
    project_json,
    raw_zip,
    run_cli,
    template_project,
    tree_snapshot,
)

GiB = 1024**3


def error_of(path: Path) -> str:
    with pytest.raises(ProjectError) as info:
        read_project(path)
    assert_one_line(str(info.value))
    return str(info.value)


def opened_members(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the members zipfile is asked to open (decompress), in order."""
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(self: zipfile.ZipFile, info, *args, **kwargs):  # noqa: ANN001
        opened.append(getattr(info, "filename", info))
        return real_open(self, info, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    return opened


# ---- zip bombs and lying sizes -------------------------------------------------------------


def test_a_member_declared_over_its_limit_is_refused_before_decompressing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.cnnproj"
    path.write_bytes(raw_zip([Member("project.json", project_json(), declared_size=4 * GiB - 1)]))
    opened = opened_members(monkeypatch)
    assert "project.json is 4 GiB; at most 64 MiB allowed" in error_of(path)
    assert opened == []


def error_and_peak_memory(path: Path) -> tuple[str, int]:
    """The one-line error reading `path` gives, and the peak Python memory meanwhile."""
    tracemalloc.start()
    try:
        message = error_of(path)
        return message, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_deflate_bomb_within_the_size_limit_is_refused_by_its_ratio(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb, crc = deflate_bomb(200 * 1024**2)  # 200 MiB of zeros in ~200 KiB
    path = tmp_path / "bomb.cnnproj"
    path.write_bytes(raw_zip([
        Member("project.json", project_json()),
        Member("weights.safetensors", b"", zipfile.ZIP_DEFLATED, 200 * 1024**2, crc,
               payload=bomb)]))
    opened = opened_members(monkeypatch)
    message, peak = error_and_peak_memory(path)
    assert "weights.safetensors would unpack from" in message and "zip bomb" in message
    assert opened == ["project.json"]  # the bomb was judged on its directory entry alone
    assert peak < 20 * 1024**2


def test_a_member_lying_small_is_cut_at_its_declared_size(tmp_path: Path) -> None:
    bomb, _ = deflate_bomb(128 * 1024**2)  # claims 1 KiB, would inflate to 128 MiB
    path = tmp_path / "liar.cnnproj"
    path.write_bytes(raw_zip([
        Member("project.json", project_json()),
        Member("weights.safetensors", b"", zipfile.ZIP_DEFLATED, 1024, 0, payload=bomb)]))
    message, peak = error_and_peak_memory(path)
    assert "weights.safetensors is damaged in the archive" in message
    assert peak < 20 * 1024**2


def bomb_archive(path: Path, size: int) -> Path:
    bomb, crc = deflate_bomb(size)
    path.write_bytes(raw_zip([
        Member("project.json", project_json()),
        Member("weights.safetensors", b"", zipfile.ZIP_DEFLATED, size, crc, payload=bomb)]))
    assert path.stat().st_size < size // 500
    return path


@pytest.mark.timeout(120)
def test_a_bomb_is_refused_in_a_small_address_space(tmp_path: Path) -> None:
    path = bomb_archive(tmp_path / "bomb.cnnproj", 256 * 1024**2)
    message = assert_clean_exit(run_cli("summary", str(path), memory_mb=250), 2)
    assert "zip bomb" in message


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_without_the_ratio_guard_a_gigabyte_bomb_is_still_one_clear_line(
        tmp_path: Path) -> None:
    """Under RLIMIT_AS, with the guard switched off by a tiny wrapper, the MemoryError of
    a 1 GiB allocation becomes a message too (the second line of defence)."""
    path = bomb_archive(tmp_path / "gig.cnnproj", GiB)
    script = tmp_path / "unguarded.py"
    script.write_text("import sys\nfrom cnnstudio.project import io\nio.MAX_RATIO = 10**9\n"
                      "from cnnstudio.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    result = run_cli("summary", str(path), memory_mb=600, script=script)
    assert "does not fit in memory" in assert_clean_exit(result, 2)


def test_our_own_big_saves_pass_the_ratio_guard(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Zero weights compress endlessly, but our saves store tensors: ratio 1.
    monkeypatch.setattr(project_io, "RATIO_FLOOR", 1024)
    project = template_project("xo")
    import numpy as np
    from safetensors.numpy import save

    project.weights = save({"w": np.zeros(1_000_000, np.float32)})
    write_project(project, tmp_path / "zeros.cnnproj")
    assert read_project(tmp_path / "zeros.cnnproj").weights == project.weights


# ---- paths outside the archive ---------------------------------------------------------------

EVIL_NAMES = ["../evil.txt", "../../evil2.txt", "/tmp/evil3.txt", "..\\evil4.txt",
              "weights.safetensors/../../evil5", "sub/../../evil6", "C:\\evil7.txt",
              "./project.json", "project.json/", "\u2024\u2024/evil8"]


def test_members_with_paths_are_never_written_anywhere(tmp_path: Path, window,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    inside = tmp_path / "a" / "b"
    inside.mkdir(parents=True)
    monkeypatch.chdir(inside)
    path = inside / "evil.cnnproj"
    path.write_bytes(raw_zip([Member("project.json", project_json())]
                             + [Member(n, b"pwned") for n in EVIL_NAMES]))
    before = tree_snapshot(tmp_path)
    project = read_project(path)
    assert project.attachments == {}
    assert main(["summary", str(path)]) in (0, 1)
    assert window.open_project(path) is True
    window.save_project(tmp_path / "saved.cnnproj")
    after = tree_snapshot(tmp_path) - before
    assert {Path(p).name for p in after} == {"saved.cnnproj"}, after
    for name in EVIL_NAMES:  # where an extracting reader would have put them
        assert not (inside / name).exists() and not Path("/tmp", Path(name).name).exists()
    with zipfile.ZipFile(tmp_path / "saved.cnnproj") as archive:
        assert archive.namelist() == ["project.json"]  # the evil members were not carried


# ---- pickles and torch checkpoints -----------------------------------------------------------


class Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.marker, "w"))


def evil_blobs(marker: Path) -> dict[str, bytes]:
    import torch

    legacy, modern = io.BytesIO(), io.BytesIO()
    torch.save({"fc.weight": torch.zeros(2, 2), "x": Payload(marker)}, modern)
    torch.save({"x": Payload(marker)}, legacy, _use_new_zipfile_serialization=False)
    return {
        "pickle-0": pickle.dumps(Payload(marker), protocol=0),
        "pickle-2": pickle.dumps(Payload(marker), protocol=2),
        "pickle-5": pickle.dumps(Payload(marker), protocol=5),
        "torch-zip": modern.getvalue(),
        "torch-legacy": legacy.getvalue(),
    }


@pytest.mark.parametrize("member", ["weights.safetensors", "resume.safetensors", "model.pt"])
def test_pickles_and_torch_files_are_never_unpickled(
        tmp_path: Path, no_unpickling: list[str], window, member: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "CODE-RAN"
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.new("L", (8, 8), 128).save(image)
    for kind, blob in evil_blobs(marker).items():
        path = tmp_path / f"{kind}.cnnproj"
        project = template_project("digits-lenet", weights=member != "weights.safetensors")
        members = [Member("project.json", project_json(project_to_dict(project)))]
        if project.weights is not None:
            members.append(Member("weights.safetensors", project.weights))
        members.append(Member(member, blob))
        path.write_bytes(raw_zip(members))
        if member.endswith(".safetensors"):  # refused when read: a pickle is no safetensors
            assert "CNN Studio never unpickles" in error_of(path) or "not a safetensors" \
                in error_of(path)
            assert main(["summary", str(path)]) == 2
            assert main(["predict", str(path), str(image)]) == 2
            assert main(["train", str(path), "--epochs", "1"]) == 2
            assert window.open_project(path) is False
            assert_one_line(window.last_error or "")
        else:  # an attachment we do not know: kept as bytes, never interpreted
            assert read_project(path).attachments[member] == blob
            assert main(["predict", str(path), str(image)]) in (0, 1)
        for line in capsys.readouterr().err.splitlines():
            assert "Traceback" not in line
        assert not marker.exists(), f"{kind} as {member} ran code"


def test_a_pickled_project_file_is_refused_in_a_fresh_process(tmp_path: Path) -> None:
    marker = tmp_path / "CODE-RAN"
    for kind, blob in evil_blobs(marker).items():
        for suffix in (".cnnproj", ".json"):
            path = tmp_path / f"{kind}{suffix}"
            path.write_bytes(blob)
            if kind == "pickle-0" or suffix == ".json":
                result = run_cli("summary", str(path))
                assert_clean_exit(result, 2)
    assert not marker.exists()


# ---- weights that do not fit the graph ----------------------------------------------------------


def mismatched_project(tmp_path: Path) -> Path:
    """lenet5's graph carrying digits-lenet's weights (names and shapes differ)."""
    project = template_project("lenet5")
    project.weights = template_project("digits-lenet", weights=True).weights
    path = tmp_path / "mismatch.cnnproj"
    write_project(project, path)
    return path


def test_mismatched_weights_are_one_line_when_the_model_is_loaded(tmp_path: Path) -> None:
    from cnnstudio.nn import WeightsError, build_module, load_weights

    project = read_project(mismatched_project(tmp_path))  # the file itself is sound
    module = build_module(project.graph)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(WeightsError) as info:
        load_weights(module, project.weights)
    assert_one_line(str(info.value))
    assert str(info.value).startswith("weights don't fit the graph:")
    assert all((before[k] == v).all() for k, v in module.state_dict().items())  # untouched


def test_mismatched_weights_through_the_cli(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    image = tmp_path / "x.png"
    Image.new("L", (8, 8)).save(image)
    path = mismatched_project(tmp_path)
    assert main(["predict", str(path), str(image)]) == 1
    err = capsys.readouterr().err
    assert_one_line(err)
    assert err.startswith("cnnstudio: weights don't fit the graph")
    # Training starts afresh and says why (the old weights are no use to this graph).
    assert main(["train", str(path), "--epochs", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "weights do not fit the graph" in json.loads(out.splitlines()[-1])["message"]
    assert read_project(path).runs[-1]["status"] == "completed"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mismatched_weights_through_the_cli_process(tmp_path: Path) -> None:
    from PIL import Image

    image = tmp_path / "x.png"
    Image.new("L", (8, 8)).save(image)
    path = mismatched_project(tmp_path)
    message = assert_clean_exit(run_cli("predict", str(path), str(image)), 1)
    assert "weights don't fit the graph" in message
    result = run_cli("train", str(path), "--epochs", "1", timeout=240)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


# ---- resume state that is valid safetensors but hostile inside --------------------------------

HOSTILE_RESUME = [
    pytest.param({"optimizer": {"$map": 5}}, id="map-of-int"),
    pytest.param({"records": {"$float": "zz"}}, id="bad-float"),
    pytest.param({"model": {"$t": ["not", "a", "key"]}}, id="unhashable-tensor-ref"),
    pytest.param({"epoch": "x"}, id="epoch-text"),
    pytest.param({"settings": [1]}, id="settings-list"),
]


@pytest.mark.parametrize("meta", HOSTILE_RESUME)
def test_crafted_resume_state_trains_afresh(tmp_path: Path, meta: dict,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    from safetensors.numpy import save

    project = template_project("xo")
    project.training = {"epochs": 1}
    project.runs = [{"id": "run-1", "status": "stopped"}]
    doc = {"format": "cnnstudio.resume", "version": 1, **meta}
    project.attachments["resume.safetensors"] = save(
        {"a": np.zeros(1, np.float32)}, metadata={"cnnstudio.resume": json.dumps(doc)})
    path = tmp_path / "r.cnnproj"
    write_project(project, path)
    code = main(["train", str(path)])
    assert "internal error" not in capsys.readouterr().err
    assert code == 0
