"""ONNX operators with weights or windows → our layers: Conv, ConvTranspose, Gemm/MatMul,
BatchNormalization, pooling, Pad (folded into the next convolution or pooling), Resize.

Each converter reads the current node through the Mapper and either sets its output
value or raises Unsupported with the reason the refusal line gives."""

from __future__ import annotations

from math import ceil
from typing import Any

import numpy as np

from cnnstudio.nn.importing.onnx_mapper import Const, Mapper, Pending, Tensor, Unsupported

_PAD_MODES = {"reflect": "reflect", "edge": "replicate", "wrap": "circular"}
_RANK_TYPES = {1: "1d", 2: "2d", 3: "3d"}
_BIASED = ("Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d")


def compact(values: list[int] | list[float]) -> Any:
    """One number when every dimension agrees (as a user types it), else the list."""
    values = list(values)
    return values[0] if len(set(values)) == 1 else values


def number(value: Any) -> float:
    """An attribute's float as written: ONNX stores float32, so 1e-5 reads 9.99999975e-06."""
    return float(f"{float(value):.7g}")


def floats(array: np.ndarray) -> np.ndarray:
    """Weights as float32 (files may hold float16 or float64)."""
    if array.dtype.kind != "f":
        raise Unsupported("integer weights")
    return np.ascontiguousarray(array, dtype=np.float32)


def _spatial(x: Tensor) -> int:
    ndim = len(x.shape) - 1
    if ndim not in _RANK_TYPES:
        raise Unsupported(f"on a {len(x.shape) + 1}-D tensor")
    return ndim


def _ints(attrs: dict[str, Any], key: str, default: list[int], ndim: int) -> list[int]:
    values = [int(v) for v in attrs.get(key, default)]
    if len(values) != ndim:
        raise Unsupported(f"{key} has {len(values)} values for {ndim} dimensions")
    return values


