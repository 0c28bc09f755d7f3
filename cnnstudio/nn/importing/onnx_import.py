"""Import an ONNX model as a graph with weights (`cnnstudio import MODEL.onnx`).

The file is size-checked, parsed without its external data, and its structure checked
(one input, one output, every value computed once and before use, no cycle, at most
MAX_GRAPH_NODES operators). The operators feeding the output are then mapped in order
to our layers (onnx_ops, onnx_elementwise, onnx_shapes); when any cannot be, the whole
model is refused in one line naming each operator and how often it occurs. The mapped
graph is checked with our shape inference, compared with the shapes the file declares
(and ONNX's own shape inference computes), grouped and laid out, and its weights are
checked against the built module's state_dict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cnnstudio.core.layer_type import Shape, fmt_shape
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.nn.importing import onnx_elementwise as ew
from cnnstudio.nn.importing import onnx_ops as ops
from cnnstudio.nn.importing import onnx_shapes as sh
from cnnstudio.nn.importing.common import (
    MAX_GRAPH_NODES,
    ImportedModel,
    ModelImportError,
    check_weights,
    finish_graph,
)
from cnnstudio.nn.importing.onnx_mapper import Mapper, Tensor, label, module_containers
from cnnstudio.nn.importing.onnx_read import dims_of, read_model

Progress = Callable[[str, int, int], None]

CONVERTERS: dict[str, Callable[[Mapper, dict[str, Any]], None]] = {
    "Conv": ops.conv,
    "ConvTranspose": ops.conv_transpose,
    "Gemm": ops.gemm,
    "MatMul": ops.matmul,
    "BatchNormalization": ops.batch_norm,
    "MaxPool": ops.max_pool,
    "AveragePool": ops.average_pool,
    "GlobalAveragePool": lambda m, a: ops.global_pool(m, False),
    "GlobalMaxPool": lambda m, a: ops.global_pool(m, True),
    "ReduceMean": lambda m, a: ops.reduce_spatial(m, a, False),
    "ReduceMax": lambda m, a: ops.reduce_spatial(m, a, True),
    "Pad": ops.pad,
    "Resize": ops.resize,
    "Upsample": ops.resize,
    "Relu": ew.activation("ReLU"),
    "LeakyRelu": ew.activation("LeakyReLU", negative_slope=("alpha", 0.01)),
    "Elu": ew.activation("ELU", alpha=("alpha", 1.0)),
    "Sigmoid": ew.activation("Sigmoid"),
    "Tanh": ew.activation("Tanh"),
    "Gelu": ew.gelu,
    "Softmax": ew.softmax,
    "Add": ew.add,
    "Sum": ew.sum_op,
    "Mul": ew.mul,
    "Div": ew.div,
    "Erf": ew.erf,
    "Concat": ew.concat,
    "Dropout": ew.dropout,
    "Identity": ew.identity,
    "Constant": sh.constant,
    "Shape": sh.shape,
    "Gather": sh.gather,
    "Unsqueeze": sh.unsqueeze,
    "Squeeze": sh.squeeze,
    "Slice": sh.slice_op,
    "Cast": sh.cast,
    "Reshape": sh.reshape,
    "Flatten": sh.flatten,
}
SUPPORTED_OPERATORS = tuple(sorted(CONVERTERS))
MAX_LINE = 400


def import_onnx(path: Path | str, *, input_shape: Sequence[int] | None = None,
                progress: Progress | None = None) -> ImportedModel:
    """Read the ONNX model at `path` as a graph and weights.

    `input_shape` (C,H,W or C,L…) fixes the per-sample input when the file leaves sizes
    symbolic. `progress(stage, done, total)` is told how far the work is. Raises
    ModelImportError with one line for the user: a missing `onnx` package, an oversized,
    damaged or hostile file, a structure we do not take (several inputs or outputs, a
    cycle, a value nothing computes), operators we cannot map (all of them, counted), or
    shapes that disagree with the file's."""
    try:
        return _import(Path(path), input_shape, progress or (lambda stage, done, total: None))
    except ModelImportError as err:
        # Names in a hostile file can be any length: the line stays readable.
        text = " ".join(str(err).split())
        raise ModelImportError(text if len(text) <= MAX_LINE else text[:MAX_LINE - 1] + "…"
                               ) from None


