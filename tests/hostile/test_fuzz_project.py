"""Fuzzing project files: mutated real files and hypothesis-made documents.

Every case must end in one of two ways: the project reads (and then everything downstream
of reading — shape inference, the summary, saving it back — works), or `read_project`
raises ProjectError whose message is one line. Never another exception, never a hang
(pytest-timeout), never a traceback. The default suite runs a few hundred cases; the
`slow` suite runs over 10,000.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from cnnstudio.core import registry
from cnnstudio.core.errors import FormatError
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.core.summary import summary_rows, summary_text
from cnnstudio.project import (
    Project,
    ProjectError,
    project_from_dict,
    project_to_dict,
    read_project,
    write_project,
)

from .helpers import FAST, SLOW, assert_one_line, mutate, seeds, template_docs

# ---- what every case must satisfy ---------------------------------------------------------


def check_readable_or_clear(path: Path, where: str = "") -> Project | None:
    """read_project gives a project or a one-line ProjectError; a project must then be
    usable: inferred, summarized and saved back without an exception."""
    try:
        project = read_project(path)
    except ProjectError as err:
        assert_one_line(str(err), where=where)
        assert str(err).startswith(path.name), str(err)
        return None
    check_usable(project, path.with_name(path.name + ".out.cnnproj"))
    return project


def check_usable(project: Project, out: Path) -> None:
    inference = infer_shapes(project.graph, task=project.task, num_classes=10)
    summary_rows(project.graph, inference)
    summary_text(project.name, project.graph, inference)
    for problem in inference.problems:
        assert_one_line(problem.message, where=f"problem on {problem.node}")
    try:
        write_project(project, out, backup=False)
    except ProjectError as err:  # e.g. nesting the writer cannot hold: still one line
        assert_one_line(str(err))
        return
    again = read_project(out)
    assert project_to_dict(again) == project_to_dict(project)
    assert again.weights == project.weights


# ---- mutations of real files ----------------------------------------------------------------


def run_mutations(tmp_path: Path, cases: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    outcome = {"read": 0, "refused": 0}
    pool = seeds()
    for case in range(cases):
        origin = rng.choice(pool)
        data = mutate(origin.data, rng)
        path = tmp_path / f"case{Path(origin.name).suffix}"
        path.write_bytes(data)
        project = check_readable_or_clear(path, where=f"(seed {seed}, case {case}, "
                                                      f"from {origin.name})")
        outcome["read" if project is not None else "refused"] += 1
    return outcome


@pytest.mark.timeout(60)
def test_mutated_real_files_fast(tmp_path: Path) -> None:
    outcome = run_mutations(tmp_path, 400, seed=7)
    assert outcome["refused"] > 100  # the mutations do reach the error paths


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("seed", range(4))
def test_mutated_real_files_volume(tmp_path: Path, seed: int) -> None:
    run_mutations(tmp_path, 2500, seed=1000 + seed)


# ---- hypothesis: hostile values anywhere in a real document ---------------------------------

_EDGE_NUMBERS = [2**63, -2**63, 2**64 + 1, 10**300, -1, 0, 1, 2**31, 1e308, -1e308, 5e-324,
                 -0.0, 0.5, 1e-308, 65536, 2**20 + 1]
_EDGE_TEXT = ["", " ", "same", "valid", "ü名前", "\u202edesrever", "\x00", "input", "../x",
              "a" * 101, "Conv2d", "forward", "_private", "1abc", "NaN", "Infinity", "None"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(_EDGE_NUMBERS),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(_EDGE_TEXT))
hostile_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=8) | st.sampled_from(_EDGE_TEXT), inner, max_size=4),
    max_leaves=12)
_PARAM_NAMES = sorted({p.name for layer in registry.all_types() for p in layer.params}
                      | {"in_channels", "in_features", "bogus"})


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


def _replace(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


@st.composite
def hostile_documents(draw: st.DrawFn) -> Any:
    """A template's document with one to four values replaced, keys added or removed."""
    doc = draw(st.sampled_from(template_docs()))
    doc = json.loads(json.dumps(doc))  # a private copy
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "add", "drop"]))
        target = doc
        for key in path:
            target = target[key]
        if action == "add" and isinstance(target, dict):
            key = draw(st.sampled_from(_PARAM_NAMES) | st.sampled_from(_EDGE_TEXT))
            target[key] = draw(hostile_values)
        elif action == "drop" and path:
            parent = _replace(doc, (), doc)
            for key in path[:-1]:
                parent = parent[key]
            del parent[path[-1]]
        else:
            doc = _replace(doc, path, draw(hostile_values))
    return doc


