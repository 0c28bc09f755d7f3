"""An input synthesised to excite a filter: activation maximisation for small networks.

Gradient ascent on the input, tuned for the small, often 1-channel inputs of teaching
networks (the ImageNet-tuned tools draw noise there):
  * the image is a Fourier spectrum whose frequencies are damped by 1/f, turned into
    pixels by an inverse FFT and a sigmoid — smooth images that stay within 0…1;
  * each step rolls the image by up to `side // 16` pixels (jitter: 2 for 32×32, 1 for
    16×16, none under 16 pixels, where a 1-pixel roll moves an 8×8 digit by an eighth
    of its size and blurs what a 3×3 filter wants), so the result does not rest on one
    exact alignment; the last quarter of the steps settles without it;
  * a total-variation and an L2 penalty (towards grey) keep it calm: pixels outside the
    filter's receptive field, which do not change its value, fade to grey; Adam steps;
  * every filter gets its own image, all optimised together in one batch.
The objective is the filter's value at the centre of its feature map — while jittered,
the largest value within the jitter's reach of the centre, so the pattern may follow
the roll (one position: the pattern the filter likes inside its receptive field, not a
texture that must please every position at once: the mean of the map, Lucid's
"channel" objective, stayed below the dataset's best samples on these nets). A vector layer's
unit is its value, without jitter (a Linear unit is tied to input positions). Behind a
ReLU, Dropout or max pool the objective is the same channel of the layer in front of it
(a ReLU that starts at 0 passes no gradient; those layers only raise what comes in).
The random start and the jitter come from a seeded `torch.Generator`: the global random
state is not touched, and the module is left as found (mode, gradients).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnstudio.nn.builder import node_inputs
from cnnstudio.nn.explain.responses import Cancelled, layer_output
from cnnstudio.nn.internals import _device, _eval_mode

# Tuned on the digits LeNet (8×8) and a 3×32×32 two-stage CNN trained on the built-in
# shapes: every filter ends above its dataset mean + 3 std, the surround grey.
TV_WEIGHT = 0.1  # mean |difference| of neighbouring 0…1 pixels
L2_WEIGHT = 0.2  # mean squared distance of the 0…1 pixels from grey
LEARNING_RATE = 0.05
SETTLE = 0.75  # the share of the steps taken with jitter; the rest settle the image
OBJECTIVE = "centre"
FOLLOW = False
JITTER_CAP = 99
PARAM = "spectrum"
# Layers that only raise what comes in, channel by channel: the objective looks through them.
_PASS_THROUGH = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                 nn.Identity, nn.MaxPool1d, nn.MaxPool2d)


@dataclass
class Synthesis:
    """Images synthesised for `filters` of a layer, one per filter, in filter order.

    `images` (F, C, *spatial) are the pixels in 0…1 (0 black, 1 white); `inputs` are what
    the model was fed (the pixels after `to_float`), float32. `activations` are the
    largest value of each filter's map for its final image (the measure
    `top_activations` ranks by, so the two compare), `start_activations` the same for the
    random start; `objectives` the centre value that was maximised (of `target`, the
    layer the objective looked at: the layer itself or the one in front of its ReLU)."""

    filters: list[int]
    images: np.ndarray
    inputs: np.ndarray
    activations: list[float]
    start_activations: list[float]
    objectives: list[float]
    target: str = ""


def _frequency_scale(spatial: tuple[int, ...]) -> torch.Tensor:
    """1/f damping of an rFFT spectrum of `spatial` size (the lowest frequency clamped)."""
    grids = [torch.fft.fftfreq(n) for n in spatial[:-1]] + [torch.fft.rfftfreq(spatial[-1])]
    mesh = torch.meshgrid(*grids, indexing="ij")
    frequency = torch.sqrt(sum(g * g for g in mesh))
    return 1.0 / frequency.clamp(min=1.0 / max(spatial))


def _total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels, per image, over every spatial axis."""
    parts = [image.diff(dim=d).abs().flatten(1).mean(1) for d in range(2, image.dim())]
    return torch.stack(parts).sum(0)


