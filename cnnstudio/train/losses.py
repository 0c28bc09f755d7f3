"""Loss functions by task, and training on logits when a graph ends in Softmax or Sigmoid.

A network whose output node is a Softmax (or a Sigmoid) gives probabilities; taking the
log of those loses precision exactly where it matters (confident wrong answers). The
trainer therefore trains on the logits that feed that final activation: it reads the
output node from the `GraphModule` (`output_id`, `module_for`), and a forward hook on that
node's module makes it return its input while training (`nn.internals.LogitsTap`). The graph and the
module are left untouched; probabilities are recovered
with softmax/sigmoid wherever they are shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_DICE_EPS = 1.0  # additive smoothing: an empty class in an empty batch scores 1, not 0/0


@dataclass(frozen=True)
class TaskLoss:
    """The loss for one task and output layout, plus how to turn logits into classes."""

    fn: LossFn
    binary: bool  # one output channel scoring the positive class (segmentation only)
    name: str  # the loss actually used, e.g. "cross_entropy"

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(logits, target)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Class indices from logits: argmax over channels, or logit > 0 when binary."""
        if self.binary:
            return (logits[:, 0] > 0).to(torch.int64)
        return logits.argmax(dim=1)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities over the channels (two for a binary output)."""
        if self.binary:
            p = torch.sigmoid(logits[:, :1].float())
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(logits.float(), dim=1)


def output_channels(shape: tuple[int, ...], task: str, num_classes: int,
                    mask_shape: tuple[int, ...]) -> int:
    """Check a per-sample model output `shape` against the data; return its channels.

    Classification needs `num_classes` scores; segmentation needs `num_classes` (or, for
    two classes, 1) channels of the masks' size `mask_shape`. Raises ValueError, worded
    for the user, otherwise.
    """
    shown = "×".join(map(str, shape))
    if task == "classification":
        if len(shape) != 1 or shape[0] != num_classes:
            raise ValueError(f"the model outputs {shown} values per sample but the data has"
                             f" {num_classes} classes")
        return shape[0]
    wanted = (num_classes, 1) if num_classes == 2 else (num_classes,)
    if len(shape) < 2 or shape[0] not in wanted or shape[1:] != mask_shape:
        raise ValueError(f"the model outputs {shown} per sample but the masks need"
                         f" {num_classes}×{'×'.join(map(str, mask_shape))} class scores")
    return shape[0]


def make_loss(task: str, settings: dict[str, Any], out_channels: int) -> TaskLoss:
    """Return the loss for `task` ("classification" or "segmentation") from the filled
    `training.loss` settings (`name`, `label_smoothing`) and the model's output channels.

    Raises ValueError for a loss that does not fit the task (Dice for classification).
    """
    name = settings.get("name", "auto")
    smoothing = float(settings.get("label_smoothing", 0.0))
    if task not in ("classification", "segmentation"):
        raise ValueError(f"unknown task {task!r}")
    if task == "segmentation" and out_channels == 1:  # binary masks, one logit per pixel
        def bce(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            t = (y == 1).to(z.dtype).unsqueeze(1)
            return F.binary_cross_entropy_with_logits(z, t * (1 - smoothing) + 0.5 * smoothing)

        def dice(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return _dice(torch.sigmoid(z.float()), (y == 1).unsqueeze(1).float())

        fns: dict[str, LossFn] = {"auto": bce, "cross_entropy": bce, "bce": bce, "dice": dice,
                                  "bce_dice": lambda z, y: bce(z, y) + dice(z, y)}
        used = "bce" if name in ("auto", "cross_entropy") else name
        return TaskLoss(fns[name], True, used)
    if name in ("auto", "cross_entropy"):
        return TaskLoss(lambda z, y: F.cross_entropy(z, y, label_smoothing=smoothing), False,
                        "cross_entropy")
    if name == "bce":
        return TaskLoss(lambda z, y: _bce_one_hot(z, y, smoothing), False, "bce")
    if task == "classification":
        raise ValueError(f"the {name} loss is for segmentation; use cross_entropy or bce"
                         " for classification")
    if name == "dice":
        return TaskLoss(lambda z, y: _dice(torch.softmax(z.float(), 1), _one_hot(y, z)), False,
                        "dice")
    if name == "bce_dice":
        # BCE scores channels independently, so its Dice partner uses sigmoid probabilities.
        return TaskLoss(lambda z, y: _bce_one_hot(z, y, smoothing)
                        + _dice(torch.sigmoid(z.float()), _one_hot(y, z)), False, "bce_dice")
    raise ValueError(f"unknown loss {name!r}")


def _one_hot(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(N, *S) class indices → (N, C, *S) float one-hot with `like`'s channel count."""
    hot = F.one_hot(y, like.shape[1]).to(torch.float32)
    return hot.movedim(-1, 1) if y.dim() > 1 else hot


def _bce_one_hot(z: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
    t = _one_hot(y, z).to(z.dtype)
    return F.binary_cross_entropy_with_logits(z, t * (1 - smoothing) + 0.5 * smoothing)


def _dice(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss 1 − mean over channels of (2Σpt + ε)/(Σp + Σt + ε), sums over the
    batch and every pixel, so rare classes weigh as much as frequent ones."""
    dims = (0, *range(2, p.dim()))
    inter = (p * t).sum(dims)
    total = p.sum(dims) + t.sum(dims)
    return 1 - ((2 * inter + _DICE_EPS) / (total + _DICE_EPS)).mean()
