"""The generated Python source: same numbers and state_dict keys as the GraphModule, clean
under ruff, readable (names, shape comments, constants), and odd node ids handled."""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from hypothesis import HealthCheck, given, settings

from cnnstudio.core import registry
from cnnstudio.core.graph import Graph
from cnnstudio.core.templates import TEMPLATES
from cnnstudio.nn.export import gather, python_source
from cnnstudio.nn.export.pytext import class_name, width
from cnnstudio.project import Project, project_from_dict

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
PROJECT_RULES = "E,F,W,I,B,UP"  # pyproject.toml's selection (there without E501)
# Ruff's default rules (no --select: since ruff 0.15 a wide set that checks unused `noqa`
# comments but not line length), this project's selection with ruff's default line length
# of 88 (E501 on), and this project's own configuration.
RUFF_MODES = {
    "default": ["--isolated"],
    "project rules at 88 columns": ["--isolated", "--select", PROJECT_RULES],
    "pyproject.toml": ["--config", str(ROOT / "pyproject.toml")],
}
_COUNTER = itertools.count()


def project_of(graph: Graph, name: str = "Test net", **extra) -> Project:
    doc = {"format": "cnnstudio.project", "version": 1, "name": name, "graph": graph.to_dict()}
    return project_from_dict({**doc, **extra})


def template_project(name: str) -> Project:
    return project_from_dict(TEMPLATES[name].project_dict())


def load_source(path: Path) -> ModuleType:
    """Import a generated file (never from a stale bytecode cache: files are rewritten)."""
    sys.dont_write_bytecode, before = True, sys.dont_write_bytecode
    try:
        spec = importlib.util.spec_from_file_location(f"exported_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = before
    return module


def model_class(module: ModuleType) -> type[torch.nn.Module]:
    classes = [v for v in vars(module).values() if isinstance(v, type)
               and issubclass(v, torch.nn.Module) and v.__module__ == module.__name__]
    assert len(classes) == 1, classes
    return classes[0]


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a.double() - b.double()).abs().max().item()


def check_source_matches(project: Project, tmp_path: Path, stem: str) -> tuple[str, Path]:
    """Write the source, import it, load the GraphModule's weights strictly, compare the
    outputs on seeded batches of two sizes; return the text and the file."""
    facts = gather(project)
    text = python_source(facts)
    path = tmp_path / f"{stem}_{next(_COUNTER)}.py"  # a fresh name: no cached bytecode
    path.write_text(text, encoding="utf-8")
    model = model_class(load_source(path))()
    assert list(model.state_dict()) == list(facts.module.state_dict())
    model.load_state_dict(facts.module.state_dict(), strict=True)
    model.eval()
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for batch in (3, 1):
            x = torch.randn(batch, *facts.input_shape, generator=generator)
            assert max_diff(model(x), facts.module(x)) <= 1e-5
    return text, path


def ruff_check(*paths: Path) -> None:
    """The files pass `ruff check` in every mode of RUFF_MODES."""
    for mode, options in RUFF_MODES.items():
        result = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
             *options, *map(str, paths)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"ruff ({mode}):\n{result.stdout}{result.stderr}"


def assert_fits(text: str) -> None:
    """Every line within 88 columns (wide characters count two, as ruff counts them) and
    no `noqa` anywhere: under ruff's default rules an unused one is itself an error."""
    too_long = [line for line in text.splitlines() if width(line) > 88]
    assert not too_long, too_long
    assert "noqa" not in text


# ---- graphs that use every layer type, with non-default parameters -----------------------


def chain(shape: list[int], layers: list[tuple[str, dict]]) -> Graph:
    g = Graph()
    g.add_node("Input", {"shape": shape}, id="input")
    previous = "input"
    for i, (type_name, params) in enumerate(layers):
        previous = g.add_node(type_name, params, id=f"{type_name.lower()}{i}",
                              inputs=[previous]).id
    return g


