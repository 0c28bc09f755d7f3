"""Looking inside a network: filters, activations, Grad-CAM, receptive fields, kernels.

Pure torch and NumPy (no Qt): the GUI calls these on whichever thread holds the model,
and gets NumPy arrays back. Every function leaves the module as it found it (train/eval
mode, hooks, gradients) and draws no random numbers, so calling one between training
batches does not change the run.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnstudio.core import registry
from cnnstudio.core.graph import Graph, Node
from cnnstudio.core.layer_type import RFStep
from cnnstudio.core.shapes import NodeInfo, infer_shapes

# The torch classes of the registry's convolutions (the layers with filters to show).
CONV_TYPES = tuple(getattr(nn, t.torch_class) for t in registry.by_category()["Convolution"])


def _submodule(module: nn.Module, node: str | nn.Module) -> nn.Module:
    """The submodule computing `node` (a node id of a GraphModule, or a module itself)."""
    if isinstance(node, nn.Module):
        return node
    module_for = getattr(module, "module_for", None)
    if module_for is not None:
        return module_for(node)
    return module.get_submodule(node)


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode for the duration (no dropout, BatchNorm running stats), then back."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _device(module: nn.Module) -> torch.device:
    return next((p.device for p in module.parameters()), torch.device("cpu"))


def layer_filters(module: nn.Module, node: str | nn.Module) -> np.ndarray | None:
    """The weights of a convolution as a float32 array (out, in, kh, kw); None for a layer
    without convolution filters.

    Conv1d kernels become 1×k images; Conv3d shows the middle depth slice; transposed
    convolutions are reordered to (out, in, …) like the others.
    """
    layer = _submodule(module, node)
    if not isinstance(layer, CONV_TYPES):
        return None
    w = layer.weight.detach()
    if layer.transposed:
        w = w.transpose(0, 1)  # stored (in, out/groups, …)
    if w.dim() == 3:
        w = w.unsqueeze(2)
    elif w.dim() == 5:
        w = w[:, :, w.shape[2] // 2]
    return w.to("cpu", torch.float32, copy=True, memory_format=torch.contiguous_format).numpy()


class _OutputTap:
    """Records one submodule's output during a forward pass (a removable hook)."""

    def __init__(self, target: nn.Module) -> None:
        self.value: torch.Tensor | None = None
        self._handle = target.register_forward_hook(self._hook)

    def _hook(self, _module: nn.Module, _args: tuple[Any, ...], output: Any) -> None:
        self.value = output

    def remove(self) -> None:
        self._handle.remove()


