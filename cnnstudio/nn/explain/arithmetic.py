"""What one output value of a layer is made of, with the network's real numbers.

`trace_layer` runs one sample through the nodes a layer needs (torch, eval mode, no
gradients) and keeps the layer's inputs, output and weights as NumPy copies;
`LayerTrace.explain(index)` then rebuilds any output value from them — the convolution's
patch × kernel + bias, the pooling window, BatchNorm's formula, Linear's largest
contributions, Softmax's exponentials, … — in pure NumPy, fast enough for the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnstudio.core import registry
from cnnstudio.nn.explain import pointwise, windows
from cnnstudio.nn.explain.explanation import Kept, ValueExplanation

if TYPE_CHECKING:
    import torch
    from torch import nn

    from cnnstudio.nn.builder import GraphModule

_CONVS = ("Conv1d", "Conv2d", "Conv3d")
_POOLS = ("MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d")
_ADAPTIVE = ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d")
# Activations whose output value depends on the same input value only: shown as the step
# after the explained layer when they are its only consumer.
_ACTIVATIONS = ("ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Tanh", "Sigmoid")

Explainer = Callable[[Kept, tuple[int, ...]], ValueExplanation]
_EXPLAINERS: dict[str, tuple[str, Explainer]] = {
    **{t: ("conv", windows.explain_conv) for t in _CONVS},
    **{t: ("pool", windows.explain_pool) for t in _POOLS},
    **{t: ("pool", windows.explain_adaptive) for t in _ADAPTIVE},
    "BatchNorm1d": ("batchnorm", pointwise.explain_batchnorm),
    "BatchNorm2d": ("batchnorm", pointwise.explain_batchnorm),
    "Flatten": ("flatten", pointwise.explain_flatten),
    "Linear": ("linear", pointwise.explain_linear),
    "Softmax": ("softmax", pointwise.explain_softmax),
    "Add": ("add", pointwise.explain_add),
    "Concat": ("concat", pointwise.explain_concat),
    **{t: ("elementwise", pointwise.explain_elementwise) for t in pointwise.ELEMENTWISE},
    "Maxout": ("other", windows.explain_maxout),
    "Upsample": ("other", pointwise.explain_upsample),
}


class LayerTrace:
    """One forward pass of one sample, kept: the inputs and output of one node (and of the
    element-wise activation right after it). `explain` is pure NumPy, callable on the GUI
    thread; nothing here refers back to the torch module."""

    def __init__(self, kept: Kept, after: tuple[str, str, np.ndarray] | None) -> None:
        self._kept = kept
        self.node = kept.node
        self.type_name = kept.type_name
        self.kind, self._explainer = _EXPLAINERS.get(kept.type_name,
                                                     ("other", pointwise.explain_other))
        self.inputs = kept.inputs
        self.input_nodes = kept.input_nodes
        self.output = kept.output
        self.after = after

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The node's output shape for one sample (no batch)."""
        return tuple(self.output.shape)

    @property
    def settings(self) -> dict[str, Any]:
        """The layer's weights (NumPy copies) and hyper-parameters as the explanation read them."""
        return self._kept.settings

    def explain(self, index: tuple[int, ...]) -> ValueExplanation:
        """The arithmetic behind the output value at `index` ((channel, *spatial) for maps,
        (unit,) for vectors). Raises IndexError for an index outside the output."""
        index = windows.check_index(index, self.output_shape)
        explanation = self._explainer(self._kept, index)
        if self.after is not None:
            node, type_name, values = self.after
            explanation.after = (node, type_name, float(values[index]))
        return explanation

    def strongest(self) -> tuple[int, ...]:
        """The index of the largest output value (NaNs ignored; () for an empty output)."""
        if self.output.size == 0:
            return ()
        flat = self.output.reshape(-1)
        finite = ~np.isnan(flat)
        best = int(np.argmax(np.where(finite, flat, -np.inf))) if finite.any() else 0
        return tuple(int(i) for i in np.unravel_index(best, self.output.shape))


def _type_name(layer: nn.Module) -> str:
    """The registry type of a built layer (the builder names each after its torch class)."""
    cls = type(layer).__name__
    for layer_type in registry.all_types():
        if cls in (layer_type.torch_class, layer_type.own_class):
            return layer_type.name
    return cls


def _array(tensor: torch.Tensor | None) -> np.ndarray | None:
    """A float NumPy copy of a parameter or buffer (None stays None)."""
    if tensor is None:
        return None
    import torch

    return tensor.detach().to("cpu", torch.float32).clone().numpy()


def _per_dim(value: Any, ndim: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, tuple | list) else (int(value),) * ndim


