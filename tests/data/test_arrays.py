"""Array sources: .npz, CSV, MNIST IDX (plain and gzip) and CIFAR-10 binary batches."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnstudio.data import DataError, load_dataset


# -- npz ------------------------------------------------------------------------------------
def test_npz_uint8_images_with_class_names(tmp_path: Path) -> None:
    x = np.arange(6 * 4 * 4, dtype=np.uint8).reshape(6, 4, 4)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 2, 0, 1, 2]),
             class_names=np.array(["cat", "dog", "eel"]))
    ds = load_dataset({"kind": "npz", "path": "d.npz"}, input_shape=[1, 4, 4],
                      base_dir=tmp_path)
    assert ds.class_names == ["cat", "dog", "eel"]
    assert ds.x.dtype == np.uint8 or str(ds.x.dtype) == "torch.uint8"
    np.testing.assert_array_equal(ds.x[:, 0].numpy(), x)
    assert ds.y.tolist() == [0, 1, 2, 0, 1, 2]


def test_npz_channels_last_float_and_string_labels(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((4, 5, 5, 3)).astype(np.float64)
    np.savez(tmp_path / "d.npz", x=x, y=np.array(["b", "a", "b", "a"]))
    ds = load_dataset({"kind": "npz", "path": tmp_path / "d.npz"}, input_shape=[3, 5, 5])
    assert str(ds.x.dtype) == "torch.float32"  # floats are kept, unscaled
    np.testing.assert_allclose(ds.x.numpy(), x.transpose(0, 3, 1, 2), rtol=1e-6)
    assert ds.class_names == ["a", "b"] and ds.y.tolist() == [1, 0, 1, 0]


def test_npz_object_array_is_refused_without_pickle(tmp_path: Path) -> None:
    x = np.empty(2, dtype=object)
    x[0], x[1] = [1, 2], "evil"
    np.savez(tmp_path / "o.npz", x=x, y=np.array([0, 1]))
    with pytest.raises(DataError, match="holds Python objects.*no pickle") as err:
        load_dataset({"kind": "npz", "path": tmp_path / "o.npz"}, input_shape=[1, 2, 2])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((2, 4, 4), np.uint8)}, "has no array 'y'"),
    ({"x": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, 1, 2])}, "2 samples but 3 labels"),
    ({"x": np.full((2, 4, 4), 300), "y": np.array([0, 1])}, "span 300..300"),
    ({"x": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, -1])}, "negative"),
    ({"x": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, 3]),
      "class_names": np.array(["a", "b"])}, "label 3 but only 2 class names"),
])
def test_npz_errors(tmp_path: Path, arrays: dict, message: str) -> None:
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_dataset({"kind": "npz", "path": tmp_path / "d.npz"}, input_shape=[1, 4, 4])


def test_not_an_npz_file(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_text("hello")
    with pytest.raises(DataError, match="not a valid .npz"):
        load_dataset({"kind": "npz", "path": tmp_path / "d.npz"}, input_shape=[1, 4, 4])


def test_npz_segmentation_masks_are_resized_nearest(tmp_path: Path) -> None:
    y = np.zeros((3, 4, 4), np.int64)
    y[:, :2, :2] = 2
    np.savez(tmp_path / "s.npz", x=np.zeros((3, 4, 4), np.uint8), y=y)
    ds = load_dataset({"kind": "npz", "path": tmp_path / "s.npz"}, input_shape=[1, 8, 8],
                      task="segmentation")
    assert ds.class_names == ["class_0", "class_1", "class_2"]
    assert ds.y.shape == (3, 8, 8) and ds.y[0, :4, :4].unique().tolist() == [2]
    assert ds.y[0, 4:].unique().tolist() == [0]


def test_npz_signals_are_resampled(tmp_path: Path) -> None:
    ramp = np.linspace(0, 1, 64, dtype=np.float32)
    np.savez(tmp_path / "s.npz", x=np.stack([ramp, ramp * 2]), y=np.array([0, 1]))
    ds = load_dataset({"kind": "npz", "path": tmp_path / "s.npz"}, input_shape=[1, 32])
    assert ds.x.shape == (2, 1, 32) and str(ds.x.dtype) == "torch.float32"
    assert ds.x[0, 0, 0] < ds.x[0, 0, 16] < ds.x[0, 0, 31]  # still a rising ramp
    np.testing.assert_allclose(ds.x[1].numpy(), 2 * ds.x[0].numpy(), rtol=1e-5)
    with pytest.raises(DataError, match="1 channel\\(s\\) but the Input has 2"):
        load_dataset({"kind": "npz", "path": tmp_path / "s.npz"}, input_shape=[2, 32])


# -- CSV ------------------------------------------------------------------------------------
def test_csv_pixels_with_header_and_names(tmp_path: Path) -> None:
    rows = ["label," + ",".join(f"p{i}" for i in range(16))]
    rows += ["cat," + ",".join(["255"] * 16), "dog," + ",".join(["0"] * 16),
             "cat," + ",".join(str(i * 10) for i in range(16))]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset({"kind": "csv", "path": tmp_path / "d.csv"}, input_shape=[1, 4, 4])
    assert ds.class_names == ["cat", "dog"] and ds.y.tolist() == [0, 1, 0]
    assert str(ds.x.dtype) == "torch.uint8"
    assert ds.x[2, 0].flatten().tolist() == [i * 10 for i in range(16)]


def test_csv_without_header_int_labels(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("2,1,2,3,4\n0,5,6,7,8\n")
    ds = load_dataset({"kind": "csv", "path": tmp_path / "d.csv"}, input_shape=[1, 2, 2])
    assert ds.class_names == ["0", "1", "2"] and ds.y.tolist() == [2, 0]
    assert ds.x[1, 0].tolist() == [[5, 6], [7, 8]]


def test_csv_signals_semicolon(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("y;a;b;c;d\n1;0.5;-1;2;3\n0;1;1;1;1\n")
    ds = load_dataset({"kind": "csv", "path": tmp_path / "s.csv"}, input_shape=[1, 4])
    assert str(ds.x.dtype) == "torch.float32"
    assert ds.x[0, 0].tolist() == [0.5, -1.0, 2.0, 3.0]
    ds2 = load_dataset({"kind": "csv", "path": tmp_path / "s.csv"}, input_shape=[2, 2])
    assert ds2.x[0].tolist() == [[0.5, -1.0], [2.0, 3.0]]


def test_csv_ragged_row_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("1,2,3,4,5\n0,1,2\n")
    with pytest.raises(DataError, match="cannot read .*d.csv") as err:
        load_dataset({"kind": "csv", "path": tmp_path / "d.csv"}, input_shape=[1, 2, 2])
    assert "\n" not in str(err.value)


# -- IDX ------------------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_idx_plain_and_gzip(tmp_path: Path, compress: bool) -> None:
    x = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    y = np.array([3, 1, 4, 1, 5, 9, 2], np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"img-idx3-ubyte{suffix}", x, compress)
    write_idx(tmp_path / f"lbl-idx1-ubyte{suffix}", y, compress)
    ds = load_dataset({"kind": "idx", "images": f"img-idx3-ubyte{suffix}",
                       "labels": f"lbl-idx1-ubyte{suffix}"}, input_shape=[1, 28, 28],
                      base_dir=tmp_path)
    np.testing.assert_array_equal(ds.x[:, 0].numpy(), x)
    assert ds.y.tolist() == y.tolist()
    assert ds.class_names == [str(i) for i in range(10)]


def test_idx_truncated_and_wrong_files(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "img", np.zeros((5, 4, 4), np.uint8))
    images.write_bytes(images.read_bytes()[:-10])
    write_idx(tmp_path / "lbl", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="truncated"):
        load_dataset({"kind": "idx", "images": images, "labels": tmp_path / "lbl"},
                     input_shape=[1, 4, 4])
    (tmp_path / "txt").write_text("hello there")
    with pytest.raises(DataError, match="not an IDX file"):
        load_dataset({"kind": "idx", "images": tmp_path / "txt", "labels": tmp_path / "lbl"},
                     input_shape=[1, 4, 4])


# -- CIFAR-10 -------------------------------------------------------------------------------
def write_cifar_batch(path: Path, labels: list[int], seed: int) -> np.ndarray:
    images = np.random.default_rng(seed).integers(0, 256, (len(labels), 3, 32, 32),
                                                 dtype=np.uint8)
    records = np.concatenate([np.array(labels, np.uint8)[:, None],
                              images.reshape(len(labels), -1)], axis=1)
    path.write_bytes(records.tobytes())
    return images


def test_cifar10_binary_batches(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    a = write_cifar_batch(folder / "data_batch_1.bin", [0, 1, 2], 1)
    b = write_cifar_batch(folder / "data_batch_2.bin", [3, 9], 2)
    t = write_cifar_batch(folder / "test_batch.bin", [5, 6], 3)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
             "ship", "truck"]
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    ds = load_dataset({"kind": "cifar10", "path": tmp_path}, input_shape=[3, 32, 32],
                      val_fraction=0.0)
    assert ds.class_names == names
    np.testing.assert_array_equal(ds.x.numpy(), np.concatenate([a, b, t]))
    assert ds.y.tolist() == [0, 1, 2, 3, 9, 5, 6]
    assert ds.splits["train"].tolist() == [0, 1, 2, 3, 4] and ds.splits["val"].tolist() == []
    assert ds.splits["test"].tolist() == [5, 6]
    # gray 16x16: Pillow's luma, then Pillow's bilinear resize, per image
    small = load_dataset({"kind": "cifar10", "path": folder}, input_shape=[1, 16, 16])
    rgb = a[0].transpose(1, 2, 0)
    expected = np.asarray(Image.fromarray(rgb).convert("L").resize((16, 16), Image.BILINEAR))
    np.testing.assert_array_equal(small.x[0, 0].numpy(), expected)


def test_cifar10_bad_batch_size(tmp_path: Path) -> None:
    (tmp_path / "data_batch_1.bin").write_bytes(b"\x00" * 3000)
    with pytest.raises(DataError, match="not a whole number of CIFAR-10 records"):
        load_dataset({"kind": "cifar10", "path": tmp_path}, input_shape=[3, 32, 32])
    with pytest.raises(DataError, match="CIFAR-10 folder not found"):
        load_dataset({"kind": "cifar10", "path": tmp_path / "x"}, input_shape=[3, 32, 32])
    (tmp_path / "x").mkdir()
    with pytest.raises(DataError, match="no CIFAR-10 batches"):
        load_dataset({"kind": "cifar10", "path": tmp_path / "x"}, input_shape=[3, 32, 32])


def test_csv_numbered_header_crlf_and_blank_lines(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes(b"label,0,1,2,3\r\n1,1,2,3,4\r\n\r\n0,5,6,7,8\r\n\r\n")
    ds = load_dataset({"kind": "csv", "path": tmp_path / "d.csv"}, input_shape=[1, 2, 2])
    assert ds.y.tolist() == [1, 0] and ds.x[:, 0].tolist() == [[[1, 2], [3, 4]],
                                                               [[5, 6], [7, 8]]]


def test_array_source_over_budget_is_memory_mapped(tmp_path: Path, private_cache: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (20, 1, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(20) % 2)
    ds = load_dataset({"kind": "npz", "path": tmp_path / "d.npz"}, input_shape=[1, 8, 8],
                      memory_budget=100)
    np.testing.assert_array_equal(ds.x.numpy(), x)
    (entry,) = [p for p in private_cache.iterdir() if p.is_dir()]
    maps = Path("/proc/self/maps")
    if maps.exists():
        assert str(entry / "x.npy") in maps.read_text()