def check_document(doc: Any, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"doc{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    else:
        import zipfile

        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("project.json", json.dumps(doc))
    project = check_readable_or_clear(path, where=f"document {json.dumps(doc)[:300]}")
    event("read" if project is not None else "refused")  # see --hypothesis-show-statistics
    try:  # the same document straight through the schema: FormatError, one line
        project_from_dict(doc)
    except FormatError as err:
        assert_one_line(str(err))


@FAST
@given(doc=hostile_documents(), suffix=st.sampled_from([".json", ".cnnproj"]))
def test_hostile_values_anywhere_fast(tmp_path: Path, doc: Any, suffix: str) -> None:
    check_document(doc, tmp_path, suffix)


@pytest.mark.slow
@SLOW
@given(doc=hostile_documents(), suffix=st.sampled_from([".json", ".cnnproj"]))
def test_hostile_values_anywhere_volume(tmp_path: Path, doc: Any, suffix: str) -> None:
    check_document(doc, tmp_path, suffix)


# ---- hypothesis: graphs made of hostile nodes -----------------------------------------------

_IDS = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True),
    st.sampled_from(["input", "conv1", "fc", "ü名前", "Ωmega", "x\u0301", "ﬁx", "a-b", "1x",
                     "_x", "forward", "state_dict", "", "a" * 100, "a" * 101, "٣x", "x٣"]),
    st.text(max_size=6), st.integers(), st.none())
_TYPES = st.one_of(st.sampled_from([t.name for t in registry.all_types()]), st.sampled_from(["", "conv2d", "Lambda",
                                                                      "__import__", "eval"]))


