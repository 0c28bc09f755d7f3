"""Checking safetensors bytes without torch and without unpickling anything.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON (tensor
name → {dtype, shape, data_offsets}, plus an optional `__metadata__` of strings), then
the tensor data. The checks mirror the safetensors library's own, so bytes accepted here
load there: offsets lie inside the data, tensors tile it without gaps or overlaps, and
each tensor's byte span equals its element count × its dtype's size.
"""

from __future__ import annotations

import json
import math
from typing import Any

# Names shared by the trainer, the exporter and the window (which must not import torch).
RESUME_MEMBER = "resume.safetensors"  # archive member holding a stopped run's resume state
NORMALIZATION_KEY = "cnnstudio.normalization"  # weights metadata: JSON {normalize, mean, std}


MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library's own limit

# Bits per element of every dtype the safetensors format knows (sub-byte ones are packed).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
    "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
    "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}
_PICKLE_PROTO = b"\x80"  # first byte of every pickle of protocol 2 or later (torch.save)
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # torch.save's default: a zip around a pickle


class WeightsError(ValueError):
    """Bytes that are not a valid safetensors file; str is one line starting with the name."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"tensor {key!r} is listed twice")
        out[key] = value
    return out


def weights_header(data: bytes | bytearray | memoryview,
                   name: str = "weights.safetensors") -> dict[str, tuple[str, list[int]]]:
    """Check that `data` is a complete, consistent safetensors file.

    Returns tensor name → (dtype, shape), in header order (`__metadata__` left out). Never
    unpickles and never imports torch. Raises WeightsError, whose message starts with
    `name`, e.g. `weights.safetensors is truncated: ...`.
    """
    view = memoryview(data).cast("B")
    size = int.from_bytes(view[:8], "little") if len(view) >= 8 else -1
    if not (0 <= size <= MAX_HEADER_BYTES and 8 + size <= len(view) and view[8:9] == b"{"):
        # Only now look at magic bytes: a valid header length may well start with 0x80.
        if bytes(view[:1]) == _PICKLE_PROTO or bytes(view[:4]) in _ZIP_MAGICS:
            raise WeightsError(f"{name} is not a safetensors file"
                               " (a pickle? CNN Studio never unpickles)")
    if size < 0:
        raise WeightsError(f"{name} is truncated: {len(view)} bytes, shorter than its header")
    if size > MAX_HEADER_BYTES:
        raise WeightsError(f"{name} is not a safetensors file (header length {size} bytes;"
                           f" at most {MAX_HEADER_BYTES} allowed)")
    if 8 + size > len(view):
        raise WeightsError(f"{name} is truncated: its header needs {size} bytes,"
                           f" the file has {len(view) - 8} after the length")
    if view[8:9] != b"{":
        raise WeightsError(f"{name} is not a safetensors file (its header is not JSON)")
    try:
        header = json.loads(bytes(view[8:8 + size]).decode("utf-8"),
                            object_pairs_hook=_unique_object, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise WeightsError(f"{name} has a bad header: {_one_line(err)}") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{name} has a bad header: not a JSON object")

    body = len(view) - 8 - size
    tensors: dict[str, tuple[str, list[int]]] = {}
    spans: list[tuple[int, int, str]] = []
    for key, info in header.items():
        if key == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise WeightsError(f"{name} has a bad header: __metadata__ must map names"
                                   " to strings")
            continue
        dtype, shape, begin, end = _tensor_info(key, info, name)
        if not 0 <= begin <= end <= body:
            raise WeightsError(f"{name} is truncated: tensor {key!r} spans bytes {begin}–{end},"
                               f" the data has {body}")
        bits = math.prod(shape) * DTYPE_BITS[dtype]
        if bits % 8 or bits // 8 != end - begin:
            raise WeightsError(f"{name} has a bad header: tensor {key!r} of {dtype} {shape}"
                               f" needs {bits / 8:g} bytes, its offsets give {end - begin}")
        tensors[key] = (dtype, shape)
        spans.append((begin, end, key))

    position = 0
    for begin, end, key in sorted(spans):
        if begin != position:
            what = "overlaps another" if begin < position else "leaves a gap before it"
            raise WeightsError(f"{name} has a bad header: tensor {key!r} {what}")
        position = end
    if position != body:
        raise WeightsError(f"{name} has {body - position} bytes after its last tensor")
    return tensors


def _tensor_info(key: str, info: Any, name: str) -> tuple[str, list[int], int, int]:
    bad = f"{name} has a bad header: tensor {key!r}"
    if not isinstance(info, dict):
        raise WeightsError(f"{bad} is not an object")
    dtype = info.get("dtype")
    if dtype not in DTYPE_BITS:
        raise WeightsError(f"{bad} has unknown dtype {dtype!r}")
    shape = info.get("shape")
    if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
        raise WeightsError(f"{bad} has a shape that is not a list of sizes")
    offsets = info.get("data_offsets")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_count, offsets)):
        raise WeightsError(f"{bad} has data_offsets that are not two byte positions")
    return dtype, list(shape), offsets[0], offsets[1]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def trained_normalization(weights: bytes | None, runs: list[Any],
                          channels: int | None = None) -> dict[str, Any] | None:
    """`{"normalize", "mean", "std"}` the inputs of `weights` were prepared with: from the
    weights' safetensors metadata (it travels with them; only the header is read), else
    the latest run record that holds a valid one; None when nothing says (weights from
    elsewhere). Values that are not per-channel lists of numbers (`channels` of them,
    when given) with positive std do not count."""
    found: Any = None
    try:
        size = int.from_bytes((weights or b"")[:8], "little")
        if weights and 8 <= len(weights) and size <= min(len(weights) - 8, MAX_HEADER_BYTES):
            metadata = json.loads(bytes(weights[8:8 + size])).get("__metadata__") or {}
            found = json.loads(metadata.get(NORMALIZATION_KEY, "null"))
    except (ValueError, TypeError, AttributeError, RecursionError):
        pass
    for value in [found, *(r.get("normalization") for r in reversed(runs) if isinstance(r, dict))]:
        mean, std = (value.get("mean"), value.get("std")) if isinstance(value, dict) else (0, 0)
        if (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std)
                and channels in (None, len(mean))
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in mean + std)
                and all(v > 0 for v in std)):
            return {"normalize": bool(value.get("normalize", True)),
                    "mean": [float(v) for v in mean], "std": [float(v) for v in std]}
    return None


def trained_class_names(runs: list[Any]) -> list[str]:
    """The class names of the latest run that recorded some (those of the weights)."""
    for record in reversed(runs):
        names = record.get("class_names") if isinstance(record, dict) else None
        if isinstance(names, list) and names:
            return [str(n) for n in names]
    return []
