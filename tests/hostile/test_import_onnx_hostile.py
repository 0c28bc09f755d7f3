"""Hostile ONNX files: oversized, truncated, malformed, cyclic, lying about sizes, reading
external data from outside the model's folder, and mutated at random.

Promises: the size limits hold before parsing or before a tensor's data is read; external
data comes only from files inside the model's folder; every refusal is one clear line
(a ModelImportError), never a traceback and never a half-imported model."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnstudio.nn.importing import common
from cnnstudio.nn.importing.common import ModelImportError
from cnnstudio.nn.importing.onnx_import import import_onnx

from .helpers import FAST, assert_one_line, mutate

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(0)
WEIGHT = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
BIAS = RNG.standard_normal(4).astype(np.float32)


def conv_model(*, nodes: list | None = None, inputs: list | None = None,
               outputs: list | None = None, initializers: list | None = None,
               value_info: list | None = None) -> onnx.ModelProto:
    """A Conv → Relu model (input x: N×3×8×8, output y), any part replaceable."""
    nodes = nodes if nodes is not None else [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu")]
    inputs = inputs if inputs is not None else [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])]
    outputs = outputs if outputs is not None else [
        helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 8, 8])]
    initializers = initializers if initializers is not None else [
        numpy_helper.from_array(WEIGHT, "w"), numpy_helper.from_array(BIAS, "b")]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers,
                              value_info=value_info or [])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def refusal(path: Path, **kwargs) -> str:
    with pytest.raises(ModelImportError) as caught:
        import_onnx(path, **kwargs)
    message = str(caught.value)
    assert_one_line(message, where=path.name)
    return message


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def test_the_plain_model_imports(tmp_path: Path) -> None:
    """The base of every case below is itself fine (so each refusal is the mutation's)."""
    model = import_onnx(save(conv_model(), tmp_path / "ok.onnx"))
    assert [n.type for n in model.graph] == ["Input", "Conv2d", "ReLU"]
    assert np.array_equal(model.weights["conv.weight"], WEIGHT)


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.onnx"
    with open(path, "wb") as stream:  # sparse: no disk used, nothing parsed
        stream.truncate(common.MAX_MODEL_BYTES + 1)
    assert "GiB" in refusal(path)


@pytest.mark.parametrize("data", [b"", b"not an onnx model at all\n", bytes(range(256)) * 4,
                                  b"\x08\x07\x12\x04abcd\x3a\xff\xff\xff\xff\x0f"])
def test_garbage_is_one_line(tmp_path: Path, data: bytes) -> None:
    refusal(save_bytes(tmp_path / "garbage.onnx", data))


def save_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_every_truncation_is_one_line_or_a_whole_model(tmp_path: Path) -> None:
    data = conv_model().SerializeToString()
    for cut in range(1, len(data), max(1, len(data) // 97)):
        path = save_bytes(tmp_path / "cut.onnx", data[:cut])
        try:
            model = import_onnx(path)
        except ModelImportError as err:
            assert_one_line(str(err), where=f"cut at {cut}")
        else:  # a cut that only drops trailing metadata still gives the whole model
            assert [n.type for n in model.graph] == ["Input", "Conv2d", "ReLU"]


def test_structure_faults(tmp_path: Path) -> None:
    relu = helper.make_node("Relu", ["y"], ["c"], name="back")
    conv = helper.make_node("Conv", ["x", "w", "b", ], ["y"], name="conv")
    cyclic = conv_model(nodes=[helper.make_node("Add", ["x", "c"], ["a"], name="add"),
                               helper.make_node("Relu", ["a"], ["y"], name="relu"), relu])
    assert "cycle" in refusal(save(cyclic, tmp_path / "cycle.onnx"))
    missing = conv_model(initializers=[numpy_helper.from_array(BIAS, "b")])
    assert "'w'" in refusal(save(missing, tmp_path / "missing.onnx"))
    twice = conv_model(nodes=[conv, helper.make_node("Relu", ["x"], ["y"])])
    assert "twice" in refusal(save(twice, tmp_path / "twice.onnx"))
    second = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 3, 8, 8])
    first = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])
    assert "2 inputs" in refusal(save(conv_model(inputs=[first, second]), tmp_path / "in.onnx"))
    out2 = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("c", TensorProto.FLOAT, None)]
    assert "2 outputs" in refusal(save(conv_model(outputs=out2), tmp_path / "out.onnx"))
    nowhere = [helper.make_tensor_value_info("q", TensorProto.FLOAT, None)]
    assert "computed by no operator" in refusal(save(conv_model(outputs=nowhere),
                                                     tmp_path / "nowhere.onnx"))


