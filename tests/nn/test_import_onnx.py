"""ONNX import: torch modules exported with torch's TorchScript-based exporter (opset 17,
dynamic batch) come back as graphs whose parameter counts equal the originals', whose
built modules compute what the originals compute (torch) and what the ONNX files compute
(onnxruntime), and whose re-export with our own exporter computes the same again."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from onnx_import_models import MODELS, Unmappable, VGGStyle

from cnnstudio.core.shapes import infer_shapes
from cnnstudio.core.templates import TEMPLATES
from cnnstudio.nn.builder import build_module
from cnnstudio.nn.export import INPUT_NAME, OUTPUT_NAME, gather, onnx_bytes
from cnnstudio.nn.importing.common import ImportedModel, ModelImportError
from cnnstudio.nn.importing.onnx_import import import_onnx
from cnnstudio.nn.weights import weights_to_bytes
from cnnstudio.project import Project, project_from_dict

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
torch.set_num_threads(1)
TOLERANCE = 1e-4


def export(module: torch.nn.Module, shape: tuple[int, ...], path: Path, *,
           training: bool = False) -> Path:
    """`module` as torch users export it: opset 17, dynamic batch, one file. PRESERVE keeps
    BatchNorm as an operator (EVAL folds it into the convolution before it)."""
    mode = torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.PRESERVE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(2, *shape),), str(path), dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          training=mode)
    return path


def original(name: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The named module with seeded random weights and non-trivial BatchNorm statistics."""
    cls, shape = MODELS[name]
    torch.manual_seed(0)
    module = cls()
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.5, 0.5)
            layer.running_var.uniform_(0.5, 2.0)
            layer.weight.data.uniform_(0.5, 1.5)
            layer.bias.data.uniform_(-0.2, 0.2)
    return module.eval(), shape


def imported_module(model: ImportedModel) -> torch.nn.Module:
    module = build_module(model.graph)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.weights.items()})
    return module.eval()


def run_onnx(data: bytes | str, x: torch.Tensor, input_name: str = "input") -> np.ndarray:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {input_name: x.numpy()})[0]


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-import")


@pytest.mark.parametrize("name", list(MODELS))
def test_import_computes_what_the_original_computes(name: str, folder: Path) -> None:
    module, shape = original(name)
    path = export(module, shape, folder / f"{name}.onnx")
    model = import_onnx(path)

    assert model.kind == "onnx" and model.source == f"{name}.onnx"
    assert infer_shapes(model.graph).total_params == count(module)
    ours = imported_module(model)
    assert count(ours) == count(module)
    assert all(node.pos is not None for node in model.graph)
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = module(x), ours(x)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=TOLERANCE, rtol=0)
    reference = run_onnx(str(path), x)
    assert np.abs(reference - got.numpy()).max() <= TOLERANCE

    # Round trip: our own exporter, run in onnxruntime, gives the original file's outputs.
    project = Project(name=name, graph=model.graph.copy(), weights=weights_to_bytes(ours))
    again = onnx_bytes(gather(project))
    session = ort.InferenceSession(again, providers=["CPUExecutionProvider"])
    output = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    assert np.abs(output - reference).max() <= TOLERANCE


def test_ids_groups_and_mapped_types(folder: Path) -> None:
    module, shape = original("resnet")
    model = import_onnx(export(module, shape, folder / "resnet-ids.onnx"))
    graph = model.graph
    types = [node.type for node in graph]
    # Module paths become ids; the skip's 1×1 stride-2 conv and its BN are there.
    assert "layer2_0_downsample_0" in graph and "layer2_0_bn2" in graph
    skip = graph.node("layer2_0_downsample_0")
    assert skip.type == "Conv2d" and skip.params["stride"] == 2 and skip.params["kernel_size"] == 1
    assert types.count("Add") == 4 and types.count("BatchNorm2d") == 10
    # A function a block calls (`+`) keeps its operator in the id; a module keeps its path.
    assert sorted(n.id for n in graph if n.type == "Add") == [
        f"layer{stage}_{index}_add" for stage in (1, 2) for index in (0, 1)]
    assert graph.node("layer1_0_relu").type == "ReLU"
    assert np.array_equal(model.weights["layer2_0_downsample_1.running_var"],
                          module.layer2[0].downsample[1].running_var.numpy())
    names = [g.name for g in graph.groups]
    assert sum(n.startswith("Residual block") for n in names) == 4
    assert any(n.startswith("Stage") for n in names)


