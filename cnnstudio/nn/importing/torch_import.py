"""Import a PyTorch model from the user's own code: `FILE.py:CLASS` (+ a safetensors file).

This RUNS the user's code — FILE.py, CLASS's constructor and its `forward` — because the
user asked for it, as running their own script would; `user_code` keeps the effects on
CNN Studio contained and turns every failure into one line. The model is traced with
`torch.fx` (in eval mode), each call is mapped to one of our layer types (`fx_ops`), the
weights are renamed from the module's `state_dict` keys to ours (`<node id>.<param>`), and
the result is checked against the original: same output shape on a zero batch, same
numbers on a random batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod
from pathlib import Path
from typing import Any

import numpy as np

from cnnstudio.core import registry
from cnnstudio.core.errors import GraphError, ParameterError, first_line, with_more
from cnnstudio.core.graph import Graph
from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.nn.importing.common import (
    MAX_GRAPH_NODES,
    ImportedModel,
    ModelImportError,
    check_weights,
    finish_graph,
)
from cnnstudio.nn.importing.fx_mapping import FxMapper, Planned
from cnnstudio.nn.importing.user_code import (
    instantiate,
    load_module,
    load_safetensors,
    parse_spec,
    running,
    user_code_context,
)

Progress = Callable[[str, int, int], None]
MAX_SAMPLE_VALUES = 1 << 26  # one zero sample of 256 MB in float32 is plenty for a CNN
CHECK_BATCH = 2  # more than one sample: a reshape that mixes samples shows in the shape
TOLERANCE = 1e-4  # relative to the output's magnitude; the same torch ops run on both sides
_STAGES = 4


def import_pytorch(spec: str, *, input_shape: Sequence[int] | str | None = None,
                   weights: Path | None = None,
                   progress: Progress | None = None) -> ImportedModel:
    """Import CLASS from the user's FILE.py (`spec` is "FILE.py:CLASS").

    RUNS THE USER'S CODE: the file is executed, CLASS() constructed with no arguments and
    its forward traced and run, at the user's own request. `weights` is a safetensors file
    of CLASS's state_dict (pickle-based files are refused unread); without it the weights
    CLASS() starts with are imported. `input_shape` is C,H,W (or C,L, …), else the class's
    `input_shape` attribute. `progress(stage, done, total)` is told each stage.

    Raises ModelImportError (one line) for every failure: a malformed spec, a missing or
    unusable class, weights that do not fit, code that raises or exits, a forward that
    torch.fx cannot trace, operations we cannot map (each named with its count), or an
    imported network that computes something else than the original.
    """
    path, class_name = parse_spec(spec)
    # The message comes without "cannot import FILE:" — `import_model` adds it, once.
    return _import(path, class_name, input_shape, weights, progress or _silent)


def _silent(stage: str, done: int, total: int) -> None:
    pass


def _import(path: Path, class_name: str, input_shape: Any, weights: Path | None,
            progress: Progress) -> ImportedModel:
    import torch

    with user_code_context(path.parent), torch.no_grad():
        progress("loading", 0, _STAGES)
        model = instantiate(load_module(path), class_name, path.name)
        if weights is not None:
            load_safetensors(model, Path(weights))
        with running(f"{class_name}.eval()"):
            model.eval()  # trace what inference runs: dropout off, BatchNorm's running stats
        shape = sample_shape(input_shape, model, class_name)
        progress("tracing", 1, _STAGES)
        traced = _trace(model, class_name)
        reference = _run_original(model, traced, shape, class_name)
        progress("mapping", 2, _STAGES)
        mapper = FxMapper(traced, model)
        planned = mapper.run()
        graph = _graph(planned, shape)
        arrays = _weights(planned, traced)
        progress("checking", 3, _STAGES)
        _check_shape(graph, tuple(reference.shape[1:]), class_name)
        check_weights(graph, arrays)
        _check_numbers(model, graph, arrays, shape, class_name)
        finish_graph(graph)
    progress("done", _STAGES, _STAGES)
    return ImportedModel(graph=graph, weights=arrays, source=path.name, kind="pytorch",
                         notes=mapper.notes)


def sample_shape(given: Any, model: Any, class_name: str) -> tuple[int, ...]:
    """The per-sample input shape: `given` (a sequence or "3,32,32"), else the model's
    `input_shape` attribute; raises ModelImportError when neither is usable."""
    value = given if given is not None else getattr(model, "input_shape", None)
    if value is None:
        raise ModelImportError(f"{class_name} has no input_shape attribute: give the input"
                               " shape with --input-shape C,H,W (or C,L)")
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.replace("x", ",").replace("×", ",").split(",")]
        except ValueError:
            raise ModelImportError(f"input shape {value!r} is not a list of whole numbers like"
                                   " 3,32,32") from None
    try:
        shape = registry.get("Input").resolve({"shape": list(value)})["shape"]
    except (ParameterError, TypeError) as err:
        raise ModelImportError(f"input shape {value!r}: {getattr(err, 'message', err)}") from None
    if prod(shape) > MAX_SAMPLE_VALUES:
        raise ModelImportError(f"input shape {fmt_shape(shape)} is too large to check")
    return tuple(shape)


def _trace(model: Any, class_name: str) -> Any:
    from torch import fx

    from cnnstudio.nn.importing.fx_ops import known_class

    class _Tracer(fx.Tracer):
        """torch.fx's tracer, keeping subclasses of our torch layers whole as well."""

        def is_leaf_module(self, module: Any, qualified_name: str) -> bool:
            return (known_class(module) is not None
                    or super().is_leaf_module(module, qualified_name))

    try:
        with running(f"tracing {class_name}"):
            try:
                traced = fx.GraphModule(model, _Tracer().trace(model),
                                        type(model).__name__)
            except fx.proxy.TraceError as err:
                raise ModelImportError(
                    f"torch.fx cannot trace {class_name}.forward ({first_line(err)}): its"
                    " Python control flow depends on tensor values; export the model to ONNX"
                    " and import that instead") from None
            except (NotImplementedError, RuntimeError, TypeError, AttributeError) as err:
                raise ModelImportError(
                    f"torch.fx cannot trace {class_name}.forward ({type(err).__name__}:"
                    f" {first_line(err)}); export the model to ONNX and import that instead"
                ) from None
    except ModelImportError:
        raise
    traced.graph.eliminate_dead_code()
    traced.recompile()
    if len(traced.graph.nodes) > MAX_GRAPH_NODES:
        raise ModelImportError(f"{class_name} has more than {MAX_GRAPH_NODES} operations")
    return traced


