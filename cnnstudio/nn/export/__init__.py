"""Take the model elsewhere: readable PyTorch source, TorchScript, ONNX, safetensors, and a
Markdown model card (docs/COMMAND_LINE.md, `export`).

>>> result = export_project(project, "onnx", "model.onnx")
>>> result.warnings  # e.g. that the project is untrained

Every format is built from `gather(project)`: the module in eval mode with the trained
weights, or the seeded initial weights of an untrained project.
"""

from cnnstudio.nn.export.card import model_card
from cnnstudio.nn.export.compiled import (
    INPUT_NAME,
    INSTALL_HINT,
    OPSET,
    OUTPUT_NAME,
    onnx_bytes,
    require_onnx,
    torchscript_bytes,
)
from cnnstudio.nn.export.facts import (
    DestinationError,
    ExportError,
    ExportFacts,
    MissingDependency,
    ProjectProblem,
    gather,
)
from cnnstudio.nn.export.formats import (
    FORMATS,
    ExportResult,
    Format,
    check_destination,
    export_project,
    format_for_path,
    safetensors_bytes,
)
from cnnstudio.nn.export.source import python_source
from cnnstudio.project.weights import NORMALIZATION_KEY

__all__ = [
    "FORMATS",
    "INPUT_NAME",
    "INSTALL_HINT",
    "NORMALIZATION_KEY",
    "OPSET",
    "OUTPUT_NAME",
    "DestinationError",
    "ExportError",
    "ExportFacts",
    "ExportResult",
    "Format",
    "MissingDependency",
    "ProjectProblem",
    "check_destination",
    "export_project",
    "format_for_path",
    "gather",
    "model_card",
    "onnx_bytes",
    "python_source",
    "require_onnx",
    "safetensors_bytes",
    "torchscript_bytes",
]