def node_activation(module: nn.Module, node: str | nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The output of `node` for the batch `x` (already normalized, on any device), as a
    float32 CPU tensor, computed in eval mode without gradients.

    `x` is moved to the module's device. Raises KeyError for an unknown node id.
    """
    if isinstance(node, str) and node == getattr(module, "input_id", None):
        return x.detach().to("cpu", torch.float32, copy=True)  # the Input passes x through
    target = _submodule(module, node)
    tap = _OutputTap(target)
    try:
        with torch.no_grad(), _eval_mode(module):
            module(x.to(_device(module)))
    finally:
        tap.remove()
    if tap.value is None:  # a node the forward pass never reached (not in the model's path)
        raise KeyError(f"node {node!r} did not run")
    return tap.value.detach().to("cpu", torch.float32, copy=True,
                                 memory_format=torch.contiguous_format)


def final_activation(module: nn.Module, output_rank: int) -> tuple[str, str] | None:
    """Return (node id, type) of the model's output node when it is a Softmax over the
    channels or a Sigmoid, else None. `module` is a `GraphModule` (anything without an
    `output_id` and `module_for` gives None); `output_rank` is the output's rank with the
    batch dimension (2 for class scores, 4 for per-pixel maps), to read a negative dim.
    """
    node_id = getattr(module, "output_id", None)
    module_for = getattr(module, "module_for", None)
    if node_id is None or module_for is None:
        return None
    last = module_for(node_id)
    if isinstance(last, nn.Sigmoid):
        return node_id, "Sigmoid"
    if isinstance(last, nn.Softmax):
        dim = 1 if last.dim is None else last.dim
        if dim % output_rank == 1:  # over the channels; another axis is part of the model
            return node_id, "Softmax"
    return None


class LogitsTap:
    """While active, the module returns the input of its final activation (the logits).

    Use as a context manager around training; the hook is removed on exit, so the module
    is back to giving probabilities. Only forward passes on the thread that entered it
    see the logits: the window's workers share one inspection model, and a Grad-CAM on
    one must not turn another's probabilities into logits. Raises LookupError if the
    activation's submodule cannot be found under its node id.
    """

    def __init__(self, module: nn.Module, node_id: str | None) -> None:
        self.module = module
        self.node_id = node_id
        self._handle: Any = None

    def __enter__(self) -> LogitsTap:
        if self.node_id is not None:
            try:
                target = self.module.get_submodule(self.node_id)
            except AttributeError:
                raise LookupError(f"the model has no submodule for node {self.node_id!r}") from None
            # Returning a value from a forward hook replaces the output: here, by the input.
            owner = threading.get_ident()

            def logits_on_this_thread(_m: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
                return args[0] if threading.get_ident() == owner else output

            self._handle = target.register_forward_hook(logits_on_this_thread)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def _logits(module: nn.Module) -> LogitsTap:
    """While active, a final Softmax/Sigmoid node returns its input (the logits): class
    scores for Grad-CAM and probabilities are taken before the squashing, as training does."""
    tap = final_activation(module, 2)
    return LogitsTap(module, tap[0] if tap else None)


def grad_cam(module: nn.Module, node: str | nn.Module, x: torch.Tensor,
             class_index: int) -> np.ndarray:
    """Grad-CAM heat map of class `class_index` for one sample `x` (1 × C × H × W,
    normalized) at the convolutional `node`: ReLU(Σ_k α_k A_k), α_k the spatial mean of
    ∂score/∂A_k, resized (bilinear) to the input's H × W and scaled from its minimum to
    its maximum (`scale_cam`).

    Returns a float32 (H, W) array in 0…1, all zeros when the map is flat (nothing speaks
    for one region more than another). The
    module's parameters get no gradients (they are left as they were). Raises ValueError
    when `node`'s output is not a C × h × w map.
    """
    target = _submodule(module, node)
    tap = _OutputTap(target)
    params = [p for p in module.parameters()]
    grads = [p.grad for p in params]
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)  # gradients only towards the activation
        with torch.enable_grad(), _eval_mode(module), _logits(module):
            xin = x.to(_device(module), torch.float32).detach().requires_grad_(True)
            scores = module(xin)
            activation = tap.value
            if activation is None or activation.dim() != 4:
                raise ValueError("Grad-CAM needs a layer whose output is a C×H×W map")
            score = scores.reshape(scores.shape[0], -1)[0, class_index]
            (grad,) = torch.autograd.grad(score, activation)
    finally:
        tap.remove()
        for p, g, f in zip(params, grads, flags, strict=True):
            p.requires_grad_(f)
            p.grad = g
    weights = grad[0].mean(dim=(1, 2))
    cam = torch.relu((weights[:, None, None] * activation[0].detach()).sum(0))
    cam = F.interpolate(cam[None, None].float(), size=tuple(x.shape[-2:]), mode="bilinear",
                        align_corners=False)[0, 0]
    return scale_cam(cam.cpu().numpy())


def scale_cam(cam: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """A heat map scaled from its minimum (0) to its maximum (1), as pytorch-grad-cam's
    `scale_cam_image` does. Dividing by the maximum alone made a flat map uniformly hot;
    a map whose values span less than `eps` (relative to its largest magnitude) says
    nothing about where the evidence lies and becomes all zeros. Returns float32."""
    cam = np.nan_to_num(np.asarray(cam, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(cam.min()), float(cam.max())) if cam.size else (0.0, 0.0)
    if high - low <= eps * max(1.0, abs(high), abs(low)):
        return np.zeros(cam.shape, np.float32)
    return np.clip((cam - low) / (high - low), 0.0, 1.0).astype(np.float32)


def last_conv_node(module: nn.Module) -> str | None:
    """The id of the last 2-D convolution a GraphModule runs (Grad-CAM's usual layer)."""
    found = None
    for node_id in getattr(module, "node_ids", ()):
        if isinstance(module.module_for(node_id), (nn.Conv2d, nn.ConvTranspose2d)):
            found = node_id
    return found


def apply_kernel(image: np.ndarray, kernel: Sequence[Sequence[float]] | np.ndarray,
                 padding: str = "same") -> np.ndarray:
    """Slide a hand-set `kernel` (kh × kw) over a 2-D `image` (H × W) as torch's conv2d
    does (cross-correlation); return the feature map as float32 (same size with "same"
    zero padding, smaller with "valid"). Raises ValueError for a kernel that is not 2-D."""
    k = torch.as_tensor(np.asarray(kernel, dtype=np.float32))
    if k.dim() != 2 or min(k.shape) < 1:
        raise ValueError("the kernel must be a 2-D grid of numbers")
    img = torch.as_tensor(np.asarray(image, dtype=np.float32))
    if img.dim() != 2:
        raise ValueError("the image must be 2-D (H × W)")
    with torch.no_grad():
        out = F.conv2d(img[None, None], k[None, None], padding=padding)
    return out[0, 0].numpy()


# ---- receptive fields --------------------------------------------------------------------

# Layers whose every output position sees the same input position (merges: the union).
_KEEPS_FIELD = ("elementwise", "channels", "merge")


@dataclass(frozen=True)
class FieldBox:
    """The input region one output pixel sees, per spatial dimension: `start` (the first
    input index, negative where it reaches into the padding) and `size` (in pixels)."""

    start: tuple[int, ...]
    size: tuple[int, ...]

    @property
    def stop(self) -> tuple[int, ...]:
        """One past the last input index, per dimension."""
        return tuple(a + s for a, s in zip(self.start, self.size, strict=True))

    def clipped(self, shape: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """(first, stop) per dimension, clipped to an input of spatial `shape`."""
        return tuple((max(0, a), min(n, b)) for a, b, n in
                     zip(self.start, self.stop, shape, strict=True))


@dataclass(frozen=True)
class _Chain:
    size: tuple[float, ...]
    jump: tuple[float, ...]
    start: tuple[float, ...]  # input coordinate where output index 0's field begins


def _step(chain: _Chain, step: RFStep, padding: Any) -> _Chain:
    """The chain after a sliding window: core's `step` (dilated extent, stride) and the
    window's `padding`, which moves the field's start."""
    ndim = len(chain.size)
    extent = step.kernel
    if padding == "valid":
        padding = (0,) * ndim
    elif padding == "same":  # torch pads ⌊(extent − 1)/2⌋ before
        padding = tuple((int(e) - 1) // 2 for e in extent)
    return _Chain(size=tuple(chain.size[i] + (extent[i] - 1) * chain.jump[i] for i in range(ndim)),
                  jump=tuple(chain.jump[i] * step.stride[i] for i in range(ndim)),
                  start=tuple(chain.start[i] - padding[i] * chain.jump[i] for i in range(ndim)))


def _chain(node: Node, info: NodeInfo | None, sources: list[_Chain | None]) -> _Chain | None:
    """`node`'s field chain from its inputs' (None: no exact box, e.g. after Linear or
    Upsample)."""
    if info is None or info.shape is None:
        return None
    role = node.layer.spatial_role
    if role == "input":
        n = len(info.shape) - 1
        return _Chain((1.0,) * n, (1.0,) * n, (0.0,) * n) if n else None
    chains = [c for c in sources if c is not None]
    if not chains or len(chains) < len(sources) or len({len(c.size) for c in chains}) > 1:
        return None
    ndim = len(chains[0].size)
    # Merges: the union of the branches' fields (exact when they agree).
    start = tuple(min(c.start[i] for c in chains) for i in range(ndim))
    stop = tuple(max(c.start[i] + c.size[i] for c in chains) for i in range(ndim))
    jump = tuple(max(c.jump[i] for c in chains) for i in range(ndim))
    merged = _Chain(tuple(b - a for a, b in zip(start, stop, strict=True)), jump, start)
    if role == "window" and info.step is not None:
        return _step(merged, info.step, node.resolved_params()["padding"])
    # Linear, Flatten, adaptive pools, Upsample, transposed convs: no exact box.
    return merged if role in _KEEPS_FIELD else None


def _chains(graph: Graph) -> dict[str, _Chain | None]:
    """Per node, its field chain."""
    inference = infer_shapes(graph)
    out: dict[str, _Chain | None] = {}
    for node_id in inference.order:
        node = graph.node(node_id)
        out[node_id] = _chain(node, inference.nodes.get(node_id), [out.get(s) for s in node.inputs])
    return out


def receptive_field_box(graph: Graph, node_id: str, index: Sequence[int]) -> FieldBox | None:
    """The input region that output pixel `index` (spatial indices, e.g. (row, col)) of
    node `node_id` sees; None when the node has no exact spatial field (it follows a
    Linear, Flatten, adaptive pool, upsampling or transposed convolution, or the graph has
    errors). Exact for chains of convolutions, poolings and element-wise layers; after a
    merge (Add, Concat) it is the union of the branches' fields.

    Sizes and jumps agree with core's `ReceptiveField`; the start adds the paddings, each
    scaled by the jump in front of it.
    """
    try:
        chain = _chains(graph).get(node_id)
    except Exception:  # a graph shape inference cannot order (cycles): no box
        return None
    if chain is None or len(index) != len(chain.size):
        return None
    start = tuple(int(round(chain.start[i] + index[i] * chain.jump[i]))
                  for i in range(len(index)))
    return FieldBox(start, tuple(int(round(v)) for v in chain.size))


def class_probabilities(module: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, K) for the batch `x` (normalized): the softmax of the
    logits (taken before a final Softmax/Sigmoid node), in eval mode, without gradients."""
    out = []
    device = _device(module)
    with torch.no_grad(), _eval_mode(module), _logits(module):
        for chunk in x.split(batch_size):
            logits = module(chunk.to(device)).float()
            out.append(torch.softmax(logits.reshape(len(chunk), -1), dim=1).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