def explicit_pads(attrs: dict[str, Any], sizes: tuple[int, ...], kernel: list[int],
                  strides: list[int], dilations: list[int]) -> tuple[list[int], list[int]]:
    """(begin, end) padding per spatial dimension, `auto_pad` resolved as ONNX does."""
    ndim = len(sizes)
    auto = attrs.get("auto_pad", "NOTSET") or "NOTSET"
    if auto == "VALID":
        return [0] * ndim, [0] * ndim
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for size, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
            total = max((ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, large = total // 2, total - total // 2
            begin.append(small if auto == "SAME_UPPER" else large)
            end.append(large if auto == "SAME_UPPER" else small)
        return begin, end
    if auto != "NOTSET":
        raise Unsupported(f"auto_pad {auto}")
    pads = [int(v) for v in attrs.get("pads", [0] * 2 * ndim)]
    if len(pads) != 2 * ndim or any(p < 0 for p in pads):
        raise Unsupported("malformed pads")
    return pads[:ndim], pads[ndim:]


def _padded_input(m: Mapper, kinds: tuple[str, ...]) -> tuple[Tensor, list[int], list[int], str]:
    """The node's data input with a folded Pad taken off: (tensor, extra begin, extra end,
    pad mode). `kinds`: the Pad modes this operator can absorb."""
    value = m.input(0)
    if isinstance(value, Pending) and value.kind == "pad":
        mode = value.data["mode"]
        if mode not in kinds:
            raise Unsupported(f"a {mode} Pad cannot be folded into {m.node.op_type}", op="Pad")
        m.folded_pad = True
        return value.source, value.data["begin"], value.data["end"], mode
    x = m.tensor(0)
    return x, [0] * (len(x.shape) - 1), [0] * (len(x.shape) - 1), "constant"


def _symmetric(begin: list[int], end: list[int]) -> list[int]:
    if begin != end:
        raise Unsupported(f"asymmetric padding: {','.join(map(str, begin))} before,"
                          f" {','.join(map(str, end))} after; torch pads both sides alike")
    return begin


def conv(m: Mapper, attrs: dict[str, Any]) -> None:
    x, extra_begin, extra_end, mode = _padded_input(m, ("constant", *_PAD_MODES))
    ndim = _spatial(x)
    weight = floats(m.const(1, "the weight"))
    bias = m.const(2, "the bias")
    if weight.ndim != ndim + 2:
        raise Unsupported("weight rank does not fit the input")
    kernel = _ints(attrs, "kernel_shape", list(weight.shape[2:]), ndim)
    strides = _ints(attrs, "strides", [1] * ndim, ndim)
    dilations = _ints(attrs, "dilations", [1] * ndim, ndim)
    groups = int(attrs.get("group", 1))
    if groups < 1 or x.shape[0] != weight.shape[1] * groups or list(weight.shape[2:]) != kernel:
        raise Unsupported("weight shape does not fit the input channels and kernel")
    begin, end = explicit_pads(attrs, x.shape[1:], kernel, strides, dilations)
    own = _symmetric(begin, end)
    padding = _symmetric([a + b for a, b in zip(begin, extra_begin, strict=True)],
                         [a + b for a, b in zip(end, extra_end, strict=True)])
    params: dict[str, Any] = {"out_channels": int(weight.shape[0]), "kernel_size": compact(kernel),
                              "stride": compact(strides), "padding": compact(padding),
                              "dilation": compact(dilations), "groups": groups,
                              "bias": bias is not None}
    if mode != "constant":
        if any(own):
            raise Unsupported("a Conv with its own padding after a non-zero Pad")
        params["padding_mode"] = _PAD_MODES[mode]
    weights = {"weight": weight}
    if bias is not None:
        weights["bias"] = floats(bias).reshape(-1)
    m.set(m.add(f"Conv{_RANK_TYPES[ndim]}", params, [x], weights))


def conv_transpose(m: Mapper, attrs: dict[str, Any]) -> None:
    x = m.tensor(0)
    if len(x.shape) != 3:
        raise Unsupported("only 2-D transposed convolutions")
    weight = floats(m.const(1, "the weight"))
    bias = m.const(2, "the bias")
    if weight.ndim != 4:
        raise Unsupported("weight rank does not fit the input")
    kernel = _ints(attrs, "kernel_shape", list(weight.shape[2:]), 2)
    strides = _ints(attrs, "strides", [1, 1], 2)
    dilations = _ints(attrs, "dilations", [1, 1], 2)
    groups = int(attrs.get("group", 1))
    if "output_shape" in attrs or attrs.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
        raise Unsupported("output_shape / auto_pad")
    if groups < 1 or weight.shape[0] != x.shape[0] or list(weight.shape[2:]) != kernel:
        raise Unsupported("weight shape does not fit the input channels and kernel")
    pads = [int(v) for v in attrs.get("pads", [0] * 4)]
    padding = _symmetric(pads[:2], pads[2:])
    output_padding = _ints(attrs, "output_padding", [0, 0], 2)
    params = {"out_channels": int(weight.shape[1]) * groups, "kernel_size": compact(kernel),
              "stride": compact(strides), "padding": compact(padding),
              "output_padding": compact(output_padding), "dilation": compact(dilations),
              "groups": groups, "bias": bias is not None}
    weights = {"weight": weight}
    if bias is not None:
        weights["bias"] = floats(bias).reshape(-1)
    m.set(m.add("ConvTranspose2d", params, [x], weights))


def _linear(m: Mapper, x: Tensor, weight: np.ndarray, bias: np.ndarray | None) -> None:
    """Linear with `weight` [out, in]."""
    if weight.ndim != 2 or weight.shape[1] != x.shape[-1]:
        raise Unsupported("weight shape does not fit the input")
    weights = {"weight": np.ascontiguousarray(weight)}
    if bias is not None:
        bias = floats(bias)
        out = weight.shape[0]
        if bias.size == 1:
            bias = np.full(out, float(bias.reshape(-1)[0]), np.float32)
        if bias.size != out or (bias.ndim == 2 and bias.shape[0] != 1):
            raise Unsupported("bias shape does not fit the outputs")
        weights["bias"] = bias.reshape(-1)
    m.set(m.add("Linear", {"out_features": int(weight.shape[0]), "bias": bias is not None},
                [x], weights))


def gemm(m: Mapper, attrs: dict[str, Any]) -> None:
    x = m.tensor(0)
    if len(x.shape) != 1:
        raise Unsupported("Gemm on more than a flat vector")
    if int(attrs.get("transA", 0)):
        raise Unsupported("transA")
    weight = floats(m.const(1, "the weight"))
    if weight.ndim != 2:
        raise Unsupported("weight is not a matrix")
    weight = weight if int(attrs.get("transB", 0)) else weight.T
    bias = m.const(2, "the bias")
    weight = weight * np.float32(attrs.get("alpha", 1.0))
    if bias is not None:
        bias = floats(bias) * np.float32(attrs.get("beta", 1.0))
    _linear(m, x, weight, bias)


def matmul(m: Mapper, attrs: dict[str, Any]) -> None:
    x = m.tensor(0)
    weight = floats(m.const(1, "the second operand"))
    if weight.ndim != 2:
        raise Unsupported("only a data × constant-matrix product")
    _linear(m, x, weight.T, None)


def fold_bias(m: Mapper, x: Tensor, index: int, bias: np.ndarray) -> bool:
    """Add a constant to a Linear or convolution without bias as its bias (MatMul + Add,
    Conv + Add); True when done. Only when that layer's output feeds this Add alone and
    the constant is one number per output channel."""
    node = m.graph.node(x.node)
    if node.type not in _BIASED or node.params.get("bias", True) or not m.single_use(index):
        return False
    bias = floats(bias)
    rank = len(x.shape) + 1  # with the batch
    if bias.ndim > rank:
        return False
    aligned = (1,) * (rank - bias.ndim) + tuple(bias.shape)  # numpy broadcasting aligns right
    want = (1,) * (rank - 1) + (x.shape[-1],) if node.type == "Linear" else \
        (1, x.shape[0]) + (1,) * (rank - 2)
    if aligned != want:
        return False
    m.graph.set_param(x.node, "bias", True)
    m.weights[f"{x.node}.bias"] = np.ascontiguousarray(bias.reshape(-1))
    m.set(x)
    return True


def batch_norm(m: Mapper, attrs: dict[str, Any]) -> None:
    x = m.tensor(0)
    if int(attrs.get("training_mode", 0)) or len(m.node.output) > 1 and any(m.node.output[1:]):
        raise Unsupported("training mode")
    type_name = {1: "BatchNorm1d", 2: "BatchNorm1d", 3: "BatchNorm2d"}.get(len(x.shape))
    if type_name is None:
        raise Unsupported(f"on a {len(x.shape) + 1}-D tensor")
    scale, shift, mean, var = (floats(m.const(i, "the statistics")).reshape(-1)
                               for i in range(1, 5))
    if not all(a.size == x.shape[0] for a in (scale, shift, mean, var)):
        raise Unsupported("statistics do not fit the channels")
    momentum = 1.0 - number(attrs.get("momentum", 0.9))  # ONNX keeps the running share
    params = {"eps": number(attrs.get("epsilon", 1e-5)), "momentum": number(momentum)}
    weights = {"weight": scale, "bias": shift, "running_mean": mean, "running_var": var,
               "num_batches_tracked": np.array(0, dtype=np.int64)}
    m.set(m.add(type_name, params, [x], weights))


def _pool(m: Mapper, attrs: dict[str, Any], is_max: bool) -> None:
    x, extra_begin, extra_end, _ = _padded_input(m, ("constant",))
    ndim = _spatial(x)
    kernel = _ints(attrs, "kernel_shape", [], ndim)
    strides = _ints(attrs, "strides", [1] * ndim, ndim)
    dilations = _ints(attrs, "dilations", [1] * ndim, ndim)
    ceil_mode = bool(int(attrs.get("ceil_mode", 0)))
    begin, end = explicit_pads(attrs, x.shape[1:], kernel, strides, dilations)
    own = _symmetric(begin, end)
    include_pad = bool(int(attrs.get("count_include_pad", 0)))
    if any(extra_begin) or any(extra_end):
        # Zeros padded before the pool: exact as the pool's own padding only when a zero
        # cannot change the result (max after ReLU) or is counted (average).
        if ceil_mode or any(own):
            raise Unsupported("a Pad before a pooling that pads itself or rounds up", op="Pad")
        if is_max and m.graph.node(x.node).type != "ReLU":
            raise Unsupported("zero padding before a max pooling of signed values", op="Pad")
        include_pad = True
    padding = [a + b for a, b in zip(own, _symmetric(extra_begin, extra_end), strict=True)]
    if len(m.node.output) > 1 and m.node.output[1]:
        raise Unsupported("the indices output")
    params: dict[str, Any] = {"kernel_size": compact(kernel), "stride": compact(strides),
                              "padding": compact(padding), "ceil_mode": ceil_mode}
    if is_max:
        params["dilation"] = compact(dilations)
    else:
        if any(d != 1 for d in dilations):
            raise Unsupported("dilated average pooling")
        params["count_include_pad"] = include_pad
    kind = "MaxPool" if is_max else "AvgPool"
    m.set(m.add(f"{kind}{_RANK_TYPES[ndim]}", params, [x]))


def max_pool(m: Mapper, attrs: dict[str, Any]) -> None:
    _pool(m, attrs, True)


def average_pool(m: Mapper, attrs: dict[str, Any]) -> None:
    _pool(m, attrs, False)


def global_pool(m: Mapper, is_max: bool, keep: bool = True, x: Tensor | None = None) -> Tensor:
    """Pooling over every spatial position of `x` (default: the node's input): an
    adaptive pool to 1×1 for images, a window of the whole length (or volume) otherwise;
    `keep` False adds a Flatten. Sets and returns the node's output."""
    x = m.tensor(0) if x is None else x
    ndim = _spatial(x)
    if ndim == 2:
        out = m.add("AdaptiveMaxPool2d" if is_max else "AdaptiveAvgPool2d",
                    {"output_size": 1}, [x])
    else:
        kind = "MaxPool" if is_max else "AvgPool"
        out = m.add(f"{kind}{_RANK_TYPES[ndim]}", {"kernel_size": compact(list(x.shape[1:]))},
                    [x])
    if not keep:
        m.onnx_of.pop(out.node, None)  # the ONNX value is the flattened one
        out = m.add("Flatten", {}, [out], name=f"{m.graph.node(out.node).id}_flatten")
    m.set(out)
    return out


def reduce_spatial(m: Mapper, attrs: dict[str, Any], is_max: bool) -> None:
    """ReduceMean/ReduceMax over all spatial axes (`x.mean((2, 3))`) → global pooling;
    also over a tensor with size-1 axes inserted (how torch.export writes
    adaptive_avg_pool1d: Unsqueeze → ReduceMean → Squeeze)."""
    value = m.input(0)
    axes = attrs.get("axes")
    if axes is None:
        given = m.const(1, "axes")
        axes = None if given is None else [int(a) for a in given.reshape(-1)]
    keep = bool(int(attrs.get("keepdims", 1)))
    if isinstance(value, Pending) and value.kind == "unsqueeze" and axes is not None and keep:
        inserted = value.data
        rank = len(value.source.shape) + 1 + len(inserted)
        original = [i for i in range(rank) if i not in inserted]  # where x's axes went
        reduced = {a % rank for a in axes} - set(inserted)
        if reduced == set(original[2:]):
            m.onnx_of.pop(global_pool(m, is_max, True, value.source).node, None)
            m.set(Pending("unsqueeze", m.values[m.node.output[0]], value.op, value.name,
                          inserted))
            return
    x = m.tensor(0)
    rank = len(x.shape) + 1
    if axes is None or sorted(a % rank for a in axes) != list(range(2, rank)) or rank < 3:
        raise Unsupported("only over every spatial axis (a global pooling)")
    global_pool(m, is_max, keep=keep)


def pad(m: Mapper, attrs: dict[str, Any]) -> None:
    x = m.tensor(0)
    rank = len(x.shape) + 1
    mode = attrs.get("mode", "constant")
    pads = attrs.get("pads")
    pads = [int(v) for v in (m.const(1, "pads").reshape(-1) if pads is None else pads)]
    value = m.const(2, "the padding value")
    axes = m.const(3, "axes")
    if axes is not None:
        full = [0] * (2 * rank)
        for i, axis in enumerate(int(a) % rank for a in axes.reshape(-1)):
            full[axis], full[rank + axis] = pads[i], pads[len(axes.reshape(-1)) + i]
        pads = full
    if len(pads) != 2 * rank:
        raise Unsupported("malformed pads")
    if mode not in ("constant", *_PAD_MODES):
        raise Unsupported(f"mode {mode}")
    if any(p < 0 for p in pads) or pads[0] or pads[1] or pads[rank] or pads[rank + 1]:
        raise Unsupported("padding of the batch or channels, or cropping")
    if mode == "constant" and value is not None and value.size and float(value.reshape(-1)[0]):
        raise Unsupported("padding with a value other than zero")
    m.set(Pending("pad", x, "Pad", "pad", {"begin": pads[2:rank], "end": pads[rank + 2:],
                                           "mode": mode}))


def resize(m: Mapper, attrs: dict[str, Any]) -> None:
    x = m.tensor(0)
    ndim = _spatial(x)
    if m.node.op_type == "Upsample" or m.opset < 11:
        scales = attrs.get("scales")
        scales = m.const(1, "scales") if scales is None else np.array(scales)
        sizes = None
    else:
        scales, sizes = m.const(2, "scales"), _sizes(m)
    mode = attrs.get("mode", "nearest")
    coordinates = attrs.get("coordinate_transformation_mode",
                            "asymmetric" if m.opset < 11 else "half_pixel")
    if int(attrs.get("antialias", 0)) or attrs.get("axes") is not None:
        raise Unsupported("antialias / axes")
    params: dict[str, Any] = {}
    if mode == "nearest":
        nearest = attrs.get("nearest_mode", "round_prefer_floor")
        if coordinates == "asymmetric" and (nearest == "floor" or m.opset < 11):
            params["mode"] = "nearest"
        elif (coordinates, nearest) in (("half_pixel", "round_prefer_ceil"),
                                        ("tf_half_pixel_for_nn", "floor")):
            # torch's nearest-exact reads ⌊(dst + ½)·in/out⌋: the same source pixel.
            params["mode"] = "nearest-exact"
        else:
            raise Unsupported(f"nearest with {coordinates}/{nearest} coordinates")
    elif mode in ("linear", "cubic"):
        if mode == "cubic" and (ndim != 2 or float(attrs.get("cubic_coeff_a", -0.75)) != -0.75
                                or int(attrs.get("exclude_outside", 0))):
            raise Unsupported("cubic other than torch's bicubic")
        if coordinates not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise Unsupported(f"{mode} with {coordinates} coordinates")
        params["mode"] = "bicubic" if mode == "cubic" else \
            {1: "linear", 2: "bilinear", 3: "trilinear"}[ndim]
        params["align_corners"] = coordinates == "align_corners"
    else:
        raise Unsupported(f"mode {mode}")
    if scales is not None and scales.size:
        scales = [float(s) for s in scales.reshape(-1)]
        if len(scales) != ndim + 2 or scales[0] != 1 or scales[1] != 1:
            raise Unsupported("scaling the batch or channels")
        params["scale_factor"] = compact(scales[2:])
    elif sizes is not None:
        if len(sizes) != ndim + 2 or sizes[1] not in (None, x.shape[0]):
            raise Unsupported("resizing the batch or channels")
        params["size"] = compact([int(s) for s in sizes[2:]])
    else:
        raise Unsupported("neither scales nor sizes")
    m.set(m.add("Upsample", params, [x]))


def _sizes(m: Mapper) -> list[int | None] | None:
    from cnnstudio.nn.importing.onnx_mapper import Dims

    value = m.input(3)
    if value is None:
        return None
    if isinstance(value, Dims) and all(v is not None for v in value.values[1:]):
        return list(value.values)
    if isinstance(value, Const):
        return [int(v) for v in value.array.reshape(-1)]
    raise Unsupported("sizes computed at run time")
