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