def kitchen_sink() -> dict[str, Graph]:
    """Every registry type at least once, with parameters away from torch's defaults."""
    graphs = {
        "conv2d": chain([4, 12, 12], [
            ("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": "same",
                        "padding_mode": "reflect", "bias": False}),
            ("BatchNorm2d", {"momentum": None, "eps": 1e-3}),
            ("LeakyReLU", {"negative_slope": 0.2}),
            ("Conv2d", {"out_channels": 8, "kernel_size": [3, 1], "stride": [2, 1],
                        "padding": [1, 0], "groups": 4, "padding_mode": "circular"}),
            ("ELU", {"alpha": 0.5}),
            ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
            ("AvgPool2d", {"kernel_size": 2, "stride": 1, "padding": 1,
                           "count_include_pad": False, "divisor_override": 3}),
            ("ConvTranspose2d", {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1,
                                 "output_padding": 1}),
            ("GELU", {"approximate": "tanh"}),
            ("Dropout2d", {"p": 0.2}),
            ("Upsample", {"size": [5, 7], "mode": "bilinear", "align_corners": True}),
            ("SiLU", {}),
            ("AdaptiveMaxPool2d", {"output_size": [None, 3]}),
            ("AdaptiveAvgPool2d", {"output_size": 2}),
            ("Flatten", {}),
            ("Linear", {"out_features": 6, "bias": False}),
            ("BatchNorm1d", {"affine": False}),
            ("Tanh", {}),
            ("Dropout", {"p": 0.3}),
            ("Linear", {"out_features": 4}),
            ("Softmax", {"dim": 1}),
        ]),
        "conv1d": chain([2, 32], [
            ("Conv1d", {"out_channels": 6, "kernel_size": 5, "padding": 2,
                        "padding_mode": "replicate"}),
            ("MaxPool1d", {"kernel_size": 3, "stride": 2, "dilation": 2}),
            ("AvgPool1d", {"kernel_size": 2, "ceil_mode": True}),
            ("BatchNorm1d", {"track_running_stats": False}),
            ("Sigmoid", {}),
            ("Maxout", {"pieces": 3}),
            ("Upsample", {"scale_factor": 1.5, "mode": "linear"}),
            ("Flatten", {}),
            ("Linear", {"out_features": 3}),
        ]),
        "conv3d": chain([1, 6, 8, 8], [
            ("Conv3d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
            ("MaxPool3d", {"kernel_size": 2}),
            ("AvgPool3d", {"kernel_size": [1, 2, 2]}),
            ("ReLU", {}),
            ("Upsample", {"scale_factor": [1.0, 2.0, 2.0], "mode": "trilinear"}),
            ("Flatten", {"start_dim": 2}),
            ("Linear", {"out_features": 5}),
            ("Flatten", {}),
            ("Linear", {"out_features": 3}),
        ]),
    }
    g = Graph()
    g.add_node("Input", {"shape": [4, 8, 8]}, id="input")
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 1}, id="conv", inputs=["input"])
    g.add_node("ReLU", {}, id="relu", inputs=["input"])
    g.add_node("Add", {}, id="add", inputs=["conv", "relu", "input"])
    g.add_node("Concat", {}, id="cat", inputs=["add", "conv", "relu"])
    g.add_node("Maxout", {"pieces": 2}, id="maxout", inputs=["cat"])
    g.add_node("Upsample", {"scale_factor": 1.5, "mode": "bicubic"}, id="up", inputs=["maxout"])
    g.add_node("Softmax", {}, id="softmax", inputs=["up"])
    g.add_node("Flatten", {}, id="flatten", inputs=["softmax"])
    g.add_node("Linear", {"out_features": 3}, id="fc", inputs=["flatten"])
    graphs["dag"] = g
    return graphs


def odd_ids() -> Graph:
    """Ids that are keywords, builtins, names the file uses, NFKC-unstable, non-ASCII,
    hyphenated or very long: attributes, locals and state_dict keys must all still work."""
    long_add = "sum-of-all-the-branches-of-this-rather-long-named-block-that-keeps-going"
    long_conv = "a_very_long_identifier_for_a_convolution_layer_that_goes_on_and_on_for_ever"
    g = Graph()
    g.add_node("Input", {"shape": [2, 6, 6]}, id="None")
    g.add_node("Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1}, id="\ufb01lter",
               inputs=["None"])  # "ﬁlter": Python reads the identifier as "filter"
    g.add_node("Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1}, id="filter",
               inputs=["None"])
    g.add_node("Add", {}, id=long_add, inputs=["\ufb01lter", "filter", "None", "None"])
    g.add_node("Conv2d", {"out_channels": 2, "kernel_size": 1}, id=long_conv, inputs=[long_add])
    g.add_node("ReLU", {}, id="x", inputs=[long_conv])
    g.add_node("Concat", {}, id="猫の層", inputs=["x", "filter", "\ufb01lter"])
    g.add_node("Tanh", {}, id="self", inputs=["猫の層"])
    g.add_node("Sigmoid", {}, id="torch", inputs=["self"])
    g.add_node("Dropout", {}, id="MEAN", inputs=["torch"])
    g.add_node("Flatten", {}, id="def", inputs=["MEAN"])
    g.add_node("Linear", {"out_features": 2}, id="conv-a", inputs=["def"])
    g.add_node("Linear", {"out_features": 2}, id="print", inputs=["conv-a"])
    return g


