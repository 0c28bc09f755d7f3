"""Losses by task, Softmax/Sigmoid heads, and segmentation training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnstudio.nn.internals import LogitsTap, final_activation
from cnnstudio.train import Trainer
from cnnstudio.train.losses import make_loss

from .helpers import build, make_dataset, seg_graph, settings, small_graph


def test_classification_cross_entropy_with_label_smoothing() -> None:
    z, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    loss = make_loss("classification", {"name": "auto", "label_smoothing": 0.1}, 4)
    assert loss.name == "cross_entropy"
    assert loss(z, y).item() == pytest.approx(F.cross_entropy(z, y, label_smoothing=0.1).item())


def test_dice_is_refused_for_classification() -> None:
    with pytest.raises(ValueError, match="segmentation"):
        make_loss("classification", {"name": "dice"}, 4)


def test_segmentation_losses_by_hand() -> None:
    z = torch.randn(2, 3, 4, 4)
    y = torch.randint(0, 3, (2, 4, 4))
    ce = make_loss("segmentation", {"name": "auto"}, 3)
    assert ce(z, y).item() == pytest.approx(F.cross_entropy(z, y).item())
    p = torch.softmax(z, 1)
    t = F.one_hot(y, 3).permute(0, 3, 1, 2).float()
    inter, total = (p * t).sum((0, 2, 3)), p.sum((0, 2, 3)) + t.sum((0, 2, 3))
    dice = 1 - ((2 * inter + 1) / (total + 1)).mean()
    assert make_loss("segmentation", {"name": "dice"}, 3)(z, y).item() == pytest.approx(dice.item())


def test_perfect_prediction_has_near_zero_dice_loss() -> None:
    y = torch.randint(0, 2, (2, 8, 8))
    z = (y.float() * 2 - 1).unsqueeze(1) * 50  # confident and right
    dice = make_loss("segmentation", {"name": "dice"}, 1)
    assert dice.binary and dice(z, y).item() < 1e-3
    assert dice.predict(z).equal(y)


def test_binary_one_channel_uses_bce() -> None:
    z, y = torch.randn(2, 1, 4, 4), torch.randint(0, 2, (2, 4, 4))
    loss = make_loss("segmentation", {"name": "auto"}, 1)
    expected = F.binary_cross_entropy_with_logits(z, y.unsqueeze(1).float())
    assert loss.name == "bce" and loss(z, y).item() == pytest.approx(expected.item())
    probs = loss.probabilities(z)
    assert probs.shape == (2, 2, 4, 4) and torch.allclose(probs.sum(1), torch.ones(2, 4, 4))


def test_final_activation_detection_and_tap() -> None:
    assert final_activation(build(small_graph()), 2) is None
    module = build(small_graph(final="Softmax"))
    assert final_activation(module, 2) == ("out", "Softmax")
    assert final_activation(build(small_graph(final="Sigmoid")), 2) == ("out", "Sigmoid")
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        logits = module.forward_all(x)["fc"]
        with LogitsTap(module, "out"):
            assert torch.equal(module(x), logits)
        assert torch.allclose(module(x), torch.softmax(logits, 1))
    assert final_activation(torch.nn.Linear(2, 2), 2) is None


@pytest.mark.parametrize("loss", ["auto", "bce", "dice", "bce_dice"])
def test_segmentation_trains_with_every_loss(loss: str) -> None:
    dataset = make_dataset(classes=3, task="segmentation")
    s = settings(epochs=2, loss={"name": loss}, optimizer={"name": "Adam", "lr": 0.01})
    result = Trainer(build(seg_graph(3)), dataset, s).fit()
    assert result.status == "completed", result.message
    record = result.epochs[-1]
    assert 0 <= record["val_iou"] <= 1 and 0 <= record["val_dice"] <= 1
    assert len(result.confusion_matrix) == 3 and len(result.best["iou"]) == 3


@pytest.mark.parametrize("loss", ["auto", "dice", "bce_dice"])
def test_binary_segmentation_with_sigmoid_head(loss: str) -> None:
    dataset = make_dataset(classes=2, task="segmentation")
    s = settings(epochs=3, loss={"name": loss}, optimizer={"name": "Adam", "lr": 0.05})
    result = Trainer(build(seg_graph(1, final="Sigmoid")), dataset, s).fit()
    assert result.status == "completed", result.message
    assert result.epochs[-1]["val_iou"] > 0.5
    assert len(result.confusion_matrix) == 2


def test_segmentation_output_size_mismatch_is_clear() -> None:
    dataset = make_dataset(classes=3, task="segmentation")
    result = Trainer(build(seg_graph(5)), dataset, settings()).fit()
    assert result.status == "failed"
    assert "the masks need 3×8×8 class scores" in result.message
