"""The model compiled for other runtimes: TorchScript (`.pt`) and ONNX (`.onnx`).

TorchScript: `torch.jit.script` refuses `GraphModule` (its forward runs a plan of names
with `*args`), so the module is traced with `torch.jit.trace` on a batch of 2. Tracing
records the tensor operations, specialized to the (static) control flow but not to the
batch size: sizes read in forward (Maxout, Flatten) stay symbolic.

ONNX: the dynamo exporter (`torch.onnx.export(..., dynamo=True)`, which needs onnxscript)
with a dynamic batch dimension at opset 18, in one file (weights embedded). It handles
every template and more layer configurations than the legacy TorchScript-based exporter
(nearest-exact upsampling, BatchNorm without running stats, adaptive pooling that keeps a
size), which is only tried when the dynamo exporter fails. Layers ONNX cannot express
are refused up front with the node's name. Both results are checked against the torch
module at another batch size (ONNX through onnxruntime, when installed) before anything
is written: a file that gives other numbers is never handed out.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from cnnstudio import __version__
from cnnstudio.nn.export.facts import ExportFacts, MissingDependency, ProjectProblem

OPSET = 18
INPUT_NAME, OUTPUT_NAME = "input", "output"
INSTALL_HINT = "pip install 'cnnstudio[onnx]'"
EXPORT_BATCH, CHECK_BATCH = 2, 3  # not 1: torch.export would specialize a batch of 1
_ATOL, _RTOL = 1e-4, 1e-4  # float32 kernels differ by ~1e-7; a wrong op by far more
_NOISY_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "torch.fx", "torch._dynamo",
                  "onnxscript")


def describe(facts: ExportFacts) -> dict[str, Any]:
    """The facts a runtime user needs besides the weights (stored inside the files)."""
    info: dict[str, Any] = {"name": facts.name, "task": facts.task,
                            "input_shape": list(facts.input_shape),
                            "class_names": facts.class_names, "trained": facts.trained,
                            "cnnstudio_version": __version__}
    if facts.normalization is not None:
        info["normalization"] = facts.normalization
    return info


def _batch(facts: ExportFacts, size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(size, *facts.input_shape, generator=generator)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress prints, log lines and deprecation warnings: the CLI
    prints one line, and the GUI has no console."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    sink = io.StringIO()
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _reason(err: BaseException) -> str:
    """The first line of an exception that says something (exporters chain them)."""
    seen: list[BaseException] = []
    while err is not None and err not in seen:
        seen.append(err)
        text = str(err).strip().splitlines()
        first = text[0] if text else ""
        if first and not first.startswith("Failed to "):
            return first[:300]
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return type(seen[0]).__name__


def _check_close(got: torch.Tensor, facts: ExportFacts, x: torch.Tensor, what: str) -> None:
    with torch.no_grad():
        want = facts.module(x)
    if got.shape != want.shape or not torch.allclose(got.double(), want.double(),
                                                     atol=_ATOL, rtol=_RTOL):
        diff = "shapes differ" if got.shape != want.shape else \
            f"max difference {(got.double() - want.double()).abs().max().item():.3g}"
        raise ProjectProblem(f"the {what} model does not compute what the project's model"
                             f" computes ({diff}); it was not written")


# ---- TorchScript ----------------------------------------------------------------------


def torchscript_bytes(facts: ExportFacts) -> bytes:
    """The model as a TorchScript archive (`torch.jit.load` reads it), with the facts of
    `describe` as the extra file `cnnstudio.json`. Raises ProjectProblem when tracing
    fails or the traced model computes something else."""
    try:
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(facts.module, _batch(facts, EXPORT_BATCH, 0),
                                     check_trace=False)
            check = _batch(facts, CHECK_BATCH, 1)
            got = traced(check)
    except Exception as err:  # torch raises many kinds; the user needs one line
        raise ProjectProblem(f"TorchScript export failed: {_reason(err)}") from None
    _check_close(got, facts, check, "TorchScript")
    buffer = io.BytesIO()
    extra = {"cnnstudio.json": json.dumps(describe(facts), ensure_ascii=False)}
    with _quiet():
        torch.jit.save(traced, buffer, _extra_files=extra)
    return buffer.getvalue()


# ---- ONNX -----------------------------------------------------------------------------


def require_onnx() -> None:
    """Raise MissingDependency (with the pip command) unless onnx and onnxscript import."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        missing = getattr(err, "name", None) or "onnx"
        raise MissingDependency(f"ONNX export needs the optional package {missing}: "
                                f"{INSTALL_HINT}") from None