# ---- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_template_source_computes_what_the_model_computes(name: str, tmp_path: Path) -> None:
    text, _ = check_source_matches(template_project(name), tmp_path, name.replace("-", "_"))
    assert "import cnnstudio" not in text and "from cnnstudio" not in text


def test_every_layer_type_is_exported_and_computes_the_same(tmp_path: Path) -> None:
    graphs = kitchen_sink()
    used = {node.type for g in graphs.values() for node in g}
    assert used == {layer.name for layer in registry.all_types()}
    for name, graph in graphs.items():
        check_source_matches(project_of(graph), tmp_path, f"sink_{name}")


def test_odd_node_ids_keep_state_dict_keys_and_numbers(tmp_path: Path) -> None:
    text, _ = check_source_matches(project_of(odd_ids(), 'Odd "names" \\ 1-D\nnet' * 4),
                                   tmp_path, "odd")
    assert 'self.add_module("conv-a", ' in text
    assert 'getattr(self, "conv-a")' in text
    assert 'self.get_submodule("\ufb01lter")' in text  # getattr would trip ruff's B009
    assert "self.filter = nn.Conv2d(" in text


def test_generated_files_pass_ruff(tmp_path: Path) -> None:
    paths = []
    projects = {name: template_project(name) for name in TEMPLATES}
    projects |= {f"sink_{k}": project_of(g) for k, g in kitchen_sink().items()}
    projects["odd"] = project_of(odd_ids(), 'Odd "names" \\ 1-D\nnet' * 4)
    for stem, project in projects.items():
        path = tmp_path / f"{stem.replace('-', '_')}.py"
        text = python_source(gather(project))
        assert_fits(text)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    ruff_check(*paths)


def long_names() -> Graph:
    """Ids at the 100-character limit (ASCII, hyphenated, CJK: 200 columns), an Add and
    a Concat of many of them, a Maxout of one: nothing a line can be shortened around."""
    ascii_id = ("branch_" * 15)[:99] + "a"
    g = Graph()
    g.add_node("Input", {"shape": [4, 6, 6]}, id="入" * 100)
    stem = g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 1}, id=ascii_id,
                      inputs=["入" * 100]).id
    branches = [g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 1},
                           id=f"{chr(ord('a') + i)}{'-' if i % 2 else '_'}{ascii_id[:98]}",
                           inputs=[stem]).id for i in range(12)]
    g.add_node("Add", {}, id="層" * 100, inputs=branches)
    g.add_node("Concat", {}, id="c" + ascii_id[1:], inputs=["層" * 100, *branches])
    g.add_node("Maxout", {"pieces": 4}, id="m-" + ascii_id[2:], inputs=["c" + ascii_id[1:]])
    g.add_node("Flatten", {}, id="f" * 100, inputs=["m-" + ascii_id[2:]])
    g.add_node("Linear", {"out_features": 3}, id="l-" + "猫" * 98, inputs=["f" * 100])
    return g


