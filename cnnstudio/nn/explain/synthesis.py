"""An input synthesised to excite a filter: activation maximisation for small networks.

Gradient ascent on the input, tuned for the small, often 1-channel inputs of teaching
networks (the ImageNet-tuned tools draw noise there):
  * the input is a sigmoid squashed into the data's value range `value_range` (in the
    units the samples come in, before `to_float`: 0…1 for images, e.g. mean ± 3 std of
    the training split for float signals — `input_range` gives it), so it can never
    leave what the model was trained on; `images` are the same values as 0…1 display
    units;
  * images (2-D and up) are a Fourier spectrum damped by 1/f, turned into pixels by an
    inverse FFT: smooth images; a 1-D signal is optimised sample by sample (its short
    filters want sharp, alternating patterns a 1/f spectrum cannot make);
  * each step rolls the input by up to `side // 16` positions (jitter: 2 for 32×32, 1 for
    16×16, none under 16 pixels; at most `MAX_JITTER_1D` along a signal) so the result
    does not rest on one exact alignment of the strides and pools; the last quarter of
    the steps settles without it;
  * a total-variation and an L2 penalty (towards the middle of the range) keep it calm:
    values outside the filter's receptive field fade to the middle; Adam steps;
  * every filter gets its own input (a 1-D signal `RESTARTS_1D`, from different random
    starts, the best kept), all optimised together in one batch.
What is maximised: the filter's value at the centre of its feature map, the centre
moving with the roll (the pattern follows the jitter; one position, so the pattern the
filter likes inside its receptive field, not a texture that must please every position
at once, and away from the zero padding of the borders). A vector layer's unit is its
value, without jitter. Behind a ReLU, Dropout or max pool the objective is the same
channel of the layer in front of it (a ReLU that starts at 0 passes no gradient; those
layers only raise what comes in, so the peak of the map is theirs too).
What is reported: `activations`, the PEAK (largest value) of the filter's map for the
final input — at least the centre value, and the number `top_activations` ranks
samples by; compare it with the mean over the samples of each sample's peak.
The random starts and the jitter come from a seeded `torch.Generator`: the global random
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

# Tuned on the digits LeNet (8×8), a 3×32×32 two-stage CNN trained on the built-in shapes
# and the signals Conv1d net (length 128; untrained and trained): every filter of the
# tested layers ends above its dataset mean + 3 std of the per-sample peak.
TV_WEIGHT = 0.1  # mean |difference| of neighbouring 0…1 display values
L2_WEIGHT = 0.2  # mean squared distance of the 0…1 display values from the middle
LEARNING_RATE = 0.05  # Adam's step on an image's spectrum
LEARNING_RATE_1D = 0.1  # on a signal's logits, one per sample: 128 steps reach saturation
SETTLE = 0.75  # the share of the steps taken with jitter; the rest settle the image
MAX_JITTER_1D = 2  # a 1-D signal's roll, in samples: its filters are short (3–7 taps)
# Random starts per filter of a 1-D signal (the one whose centre value ends highest is
# kept): cheap there, and a second start rescues filters behind a ReLU whose units were
# dead at the first. Images keep one (their 1/f spectrum starts smooth; time).
RESTARTS_1D = 2
RANGE_VALUES = 1 << 22  # values `input_range` reads at most (32 MB as float64)
# Layers that only raise what comes in, channel by channel: the objective looks through them.
_PASS_THROUGH = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                 nn.Identity, nn.MaxPool1d, nn.MaxPool2d)


@dataclass
class Synthesis:
    """Inputs synthesised for `filters` of a layer, one per filter, in filter order.

    `images` (F, C, *spatial) are display values in 0…1 (0 the low end of `value_range`,
    black for images, 1 the high end); the samples themselves are
    `lo + (hi - lo) * images` in the data's units; `inputs` are what the model was fed
    (those samples after `to_float`), float32. `activations` are the peak (largest
    value) of each filter's map for its final input — the measure `top_activations`
    ranks by, so compare them with the samples' mean peak — and `start_activations`
    the same for the (first) random start; `objectives` the centre value that was
    maximised, of `target`: the layer itself (then at most its peak) or the one in
    front of its ReLU/Dropout/max pool. `value_range` is (low, high) of the samples."""

    filters: list[int]
    images: np.ndarray
    inputs: np.ndarray
    activations: list[float]
    start_activations: list[float]
    objectives: list[float]
    target: str = ""
    value_range: tuple[float, float] = (0.0, 1.0)


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
    """The parameterisation → display values in 0…1: images a damped spectrum, 1-D
    signals one logit per sample."""

    def __init__(self, count: int, shape: tuple[int, ...], generator: torch.Generator,
                 device: torch.device) -> None:
        self.spatial = shape[1:]
        self.scale: torch.Tensor | None = None
        if len(self.spatial) > 1:
            self.scale = _frequency_scale(self.spatial).to(device)
            bins: tuple[int, ...] = (count, shape[0], *self.scale.shape, 2)
        else:
            bins = (count, *shape)
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


def _centre(maps: torch.Tensor, shifts: Sequence[int] = (),
            spatial: Sequence[int] = ()) -> torch.Tensor:
    """Each row's value at the centre of its map (a unit's value for vectors). With the
    input rolled by `shifts` (per axis, of an input of size `spatial`), the centre moves
    with it: the largest value of the one or two map positions the rolled centre falls
    between (a map smaller than the input — strides, pools — moves by shift · n / N)."""
    if maps.dim() == 1:
        return maps
    index: list[slice] = [slice(None)]
    for axis, n in enumerate(maps.shape[1:]):
        moved = n // 2 + (shifts[axis] * n / spatial[axis] if shifts else 0.0)
        low = min(max(int(np.floor(moved)), 0), n - 1)
        high = min(max(int(np.ceil(moved)), 0), n - 1)
        index.append(slice(low, high + 1))
    return maps[tuple(index)].reshape(len(maps), -1).amax(1)


def _largest(maps: torch.Tensor) -> torch.Tensor:
    return maps.reshape(len(maps), -1).amax(1)


def input_range(samples: Any, rows: Any = None) -> tuple[float, float]:
    """The value range synthesised inputs may take, in the samples' own units (what
    `to_float` takes): (0, 1) for uint8 images (pixels scaled by 1/255); for float data
    the mean ± 3 standard deviations of the values of `samples[rows]` (all samples
    without `rows`; pass the training split; at most `RANGE_VALUES` values, from samples
    spread evenly over them), within their min and max. Raises
    ValueError when there is no sample or no spread."""
    x = samples if isinstance(samples, torch.Tensor) else torch.as_tensor(np.asarray(samples))
    if x.dtype == torch.uint8:
        return 0.0, 1.0
    index = torch.arange(len(x)) if rows is None else torch.as_tensor(rows, dtype=torch.int64)
    if len(index) == 0 or x[:1].numel() == 0:
        raise ValueError("no samples to take the value range from")
    per_sample = x[:1].numel()
    if len(index) * per_sample > RANGE_VALUES:  # evenly spread samples: bounded memory
        keep = max(1, RANGE_VALUES // per_sample)
        index = index[torch.linspace(0, len(index) - 1, keep).round().long()]
    values = x[index].detach().to(torch.float64)
    mean, spread = float(values.mean()), float(values.std()) if values.numel() > 1 else 0.0
    low = max(float(values.min()), mean - 3.0 * spread)
    high = min(float(values.max()), mean + 3.0 * spread)
    if not high > low:
        raise ValueError("the samples all have the same value: no range to synthesise in")
    return low, high


def synthesize(module: Any, node_id: str, filters: Sequence[int], *, steps: int = 128,
               seed: int = 0, to_float: Callable[[torch.Tensor], torch.Tensor] | None = None,
               value_range: tuple[float, float] | None = None,
               progress: Callable[[int, int], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> Synthesis:
    """Synthesise one input per filter of layer `node_id` that excites it (the module
    docstring says how); `steps` Adam steps, all filters (and restarts) in one batch.

    `module` is a GraphModule; only the nodes the layer needs run. `value_range` (low,
    high) is the range of the samples in the units `to_float` takes (default (0, 1):
    0…1 pixels; for float data pass `input_range(training samples)`); `to_float` turns a
    batch of such samples into the model's input (`Preprocessing.to_float`:
    normalisation); without it the values are fed as they are. `progress(step, steps)`
    is called every 8 steps. Raises ValueError for an unknown layer, one without
    channels, a filter it lacks or an empty range, and Cancelled when `cancelled()`
    turns True (checked every step).
    """
    wanted = torch.as_tensor(list(filters), dtype=torch.int64)
    if node_id not in module.node_ids:
        raise ValueError(f"the network has no layer {node_id!r}")
    low, high = (0.0, 1.0) if value_range is None else (float(value_range[0]),
                                                         float(value_range[1]))
    if not high > low:
        raise ValueError(f"the value range {low:g} to {high:g} is empty")
    if len(wanted) == 0:
        empty = np.zeros((0, *module.input_shape), np.float32)
        return Synthesis([], empty, empty.copy(), [], [], [], node_id, (low, high))

    def convert(display: torch.Tensor) -> torch.Tensor:
        # A fresh tensor: a `to_float` that works in place must not touch what autograd keeps.
        samples = low + (high - low) * display
        return samples if to_float is None else to_float(samples)

    target = objective_layer(module, node_id)
    count = len(wanted)
    restarts = RESTARTS_1D if len(module.input_shape) == 2 else 1
    tried = wanted.repeat(restarts)  # restart r of filter i is row r·count + i
    generator = torch.Generator().manual_seed(seed)
    image = _Image(len(tried), tuple(module.input_shape), generator, _device(module))
    jitter = min(image.spatial) // 16
    if len(image.spatial) == 1:
        jitter = min(jitter, MAX_JITTER_1D)
    rate = LEARNING_RATE_1D if len(image.spatial) == 1 else LEARNING_RATE
    optimizer = torch.optim.Adam([image.spectrum], lr=rate)
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)  # gradients towards the image only
        with _eval_mode(module):
            with torch.no_grad():
                start = _filter_maps(module, node_id, convert(image.pixels()), tried)
            if start.dim() == 1:
                jitter = 0  # a vector's unit: a rolled image is another input to it
            for step in range(steps):
                if cancelled is not None and cancelled():
                    raise Cancelled("cancelled")
                pixels = image.pixels()
                shifts = torch.randint(-jitter, jitter + 1, (len(image.dims),),
                                       generator=generator).tolist()
                if step >= SETTLE * steps:
                    shifts = [0] * len(shifts)
                moved = torch.roll(pixels, shifts=shifts, dims=image.dims)
                maps = _filter_maps(module, target, convert(moved), tried)
                objective = _centre(maps, shifts, image.spatial)
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
                reached = _centre(_filter_maps(module, target, inputs, tried))
                # Per filter, the restart whose centre value (what was maximised) is highest.
                best = reached.reshape(restarts, count).argmax(0) * count + torch.arange(count)
                pixels, inputs, reached = pixels[best], inputs[best], reached[best]
                final = _filter_maps(module, node_id, inputs, wanted)
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
    return Synthesis(wanted.tolist(), pixels.float().cpu().numpy(),
                     inputs.float().cpu().numpy(), _largest(final).tolist(),
                     _largest(start[:count]).tolist(), reached.tolist(), target, (low, high))