def _import(path: Path, input_shape: Sequence[int] | None, report: Progress) -> ImportedModel:
    report("reading", 0, 1)
    model = read_model(path)
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    input_info, output_name = _endpoints(graph, initializers)
    nodes = _ordered_nodes(graph, initializers, input_info.name, output_name)
    shape, fixed_batch = _input_shape(input_info, input_shape)
    declared = _declared_shapes(graph)
    report("reading", 1, 1)

    consumers: Counter = Counter(name for node in nodes for name in node.input if name)
    consumers[output_name] += 1
    mapper = Mapper(path.parent, initializers, consumers, _opset(model), fixed_batch)
    mapper.containers = module_containers(nodes)
    mapper.add_input(input_info.name, shape)
    for done, node in enumerate(nodes):
        converter = CONVERTERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        mapper.map_node(node, converter)
        if done % 16 == 0:
            report("mapping", done, len(nodes))
    report("mapping", len(nodes), len(nodes))
    refusal = mapper.refusal_line()
    if refusal:
        raise ModelImportError(refusal)
    final = mapper.values.get(output_name)
    if not isinstance(final, Tensor):
        raise ModelImportError(f"the output {output_name!r} is not computed from the input")
    _prune_dead_ends(mapper, final.node)

    report("checking", 0, 1)
    finish_graph(mapper.graph)
    _compare_shapes(mapper, declared, "the file says")
    _compare_shapes(mapper, _onnx_inferred_shapes(model, input_info.name, shape),
                    "ONNX's shape inference says")
    check_weights(mapper.graph, mapper.weights)
    report("checking", 1, 1)
    return ImportedModel(mapper.graph, mapper.weights, path.name, "onnx", mapper.notes)


def _endpoints(graph: Any, initializers: dict[str, Any]) -> tuple[Any, str]:
    """The one data input (not an initializer) and the one output, else refused."""
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs[:4]) + (", …" if len(inputs) > 4 else "")
        raise ModelImportError(
            "the model has no input" if not inputs else
            f"the model has {len(inputs)} inputs ({names}); only models with one input"
            " can be imported")
    if len(graph.output) != 1:
        names = ", ".join(o.name for o in graph.output[:4]) + \
            (", …" if len(graph.output) > 4 else "")
        raise ModelImportError(
            "the model has no output" if not graph.output else
            f"the model has {len(graph.output)} outputs ({names}); only models with one"
            " output can be imported")
    return inputs[0], graph.output[0].name


def _ordered_nodes(graph: Any, initializers: dict[str, Any], input_name: str,
                   output_name: str) -> list[Any]:
    """The nodes the output depends on, each after the nodes it reads. Raises
    ModelImportError for too many nodes, a value computed twice, a value nothing
    computes, or a cycle."""
    if len(graph.node) > MAX_GRAPH_NODES:
        raise ModelImportError(f"the model has {len(graph.node):,} operators; at most"
                               f" {MAX_GRAPH_NODES:,} can be imported")
    producer: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.output:
            if not name:
                continue
            if name in producer or name in initializers or name == input_name:
                raise ModelImportError(f"value {name!r} is computed twice (by"
                                       f" {_describe(node)} too); the file is malformed")
            producer[name] = index
    if output_name not in producer:
        raise ModelImportError(f"the output {output_name!r} is computed by no operator")
    needed: set[int] = set()
    stack = [producer[output_name]]
    while stack:  # the operators the output depends on
        index = stack.pop()
        if index in needed:
            continue
        needed.add(index)
        for name in graph.node[index].input:
            if not name or name in initializers or name == input_name:
                continue
            if name not in producer:
                raise ModelImportError(
                    f"{_describe(graph.node[index])} reads {name!r}, which no operator,"
                    " initializer or input provides (a missing initializer?)")
            stack.append(producer[name])
    pending = {i: {producer[n] for n in graph.node[i].input if n in producer} for i in needed}
    users: dict[int, list[int]] = {i: [] for i in needed}
    for index, sources in pending.items():
        for source in sources:
            users[source].append(index)
    ready = sorted(i for i, sources in pending.items() if not sources)
    order: list[int] = []
    while ready:
        index = ready.pop(0)
        order.append(index)
        for user in users[index]:
            pending[user].discard(index)
            if not pending[user]:
                ready.append(user)
    if len(order) < len(needed):
        stuck = sorted(set(needed) - set(order))
        names = ", ".join(_describe(graph.node[i]) for i in stuck[:3])
        raise ModelImportError(f"the graph has a cycle (through {names}); ONNX graphs must"
                               " be acyclic")
    return [graph.node[i] for i in order]


def _describe(node: Any) -> str:
    name = node.name if len(node.name) <= 80 else node.name[:77] + "..."
    return f"{label(node)} {name!r}" if name else label(node)