def _run_original(model: Any, traced: Any, shape: tuple[int, ...], class_name: str) -> Any:
    """Run the original on a zero batch (its output shape is the reference) and record
    every traced node's shape (fx's ShapeProp), which the mapping reads ranks from."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    batch = torch.zeros((CHECK_BATCH, *shape))
    with running(f"{class_name}.forward on a zero batch of {fmt_shape(shape)} samples"
                 " (is --input-shape right?)"):
        output = model(batch)
        ShapeProp(traced).propagate(batch)
    if not isinstance(output, torch.Tensor):
        raise ModelImportError(f"{class_name}.forward returns {type(output).__name__}, not"
                               " one tensor")
    return output


def _graph(planned: list[Planned], shape: tuple[int, ...]) -> Graph:
    graph = Graph()
    try:
        for item in planned:
            params = {"shape": list(shape)} if item.type == "Input" else item.params
            graph.add_node(item.type, params, id=item.id, inputs=item.inputs)
    except GraphError as err:
        raise ModelImportError(str(err)) from None
    return graph


def _weights(planned: list[Planned], traced: Any) -> dict[str, np.ndarray]:
    """Each mapped module's state_dict under its node id, floats as float32."""
    import torch

    arrays: dict[str, np.ndarray] = {}
    for item in planned:
        if item.module is None:
            continue
        for key, tensor in traced.get_submodule(item.module).state_dict().items():
            value = tensor.detach().cpu()
            if value.is_floating_point():
                value = value.to(torch.float32)
            arrays[f"{item.id}.{key}"] = value.numpy().copy()
    return arrays


def _check_shape(graph: Graph, expected: tuple[int, ...], class_name: str) -> None:
    inference = infer_shapes(graph)
    if inference.errors:
        raise ModelImportError("the imported network does not check: "
                               + with_more(inference.errors))
    assert inference.output is not None  # no errors and a planned output
    ours = inference.nodes[inference.output].shape
    if ours != expected:
        raise ModelImportError(
            f"shapes disagree: {class_name} gives {fmt_shape(expected)} per sample, the"
            f" imported network {fmt_shape(ours or ())}; export the model to ONNX and import"
            " that instead")


def _check_numbers(model: Any, graph: Graph, arrays: dict[str, np.ndarray],
                   shape: tuple[int, ...], class_name: str) -> None:
    """Our module with the imported weights must compute what the original computes."""
    import torch

    from cnnstudio.nn.builder import build_module

    ours = build_module(graph)
    ours.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)
    ours.eval()
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn((CHECK_BATCH, *shape), generator=generator)
    with running(f"{class_name}.forward"):
        expected = model(batch).float()
    got = ours(batch)
    scale = max(1.0, float(expected.abs().max()))
    difference = float((got - expected).abs().max())
    if not difference <= TOLERANCE * scale:  # also catches NaN
        raise ModelImportError(
            f"the imported network computes other values than {class_name} (largest"
            f" difference {difference:.3g}); export the model to ONNX and import that"
            " instead")