def test_long_names_fit_every_line_and_pass_ruff(tmp_path: Path) -> None:
    from cnnstudio.nn import build_module, weights_to_bytes

    graph = long_names()
    odd = 'a "quoted" \\ name\nover two lines, ' * 10
    project = project_of(graph, "長い名前のネットワーク" * 10, runs=[{
        "id": "run-" + "x" * 300, "status": "completed " * 30, "best_epoch": 3,
        "best": {"val_accuracy": 0.5}, "class_names": [odd, "猫" * 200, "dog"],
        "normalization": {"normalize": True, "mean": [0.48215827338129496] * 4,
                          "std": [0.24703225141799082] * 4}}])
    project.weights = weights_to_bytes(build_module(graph))
    text, path = check_source_matches(project, tmp_path, "long")
    assert_fits(text)
    ruff_check(path)
    module = load_source(path)
    assert module.CLASS_NAMES == [odd, "猫" * 200, "dog"]
    assert list(model_class(module)().state_dict()) == list(gather(project).module.state_dict())
    assert 'self.get_submodule(\n' in text  # an id too long for a line, asked for in pieces


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_class_docstring_counts_the_layers_summary_lists(name: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    from cnnstudio.cli import main

    path = tmp_path / "p.cnnproj"
    assert main(["new", "--template", name, str(path)]) == 0
    assert main(["summary", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["layers"]
    text = python_source(gather(template_project(name)))
    class_doc = text.split("(nn.Module):\n", 1)[1].split('"""')[1]
    assert f": {len(rows)} layers (Input included), " in " ".join(class_doc.split())


def test_digits_class_docstring_says_eleven_layers() -> None:
    """The case that was wrong: `summary` lists 11 rows (Input and 10 layers)."""
    text = python_source(gather(template_project("digits-lenet")))
    assert ('    """Digits LeNet: 11 layers (Input included), 38,282 parameters, 1×8×8 → 10."""\n'
            in text)


def test_hostile_project_text_cannot_break_out_of_the_file(tmp_path: Path) -> None:
    """Names, run ids and class names from a project file are data, never code."""
    from cnnstudio.nn import build_module, weights_to_bytes

    graph = TEMPLATES["xo"].graph()
    evil = '"""\nimport os; os.environ["PWNED"] = "1"\n"""'
    project = project_of(graph, evil, runs=[{
        "id": evil, "status": evil, "best_epoch": 1, "best": {"val_accuracy": 0.5},
        "class_names": [evil, "it's", "back\\slash"],
        "normalization": {"normalize": True, "mean": [0.5], "std": [0.25]}}])
    project.weights = weights_to_bytes(build_module(graph))
    text, path = check_source_matches(project, tmp_path, "evil")
    ruff_check(path)
    module = load_source(path)
    assert module.CLASS_NAMES == [evil, "it's", "back\\slash"]
    assert module.MEAN == (0.5,) and module.STD == (0.25,)
    import os

    assert "PWNED" not in os.environ


def test_source_reads_like_the_graph() -> None:
    text = python_source(gather(template_project("resnet")))
    assert "class ResNetStyle(nn.Module):" in text
    assert "        x = self.conv1(x)  # 32×32×32\n" in text
    assert "        relu1 = self.relu1(x)  # 32×32×32\n" in text  # kept for the skip
    assert "        x = x + relu1  # 32×32×32\n" in text  # Add, inline
    assert "self.conv1 = nn.Conv2d(\n            in_channels=3,\n" in text
    assert "self.classifier = nn.Linear(in_features=64, out_features=3, bias=True)" in text
    assert "self.batchnorm1 = nn.BatchNorm2d(\n            num_features=32," in text
    inception = python_source(gather(template_project("inception")))
    assert "torch.cat([" in inception and "dim=1)  # " in inception
    sink = python_source(gather(project_of(kitchen_sink()["dag"])))
    assert "x = x.unflatten(1, (6, 2)).amax(dim=2)  # 6×8×8" in sink


def test_untrained_source_says_so() -> None:
    text = python_source(gather(template_project("xo")))
    assert "UNTRAINED" in text.split('"""')[1]
    assert "seed 0" in text
    assert "CLASS_NAMES: list[str] = []" in text


@pytest.mark.parametrize(("name", "expected"), [
    ("Digits LeNet", "DigitsLeNet"),
    ("digits_lenet", "DigitsLenet"),
    ("1-D CNN for signals", "Net1DCNNForSignals"),
    ("Réseau à convolution", "ReseauAConvolution"),
    ("None", "NoneModel"),
    ("MEAN", "MEANModel"),
    ("print", "Print"),
    ("exception", "ExceptionModel"),
    ("", "Model"),
    ("ネットワーク", "Model"),
])
def test_class_names_are_identifiers(name: str, expected: str) -> None:
    assert class_name(name, ("MEAN", "STD")) == expected
    assert expected.isidentifier()


def _random_network_strategy():
    """The random chains and DAGs of test_nn_random_graphs.py, loaded by path so that
    this works whatever pytest's import mode."""
    path = Path(__file__).with_name("test_nn_random_graphs.py")
    spec = importlib.util.spec_from_file_location("_random_graphs_for_export", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.random_network()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(_random_network_strategy())
def test_random_networks_source_matches(tmp_path: Path, graph: Graph) -> None:
    check_source_matches(project_of(graph), tmp_path, "random")
