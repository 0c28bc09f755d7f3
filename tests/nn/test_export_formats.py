"""TorchScript, ONNX (through onnxruntime), safetensors and the model card, for every
template and a trained project; and the generated source in a fresh interpreter that has
only torch and safetensors.

Each exported model must give the in-memory model's outputs (build_module + weights, eval)
within 1e-5 on seeded batches, also at batch sizes other than the exported one (2).
ONNX export takes ~2 s a model: the default run covers the ResNet DAG (Add), the Inception
Concat and the U-Net (segmentation) templates, a trained chain (digits-lenet) and a trained
1-D net (the signals sample); `-m slow` covers every other template and sample.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cnnstudio.core.graph import Graph
from cnnstudio.core.templates import TEMPLATES, get_template
from cnnstudio.nn import build_module, load_weights
from cnnstudio.nn.export import (
    INPUT_NAME,
    NORMALIZATION_KEY,
    OUTPUT_NAME,
    ExportFacts,
    ProjectProblem,
    compiled,
    export_project,
    gather,
    model_card,
)
from cnnstudio.project import Project, project_from_dict

torch.set_num_threads(1)
# TorchScript is deprecated from torch 2.10 on, but it is what users ask for here.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
ONNX_DEFAULT = ["resnet", "inception", "unet"]
ONNX_SLOW = [name for name in TEMPLATES if name not in ONNX_DEFAULT]
BATCHES = (5, 1)  # neither is the exported batch of 2


def needs_onnx() -> None:
    """ONNX tests need the `onnx` extra (onnx, onnxscript) and onnxruntime to check."""
    for package in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(package)


def template_project(name: str) -> Project:
    return project_from_dict(TEMPLATES[name].project_dict())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """digits-lenet trained for three batches (weights, run record, normalization)."""
    from cnnstudio.train import train_project

    doc = get_template("digits-lenet").project_dict()
    doc["training"] = {"epochs": 1, "batch_size": 32, "max_batches_per_epoch": 3,
                       "device": "cpu"}
    doc["data"]["augmentation"] = {"flip": True, "rotation": 10}
    project = project_from_dict(doc)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        result = train_project(project)
    assert result.status == "completed", result.message
    return project


def reference(project: Project) -> torch.nn.Module:
    """The in-memory model, built independently of the exporter: the trained weights, or
    the initial ones training would start from (seeded with the project's seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(project.training.get("seed", 0))
        module = build_module(project.graph)
    if project.weights is not None:
        load_weights(module, project.weights)
    return module.eval()


def batches(facts: ExportFacts) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(11)
    return [torch.randn(n, *facts.input_shape, generator=generator) for n in BATCHES]


def assert_close(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape
    assert (got.double() - want.double()).abs().max().item() <= 1e-5


def check_torchscript(project: Project, path: Path) -> None:
    export_project(project, "torchscript", path)
    loaded = torch.jit.load(str(path))
    facts, model = gather(project), reference(project)
    with torch.no_grad():
        for x in batches(facts):
            assert_close(loaded(x), model(x))


def check_onnx(project: Project, path: Path) -> None:
    needs_onnx()
    import onnxruntime

    export_project(project, "onnx", path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [INPUT_NAME]
    assert [o.name for o in session.get_outputs()] == [OUTPUT_NAME]
    assert isinstance(session.get_inputs()[0].shape[0], str)  # a dynamic batch dimension
    facts, model = gather(project), reference(project)
    with torch.no_grad():
        for x in batches(facts):
            got = torch.from_numpy(session.run(None, {INPUT_NAME: x.numpy()})[0])
            assert_close(got, model(x))


# ---- TorchScript and ONNX ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_torchscript_of_every_template(name: str, tmp_path: Path) -> None:
    check_torchscript(template_project(name), tmp_path / "model.pt")


@pytest.mark.parametrize("name", ONNX_DEFAULT)
def test_onnx_of_representative_templates(name: str, tmp_path: Path) -> None:
    needs_onnx()
    check_onnx(template_project(name), tmp_path / "model.onnx")


@pytest.mark.slow
@pytest.mark.parametrize("name", ONNX_SLOW)
def test_onnx_of_the_other_templates(name: str, tmp_path: Path) -> None:
    needs_onnx()
    check_onnx(template_project(name), tmp_path / "model.onnx")


def test_trained_project_exports_agree(trained: Project, tmp_path: Path) -> None:
    needs_onnx()
    check_torchscript(trained, tmp_path / "model.pt")
    check_onnx(trained, tmp_path / "model.onnx")
    # The TorchScript archive and the ONNX file describe themselves.
    extra = {"cnnstudio.json": ""}
    torch.jit.load(str(tmp_path / "model.pt"), _extra_files=extra)
    info = json.loads(extra["cnnstudio.json"])
    assert info["class_names"] == [str(i) for i in range(10)] and info["trained"] is True
    import onnx

    model = onnx.load(str(tmp_path / "model.onnx"))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    props = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert props["cnnstudio.input_shape"] == [1, 8, 8]
    assert props["cnnstudio.normalization"] == trained.runs[-1]["normalization"]
    assert not list(tmp_path.glob("*.data"))  # one file: the weights are inside


SAMPLES = {p.stem: p for p in sorted(
    (Path(__file__).resolve().parents[2] / "sample_projects").glob("*.cnnproj"))}
ONNX_SAMPLES = ["signals"]  # a trained 1-D net; the rest under -m slow


@pytest.fixture(scope="module")
def trained_sample(tmp_path_factory: pytest.TempPathFactory):
    """`trained_sample(stem)`: that shipped sample trained for two batches (once)."""
    from cnnstudio.project import read_project
    from cnnstudio.train import train_project

    cache: dict[str, Project] = {}
    folder = tmp_path_factory.mktemp("samples")

    def get(stem: str) -> Project:
        if stem not in cache:
            project = read_project(SAMPLES[stem])
            project.training.update({"epochs": 1, "max_batches_per_epoch": 2, "device": "cpu"})
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("CNNSTUDIO_CACHE_DIR", str(folder / "cache"))
                assert train_project(project).status == "completed"
            cache[stem] = project
        return cache[stem]

    return get


@pytest.mark.parametrize("stem", list(SAMPLES))
def test_trained_samples_export_the_same_model(stem: str, trained_sample,
                                               tmp_path: Path) -> None:
    project = trained_sample(stem)
    facts, model = gather(project), reference(project)
    namespace: dict = {}
    source = export_project(project, "python", tmp_path / "m.py").path
    exec(compile(source.read_text(encoding="utf-8"), str(source), "exec"), namespace)
    source_model = next(v for v in namespace.values() if isinstance(v, type)
                        and issubclass(v, torch.nn.Module) and v is not torch.nn.Module)()
    weights = export_project(project, "safetensors", tmp_path / "m.safetensors").path
    source_model.load_state_dict(load_file(str(weights)), strict=True)
    source_model.eval()
    assert namespace["CLASS_NAMES"] == project.runs[-1]["class_names"]
    with torch.no_grad():
        for x in batches(facts):
            assert_close(source_model(x), model(x))
    check_torchscript(project, tmp_path / "m.pt")
    card = model_card(facts)
    names = project.runs[-1]["class_names"]
    assert "| true \\ predicted | " + " | ".join(names) + " |" in card


@pytest.mark.parametrize("stem", [s if s in ONNX_SAMPLES else pytest.param(
    s, marks=pytest.mark.slow) for s in SAMPLES])
def test_trained_samples_onnx(stem: str, trained_sample, tmp_path: Path) -> None:
    needs_onnx()
    check_onnx(trained_sample(stem), tmp_path / "m.onnx")


def one_layer(type_name: str, params: dict, shape: list[int]) -> Project:
    g = Graph()
    g.add_node("Input", {"shape": shape}, id="input")
    g.add_node(type_name, params, id="layer", inputs=["input"])
    return project_from_dict({"format": "cnnstudio.project", "version": 1, "name": "p",
                              "graph": g.to_dict()})


@pytest.mark.parametrize(("type_name", "params", "message"), [
    ("AvgPool2d", {"kernel_size": 2, "divisor_override": 3}, "ONNX has no AvgPool divisor"),
    ("AdaptiveMaxPool2d", {"output_size": 3}, "ONNX has no adaptive max pooling"),
])
def test_onnx_refuses_layers_it_cannot_express(type_name: str, params: dict, message: str,
                                               tmp_path: Path) -> None:
    needs_onnx()
    with pytest.raises(ProjectProblem, match=f"^layer: {message}"):
        export_project(one_layer(type_name, params, [2, 8, 8]), "onnx", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_file_computing_other_numbers_is_never_written(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporters turn divisor_override into a plain average: without the up-front
    refusal, the onnxruntime check must still catch it."""
    needs_onnx()
    monkeypatch.setattr(compiled, "_unsupported", lambda facts: None)
    project = one_layer("AvgPool2d", {"kernel_size": 2, "divisor_override": 3}, [2, 8, 8])
    with pytest.raises(ProjectProblem, match="does not compute what the project's model"):
        export_project(project, "onnx", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_the_legacy_exporter_is_the_fallback(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    needs_onnx()

    def fail(*args, **kwargs):
        raise RuntimeError("dynamo says no")

    monkeypatch.setattr(compiled, "_dynamo_export", fail)
    check_onnx(template_project("resnet"), tmp_path / "model.onnx")
    monkeypatch.setattr(compiled, "_legacy_export", fail)
    with pytest.raises(ProjectProblem, match="^ONNX export failed: dynamo says no$"):
        export_project(template_project("xo"), "onnx", tmp_path / "xo.onnx")
    assert not (tmp_path / "xo.onnx").exists()


# ---- safetensors ---------------------------------------------------------------------------


def test_safetensors_describe_themselves(trained: Project, tmp_path: Path) -> None:
    from cnnstudio.nn import weights_metadata
    from cnnstudio.train.api import NORMALIZATION_KEY as TRAINER_KEY

    assert NORMALIZATION_KEY == TRAINER_KEY  # predict finds the normalization there
    path = tmp_path / "model.safetensors"
    export_project(trained, "safetensors", path)
    meta = weights_metadata(path.read_bytes())
    run = trained.runs[-1]
    assert json.loads(meta["cnnstudio.class_names"]) == run["class_names"]
    assert json.loads(meta[NORMALIZATION_KEY]) == run["normalization"]
    assert json.loads(meta["cnnstudio.input_shape"]) == [1, 8, 8]
    assert meta["cnnstudio.task"] == "classification" and meta["cnnstudio.trained"] == "true"
    from cnnstudio import __version__

    assert meta["cnnstudio.version"] == __version__
    graph = Graph.from_dict(json.loads(meta["cnnstudio.graph"]))  # the file rebuilds its model
    module = build_module(graph).eval()
    module.load_state_dict(load_file(str(path)), strict=True)
    x = batches(gather(trained))[0]
    with torch.no_grad():
        assert torch.equal(module(x), reference(trained)(x))


def test_untrained_export_is_seeded_and_leaves_the_random_state_alone(tmp_path: Path) -> None:
    project = template_project("digits-lenet")
    project.training["seed"] = 5
    state = torch.random.get_rng_state()
    result = export_project(project, "safetensors", tmp_path / "w.safetensors")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not result.trained and "untrained" in result.warnings[0]
    torch.manual_seed(5)  # what train_project starts from
    expected = build_module(project.graph).state_dict()
    found = load_file(str(tmp_path / "w.safetensors"))
    assert found.keys() == expected.keys()
    assert all(torch.equal(found[k], expected[k]) for k in found)


def test_weights_that_do_not_fit_are_a_project_problem(trained: Project, tmp_path: Path) -> None:
    project = project_from_dict({"format": "cnnstudio.project", "version": 1, "name": "p",
                                 "graph": trained.graph.to_dict()})
    project.weights = trained.weights
    project.graph.set_param("fc1", "out_features", 32)
    with pytest.raises(ProjectProblem, match="fc1"):
        export_project(project, "torchscript", tmp_path / "m.pt")


# ---- model card ----------------------------------------------------------------------------


def test_model_card_of_a_trained_project(trained: Project) -> None:
    card = model_card(gather(trained))
    assert card.startswith("# Digits LeNet\n")
    assert "| Layer | Type | Output shape | Params | MACs |" in card
    for node in trained.graph:
        assert f"| `{node.id}` | {node.type}" in card
    assert "**Total:** 38,282 trainable parameters" in card
    assert "| true \\ predicted | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 |" in card
    matrix = trained.runs[-1]["confusion_matrix"]
    assert "| **3** | " + " | ".join(str(v) for v in matrix[3]) + " |" in card
    accuracy = trained.runs[-1]["best"]["val_accuracy"]
    assert f"| val_accuracy | {accuracy:.4f} |" in card
    assert "| Optimizer | Adam, lr 0.001" in card and "| Batch size | 32 |" in card
    assert "horizontal flip, rotation up to 10°" in card
    assert "built-in dataset `digits`" in card and "Classes (10): 0, 1, 2" in card
    assert "| `run-1` | completed |" in card
    assert "Untrained" not in card


def test_model_card_of_an_untrained_segmentation_project() -> None:
    card = model_card(gather(template_project("unet")))
    assert "> **Untrained.**" in card and "No results: the project is untrained." in card
    assert "Segmentation of 3×32×32 inputs into 4 per-pixel classes" in card
    assert "No runs yet." in card


# ---- the generated source in a fresh interpreter ---------------------------------------------

FRESH_SCRIPT = textwrap.dedent("""
    import importlib.util, json, sys
    assert importlib.util.find_spec("cnnstudio") is None, "cnnstudio is importable"
    import torch
    from safetensors.torch import load_file, save_file
    torch.set_num_threads(1)
    jobs = json.loads(sys.argv[1])
    for job in jobs:
        spec = importlib.util.spec_from_file_location("exported", job["source"])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = getattr(module, job["class"])().eval()
        module.load_weights(model, job["weights"])
        inputs = load_file(job["inputs"])
        with torch.no_grad():
            outputs = {k: model(v).contiguous() for k, v in inputs.items()}
        outputs["preprocessed"] = module.preprocess(inputs["uint8"].clamp(0, 255).to(torch.uint8))
        save_file(outputs, job["outputs"])
        print(json.dumps({"class_names": module.CLASS_NAMES, "mean": list(module.MEAN),
                          "std": list(module.STD), "input_shape": list(module.INPUT_SHAPE)}))
    assert not any(name.startswith("cnnstudio") for name in sys.modules)
""")


def test_generated_source_runs_with_only_torch_and_safetensors(trained: Project,
                                                                tmp_path: Path) -> None:
    """`python -I -S`: no user site, no .pth files (so no editable cnnstudio); only the
    site-packages folder that holds torch and safetensors is put on the path."""
    from cnnstudio.data import Dataset
    from cnnstudio.nn.export.pytext import class_name
    from cnnstudio.nn.export.source import MODULE_NAMES

    projects = {"trained": trained, "resnet": template_project("resnet"),
                "unet": template_project("unet")}
    jobs, expected = [], {}
    for key, project in projects.items():
        facts = gather(project)
        for fmt, suffix in (("python", ".py"), ("safetensors", ".safetensors")):
            export_project(project, fmt, tmp_path / f"{key}{suffix}")
        x = batches(facts)
        inputs = {"b5": x[0], "b1": x[1], "uint8": (x[0].abs() * 60)}
        save_file(inputs, str(tmp_path / f"{key}_in.safetensors"))
        expected[key] = (facts, inputs)
        jobs.append({"source": str(tmp_path / f"{key}.py"),
                     "weights": str(tmp_path / f"{key}.safetensors"),
                     "class": class_name(facts.name, MODULE_NAMES),
                     "inputs": str(tmp_path / f"{key}_in.safetensors"),
                     "outputs": str(tmp_path / f"{key}_out.safetensors")})
    site = str(Path(torch.__file__).resolve().parents[1])
    assert Path(site, "safetensors").is_dir()
    code = f"import sys; sys.path.append({site!r}); exec({FRESH_SCRIPT!r})"
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code, json.dumps(jobs)],
                            capture_output=True, text=True, cwd=tmp_path, check=False,
                            env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    for (key, (facts, inputs)), report in zip(expected.items(), reports, strict=True):
        outputs = load_file(str(tmp_path / f"{key}_out.safetensors"))
        model = reference(projects[key])
        with torch.no_grad():
            for name in ("b5", "b1"):
                assert_close(outputs[name], model(inputs[name]))
        assert report["input_shape"] == list(facts.input_shape)
        assert report["class_names"] == facts.class_names
        mean, std = facts.mean_std()
        assert report["mean"] == mean and report["std"] == std
        # preprocess is the training pipeline's own scaling and normalization.
        prep = Dataset(x=torch.empty(0, *facts.input_shape, dtype=torch.uint8),
                       y=torch.empty(0, dtype=torch.int64), class_names=[], task=facts.task,
                       splits={}, skipped=[], mean=mean, std=std)
        uint8 = inputs["uint8"].clamp(0, 255).to(torch.uint8)
        assert (outputs["preprocessed"] - prep.batch_to_float(uint8)).abs().max() <= 1e-6
