"""The README and docs/ against the code: every option, setting, layer parameter, run
record key and environment variable they list exists, every one the code has is listed,
the defaults they state are the code's, their links resolve, and they stand alone (no
references to a specification or issue tracker outside the repository)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from cnnstudio.cli import _command_parser
from cnnstudio.core import registry
from cnnstudio.project import fill_data, fill_training

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
COMMAND_LINE = (DOCS / "COMMAND_LINE.md").read_text(encoding="utf-8")
PROJECT_FORMAT = (DOCS / "PROJECT_FORMAT.md").read_text(encoding="utf-8")
MARKDOWN = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def section(text: str, heading: str) -> str:
    """The text under `heading` (a line starting with #'s), up to the next heading of the
    same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}\n", text, re.M)
    assert match, f"no heading {heading!r}"
    level = len(match.group(1))
    rest = text[match.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[:end.start()] if end else rest


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in `text` (header and rule rows skipped)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return [row for row in rows if row[0] not in ("key", "type", "option", "variable",
                                                   "status", "member", "`--format`",
                                                   "`source.kind`")]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _command_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# ---- the command line ------------------------------------------------------------------


def test_every_command_and_option_is_documented() -> None:
    for name, parser in subcommands().items():
        body = section(COMMAND_LINE, next(h for h in re.findall(r"^## (cnnstudio .*)$",
                                                                  COMMAND_LINE, re.M)
                                          if h.split()[1] == name))
        synopsis = re.search(rf"^cnnstudio {name} .*$", COMMAND_LINE, re.M)
        assert synopsis, f"{name} is missing from the synopsis"
        for action in parser._actions:
            flags = [f for f in action.option_strings if f not in ("-h", "--help")]
            if flags:
                assert any(re.search(rf"(?<![\w-]){f}\b", synopsis.group(0)) for f in flags), \
                    f"{name} {flags} is not in the synopsis"
            for flag in flags:
                assert f"`{flag}" in body, f"{name} {flag} is not described"


def test_every_documented_option_exists() -> None:
    known = {flag for parser in subcommands().values() for a in parser._actions
             for flag in a.option_strings} | {"--help", "--version"}
    mentioned = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", COMMAND_LINE))
    assert mentioned - known == set()


def test_export_formats_match_the_code() -> None:
    from cnnstudio.cli import EXPORT_FORMATS

    rows = table_rows(section(COMMAND_LINE, "cnnstudio export PROJECT [--format F] -o FILE"))
    assert [row[0].strip("`") for row in rows] == list(EXPORT_FORMATS)


def test_environment_variables_are_the_codes() -> None:
    used = set()
    for path in (ROOT / "cnnstudio").rglob("*.py"):
        used |= set(re.findall(r"[\"'](CNNSTUDIO_[A-Z_]+)[\"']", path.read_text("utf-8")))
    documented = set(re.findall(r"CNNSTUDIO_[A-Z_]+", COMMAND_LINE))
    assert used == documented
    assert {"CNNSTUDIO_DEBUG", "CNNSTUDIO_CACHE_DIR"} <= used


# ---- the project format ----------------------------------------------------------------

_VARIANTS = [
    {"optimizer": {"name": name}, "schedule": {"name": schedule}}
    for name in ("Adam", "SGD", "RMSprop", "AdamW")
    for schedule in ("none", "step", "onecycle", "plateau")
]


def flat_keys(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` → `{"a.b": 1}`; `source` stays whole (its keys have a table)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name != "source":
            out |= flat_keys(value, f"{name}.")
        else:
            out[name] = value
    return out


def settings_table(heading: str) -> dict[str, str]:
    """key → default, from the section's first table (the source kinds' table follows)."""
    first = section(PROJECT_FORMAT, heading).split("\n\n| ")[0]
    return {row[0].strip("`"): row[1] for row in table_rows(first)}


@pytest.mark.parametrize(("heading", "variants"), [
    ("data", [fill_data({})]),
    ("training", [fill_training(v) for v in _VARIANTS]),
])
def test_settings_tables_list_every_key_with_its_default(heading: str,
                                                         variants: list[dict]) -> None:
    table = settings_table(heading)
    code: dict[str, list[Any]] = {}
    for filled in variants:
        for key, value in flat_keys(filled).items():
            code.setdefault(key, []).append(value)
    assert set(table) == set(code)
    for key, default in table.items():
        literal = re.match(r"`([^`]+)`", default)
        if literal is None:
            continue  # a rule in words ("10 × optimizer.lr")
        try:
            stated = json.loads(literal.group(1))
        except ValueError:
            continue
        assert stated in code[key], f"{key}: the docs say {stated!r}, the code {code[key]!r}"


def test_source_kinds_match_the_code() -> None:
    from cnnstudio.core.data_sources import BUILTINS, SOURCE_KINDS, path_keys

    rows = [r for r in table_rows(section(PROJECT_FORMAT, "data")) if len(r) == 3
            and r[0].strip("`") in SOURCE_KINDS]
    assert [r[0].strip("`") for r in rows] == list(SOURCE_KINDS)
    for row in rows:
        for key in path_keys(row[0].strip("`")):
            assert f"`{key}`" in row[1]
    builtin = next(r for r in rows if r[0] == "`builtin`")
    assert all(f"`{name}`" in builtin[1] for name in BUILTINS)


def test_every_layer_type_and_param_is_listed() -> None:
    rows = table_rows(section(PROJECT_FORMAT, "Layer types and their params"))
    listed: dict[str, str] = {}
    for row in rows:
        for name in re.findall(r"`(\w+)`", row[0]):
            listed[name] = row[1]
    assert set(listed) == {t.name for t in registry.all_types()}
    for layer in registry.all_types():
        cell = listed[layer.name]
        if layer.name == "AvgPool2d" or layer.name == "AvgPool3d":
            cell += listed["AvgPool1d"]  # "as AvgPool1d, plus …"
        named = set(re.findall(r"`(\w+)` \(", cell))
        assert named == {p.name for p in layer.params}, layer.name


def test_run_record_keys_are_documented(tmp_path: Path) -> None:
    """A real (one-batch) run's record: every key it has is in the table, and every key
    in the table but `distributed` (multi-process runs only) is in it."""
    from cnnstudio.core.templates import TEMPLATES
    from cnnstudio.project import project_from_dict
    from cnnstudio.train import train_project
    from cnnstudio.train.record import EPOCH_KEYS

    project = project_from_dict(TEMPLATES["xo"].project_dict())
    project.training = {"epochs": 1, "max_batches_per_epoch": 1, "device": "cpu"}
    result = train_project(project)
    assert result.status == "completed", result.message
    record = project.runs[-1]
    table = {row[0].strip("`") for row in table_rows(section(PROJECT_FORMAT, "runs"))}
    documented = {k.strip() for key in table for k in key.replace("`", "").split(",")}
    assert set(record) == documented - {"distributed"}
    epochs_row = next(r for r in table_rows(section(PROJECT_FORMAT, "runs"))
                      if r[0] == "`epochs`")
    assert set(re.findall(r"`(\w+)`", epochs_row[1])) == set(EPOCH_KEYS)


# ---- standing alone ----------------------------------------------------------------------


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.name)
def test_docs_stand_alone(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"\bSPEC\b", text)
    assert not re.search(r"\bissues? \d", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces → '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.is_file(), f"{path.name}: {target} names no file"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)
            assert anchor in {slug(h) for h in headings}, f"{path.name}: no #{anchor}"


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci in readme.splitlines()


def test_the_format_example_is_a_valid_project() -> None:
    from cnnstudio.core.shapes import infer_shapes
    from cnnstudio.project import project_from_dict

    example = re.search(r"```json\n(.*?)```", section(PROJECT_FORMAT, "project.json"), re.S)
    assert example
    project = project_from_dict(json.loads(example.group(1)))
    assert infer_shapes(project.graph, task=project.task, num_classes=10).ok
    project.data_settings()
    project.training_settings()


def test_json_examples_parse() -> None:
    blocks = re.findall(r"```json\n(.*?)```", COMMAND_LINE, re.S)
    assert len(blocks) >= 3
    for block in blocks:
        json.loads(block.replace("…", ""))