def test_silu_gelu_and_dropout_patterns(folder: Path) -> None:
    module, shape = original("inception")
    inception = import_onnx(export(module, shape, folder / "inception-types.onnx")).graph
    types = [node.type for node in inception]
    assert types.count("SiLU") == 3 and "Sigmoid" not in types and "Mul" not in types
    assert types.count("Concat") == 1 and "AdaptiveAvgPool2d" in types
    mlp = import_onnx(export(*original("mlp"), folder / "mlp-types.onnx")).graph
    assert [n.type for n in mlp].count("GELU") == 1
    # A training-mode export keeps Dropout as an operator: it becomes our Dropout.
    torch.manual_seed(0)
    vgg = import_onnx(export(VGGStyle().train(), (3, 16, 16), folder / "vgg-train.onnx",
                             training=True)).graph
    dropouts = [n for n in vgg if n.type == "Dropout"]
    assert len(dropouts) == 1 and dropouts[0].params["p"] == pytest.approx(0.3)


def test_pads_are_folded(folder: Path) -> None:
    module, shape = original("padded")
    model = import_onnx(export(module, shape, folder / "padded-types.onnx"))
    graph = model.graph
    convs = [n for n in graph if n.type == "Conv2d"]
    assert [c.params["padding"] for c in convs] == [1, 1]
    assert convs[1].params.get("padding_mode") == "reflect"
    pool = next(n for n in graph if n.type == "MaxPool2d")
    assert pool.params["padding"] == 1
    assert "Pad folded into conv1" in model.notes