def test_too_many_operators(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chain = [helper.make_node("Relu", [f"v{i}"], [f"v{i + 1}"]) for i in range(60)]
    model = conv_model(nodes=chain, inputs=[helper.make_tensor_value_info(
        "v0", TensorProto.FLOAT, ["n", 3])], outputs=[helper.make_tensor_value_info(
            "v60", TensorProto.FLOAT, ["n", 3])], initializers=[])
    monkeypatch.setattr("cnnstudio.nn.importing.onnx_import.MAX_GRAPH_NODES", 50)
    assert "at most 50" in refusal(save(model, tmp_path / "many.onnx"))


def test_shapes_that_disagree_with_ours(tmp_path: Path) -> None:
    wrong = [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["n", 4, 6, 6])]
    message = refusal(save(conv_model(value_info=wrong), tmp_path / "shapes.onnx"))
    assert "disagree" in message and "4×6×6" in message and "4×8×8" in message


def test_lying_and_oversized_initializers(tmp_path: Path) -> None:
    short = numpy_helper.from_array(WEIGHT, "w")
    short.raw_data = short.raw_data[:-8]
    model = conv_model(initializers=[short, numpy_helper.from_array(BIAS, "b")])
    assert "bytes" in refusal(save(model, tmp_path / "short.onnx"))
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20, 3, 3])
    model = conv_model(initializers=[huge, numpy_helper.from_array(BIAS, "b")])
    assert "GiB" in refusal(save(model, tmp_path / "huge-tensor.onnx"))
    ints = numpy_helper.from_array(WEIGHT.astype(np.int32), "w")
    model = conv_model(initializers=[ints, numpy_helper.from_array(BIAS, "b")])
    assert "integer weights" in refusal(save(model, tmp_path / "ints.onnx"))


def external(tmp_path: Path, location: str, *, length: int | None = None) -> Path:
    """The Conv model whose weight lies in an external file at `location`."""
    tensor = numpy_helper.from_array(WEIGHT, "w")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": "0", "length": str(length or WEIGHT.nbytes)}
    for key, value in entries.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    model = conv_model(initializers=[tensor, numpy_helper.from_array(BIAS, "b")])
    return save(model, tmp_path / "model" / "external.onnx")


def test_external_data_inside_the_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / "model" / "data").mkdir(parents=True)
    (tmp_path / "model" / "data" / "w.bin").write_bytes(WEIGHT.tobytes())
    model = import_onnx(external(tmp_path, "data/w.bin"))
    assert np.array_equal(model.weights["conv.weight"], WEIGHT)


