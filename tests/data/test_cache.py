"""The disk cache: hits skip decoding, changes invalidate, corrupt entries are rebuilt,
and datasets over the memory budget are served memory-mapped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnstudio.data import cache, clear_cache, default_cache_dir, load_dataset
from cnnstudio.data.sources import images

from .helpers import gray, make_class_folder, truncated_png

SHAPE = [1, 8, 8]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = make_class_folder(tmp_path / "pics", {"a": [gray(10), gray(20)], "b": [gray(30)]})
    truncated_png(root / "b" / "bad.png")
    return root


def forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("decoded although cached")
    monkeypatch.setattr(images, "decode_image", boom)
    monkeypatch.setattr(images, "open_image", boom)


def entries(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.iterdir() if p.is_dir()) if cache_dir.exists() else []


def test_second_load_does_not_decode(folder: Path, private_cache: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE)
    (entry,) = entries(private_cache)
    assert {p.name for p in entry.iterdir()} == {"x.npy", "y.npy", "meta.json"}
    forbid_decoding(monkeypatch)
    second = load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE)
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    assert second.class_names == ["a", "b"]
    assert [(Path(s.path), s.reason) for s in second.skipped] == [
        (Path(s.path), s.reason) for s in first.skipped]
    assert Path(second.skipped[0].path) == folder / "b" / "bad.png"


def test_cache_dir_argument_overrides_environment(folder: Path, tmp_path: Path,
                                                  private_cache: Path) -> None:
    assert default_cache_dir() == private_cache
    load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE,
                 cache_dir=tmp_path / "elsewhere")
    assert len(entries(tmp_path / "elsewhere")) == 1 and entries(private_cache) == []


def test_changed_mtime_or_shape_invalidates(folder: Path, private_cache: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE)
    target = folder / "a" / "000.png"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    calls = []
    real = images.decode_image
    monkeypatch.setattr(images, "decode_image", lambda *a: calls.append(a) or real(*a))
    load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE)
    assert len(calls) == 4  # everything decoded again: 3 good files and the truncated one
    load_dataset({"kind": "folder", "path": folder}, input_shape=[1, 4, 4])
    assert len(calls) == 8
    assert len(entries(private_cache)) == 3


def test_corrupt_entry_is_rebuilt(folder: Path, private_cache: Path) -> None:
    first = load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE)
    (entry,) = entries(private_cache)
    (entry / "x.npy").write_bytes(b"\x93NUMPY garbage")
    again = load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE)
    assert torch.equal(first.x, again.x)
    np.testing.assert_array_equal(np.load(entry / "x.npy"), first.x.numpy())
    (entry / "meta.json").write_text("{not json")
    assert torch.equal(load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE).x,
                       first.x)
    assert json.loads((entry / "meta.json").read_text())["version"] == cache.CACHE_VERSION


def test_no_temporary_files_are_left(folder: Path, private_cache: Path) -> None:
    load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE)
    load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE, memory_budget=1)
    leftovers = [p for e in entries(private_cache) for p in e.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_over_budget_is_memory_mapped(folder: Path, private_cache: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    in_memory = load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE)
    mapped = load_dataset({"kind": "folder", "path": folder}, input_shape=[1, 8, 8],
                          cache_dir=private_cache / "small", memory_budget=64)
    assert torch.equal(in_memory.x, mapped.x) and torch.equal(in_memory.y, mapped.y)
    (entry,) = entries(private_cache / "small")
    path = str(entry / "x.npy")
    maps = Path("/proc/self/maps")
    if maps.exists():
        assert path in maps.read_text()
    # copy-on-write: writing into the tensor changes neither the cache nor a later load
    mapped.x[0, 0, 0, 0] = 99
    assert np.load(path)[0, 0, 0, 0] == 10
    forbid_decoding(monkeypatch)
    reloaded = load_dataset({"kind": "folder", "path": folder}, input_shape=[1, 8, 8],
                            cache_dir=private_cache / "small", memory_budget=64)
    assert reloaded.x[0, 0, 0, 0] == 10
    assert reloaded.mean == pytest.approx(in_memory.mean)


def test_unwritable_cache_still_loads(folder: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    ds = load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE, cache_dir=blocker)
    assert len(ds.x) == 3


def test_builtins_are_not_cached(private_cache: Path) -> None:
    load_dataset({"kind": "builtin", "name": "xo"}, input_shape=[1, 9, 9])
    assert entries(private_cache) == []


def test_clear_cache_removes_entries_only(folder: Path, private_cache: Path) -> None:
    load_dataset({"kind": "folder", "path": folder}, input_shape=SHAPE)
    (private_cache / "mine").mkdir()
    assert clear_cache() == 1
    assert [p.name for p in private_cache.iterdir()] == ["mine"]


def test_memory_budget_default_is_a_quarter_of_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache.default_memory_budget() == cache.total_ram() // 4
    monkeypatch.setattr(cache, "total_ram", lambda: None)
    assert cache.default_memory_budget() == 2 << 30


def test_cache_key_depends_on_everything_it_should() -> None:
    base = cache.cache_key(["folder", [["a/1.png", 10, 5]]], (1, 8, 8), "classification")
    assert base == cache.cache_key(["folder", [["a/1.png", 10, 5]]], (1, 8, 8), "classification")
    assert base != cache.cache_key(["folder", [["a/1.png", 11, 5]]], (1, 8, 8), "classification")
    assert base != cache.cache_key(["folder", [["a/1.png", 10, 6]]], (1, 8, 8), "classification")
    assert base != cache.cache_key(["folder", [["a/2.png", 10, 5]]], (1, 8, 8), "classification")
    assert base != cache.cache_key(["folder", [["a/1.png", 10, 5]]], (3, 8, 8), "classification")
