"""Named hostile documents: deep nesting, huge numbers, duplicate and unicode ids, and a
million nodes — through `read_project`, the CLI (`summary`) and the window."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from cnnstudio.cli import main
from cnnstudio.core.ids import MAX_NODES
from cnnstudio.core.templates import TEMPLATES
from cnnstudio.project import ProjectError, read_project

from .helpers import assert_clean_exit, assert_one_line, run_cli
from .test_fuzz_project import check_readable_or_clear


def lenet() -> dict[str, Any]:
    return TEMPLATES["digits-lenet"].project_dict()


def save(path: Path, doc: dict[str, Any] | bytes) -> Path:
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    elif path.suffix == ".json":
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    else:
        import zipfile

        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("project.json", json.dumps(doc))
    return path


def summary(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str]:
    code = main(["summary", str(path)])
    _, err = capsys.readouterr()
    if code == 2:
        assert_one_line(err, where="on stderr")
    else:
        assert code in (0, 1) and err == "", (code, err)
    return code, err


# ---- deep nesting ---------------------------------------------------------------------------


def nested(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1"
                                                              + "}" * depth)


def deep_document(depth: int, kind: str, where: str) -> bytes:
    """The lenet document with a `depth`-deep list/object spliced in at `where`."""
    doc = lenet()
    marker = "\"__DEEP__\""
    if where == "top":
        doc["x_extra"] = "__DEEP__"
    elif where == "node":
        doc["graph"]["nodes"][1]["note"] = "__DEEP__"
    elif where == "params":
        doc["graph"]["nodes"][1]["params"]["kernel_size"] = "__DEEP__"
    elif where == "data":
        doc["data"]["source"]["future"] = "__DEEP__"
    else:
        doc["runs"] = ["__DEEP__"]
    return json.dumps(doc).replace(marker, nested(depth, kind)).encode("utf-8")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("suffix", [".json", ".cnnproj"])
def test_deep_nesting_is_a_clear_error_never_a_recursion_crash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str) -> None:
    refused = 0
    for depth in (50, 400, 900, 1_000, 3_000, 100_000):
        for kind in ("list", "object"):
            for where in ("top", "node", "params", "data", "runs"):
                path = tmp_path / f"deep{suffix}"
                raw = deep_document(depth, kind, where)
                if suffix == ".json":
                    path.write_bytes(raw)
                else:
                    import zipfile

                    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                        archive.writestr("project.json", raw)
                label = f"depth {depth} {kind} in {where}"
                if check_readable_or_clear(path, where=label) is None:
                    refused += 1
                    code, err = summary(capsys, path)
                    assert code == 2, label
    assert refused >= 20  # the 1,000-deep and deeper ones at least


def test_deep_nesting_in_the_window(window, tmp_path: Path) -> None:
    path = save(tmp_path / "deep.json", deep_document(100_000, "list", "top"))
    assert window.open_project(path) is False
    assert_one_line(window.last_error or "")
    assert "deep" in window.last_error
    assert window.project.name != "deep"  # the open project stays


# ---- huge numbers and wrong types -------------------------------------------------------------

# (where in the lenet document, raw JSON text put there)
NUMBERS = [
    ("conv.out_channels", "1e308"), ("conv.out_channels", "1e309"),
    ("conv.out_channels", str(2**63)), ("conv.out_channels", "-1"),
    ("conv.out_channels", "1" + "0" * 4000), ("conv.out_channels", "1" + "0" * 5000),
    ("conv.kernel_size", "[1e308, 1]"), ("conv.kernel_size", f"[{2**63}, {2**63}]"),
    ("conv.kernel_size", "-0"), ("conv.stride", "0"), ("conv.padding", "-1"),
    ("conv.padding", '"SAME"'), ("input.shape", f"[{2**20}, {2**20}, {2**20}]"),
    ("input.shape", "[1e308]"), ("input.shape", "[-1, 8, 8]"), ("input.shape", "[]"),
    ("flat.start_dim", str(2**40)), ("flat.start_dim", str(-2**63)),
    ("fc.out_features", "1e-400"), ("fc.out_features", "true"), ("fc.out_features", '"10"'),
    ("version", str(2**63)), ("version", "1.0"), ("version", "-1"), ("version", "1e400"),
    ("epochs", str(2**63)), ("epochs", "0"), ("lr", "1e308"), ("lr", "-1e308"),
    ("lr", "1e-400"), ("batch_size", "-1"), ("seed", str(2**64)), ("pos", "[1e308, 0]"),
    ("pos", "[-1e9, 1e9]"), ("pos", '["0", 0]'), ("val_fraction", "1e308"),
    ("name", "1e308"), ("task", "0"), ("nodes", "{}"), ("graph", "[]"), ("runs", "1e308"),
]


def number_document(where: str, raw: str) -> bytes:
    doc = lenet()
    nodes = {n["type"]: n for n in doc["graph"]["nodes"]}
    marker = '"__VALUE__"'
    head, _, key = where.partition(".")
    if head == "conv":
        nodes["Conv2d"]["params"][key] = "__VALUE__"
    elif head == "input":
        nodes["Input"]["params"][key] = "__VALUE__"
    elif head == "flat":
        nodes["Flatten"]["params"][key] = "__VALUE__"
    elif head == "fc":
        nodes["Linear"]["params"][key] = "__VALUE__"
    elif head in ("epochs", "batch_size", "seed"):
        doc["training"][head] = "__VALUE__"
    elif head == "lr":
        doc["training"]["optimizer"] = {"name": "SGD", "lr": "__VALUE__"}
    elif head == "pos":
        nodes["Conv2d"]["pos"] = "__VALUE__"
    elif head == "val_fraction":
        doc["data"]["val_fraction"] = "__VALUE__"
    elif head == "nodes":
        doc["graph"]["nodes"] = "__VALUE__"
    else:
        doc[head] = "__VALUE__"
    return json.dumps(doc).replace(marker, raw).encode("utf-8")


@pytest.mark.parametrize(("where", "raw"), NUMBERS, ids=[f"{w}={r[:12]}" for w, r in NUMBERS])
def test_huge_numbers_and_wrong_types(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      where: str, raw: str) -> None:
    path = save(tmp_path / "n.json", number_document(where, raw))
    project = check_readable_or_clear(path, where=f"{where}={raw[:20]}")
    code, _ = summary(capsys, path)
    assert (code == 2) == (project is None)


def test_huge_numbers_in_the_window(window, tmp_path: Path) -> None:
    for where, raw in NUMBERS:
        path = save(tmp_path / "n.json", number_document(where, raw))
        window.last_error = None
        opened = window.open_project(path)
        if opened:  # show every node in the inspector: a huge value must not crash it
            for node_id in window.project.graph.ids:
                window.document.set_selection([node_id])
        else:
            assert_one_line(window.last_error or "", where=f"{where}={raw[:20]}")


# ---- ids ----------------------------------------------------------------------------------------

UNICODE_IDS = ["ü名前", "Ωmega", "ﬁx", "x٣", "naïve_conv", "x\u0301", "٣x", "a\u202eb",
               "a b", "a.b", "a/b", "", "_hidden", "forward", "state_dict", "a" * 101]


@pytest.mark.parametrize("node_id", UNICODE_IDS)
def test_unicode_ids_are_accepted_or_refused_with_a_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], node_id: str) -> None:
    doc = lenet()
    old = doc["graph"]["nodes"][1]["id"]
    for node in doc["graph"]["nodes"]:
        node["id"] = node_id if node["id"] == old else node["id"]
        node["inputs"] = [node_id if s == old else s for s in node["inputs"]]
    path = save(tmp_path / "ids.json", doc)
    project = check_readable_or_clear(path, where=repr(node_id))
    code, _ = summary(capsys, path)
    if project is None:
        assert code == 2
        return
    assert code == 0 and node_id in project.graph
    # An accepted id must survive being a torch module name and a safetensors key.
    from cnnstudio.nn import build_module, load_weights, weights_to_bytes

    module = build_module(project.graph)
    load_weights(build_module(project.graph), weights_to_bytes(module))


def test_duplicate_ids_are_refused_with_the_json_path(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    doc = lenet()
    doc["graph"]["nodes"][2]["id"] = doc["graph"]["nodes"][1]["id"]
    path = save(tmp_path / "dup.cnnproj", doc)
    with pytest.raises(ProjectError, match=r"graph\.nodes\[2\]\.id: duplicate id"):
        read_project(path)
    assert summary(capsys, path)[0] == 2


# ---- a million nodes ------------------------------------------------------------------------------


def chain_document(count: int) -> bytes:
    """`count` nodes: an Input then a chain of ReLUs, written compactly and quickly."""
    head = '{"format":"cnnstudio.project","version":1,"graph":{"nodes":[' \
           '{"id":"input","type":"Input","params":{"shape":[1,8,8]},"inputs":[]}'
    body = "".join(f',{{"id":"r{i}","type":"ReLU","params":{{}},"inputs":["'
                   f'{"input" if i == 1 else f"r{i - 1}"}"]}}' for i in range(1, count))
    return (head + body + "]}}").encode("ascii")


@pytest.mark.timeout(60)
def test_one_node_over_the_limit_is_refused_quickly(tmp_path: Path) -> None:
    path = save(tmp_path / "big.json", chain_document(MAX_NODES + 1))
    start = time.perf_counter()
    with pytest.raises(ProjectError, match=f"at most {MAX_NODES:,}"):
        read_project(path)
    assert time.perf_counter() - start < 5


@pytest.mark.timeout(120)
def test_a_million_nodes_is_refused_in_bounded_memory_and_time(tmp_path: Path) -> None:
    path = save(tmp_path / "million.json", chain_document(10**6))  # 64 MB, under the limit
    start = time.perf_counter()
    result = run_cli("summary", str(path), memory_mb=1200, timeout=90)
    message = assert_clean_exit(result, 2)
    assert "1,000,000 nodes" in message and f"at most {MAX_NODES:,}" in message
    assert time.perf_counter() - start < 60


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_graph_at_the_node_limit_still_opens(tmp_path: Path) -> None:
    path = save(tmp_path / "limit.json", chain_document(MAX_NODES))
    start = time.perf_counter()
    assert len(read_project(path).graph) == MAX_NODES
    assert time.perf_counter() - start < 60


# ---- file names and recovery files ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["a\nb.json", "tab\there.cnnproj", "nul\x00.json",
                                  "x" * 300 + ".cnnproj", "ü名前\u2028.json"])
def test_odd_file_names_give_one_printable_line(tmp_path: Path, name: str) -> None:
    from cnnstudio.project import write_project

    from .helpers import template_project

    path = tmp_path / name
    for action in (lambda: read_project(path),
                   lambda: write_project(template_project("xo"), path / "x.json")):
        with pytest.raises(ProjectError) as info:
            action()
        assert_one_line(str(info.value))
        assert str(info.value).isprintable(), repr(str(info.value))


@pytest.mark.parametrize("info", [{"path": 5}, {"path": ["a"]}, "text", None,
                                  {"path": "/no/such/dir/p.cnnproj"}, {"path": "\x00"},
                                  {"path": "x" * 5000}, {"path": ""}])
def test_hostile_recovery_files_open_or_explain(window, info: Any) -> None:
    """A recovery file is a project file too, with one key of ours that may be junk."""
    from cnnstudio.ui import autosave

    from .helpers import template_project

    project = template_project("xo")
    project.extra[autosave.RECOVERY_KEY] = info
    folder = autosave.recovery_dir()
    folder.mkdir(parents=True, exist_ok=True)
    from cnnstudio.project import write_project

    write_project(project, folder / "junk.cnnproj")
    assert "junk" in autosave.describe(folder / "junk.cnnproj") or "X vs O" in \
        autosave.describe(folder / "junk.cnnproj")
    if window.recover(folder / "junk.cnnproj"):
        assert window.project.name == "X vs O"
        assert window.autosaver.save_now() is not None or window.autosaver.target.exists()
    else:
        assert_one_line(window.last_error or "")