class _Image:
    """The smooth parameterisation: a damped spectrum → pixels in 0…1."""

    def __init__(self, count: int, shape: tuple[int, ...], generator: torch.Generator,
                 device: torch.device) -> None:
        self.spatial = shape[1:]
        self.scale = _frequency_scale(self.spatial).to(device)
        bins = (count, shape[0], *self.scale.shape, 2)
        if PARAM == "pixels" or (PARAM == "mixed" and len(self.spatial) == 1):
            bins = (count, *shape)
            self.scale = None
        self.spectrum = (0.01 * torch.randn(bins, generator=generator)).to(device)
        self.spectrum.requires_grad_(True)
        self.dims = tuple(range(2, 2 + len(self.spatial)))
        # The damped spectrum's pixels grow with the side: keep the sigmoid's input, hence
        # how fast pixels saturate, about the same for 8×8 and 32×32 images.
        self.gain = float(np.sqrt(np.prod(self.spatial))) / 16.0

    def pixels(self) -> torch.Tensor:
        if self.scale is None:
            return torch.sigmoid(self.spectrum)
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        raw = torch.fft.irfftn(spectrum, s=self.spatial, dim=self.dims, norm="ortho")
        return torch.sigmoid(raw * self.gain)


def objective_layer(module: Any, node_id: str) -> str:
    """The layer whose centre value stands for `node_id`'s: walk back through layers that
    only raise their single input channel by channel (ReLU, Dropout, max pool)."""
    target = node_id
    while isinstance(module.module_for(target), _PASS_THROUGH):
        inputs = node_inputs(module, target)
        if len(inputs) != 1 or inputs[0] == module.input_id:
            break
        target = inputs[0]
    return target


def _filter_maps(module: Any, node_id: str, x: torch.Tensor,
                 filters: torch.Tensor) -> torch.Tensor:
    """(F, …) row i: filter `filters[i]`'s map (or unit value) for image i."""
    out = layer_output(module, node_id, x)
    if out.dim() < 2:
        raise ValueError(f"layer {node_id!r} has no channels to excite")
    if int(filters.max()) >= out.shape[1] or int(filters.min()) < 0:
        raise ValueError(f"layer {node_id!r} has filters 0 to {out.shape[1] - 1},"
                         f" not {int(filters.max())}")
    return out[torch.arange(len(filters)), filters]