def _unsupported(facts: ExportFacts) -> str | None:
    """A node ONNX cannot express (the exporters would fail or, worse, compute wrongly)."""
    for node in facts.graph:
        if node.type.startswith("AvgPool") and node.resolved_params().get("divisor_override"):
            # Exported as a plain average: silently other numbers.
            return f"{node.id}: ONNX has no AvgPool divisor_override; remove it to export"
        if node.type == "AdaptiveMaxPool2d":
            info = facts.inference.nodes[node.id]
            sizes, out = info.input_shapes[0][1:], (info.shape or ())[1:]
            if any(s % o for s, o in zip(sizes, out, strict=True)):
                return (f"{node.id}: ONNX has no adaptive max pooling to a size that does not"
                        f" divide the input ({'×'.join(map(str, sizes))} →"
                        f" {'×'.join(map(str, out))})")
    return None


def _dynamo_export(module: torch.nn.Module, example: torch.Tensor) -> Any:
    program = torch.onnx.export(
        module, (example,), dynamo=True, opset_version=OPSET, input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME], dynamic_shapes=({0: torch.export.Dim("batch")},),
        external_data=False, verbose=False,
    )
    return program.model_proto


def _legacy_export(module: torch.nn.Module, example: torch.Tensor) -> Any:
    import onnx

    buffer = io.BytesIO()
    torch.onnx.export(
        module, (example,), buffer, dynamo=False, opset_version=OPSET,
        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
    )
    return onnx.load_model_from_string(buffer.getvalue())


def _run_onnxruntime(data: bytes, x: torch.Tensor) -> torch.Tensor | None:
    """The ONNX model's output for `x`, or None when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])


def onnx_bytes(facts: ExportFacts) -> bytes:
    """The model as a single-file ONNX model (input `input`, output `output`, dynamic batch,
    opset 18), with the facts of `describe` in its metadata.

    Raises MissingDependency when onnx/onnxscript are not installed, and ProjectProblem
    when a layer has no ONNX form, both exporters fail, or the result computes something
    else than the project's model (checked with onnxruntime when it is installed).
    """
    require_onnx()
    problem = _unsupported(facts)
    if problem:
        raise ProjectProblem(problem)
    example = _batch(facts, EXPORT_BATCH, 0)
    with _quiet(), torch.no_grad():
        try:
            proto = _dynamo_export(facts.module, example)
        except Exception as first:  # whatever it is, the older exporter may manage
            try:
                proto = _legacy_export(facts.module, example)
            except Exception:  # the first exporter's reason is the useful one
                raise ProjectProblem(f"ONNX export failed: {_reason(first)}") from None
    for key, value in describe(facts).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"cnnstudio.{key}", json.dumps(value, ensure_ascii=False)
    try:
        data = proto.SerializeToString()
    except ValueError as err:  # protobuf's 2 GiB limit for one message
        raise ProjectProblem(f"the model is too large for a single ONNX file ({err})") from None
    check = _batch(facts, CHECK_BATCH, 1)
    try:
        with _quiet():
            got = _run_onnxruntime(data, check)
    except Exception as err:  # onnxruntime refusing the model is a failed export
        raise ProjectProblem(f"onnxruntime cannot run the exported model: {_reason(err)}"
                             ) from None
    if got is not None:
        _check_close(got, facts, check, "ONNX")
    return data