def _opset(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def _input_shape(info: Any, given: Sequence[int] | None) -> tuple[Shape, int | None]:
    """The per-sample input shape and the batch size when the file fixes it."""
    from onnx import TensorProto

    if info.type.WhichOneof("value") != "tensor_type" or \
            info.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ModelImportError(f"the input {info.name!r} is not a float32 tensor")
    dims = dims_of(info)
    if dims is None and given is None:
        raise ModelImportError(f"the input {info.name!r} has no declared shape; give it with"
                               " --input-shape C,H,W")
    batch = dims[0] if dims else None
    fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
    file_shape = list(dims[1:]) if dims else None
    if given is not None:
        shape = tuple(int(v) for v in given)
        if file_shape is not None and len(file_shape) != len(shape):
            raise ModelImportError(f"the model takes {len(file_shape)}-D samples; the input"
                                   f" shape {fmt_shape(shape)} has {len(shape)} dimensions")
        for i, size in enumerate(file_shape or ()):
            if isinstance(size, int) and size > 0 and size != shape[i]:
                raise ModelImportError(
                    f"the model's input is fixed to {_show(file_shape)};"
                    f" the input shape {fmt_shape(shape)} disagrees")
    elif file_shape and all(isinstance(v, int) and v > 0 for v in file_shape):
        shape = tuple(int(v) for v in file_shape)
    else:
        raise ModelImportError(f"the model's input size is not fixed ({_show(file_shape or [])});"
                               " give it with --input-shape C,H,W")
    if not shape or any(v < 1 for v in shape):
        raise ModelImportError(f"the input shape {fmt_shape(shape)} is empty")
    return shape, fixed_batch


def _show(dims: Sequence[Any]) -> str:
    return "×".join(str(d) if isinstance(d, int) and d > 0 else "?" for d in dims)


def _declared_shapes(graph: Any) -> dict[str, tuple[int, ...]]:
    """Per-sample shapes the file declares for its values (fully known ones only)."""
    out: dict[str, tuple[int, ...]] = {}
    for info in [*graph.value_info, *graph.output]:
        dims = dims_of(info)
        if dims and len(dims) > 1 and all(isinstance(d, int) and d > 0 for d in dims[1:]):
            out[info.name] = tuple(int(d) for d in dims[1:])
    return out


def _onnx_inferred_shapes(model: Any, input_name: str, shape: Shape) -> dict[str, Any]:
    """What ONNX's own shape inference computes for every value, the input's sizes fixed
    to `shape` (empty when it cannot run)."""
    import onnx

    # A copy without the initializers' data (their names, types and dims are enough):
    # copying the whole model first would double its memory for a moment.
    probe = onnx.ModelProto(ir_version=model.ir_version)
    probe.opset_import.extend(model.opset_import)
    probe.functions.extend(model.functions)
    probe.graph.node.extend(model.graph.node)
    probe.graph.input.extend(model.graph.input)
    probe.graph.output.extend(model.graph.output)
    for tensor in model.graph.initializer:
        probe.graph.initializer.add(name=tensor.name, data_type=tensor.data_type,
                                    dims=tensor.dims)
    for info in probe.graph.input:
        if info.name == input_name:
            dims = info.type.tensor_type.shape.dim
            del dims[:]
            dims.add().dim_param = "batch"
            for size in shape:
                dims.add().dim_value = int(size)
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, strict_mode=False)
    except Exception:  # ONNX's inference is a second opinion; ours decides
        return {}
    return _declared_shapes(inferred.graph)


def _compare_shapes(mapper: Mapper, onnx_shapes: dict[str, tuple[int, ...]], who: str) -> None:
    """Raise ModelImportError when a value's shape (as `who` gives it) differs from ours."""
    inference = infer_shapes(mapper.graph)
    for node_id, value in mapper.onnx_of.items():
        theirs = onnx_shapes.get(value)
        info = inference.nodes.get(node_id)
        if theirs is None or info is None or info.shape is None:
            continue
        if tuple(theirs) != tuple(info.shape):
            raise ModelImportError(
                f"shapes disagree at {node_id}: {who} {value!r} is"
                f" {fmt_shape(theirs)}, CNN Studio computes {fmt_shape(info.shape)}")


def _prune_dead_ends(mapper: Mapper, output: str) -> None:
    """Drop nodes whose result only fed shape arithmetic (nothing of ours reads them)."""
    graph = mapper.graph
    while True:
        dead = [nid for nid in graph.sinks() if nid != output and graph.node(nid).type != "Input"]
        if not dead:
            return
        for node_id in dead:
            mapper.remove(node_id)
            mapper.notes.append(f"{node_id} dropped: only its shape was used")
