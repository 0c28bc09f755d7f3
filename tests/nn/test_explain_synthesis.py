"""Activation maximisation and occlusion sensitivity, against what the dataset reaches and
against a direct computation where the evidence is known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnstudio.core.graph import Graph
from cnnstudio.core.templates import get_template
from cnnstudio.data import load_dataset
from cnnstudio.nn import build_module
from cnnstudio.nn.explain import Cancelled, occlusion_map, synthesize
from cnnstudio.nn.explain.synthesis import input_range


@pytest.fixture(scope="module")
def trained_digits():
    """The digits LeNet trained for 3 epochs on the built-in 8×8 digits (~0.3 s)."""
    dataset = load_dataset({"kind": "builtin", "name": "digits"}, input_shape=[1, 8, 8],
                           task="classification", val_fraction=0.2, seed=0)
    torch.manual_seed(0)
    module = build_module(get_template("digits-lenet").graph())
    x = dataset.batch_to_float(dataset.x)
    optimizer = torch.optim.Adam(module.parameters(), 3e-3)
    order = torch.Generator().manual_seed(0)
    module.train()
    for _ in range(3):
        for batch in torch.randperm(len(x), generator=order).split(64):
            loss = F.cross_entropy(module(x[batch]), dataset.y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    module.eval()
    return module, dataset


@pytest.mark.parametrize("node", ["conv2", "pool1", "fc1"])
def test_synthesis_raises_each_filter_far_above_what_the_dataset_reaches(trained_digits, node):
    module, dataset = trained_digits
    with torch.no_grad():
        out = module.forward_all(dataset.batch_to_float(dataset.x))[node]
    maxima = out.flatten(2).amax(2) if out.dim() > 2 else out  # (N, filters)
    filters = list(range(8))
    result = synthesize(module, node, filters, to_float=dataset.batch_to_float)
    threshold = (maxima.mean(0) + 3 * maxima.std(0))[filters]
    reached = torch.tensor(result.activations)
    assert bool((reached > threshold).all()), (reached, threshold)
    assert bool((reached > torch.tensor(result.start_activations)).all())
    assert result.images.shape == (8, 1, 8, 8) and result.images.dtype == np.float32
    assert result.images.min() >= 0.0 and result.images.max() <= 1.0
    # The reported activation is what the model gives for the returned input.
    with torch.no_grad():
        again = module.forward_all(torch.from_numpy(result.inputs))[node]
    rows = again[torch.arange(8), filters].reshape(8, -1).amax(1)
    np.testing.assert_allclose(rows.numpy(), result.activations, rtol=1e-5, atol=1e-5)
    if node == "pool1":
        assert result.target == "conv2"  # through the max pool and the ReLU


def _signals_net(epochs: int):
    """The signals sample's Conv1d net (Conv16 k5 – ReLU – pool – Conv32 k5 – …) on the
    built-in signals (float data, length 128), trained `epochs` epochs (~0.5 s each)."""
    graph = Graph()
    graph.add_node("Input", {"shape": [1, 128]}, id="input")
    layers = [("conv1", "Conv1d", {"out_channels": 16, "kernel_size": 5, "padding": 2}),
              ("relu1", "ReLU", {}), ("pool1", "MaxPool1d", {"kernel_size": 2}),
              ("conv2", "Conv1d", {"out_channels": 32, "kernel_size": 5, "padding": 2}),
              ("relu2", "ReLU", {}), ("pool2", "MaxPool1d", {"kernel_size": 2}),
              ("flatten", "Flatten", {}), ("fc1", "Linear", {"out_features": 4})]
    previous = "input"
    for node_id, type_name, params in layers:
        graph.add_node(type_name, params, id=node_id, inputs=[previous])
        previous = node_id
    dataset = load_dataset({"kind": "builtin", "name": "signals"}, input_shape=[1, 128],
                           task="classification", val_fraction=0.2, seed=0)
    torch.manual_seed(0)
    module = build_module(graph)
    x = dataset.batch_to_float(dataset.x)
    train = dataset.splits["train"]
    optimizer = torch.optim.Adam(module.parameters(), 3e-3)
    order = torch.Generator().manual_seed(0)
    module.train()
    for _ in range(epochs):
        for batch in train[torch.randperm(len(train), generator=order)].split(64):
            loss = F.cross_entropy(module(x[batch]), dataset.y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    module.eval()
    return module, dataset, x


@pytest.mark.parametrize("epochs", [0, 3])
def test_synthesis_raises_every_1d_filter_above_the_signals_peaks(epochs):
    module, dataset, x = _signals_net(epochs)
    value_range = input_range(dataset.x, dataset.splits["train"])
    values = dataset.x[dataset.splits["train"]].double()
    mean, spread = float(values.mean()), float(values.std())
    assert value_range == pytest.approx((max(float(values.min()), mean - 3 * spread),
                                         min(float(values.max()), mean + 3 * spread)))
    assert value_range[0] < -1.5 and value_range[1] > 1.5  # float data, not 0…1 pixels
    with torch.no_grad():
        outs = module.forward_all(x)
    for node in ("conv1", "conv2"):
        peaks = outs[node].amax(2)  # (N, filters): each sample's peak, as top-k ranks
        filters = list(range(peaks.shape[1]))
        result = synthesize(module, node, filters, to_float=dataset.batch_to_float,
                            value_range=value_range)
        threshold = peaks.mean(0) + 3 * peaks.std(0)
        reached = torch.tensor(result.activations)
        assert bool((reached > threshold).all()), (node, reached - threshold)
        assert result.value_range == value_range
        assert result.images.min() >= 0.0 and result.images.max() <= 1.0
        # What the model was fed: the display values mapped onto the range, normalised.
        low, high = value_range
        samples = torch.from_numpy(low + (high - low) * result.images)
        np.testing.assert_allclose(result.inputs, dataset.batch_to_float(samples).numpy(),
                                   rtol=1e-5, atol=1e-5)
        with torch.no_grad():
            again = module.forward_all(torch.from_numpy(result.inputs))[node]
        np.testing.assert_allclose(again[torch.arange(len(filters)), filters].amax(1).numpy(),
                                   result.activations, rtol=1e-5, atol=1e-5)
        # The centre value maximised never exceeds the peak reported.
        assert all(o <= a + 1e-6 for o, a in zip(result.objectives, result.activations,
                                                  strict=True))
        if node == "conv1":
            # A Conv1d on the input: the best input puts each tap at the end of the range
            # its weight's sign asks for; synthesis gets within 10 % of that ceiling.
            ends = dataset.batch_to_float(torch.tensor([[[low, high]]]))[0, 0]
            weight, bias = module.conv1.weight[:, 0], module.conv1.bias
            ceiling = torch.maximum(weight * ends[0], weight * ends[1]).sum(1) + bias
            assert bool((reached > 0.9 * ceiling).all()), reached / ceiling
            assert bool((reached <= ceiling + 1e-5).all())
            # Seeded: the same seed gives the same signals (restarts and jitter included).
            again = synthesize(module, node, filters, to_float=dataset.batch_to_float,
                               value_range=value_range)
            np.testing.assert_array_equal(again.images, result.images)


def test_synthesis_raises_rgb_filters_above_the_shapes_peaks():
    # RGB 32×32 (the 1/f spectrum with a 2-pixel jitter): a two-stage CNN trained one
    # epoch on the built-in shapes, normalised input; uint8 data, so 0…1 pixels.
    graph = Graph()
    graph.add_node("Input", {"shape": [3, 32, 32]}, id="input")
    layers = [("conv1", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}),
              ("relu1", "ReLU", {}), ("pool1", "MaxPool2d", {"kernel_size": 2}),
              ("conv2", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
              ("relu2", "ReLU", {}), ("pool2", "MaxPool2d", {"kernel_size": 4}),
              ("flatten", "Flatten", {}), ("fc", "Linear", {"out_features": 3})]
    previous = "input"
    for node_id, type_name, params in layers:
        graph.add_node(type_name, params, id=node_id, inputs=[previous])
        previous = node_id
    dataset = load_dataset({"kind": "builtin", "name": "shapes", "samples": 600},
                           input_shape=[3, 32, 32], task="classification",
                           val_fraction=0.2, seed=0)
    torch.manual_seed(0)
    module = build_module(graph)
    x = dataset.batch_to_float(dataset.x)
    optimizer = torch.optim.Adam(module.parameters(), 3e-3)
    module.train()
    for batch in torch.randperm(len(x), generator=torch.Generator().manual_seed(0)).split(32):
        loss = F.cross_entropy(module(x[batch]), dataset.y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    module.eval()
    assert input_range(dataset.x) == (0.0, 1.0)
    with torch.no_grad():
        outs = module.forward_all(x)
    for node in ("conv1", "relu2"):
        peaks = outs[node].flatten(2).amax(2)
        filters = list(range(peaks.shape[1]))
        result = synthesize(module, node, filters, to_float=dataset.batch_to_float)
        threshold = peaks.mean(0) + 3 * peaks.std(0)
        reached = torch.tensor(result.activations)
        assert bool((reached > threshold).all()), (node, reached - threshold)
        assert result.images.shape == (len(filters), 3, 32, 32)


def test_input_range_of_pixels_and_float_data_and_bad_ranges(trained_digits):
    module, dataset = trained_digits
    assert input_range(dataset.x) == (0.0, 1.0)  # uint8: pixels scaled to 0…1
    assert input_range(np.array([[0.0, 1.0, 2.0]], np.float32)) == (0.0, 2.0)
    with pytest.raises(ValueError, match="same value"):
        input_range(torch.ones(4, 1, 8))
    with pytest.raises(ValueError, match="no samples"):
        input_range(torch.zeros(4, 1, 8), [])
    with pytest.raises(ValueError, match="empty"):
        synthesize(module, "conv1", [0], steps=2, value_range=(1.0, 1.0))


def test_synthesis_draws_the_edge_a_hand_set_sobel_filter_wants_at_its_ceiling():
    # 16×16 inputs: the jittered path. The ReLU is looked through to the convolution.
    graph = Graph()
    graph.add_node("Input", {"shape": [1, 16, 16]}, id="input")
    graph.add_node("Conv2d", {"out_channels": 2, "kernel_size": 3, "bias": False},
                   id="edges", inputs=["input"])
    graph.add_node("ReLU", {}, id="relu", inputs=["edges"])
    module = build_module(graph)
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    with torch.no_grad():
        module.edges.weight.copy_(torch.stack([sobel, sobel.T])[:, None])
    result = synthesize(module, "relu", [0, 1])  # pixels fed as they are: 0…1
    assert result.target == "edges"
    # The most a 3×3 Sobel can give on 0…1 pixels: 1 under its +1 +2 +1 taps, 0 under
    # the negative ones, i.e. 4.
    assert min(result.activations) > 0.9 * 4.0
    with torch.no_grad():
        maps = module(torch.from_numpy(result.inputs))
    for f, (image, fmap) in enumerate(zip(result.images[:, 0], maps, strict=True)):
        r, c = np.unravel_index(int(fmap[f].argmax()), (14, 14))
        patch = image[r:r + 3, c:c + 3]  # what the best position sees (no padding)
        patch = patch if f == 0 else patch.T  # filter 1 is the transposed, horizontal edge
        assert patch[:, 2].mean() - patch[:, 0].mean() > 0.8  # dark → bright


def test_synthesis_is_seeded_leaves_the_module_and_global_rng_alone(trained_digits):
    module, dataset = trained_digits
    module.train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    grads = [p.grad.clone() for p in module.parameters()]  # left over from training
    rng = torch.get_rng_state()
    first = synthesize(module, "conv1", [0, 3], steps=20, seed=5)
    again = synthesize(module, "conv1", [0, 3], steps=20, seed=5)
    other = synthesize(module, "conv1", [0, 3], steps=20, seed=6)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(m.training for m in module.modules())
    module.eval()
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert all(p.requires_grad and torch.equal(p.grad, g)
               for p, g in zip(module.parameters(), grads, strict=True))
    np.testing.assert_array_equal(first.images, again.images)
    assert not np.array_equal(first.images, other.images)
    assert first.filters == [0, 3]


def test_synthesis_reports_progress_cancels_and_refuses_bad_filters(trained_digits):
    module, _ = trained_digits
    seen: list[tuple[int, int]] = []
    synthesize(module, "conv1", [1], steps=16, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(8, 16), (16, 16)]
    with pytest.raises(Cancelled):
        synthesize(module, "conv1", [1], steps=16, cancelled=lambda: True)
    with pytest.raises(ValueError, match="filters 0 to 15"):
        synthesize(module, "conv1", [16], steps=2)
    with pytest.raises(ValueError, match="no layer"):
        synthesize(module, "nope", [0], steps=2)
    assert synthesize(module, "conv1", [], steps=2).images.shape == (0, 1, 8, 8)


def _region_classifier() -> tuple[torch.nn.Module, np.ndarray]:
    """Class 0's logit is the sum of the top-left 3×3 pixels, class 1's of the bottom-right
    2×4; a final Softmax turns them into probabilities."""
    graph = Graph()
    graph.add_node("Input", {"shape": [1, 8, 8]}, id="input")
    graph.add_node("Flatten", {}, id="flat", inputs=["input"])
    graph.add_node("Linear", {"out_features": 2}, id="fc", inputs=["flat"])
    graph.add_node("Softmax", {"dim": 1}, id="soft", inputs=["fc"])
    module = build_module(graph)
    weights = np.zeros((2, 8, 8), np.float32)
    weights[0, :3, :3] = 1.0
    weights[1, 6:, 4:] = 1.0
    with torch.no_grad():
        module.fc.weight.copy_(torch.from_numpy(weights.reshape(2, 64)))
        module.fc.bias.fill_(0.5)
    return module, weights


@pytest.mark.parametrize(("patch", "stride"), [(None, None), (3, 2)])
def test_occlusion_drop_is_the_lost_logit_where_the_evidence_lies(patch, stride):
    module, weights = _region_classifier()
    rng = np.random.default_rng(0)
    image = rng.uniform(0.5, 1.5, (8, 8)).astype(np.float32)
    x = torch.from_numpy(image)[None, None]
    size = 2 if patch is None else patch  # the default: a quarter of the side
    step = max(1, size // 2) if stride is None else stride
    starts = sorted(set(range(0, 8 - size + 1, step)) | {8 - size})
    for class_index in (0, 1):
        # Direct computation: each placement zeroes a patch; the logit is w·x (+ bias,
        # which cancels); a pixel gets the mean drop of the placements covering it.
        total = np.zeros((8, 8))
        count = np.zeros((8, 8))
        full = float((weights[class_index] * image).sum())
        for r, c in itertools.product(starts, starts):
            covered = image.copy()
            covered[r:r + size, c:c + size] = 0.0
            drop = full - float((weights[class_index] * covered).sum())
            total[r:r + size, c:c + size] += drop
            count[r:r + size, c:c + size] += 1
        result = occlusion_map(module, x, class_index, patch=patch, stride=stride)
        assert result.shape == (8, 8) and result.dtype == np.float32
        np.testing.assert_allclose(result, total / count, rtol=1e-5, atol=1e-5)
        inside = weights[class_index] > 0
        assert result[inside].min() > 0 and result[inside].mean() > 2 * result[~inside].mean()
        assert inside[np.unravel_index(result.argmax(), result.shape)]
    far = np.zeros((8, 8), bool)
    far[5:, :2] = True  # no patch covering these touches either region
    assert np.all(occlusion_map(module, x, 0)[far] == 0)


def test_occlusion_refuses_bad_input_and_leaves_the_module_alone():
    module, _ = _region_classifier()
    module.train()
    rng = torch.get_rng_state()
    occlusion_map(module, torch.ones(1, 1, 8, 8), 0)
    assert torch.equal(torch.get_rng_state(), rng) and module.training
    with pytest.raises(ValueError, match="one sample"):
        occlusion_map(module, torch.ones(2, 1, 8, 8), 0)
    with pytest.raises(ValueError, match="class 2"):
        occlusion_map(module, torch.ones(1, 1, 8, 8), 2)
    with pytest.raises(ValueError, match="at least 1"):
        occlusion_map(module, torch.ones(1, 1, 8, 8), 0, patch=0)