def test_gemm_without_transposed_weight(folder: Path) -> None:
    """Gemm transB=0, alpha and beta: the weight is transposed and scaled into Linear."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((12, 5)).astype(np.float32)  # [in, out]: transB = 0
    bias = rng.standard_normal(5).astype(np.float32)
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", alpha=0.5, beta=2.0)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    path = folder / "gemm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    model = import_onnx(path)
    assert [n.type for n in model.graph] == ["Input", "Linear"]
    assert infer_shapes(model.graph).total_params == count(torch.nn.Linear(12, 5))
    x = torch.randn(4, 12)
    with torch.no_grad():
        got = imported_module(model)(x).numpy()
    assert np.abs(got - run_onnx(str(path), x, "x")).max() <= TOLERANCE
    assert np.allclose(got, 0.5 * x.numpy() @ weight + 2.0 * bias, atol=TOLERANCE)


def test_unmappable_operators_are_counted_in_one_line(folder: Path) -> None:
    path = export(Unmappable(), (4, 8), folder / "unmappable.onnx")
    with pytest.raises(ModelImportError) as caught:
        import_onnx(path)
    assert str(caught.value) == "unsupported operators: Abs ×2, CumSum ×1, Neg ×1"


def test_input_shape_for_symbolic_sizes(folder: Path) -> None:
    module, _ = original("unet")
    path = folder / "unet-dynamic.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(1, 3, 16, 16),), str(path), dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}},
                          training=torch.onnx.TrainingMode.PRESERVE)
    with pytest.raises(ModelImportError, match="--input-shape"):
        import_onnx(path)
    model = import_onnx(path, input_shape=(3, 32, 32))
    assert model.graph.input_node().params["shape"] == [3, 32, 32]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(imported_module(model)(x), module(x), atol=TOLERANCE)


def test_progress_is_reported(folder: Path) -> None:
    module, shape = original("vgg")
    seen: list[tuple[str, int, int]] = []
    import_onnx(export(module, shape, folder / "vgg-progress.onnx"),
                progress=lambda stage, done, total: seen.append((stage, done, total)))
    stages = [s for s, _, _ in seen]
    assert stages[0] == "reading" and stages[-1] == "checking" and "mapping" in stages
    assert all(0 <= done <= total for _, done, total in seen)


def test_missing_onnx_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                    folder: Path) -> None:
    import builtins

    real_import = builtins.__import__

    def refuse_onnx(name: str, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError(name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse_onnx)
    with pytest.raises(ModelImportError, match=r'pip install "cnnstudio\[onnx\]"'):
        import_onnx(folder / "whatever.onnx")


def test_bytes_of_a_saved_model_import_like_the_file(folder: Path) -> None:
    """A model saved by onnx itself (not torch) with value_info from shape inference."""
    module, shape = original("signal1d")
    buffer = io.BytesIO()
    path = export(module, shape, folder / "signal-src.onnx")
    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    onnx.save(inferred, buffer)
    target = folder / "signal-inferred.onnx"
    target.write_bytes(buffer.getvalue())
    model = import_onnx(target)
    assert infer_shapes(model.graph).total_params == count(module)


@pytest.mark.parametrize("name", ["signal1d", "unet"])
def test_torch_export_default_exporter(name: str, folder: Path) -> None:
    """torch's newer exporter (torch.export, opset 18) writes other patterns (global
    pooling of a 1-D map as Unsqueeze → ReduceMean → Squeeze; BatchNorm folded into the
    convolution before it): the import still computes what the original computes."""
    module, shape = original(name)
    path = folder / f"{name}-dynamo.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(2, *shape),), str(path), dynamo=True,
                          input_names=["input"], external_data=False,
                          dynamic_shapes=({0: torch.export.Dim("batch")},))
    model = import_onnx(path)
    x = torch.randn(4, *shape)
    with torch.no_grad():
        got = imported_module(model)(x)
        assert torch.allclose(got, module(x), atol=TOLERANCE, rtol=0)
    assert np.abs(run_onnx(str(path), x) - got.numpy()).max() <= TOLERANCE


def test_our_own_export_imports_back(folder: Path) -> None:
    """A project exported by CNN Studio (the resnet template) imports as the same function."""
    project = project_from_dict(TEMPLATES["resnet"].project_dict())
    torch.manual_seed(0)
    project.weights = weights_to_bytes(build_module(project.graph))
    data = onnx_bytes(gather(project))
    path = folder / "own-resnet.onnx"
    path.write_bytes(data)
    model = import_onnx(path)
    x = torch.randn(3, *project.graph.input_node().params["shape"])
    with torch.no_grad():
        got = imported_module(model)(x).numpy()
    assert np.abs(run_onnx(data, x, INPUT_NAME) - got).max() <= TOLERANCE
    assert [n.type for n in model.graph].count("Add") == \
        [n.type for n in project.graph].count("Add")
    # Node ids come back from the module paths the exporter records.
    assert set(model.graph.ids) <= set(project.graph.ids)


def one_op_model(path: Path, node: Any, in_shape: list, out_shape: list | None,
                 initializers: dict[str, np.ndarray]) -> Path:
    """A model of one operator reading `x`, writing `y`."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v, k) for k, v in initializers.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_auto_pad_same_is_symmetric_padding(folder: Path) -> None:
    from onnx import helper

    weight = np.random.default_rng(0).standard_normal((4, 3, 3, 5)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", name="same")
    path = one_op_model(folder / "same.onnx", node, ["n", 3, 9, 9], None, {"w": weight})
    model = import_onnx(path)
    conv = model.graph.node("same")
    assert conv.params["padding"] == [1, 2] and conv.params["bias"] is False
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        got = imported_module(model)(x).numpy()
    assert np.abs(got - run_onnx(str(path), x, "x")).max() <= TOLERANCE


@pytest.mark.parametrize(("node_args", "in_shape", "weights", "reason"), [
    (("Conv", ["x", "w"], ["y"], {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
     ["n", 3, 8, 8], {"w": np.ones((4, 3, 3, 3), np.float32)}, "Conv ×1 (asymmetric padding"),
    (("Softmax", ["x"], ["y"], {"axis": 0}), ["n", 3, 8, 8], {}, "Softmax ×1 (over the batch)"),
    (("Flatten", ["x"], ["y"], {"axis": 2}), ["n", 3, 8, 8], {}, "Flatten ×1 (at another axis"),
    (("Reshape", ["x", "s"], ["y"], {}), ["n", 3, 8, 8],
     {"s": np.array([0, 6, 32], np.int64)}, "Reshape ×1 (from 3×8×8 to 6×32"),
    (("Mul", ["x", "k"], ["y"], {}), ["n", 3, 8, 8], {"k": np.array(3.0, np.float32)},
     "Mul ×1 (scaling by a constant)"),
])
def test_configurations_without_a_layer_are_named(folder: Path, node_args: tuple,
                                                  in_shape: list, weights: dict,
                                                  reason: str) -> None:
    from onnx import helper

    op, inputs, outputs, attrs = node_args
    path = one_op_model(folder / f"{op}-refused.onnx", helper.make_node(op, inputs, outputs,
                                                                       **attrs),
                        in_shape, None, weights)
    with pytest.raises(ModelImportError) as caught:
        import_onnx(path)
    assert str(caught.value).startswith(f"unsupported operators: {reason}")