@st.composite
def hostile_graphs(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly plausible graphs (valid ids, earlier nodes as inputs, starting params) with
    hostile ids, types, params, inputs and positions mixed in."""
    count = draw(st.integers(0, 8))
    ids = [draw(st.just(f"n{i}") | _IDS) for i in range(count)]
    nodes = []
    for i, node_id in enumerate(ids):
        type_name = draw(_TYPES)
        start = (registry.get(type_name).initial_params() if registry.exists(type_name)
                 else {})
        params = draw(st.just(start) | st.dictionaries(
            st.sampled_from(_PARAM_NAMES), hostile_values | st.integers(-3, 40), max_size=3))
        earlier = ids[:i] or ["input"]
        inputs = draw(st.lists(st.sampled_from(earlier), max_size=2) | st.lists(_IDS, max_size=3))
        node: dict[str, Any] = {"id": node_id, "type": type_name, "params": params,
                                "inputs": inputs}
        if draw(st.booleans()):
            node["pos"] = draw(st.lists(hostile_values, max_size=3))
        if draw(st.booleans()):  # frozen nodes, and the key's hostile values
            node["trainable"] = draw(st.booleans() | hostile_values)
        nodes.append(node)
    graph: dict[str, Any] = {"nodes": nodes}
    if draw(st.booleans()):  # blocks: real and hostile ids, nesting, cycles, bad values
        group_ids = [draw(st.just(f"g{i}") | _IDS) for i in range(draw(st.integers(0, 4)))]
        members = st.sampled_from(ids + group_ids) if ids or group_ids else _IDS
        graph["groups"] = [
            {"id": group_id, "name": draw(st.just(f"Block {i}") | hostile_values),
             "nodes": draw(st.lists(members, max_size=4) | hostile_values),
             "collapsed": draw(st.booleans() | hostile_values),
             **({"fold_shift": draw(hostile_values | st.floats())} if draw(st.booleans())
                else {})}
            for i, group_id in enumerate(group_ids)] if draw(st.booleans()) else draw(
                hostile_values)
    if draw(st.booleans()):
        graph["direction"] = draw(st.sampled_from(["down", "right"]) | hostile_values)
    return {"format": "cnnstudio.project", "version": 1, "graph": graph}


@FAST
@given(doc=hostile_graphs())
def test_hostile_graphs_fast(tmp_path: Path, doc: dict[str, Any]) -> None:
    check_document(doc, tmp_path, ".json")


@pytest.mark.slow
@SLOW
@given(doc=hostile_graphs())
def test_hostile_graphs_volume(tmp_path: Path, doc: dict[str, Any]) -> None:
    check_document(doc, tmp_path, ".json")


@st.composite
def hostile_groups(draw: st.DrawFn) -> dict[str, Any]:
    """A valid template with blocks over its real node ids: nesting, sharing, cycles, ids
    clashing with nodes, folded with odd shifts."""
    doc = draw(st.sampled_from(template_docs()))
    ids = [node["id"] for node in doc["graph"]["nodes"]]
    if draw(st.booleans()):  # plausible: disjoint runs of nodes, each nested in the next
        cuts = sorted(draw(st.lists(st.integers(0, len(ids)), min_size=2, max_size=6)))
        groups: list[dict[str, Any]] = []
        for i, (a, b) in enumerate(itertools.pairwise(cuts)):
            nodes = ids[a:b] + ([groups[-1]["id"]] if groups and draw(st.booleans()) else [])
            if nodes:
                groups.append({"id": f"g{i}", "name": f"Block {i}", "nodes": nodes,
                               "collapsed": draw(st.booleans()),
                               "fold_shift": draw(st.floats(0, 1e4))})
        doc["graph"]["groups"] = groups
        return doc
    group_ids = [draw(st.just(f"g{i}") | st.sampled_from(ids)) for i in range(draw(
        st.integers(1, 5)))]
    members = st.sampled_from(ids + group_ids)
    doc["graph"]["groups"] = [
        {"id": group_id, "name": f"Block {i}", "nodes": draw(st.lists(members, max_size=5)),
         "collapsed": draw(st.booleans()),
         "fold_shift": draw(st.floats(0, 1e4) | st.integers(-5, 5))}
        for i, group_id in enumerate(group_ids)]
    return doc


@FAST
@given(doc=hostile_groups())
def test_hostile_groups_fast(tmp_path: Path, doc: dict[str, Any]) -> None:
    event("read" if _reads(doc) else "refused")
    check_document(doc, tmp_path, ".json")


def _reads(doc: dict[str, Any]) -> bool:
    try:
        project_from_dict(doc)
    except (ProjectError, FormatError):
        return False
    return True


# ---- the same files through the command line and the window -------------------------------


def through_cli_and_window(tmp_path: Path, capsys: pytest.CaptureFixture[str], window,
                           cases: int, seed: int) -> None:
    """`cnnstudio summary` exits 2 with one line exactly when the file is unreadable, else
    0/1 quietly; the window opens it or shows one line with `show_error`, keeping the
    open project; every node of a project it opened can be shown in the inspector."""
    from cnnstudio.cli import main

    rng = random.Random(seed)
    pool = seeds()
    for case in range(cases):
        origin = rng.choice(pool)
        path = tmp_path / f"case{case % 7}{Path(origin.name).suffix}"
        path.write_bytes(mutate(origin.data, rng))
        where = f"(seed {seed}, case {case}, from {origin.name})"
        try:
            read_project(path)
            readable = True
        except ProjectError:
            readable = False
        code = main(["summary", str(path)])
        err = capsys.readouterr().err
        if readable:
            assert code in (0, 1) and err == "", (where, code, err)
        else:
            assert code == 2, where
            assert_one_line(err, where=where)
        window.last_error = None
        before = window.project
        if window.open_project(path):
            assert readable, where
            for node_id in window.project.graph.ids[:20]:
                window.document.set_selection([node_id])
        else:
            assert not readable and window.project is before, where
            assert_one_line(window.last_error or "", where=where)
            close_message_boxes(window)


def close_message_boxes(window) -> None:
    """`show_error` opens a non-blocking box per failure: close them as a user would."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    for box in window.findChildren(QMessageBox):
        box.close()
    QApplication.processEvents()


@pytest.mark.timeout(120)
def test_mutated_files_through_the_cli_and_the_window_fast(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], window) -> None:
    through_cli_and_window(tmp_path, capsys, window, 80, seed=11)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_mutated_files_through_the_cli_and_the_window_volume(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], window) -> None:
    through_cli_and_window(tmp_path, capsys, window, 1500, seed=12)


@pytest.mark.timeout(120)
def test_mutated_files_in_a_fresh_process_never_show_a_traceback(tmp_path: Path) -> None:
    from .helpers import assert_clean_exit, run_cli

    rng = random.Random(5)
    pool, shown = seeds(), 0
    while shown < 5:
        origin = rng.choice(pool)
        path = tmp_path / f"bad{shown}{Path(origin.name).suffix}"
        path.write_bytes(mutate(origin.data, rng))
        try:
            read_project(path)
            continue  # still readable: not what this test is about
        except ProjectError:
            pass
        assert_clean_exit(run_cli("summary", str(path)), 2)
        shown += 1