def _centre(maps: torch.Tensor, reach: int = 0) -> torch.Tensor:
    """Each row's value at the centre of its map (a unit's value for vectors); with
    `reach`, the largest value within `reach` positions of the centre (per axis)."""
    if reach == 0 or maps.dim() == 1:
        return maps[(slice(None), *[n // 2 for n in maps.shape[1:]])]
    window = maps[(slice(None), *[slice(max(0, n // 2 - reach), n // 2 + reach + 1)
                                  for n in maps.shape[1:]])]
    return window.reshape(len(maps), -1).amax(1)


def _followed(maps: torch.Tensor, shifts: list[int], spatial: tuple[int, ...]) -> torch.Tensor:
    index = [slice(None)]
    for n, N, sh in zip(maps.shape[1:], spatial, shifts):
        p = n // 2 + sh * n / N
        lo = max(0, min(n - 1, int(np.floor(p))))
        hi = max(0, min(n - 1, int(np.ceil(p))))
        index.append(slice(lo, hi + 1))
    return maps[tuple(index)].reshape(len(maps), -1).amax(1)


def _largest(maps: torch.Tensor) -> list[float]:
    return maps.reshape(len(maps), -1).max(1).values.tolist()


def synthesize(module: Any, node_id: str, filters: Sequence[int], *, steps: int = 128,
               seed: int = 0, to_float: Callable[[torch.Tensor], torch.Tensor] | None = None,
               value_range: tuple[float, float] = (0.0, 1.0),
               progress: Callable[[int, int], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> Synthesis:
    """Synthesise one image per filter of layer `node_id` that excites it (the module
    docstring says how); `steps` Adam steps, all filters in one batch.

    `module` is a GraphModule; only the nodes the layer needs run. `to_float` turns a
    batch of 0…1 images into the model's input (`Preprocessing.to_float`: normalisation);
    without it the pixels are fed as they are. `progress(step, steps)` is called every 8
    steps. Raises ValueError for an unknown layer, one without channels or a filter it
    lacks, and Cancelled when `cancelled()` turns True (checked every step).
    """
    wanted = torch.as_tensor(list(filters), dtype=torch.int64)
    if node_id not in module.node_ids:
        raise ValueError(f"the network has no layer {node_id!r}")
    if len(wanted) == 0:
        empty = np.zeros((0, *module.input_shape), np.float32)
        return Synthesis([], empty, empty.copy(), [], [], [], node_id)

    def convert(pixels: torch.Tensor) -> torch.Tensor:
        # A copy: a `to_float` that works in place must not touch what autograd keeps.
        lo, hi = value_range
        pixels = lo + (hi - lo) * pixels
        return pixels.clone() if to_float is None else to_float(pixels.clone())

    target = objective_layer(module, node_id)
    generator = torch.Generator().manual_seed(seed)
    image = _Image(len(wanted), tuple(module.input_shape), generator, _device(module))
    jitter = min(min(image.spatial) // 16, JITTER_CAP)
    optimizer = torch.optim.Adam([image.spectrum], lr=LEARNING_RATE)
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)  # gradients towards the image only
        with _eval_mode(module):
            with torch.no_grad():
                start = _filter_maps(module, node_id, convert(image.pixels()), wanted)
            if start.dim() == 1:
                jitter = 0  # a vector's unit: a rolled image is another input to it
            for step in range(steps):
                if cancelled is not None and cancelled():
                    raise Cancelled("cancelled")
                pixels = image.pixels()
                shifts = torch.randint(-jitter, jitter + 1, (len(image.dims),),
                                       generator=generator).tolist()
                moved = pixels if step >= SETTLE * steps else torch.roll(
                    pixels, shifts=shifts, dims=image.dims)
                maps = _filter_maps(module, target, convert(moved), wanted)
                if FOLLOW and maps.dim() > 1:
                    objective = _followed(maps, shifts if step < SETTLE * steps else [0] * len(shifts), image.spatial)
                else:
                  objective = (_centre(maps, jitter if step < SETTLE * steps else 0) if OBJECTIVE == "centre"
                               else maps.reshape(len(maps), -1).amax(1))
                penalty = (TV_WEIGHT * _total_variation(pixels)
                           + L2_WEIGHT * (pixels - 0.5).square().flatten(1).mean(1))
                loss = (penalty - objective).sum()  # each image serves its own filter
                (grad,) = torch.autograd.grad(loss, [image.spectrum])
                image.spectrum.grad = grad
                optimizer.step()
                if progress is not None and (step % 8 == 7 or step == steps - 1):
                    progress(step + 1, steps)
            with torch.no_grad():
                pixels = image.pixels()
                inputs = convert(pixels)
                final = _filter_maps(module, node_id, inputs, wanted)
                reached = _centre(_filter_maps(module, target, inputs, wanted))
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
    return Synthesis(wanted.tolist(), pixels.float().cpu().numpy(),
                     inputs.float().cpu().numpy(), _largest(final), _largest(start),
                     reached.tolist(), target)


def input_range(x) -> tuple[float, float]:
    if x.dtype == torch.uint8:
        return (0.0, 1.0)
    x = x.double()
    m, sd = float(x.mean()), float(x.std())
    return (max(float(x.min()), m - 3 * sd), min(float(x.max()), m + 3 * sd))