@pytest.mark.parametrize("location", ["../secret.bin", "data/../../secret.bin",
                                      "/etc/passwd", "C:\\secret.bin", "..\\secret.bin",
                                      "link.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    (tmp_path / "model" / "data").mkdir(parents=True)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(WEIGHT.tobytes())
    (tmp_path / "model" / "link.bin").symlink_to(secret)
    assert "outside the model's folder" in refusal(external(tmp_path, location))


def test_external_data_missing_or_short(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    assert "missing" in refusal(external(tmp_path, "gone.bin"))
    (tmp_path / "model" / "w.bin").write_bytes(WEIGHT.tobytes()[:100])
    assert "ends early" in refusal(external(tmp_path, "w.bin"))
    assert "length" in refusal(external(tmp_path, "w.bin", length=12))


def test_constant_arithmetic_that_would_explode_is_not_computed(tmp_path: Path) -> None:
    """ConstantOfShape of 2⁴⁰ values is refused as an operator, never allocated."""
    shape = numpy_helper.from_array(np.array([1 << 40], dtype=np.int64), "s")
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["big"]),
             helper.make_node("Add", ["x", "big"], ["y"])]
    model = conv_model(nodes=nodes, initializers=[shape], outputs=[
        helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    assert "ConstantOfShape ×1" in refusal(save(model, tmp_path / "explode.onnx"))


def test_negative_padding_and_unknown_domains(tmp_path: Path) -> None:
    pads = numpy_helper.from_array(np.array([0, 0, -1, -1, 0, 0, -1, -1], np.int64), "p")
    nodes = [helper.make_node("Pad", ["x", "p"], ["q"]),
             helper.make_node("Conv", ["q", "w", "b"], ["y"])]
    model = conv_model(nodes=nodes, initializers=[pads, numpy_helper.from_array(WEIGHT, "w"),
                                                  numpy_helper.from_array(BIAS, "b")])
    assert "Pad ×1" in refusal(save(model, tmp_path / "crop.onnx"))
    custom = conv_model(nodes=[helper.make_node("FusedConv", ["x", "w", "b"], ["y"],
                                                domain="com.microsoft")])
    assert "com.microsoft.FusedConv ×1" in refusal(save(custom, tmp_path / "custom.onnx"))


@FAST
@given(st.integers(0, 2**32 - 1))
def test_mutated_models_fail_cleanly(tmp_path_factory: pytest.TempPathFactory,
                                     seed: int) -> None:
    data = mutate(conv_model().SerializeToString(), random.Random(seed))
    path = save_bytes(tmp_path_factory.mktemp("mutated") / "m.onnx", data)
    try:
        import_onnx(path)
    except ModelImportError as err:
        assert_one_line(str(err), where=f"seed {seed}")


def test_names_from_the_file_cannot_break_the_line(tmp_path: Path) -> None:
    """Operator and value names with newlines, or thousands of characters long."""
    long_name = "w" * 50_000
    nodes = [helper.make_node("Conv", ["x", long_name, "b"], ["c"], name="n\nx"),
             helper.make_node("Evil\nOp", ["c"], ["y"])]
    model = conv_model(nodes=nodes)
    message = refusal(save(model, tmp_path / "names.onnx"))
    assert len(message) <= 400


@pytest.mark.parametrize("head", [b"\x80\x04\x95", b"PK\x03\x04"])
def test_a_pickle_named_onnx_is_refused_as_pickle_not_as_damaged(tmp_path: Path,
                                                                 head: bytes) -> None:
    """torch.save(model, "net.onnx") writes a pickle (or a zip around one): it is refused
    unread with the way out, not reported as a broken ONNX file."""
    from cnnstudio.nn.importing import import_model

    path = save_bytes(tmp_path / "net.onnx", head + bytes(64))
    with pytest.raises(ModelImportError) as caught:
        import_model(str(path))
    message = str(caught.value)
    assert_one_line(message, where=path.name)
    assert message.startswith("net.onnx is a pickle-based PyTorch file")
    assert "export the model to onnx" in message.lower() and "safetensors" in message


def test_operators_after_an_unmapped_one_are_judged_on_their_own(tmp_path: Path) -> None:
    """HardSwish (never mapped) → +1.0 → Relu → Conv → Abs: the line names the Add (a
    constant that no layer can take as its bias) and Abs as well, but not Relu or the Conv,
    which would map on any data."""
    one = numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")
    nodes = [helper.make_node("HardSwish", ["x"], ["h"], name="hs"),
             helper.make_node("Add", ["h", "one"], ["p"], name="plus"),
             helper.make_node("Relu", ["p"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Abs", ["c"], ["y"], name="abs")]
    model = conv_model(nodes=nodes, initializers=[
        numpy_helper.from_array(WEIGHT, "w"), numpy_helper.from_array(BIAS, "b"), one])
    message = refusal(save(model, tmp_path / "many.onnx"))
    assert message == ("unsupported operators: Abs ×1, Add ×1 (adding a constant (not a"
                       " bias)), HardSwish ×1")


def test_onnx_shape_inference_gets_a_copy_without_the_weights(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The second opinion on shapes must not copy the model's weights (a copy of a large
    model would double its memory): the probe carries only the initializers' dims."""
    from cnnstudio.nn.importing import onnx_import

    model = conv_model()
    big = numpy_helper.from_array(np.ones((64, 1024, 256), np.float32), "unused")  # 64 MiB
    model.graph.initializer.append(big)
    del big
    seen: list[onnx.ModelProto] = []
    grown: list[int] = []
    infer = onnx.shape_inference.infer_shapes

    def resident() -> int:
        statm = Path("/proc/self/statm")
        return int(statm.read_text().split()[1]) * 4096 if statm.exists() else 0

    def spy(probe: onnx.ModelProto, **kwargs) -> onnx.ModelProto:
        seen.append(probe)
        grown.append(resident() - before)
        return infer(probe, **kwargs)

    before = resident()

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", spy)
    shapes = onnx_import._onnx_inferred_shapes(model, "x", (3, 8, 8))
    assert shapes["c"] == (4, 8, 8) and shapes["y"] == (4, 8, 8)
    (probe,) = seen
    assert {t.name: tuple(t.dims) for t in probe.graph.initializer} == {
        "w": WEIGHT.shape, "b": BIAS.shape, "unused": (64, 1024, 256)}
    assert all(not t.raw_data and not t.float_data for t in probe.graph.initializer)
    assert grown[0] < 16 * 2**20  # a whole copy, even cleared afterwards, keeps 64 MiB
    np.testing.assert_array_equal(numpy_helper.to_array(model.graph.initializer[0]), WEIGHT)
