"""The learning-rate range test: the curve, the suggestion, and what it leaves alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnnstudio.train import Trainer
from cnnstudio.train.lr_find import LRFindError, range_test, suggest_lr
from tests.train.helpers import build, cpu_copy, make_dataset, settings, small_graph, state_equal


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_weights_optimizer_and_global_rng_are_untouched():
    dataset = make_dataset(n=200, val=20)
    module = build(small_graph(dropout=0.3))  # dropout draws from the RNG while training
    trainer = Trainer(module, dataset, settings(epochs=1, max_batches_per_epoch=2))
    trainer.fit()  # a real optimizer with momentum state, as a project's would have
    optimizer_state = {k: v.clone() for k, v in
                       trainer.optimizer.state[next(iter(trainer.optimizer.state))].items()}
    lr_before = trainer.optimizer.param_groups[0]["lr"]
    weights = cpu_copy(module)
    torch.manual_seed(1234)
    rng = torch.get_rng_state()
    result = range_test(module, dataset, settings(), num_iter=10)
    assert len(result.lrs) > 1
    assert state_equal(weights, cpu_copy(module))  # bit-identical
    assert torch.equal(rng, torch.get_rng_state())
    assert module.training == trainer.module.training
    after = trainer.optimizer.state[next(iter(trainer.optimizer.state))]
    assert all(torch.equal(optimizer_state[k], after[k]) for k in optimizer_state)
    assert trainer.optimizer.param_groups[0]["lr"] == lr_before


def test_lrs_rise_exponentially_and_losses_are_bias_corrected_averages():
    dataset = make_dataset(n=200, val=20)  # 180 samples: 11 full batches of 16, 12 in all
    result = range_test(build(small_graph()), dataset, settings(), start_lr=1e-5,
                        end_lr=1e-2, num_iter=100, diverge=1e9)
    lrs = np.array(result.lrs)
    assert len(lrs) == math.ceil(180 / 16)  # fewer batches in the data than num_iter
    ratios = lrs[1:] / lrs[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)
    np.testing.assert_allclose([lrs[0], lrs[-1]], [1e-5, 1e-2], rtol=1e-9)
    # The smoothing, computed independently from the raw batch losses.
    average, expected = 0.0, []
    for i, loss in enumerate(result.raw_losses):
        average = 0.98 * average + 0.02 * loss
        expected.append(average / (1 - 0.98 ** (i + 1)))
    np.testing.assert_allclose(result.losses, expected, rtol=1e-12)
    assert not result.diverged and not result.cancelled


def test_the_test_stops_when_the_loss_diverges():
    dataset = make_dataset(n=600, val=0)
    # Labels unrelated to the images: the loss cannot reach 0, so a huge rate blows it up.
    dataset.y = dataset.y[torch.randperm(600, generator=torch.Generator().manual_seed(0))]
    result = range_test(build(small_graph()), dataset, settings(), start_lr=1e-4,
                        end_lr=1e6, num_iter=36)
    assert result.diverged
    assert len(result.lrs) < 36
    losses = result.losses
    # It stopped at the first batch whose smoothed loss passed 4× the best before it
    # (or at a NaN/infinite loss, which the Trainer refuses before the step).
    first_over = next((i for i in range(1, len(losses)) if not math.isfinite(losses[i])
                       or losses[i] > 4 * min(losses[:i + 1])), None)
    assert first_over in (len(losses) - 1, None)
    assert min(result.lrs) <= result.suggested_lr <= max(result.lrs)


def test_suggestion_is_the_steepest_descent_in_the_range():
    lrs = list(np.logspace(-6, 0, 13))
    losses = [2.0, 2.0, 1.99, 1.95, 1.8, 1.2, 0.9, 0.8, 0.78, 0.9, 1.5, 3.0, 9.0]
    slopes = np.gradient(losses, np.log10(lrs))
    assert suggest_lr(lrs, losses) == lrs[int(np.argmin(slopes))] == lrs[5]
    assert suggest_lr(lrs[:2], [1.0, 0.5]) == pytest.approx(lrs[1] / 10)
    assert suggest_lr([], []) is None
    result = range_test(build(small_graph()), make_dataset(n=200), settings(), num_iter=12)
    assert min(result.lrs) <= result.suggested_lr <= max(result.lrs)


def test_cancel_stops_after_the_batch_and_progress_counts():
    seen: list[tuple[int, int]] = []
    result = range_test(build(small_graph()), make_dataset(n=600, val=0), settings(),
                        num_iter=30, progress=lambda done, most: seen.append((done, most)),
                        cancel=lambda: len(seen) >= 4)
    assert result.cancelled and len(result.lrs) == 4
    assert seen == [(1, 30), (2, 30), (3, 30), (4, 30)]


def test_bad_ranges_and_data_are_one_line_errors():
    module, dataset = build(small_graph()), make_dataset()
    with pytest.raises(LRFindError, match="rise"):
        range_test(module, dataset, settings(), start_lr=1.0, end_lr=0.1)
    with pytest.raises(LRFindError, match="at least one batch"):
        range_test(module, dataset, settings(), num_iter=0)
    empty = make_dataset(n=12, val=12)
    with pytest.raises(LRFindError, match="empty"):
        range_test(module, empty, settings())