def _conv_padding(layer: nn.Module, ndim: int) -> tuple[int, ...]:
    """Padding before each dimension; torch's 'same' pads ⌊(d·(k − 1))/2⌋ before."""
    if layer.padding == "valid":
        return (0,) * ndim
    if layer.padding == "same":
        return tuple(layer.dilation[i] * (layer.kernel_size[i] - 1) // 2 for i in range(ndim))
    return _per_dim(layer.padding, ndim)


def _settings(type_name: str, layer: nn.Module, input_rank: int) -> dict[str, Any]:
    """What an explanation of `layer` needs, copied out of torch."""
    ndim = input_rank - 1
    if type_name in _CONVS:
        return {"weight": _array(layer.weight), "bias": _array(layer.bias),
                "stride": _per_dim(layer.stride, ndim), "padding": _conv_padding(layer, ndim),
                "dilation": _per_dim(layer.dilation, ndim), "groups": int(layer.groups),
                "padding_mode": layer.padding_mode}
    if type_name in _POOLS:
        kernel = _per_dim(layer.kernel_size, ndim)
        return {"op": "max" if type_name.startswith("Max") else "avg", "kernel_size": kernel,
                "stride": _per_dim(layer.stride or kernel, ndim),
                "padding": _per_dim(layer.padding, ndim),
                "dilation": _per_dim(getattr(layer, "dilation", 1), ndim),
                "ceil_mode": bool(layer.ceil_mode),
                "count_include_pad": bool(getattr(layer, "count_include_pad", True)),
                "divisor_override": getattr(layer, "divisor_override", None)}
    if type_name in _ADAPTIVE:
        return {"op": "max" if "Max" in type_name else "avg"}
    if type_name.startswith("BatchNorm"):
        return {"mean": _array(layer.running_mean), "var": _array(layer.running_var),
                "weight": _array(layer.weight), "bias": _array(layer.bias), "eps": layer.eps}
    if type_name == "Linear":
        return {"weight": _array(layer.weight), "bias": _array(layer.bias)}
    names = {"Flatten": ("start_dim", "end_dim"), "Softmax": ("dim",),
             "LeakyReLU": ("negative_slope",), "ELU": ("alpha",), "GELU": ("approximate",),
             "Maxout": ("pieces",), "Upsample": ("mode", "scale_factor", "size")}
    return {name: getattr(layer, name) for name in names.get(type_name, ())}


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """One sample of a batch of one, as a float32 NumPy copy without the batch."""
    import torch

    return tensor.detach()[0].to("cpu", torch.float32).clone().numpy()


def trace_layer(module: GraphModule, node_id: str, x: torch.Tensor) -> LayerTrace:
    """Run one sample through the nodes `node_id` needs and keep what its explanation reads.

    `x` is one sample as the model's float input, (1, C, ...) (or (C, ...)). Runs in eval
    mode without gradients and leaves the module as found (modes; no hooks are added).
    Raises KeyError for an unknown node, ValueError (one line) for an input of the wrong
    shape or when torch refuses the sample.
    """
    import torch

    from cnnstudio.nn.builder import forward_to, node_inputs
    from cnnstudio.nn.internals import _device, _eval_mode

    layer = module.module_for(node_id)  # KeyError for an unknown node
    shape = tuple(module.input_shape)
    if tuple(x.shape) == shape:
        x = x.unsqueeze(0)
    if tuple(x.shape) != (1, *shape):
        raise ValueError(f"explaining a value needs one sample of shape {shape}, got a tensor"
                         f" of shape {tuple(x.shape)}")
    input_ids = node_inputs(module, node_id)
    consumers = [n for n in module.node_ids if node_id in node_inputs(module, n)]
    after_id = consumers[0] if len(consumers) == 1 and \
        _type_name(module.module_for(consumers[0])) in _ACTIVATIONS else None
    parameter = next(iter(module.parameters()), None)
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() \
        else torch.float32
    try:
        with torch.no_grad(), _eval_mode(module):
            x = x.to(_device(module), dtype)
            # Each input by its own partial pass: one sample, so repeating a shared trunk
            # for a merge's inputs costs little.
            sources = [forward_to(module, x, i) for i in input_ids]
            output = layer(*sources) if input_ids else x
            after_output = None if after_id is None else module.module_for(after_id)(output)
    except (RuntimeError, ValueError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{node_id}: the forward pass failed: {text}") from None
    type_name = _type_name(layer)
    inputs = [_numpy(v) for v in sources]
    settings = _settings(type_name, layer, inputs[0].ndim if inputs else 0)
    kept = Kept(node_id, type_name, inputs, list(input_ids), _numpy(output), settings)
    after = None
    if after_id is not None and after_output is not None:
        after = (after_id, _type_name(module.module_for(after_id)), _numpy(after_output))
    return LayerTrace(kept, after)
