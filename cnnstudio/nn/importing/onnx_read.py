"""Reading an ONNX file safely: size limits before parsing, a damaged file in one line,
initializers (and their external data, only from files inside the model's folder) as
numpy arrays, and node attributes as plain Python values."""

from __future__ import annotations

from math import prod
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from cnnstudio.nn.importing.common import MAX_MODEL_BYTES, MAX_TENSOR_BYTES, ModelImportError

INSTALL_HINT = 'pip install "cnnstudio[onnx]"'
_GIB = 1024**3


def require_onnx() -> Any:
    """The `onnx` package; raises ModelImportError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ModelImportError(f"importing ONNX models needs the optional package onnx:"
                               f" {INSTALL_HINT}") from None
    return onnx


def read_model(path: Path) -> Any:
    """The parsed ModelProto of `path`, external data left unread. Raises
    ModelImportError for a missing, oversized, damaged or truncated file."""
    onnx = require_onnx()
    try:
        if not path.is_file():
            raise ModelImportError("no such file" if not path.exists() else "not a file")
        size = path.stat().st_size
    except OSError as err:
        raise ModelImportError(f"the file cannot be read: {err.strerror or err}") from None
    if size > MAX_MODEL_BYTES:
        raise ModelImportError(f"the file is over {MAX_MODEL_BYTES // _GIB} GiB ({size:,} bytes);"
                               " a larger model must keep its weights beside it as external"
                               " data")
    if size == 0:
        raise ModelImportError("the file is empty")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except OSError as err:
        raise ModelImportError(f"the file cannot be read: {err.strerror or err}") from None
    except Exception as err:  # protobuf's DecodeError, RuntimeError, …: one line
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else \
            type(err).__name__
        raise ModelImportError(f"not a readable ONNX model (damaged or truncated: {reason})"
                               ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelImportError("not an ONNX model (it holds no graph of operators; damaged or"
                               " truncated?)")
    return model


def safe_external_path(folder: Path, location: str, tensor: str) -> Path:
    """The file holding `tensor`'s external data, which must lie inside `folder`: no
    absolute path, no `..`, no link leading out. Raises ModelImportError."""
    outside = ModelImportError(f"initializer {tensor!r} keeps its data in {location!r},"
                               " outside the model's folder; refused")
    if not location or "\x00" in location:
        raise ModelImportError(f"initializer {tensor!r} names no external data file")
    posix, windows = PurePosixPath(location), PureWindowsPath(location)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or windows.root:
        raise outside
    if ".." in posix.parts or ".." in windows.parts:
        raise outside
    base = folder.resolve()
    target = (base / location).resolve()
    if target != base and base not in target.parents:
        raise outside  # a symbolic link pointing out of the folder
    if not target.is_file():
        raise ModelImportError(f"initializer {tensor!r}: its external data file {location!r}"
                               " is missing")
    return target


def _numpy_dtype(tensor: Any) -> np.dtype:
    from onnx import helper

    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
    except (KeyError, TypeError, ValueError):
        raise ModelImportError(f"initializer {tensor.name!r} has an unknown element type"
                               f" ({tensor.data_type})") from None
    if dtype.kind not in "fiub":
        raise ModelImportError(f"initializer {tensor.name!r} holds {dtype} values, not numbers")
    return dtype


def tensor_array(tensor: Any, folder: Path) -> np.ndarray:
    """A TensorProto (initializer or Constant value) as a numpy array, its size checked
    before any data is read; external data only from files inside `folder`. Raises
    ModelImportError for a damaged, oversized or misplaced tensor."""
    from onnx import TensorProto, numpy_helper

    name = tensor.name or "(constant)"
    dims = [int(d) for d in tensor.dims]
    if any(d < 0 for d in dims):
        raise ModelImportError(f"initializer {name!r} has a negative dimension")
    dtype = _numpy_dtype(tensor)
    count = prod(dims)
    nbytes = count * dtype.itemsize
    if nbytes > MAX_TENSOR_BYTES:
        raise ModelImportError(f"initializer {name!r} is {nbytes / _GIB:.1f} GiB; the limit is"
                               f" {MAX_TENSOR_BYTES // _GIB} GiB per tensor")
    little = dtype.newbyteorder("<")
    if tensor.data_location == TensorProto.EXTERNAL:
        info = {entry.key: entry.value for entry in tensor.external_data}
        file = safe_external_path(folder, info.get("location", ""), name)
        try:
            offset = int(info.get("offset", 0) or 0)
            length = int(info.get("length", nbytes) or nbytes)
        except ValueError:
            raise ModelImportError(f"initializer {name!r} has a malformed external data"
                                   " offset or length") from None
        if offset < 0 or length != nbytes:
            raise ModelImportError(f"initializer {name!r}: external data length {length} does"
                                   f" not fit its {'×'.join(map(str, dims)) or 'scalar'} shape")
        with open(file, "rb") as stream:
            stream.seek(offset)
            data = stream.read(nbytes)
        if len(data) != nbytes:
            raise ModelImportError(f"initializer {name!r}: its external data file ends early"
                                   " (truncated?)")
        return np.frombuffer(data, dtype=little).reshape(dims).astype(dtype)
    if tensor.HasField("raw_data"):
        if len(tensor.raw_data) != nbytes:
            raise ModelImportError(f"initializer {name!r} holds {len(tensor.raw_data)} bytes,"
                                   f" its shape needs {nbytes} (damaged file?)")
        return np.frombuffer(tensor.raw_data, dtype=little).reshape(dims).astype(dtype)
    try:
        array = numpy_helper.to_array(tensor)
    except Exception:  # onnx raises several kinds for inconsistent typed fields
        raise ModelImportError(f"initializer {name!r} is damaged") from None
    if array.size != count:
        raise ModelImportError(f"initializer {name!r} holds {array.size} values, its shape"
                               f" needs {count} (damaged file?)")
    return np.asarray(array).reshape(dims)


def attributes(node: Any) -> dict[str, Any]:
    """A node's attributes as Python values (bytes decoded, tensors left as protos)."""
    from onnx import helper

    out: dict[str, Any] = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list):
            value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
        out[attribute.name] = value
    return out


def dims_of(value_info: Any) -> tuple[int | str | None, ...] | None:
    """A value's declared shape (ints, symbolic names or None per dim), None if unknown."""
    kind = value_info.type.WhichOneof("value")
    if kind != "tensor_type" or not value_info.type.tensor_type.HasField("shape"):
        return None
    out: list[int | str | None] = []
    for dim in value_info.type.tensor_type.shape.dim:
        field = dim.WhichOneof("value")
        out.append(dim.dim_value if field == "dim_value" else
                   dim.dim_param or None if field == "dim_param" else None)
    return tuple(out)
