"""safetensors headers checked without torch and without unpickling anything."""

from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest
from safetensors.numpy import save

from cnnstudio.project import WeightsError, weights_header
from cnnstudio.project.weights import DTYPE_BITS

from .helpers import weights_bytes, zip_bytes


def build(header: dict, body: bytes, pad_to: int | None = None) -> bytes:
    """Hand-made safetensors bytes (optionally with the header padded to `pad_to` bytes)."""
    text = json.dumps(header).encode()
    if pad_to is not None:
        text = text.ljust(pad_to)
    return struct.pack("<Q", len(text)) + text + body


def test_header_of_real_safetensors_lists_names_dtypes_and_shapes():
    assert weights_header(weights_bytes()) == {
        "conv1.bias": ("F32", [4]),
        "conv1.weight": ("F32", [4, 1, 3, 3]),
        "fc.bias": ("F64", [10]),
        "fc.weight": ("F32", [10, 256]),
    }


def test_many_dtypes_and_scalars_and_empty_tensors():
    data = save({"b": np.array([True, False]), "u8": np.zeros((2, 3), np.uint8),
                 "i64": np.array(5, np.int64), "f16": np.zeros((0, 4), np.float16)})
    assert weights_header(data) == {"b": ("BOOL", [2]), "f16": ("F16", [0, 4]),
                                    "i64": ("I64", []), "u8": ("U8", [2, 3])}
    assert weights_header(save({})) == {}


def test_a_valid_header_whose_length_starts_with_the_pickle_byte_is_accepted():
    data = build({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(8),
                 pad_to=128)
    assert data[:1] == b"\x80"
    assert weights_header(data) == {"w": ("F32", [2])}


def test_packed_sub_byte_dtypes_need_whole_bytes():
    assert weights_header(build({"q": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]}},
                                bytes(2))) == {"q": ("F4", [4])}
    with pytest.raises(WeightsError, match="needs 1.5 bytes"):
        weights_header(build({"q": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}},
                             bytes(2)))
    assert DTYPE_BITS["BF16"] == 16


@pytest.mark.parametrize("data", [
    pickle.dumps({"a": 1}),
    pickle.dumps({"a": 1}, protocol=2),
    zip_bytes({"archive/data.pkl": pickle.dumps({"a": 1}), "archive/version": "3\n"}),
])
def test_pickles_and_torch_zips_are_named_as_such(data: bytes):
    with pytest.raises(WeightsError) as info:
        weights_header(data)
    assert str(info.value) == ("weights.safetensors is not a safetensors file"
                               " (a pickle? CNN Studio never unpickles)")


def raw(header: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header


F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize(("data", "words"), [
    (b"", "truncated"),
    (b"\x05\x00\x00", "truncated"),
    (weights_bytes()[:-1], "truncated"),
    (weights_bytes()[:40], "truncated"),
    (struct.pack("<Q", 200 * 1024**2) + b"{}", "header length"),
    (struct.pack("<Q", 2) + b"[]", "header is not JSON"),
    (struct.pack("<Q", 4) + b"{xx}", "bad header"),
    (struct.pack("<Q", 3) + b"{\xff}", "bad header"),
    (build({"w": {**F32_2, "dtype": "F31"}}, bytes(8)), "unknown dtype 'F31'"),
    (build({"w": {**F32_2, "shape": [2.0]}}, bytes(8)), "shape"),
    (build({"w": {**F32_2, "shape": [-2]}}, bytes(8)), "shape"),
    (build({"w": {**F32_2, "shape": [True, 2]}}, bytes(8)), "shape"),
    (build({"w": {**F32_2, "shape": [3]}}, bytes(8)), "needs 12 bytes"),
    (build({"w": {**F32_2, "data_offsets": [0]}}, bytes(8)), "data_offsets"),
    (build({"w": {**F32_2, "data_offsets": [8, 16]}}, bytes(8)), "truncated"),
    (build({"w": {**F32_2, "data_offsets": [4, 12]}}, bytes(12)), "gap"),
    (build({"w": F32_2, "v": {**F32_2, "data_offsets": [4, 12]}}, bytes(12)), "overlaps"),
    (build({"w": F32_2}, bytes(9)), "1 bytes after its last tensor"),
    (build({"w": "tensor"}, bytes(8)), "not an object"),
    (build({"__metadata__": {"n": 1}}, b""), "__metadata__"),
    (build([1], b""), "header is not JSON"),
    (raw(b'{"w": 1, "v": NaN}'), "NaN is not allowed"),
    (raw(b'{"w": 1, "w": 2 }'), "listed twice"),
    (raw(b'{"a": ' * 5000 + b"1" + b"}" * 5000), "bad header"),
])
def test_malformed_safetensors_are_refused_in_one_line(data: bytes, words: str):
    with pytest.raises(WeightsError) as info:
        weights_header(data, "resume.safetensors")
    message = str(info.value)
    assert message.startswith("resume.safetensors ")
    assert words in message
    assert "\n" not in message


def test_metadata_is_allowed_and_left_out():
    data = build({"__metadata__": {"format": "pt"}, "w": F32_2}, bytes(8))
    assert weights_header(bytearray(data)) == {"w": ("F32", [2])}
    assert weights_header(memoryview(data)) == {"w": ("F32", [2])}
