"""What the live views show of a run, kept on the GUI thread as NumPy arrays.

The worker's coalesced signals append here; the views read from here on their timer.
Appending is amortised O(1) (capacity doubles) and the views get array views, not
copies, so a refresh costs the same at batch 10 as at batch 100 000.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EMA_BETA = 0.9  # smoothing of the per-batch loss (bias-corrected, as TensorBoard does)


class Series:
    """A growable float64 array."""

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(capacity, np.float64)
        self._size = 0

    def extend(self, values: np.ndarray) -> None:
        n = len(values)
        if self._size + n > len(self._data):
            grown = np.empty(max(2 * len(self._data), self._size + n), np.float64)
            grown[:self._size] = self._data[:self._size]
            self._data = grown
        self._data[self._size:self._size + n] = values
        self._size += n

    def clear(self) -> None:
        self._size = 0

    @property
    def values(self) -> np.ndarray:
        return self._data[:self._size]

    def __len__(self) -> int:
        return self._size


class LiveRun:
    """Batches and epochs of the run being watched (or the last one)."""

    def __init__(self) -> None:
        self.context: dict[str, Any] | None = None
        self.step = Series()  # global batch number from 1
        self.loss = Series()
        self.smooth = Series()
        self.lr = Series()
        self.epochs: list[dict[str, Any]] = []  # records, plus train_accuracy
        self.confusion: np.ndarray | None = None
        self.confusion_epoch: int | None = None
        self.state: dict[str, np.ndarray] | None = None  # weights at the last epoch's end
        self.progress: dict[str, Any] = {}
        # Where this run's epoch 0 lies on the curves' axis: a warm start goes on from the
        # epoch its weights came from (see history.run_offsets); 0 for a fresh run.
        self.x_offset = 0
        self.revision = 0  # bumped on every change: views redraw when it moved
        self._ema = 0.0
        self._ema_count = 0

    def reset(self, context: dict[str, Any] | None = None, x_offset: int = 0) -> None:
        """Start afresh for a new run (with its context), keeping nothing of the last."""
        revision = self.revision
        self.__init__()  # type: ignore[misc]
        self.context = context
        self.x_offset = x_offset
        if context:
            self.epochs = [dict(r) for r in context.get("records", [])]
        self.revision = revision + 1  # never back to a number a view has seen

    @property
    def batches_per_epoch(self) -> int:
        return int((self.context or {}).get("batches") or 1)

    def add_batches(self, batch: dict[str, Any]) -> None:
        """Append one coalesced signal's batches (steps, losses, lrs)."""
        losses = np.asarray(batch["losses"], np.float64)
        smooth = np.empty_like(losses)
        ema, count = self._ema, self._ema_count
        for i, value in enumerate(losses):  # tens of values per call: a loop is fine
            if np.isfinite(value):
                count += 1
                ema = EMA_BETA * ema + (1 - EMA_BETA) * value
            smooth[i] = ema / (1 - EMA_BETA ** count) if count else np.nan
        self._ema, self._ema_count = ema, count
        self.step.extend(np.asarray(batch["steps"], np.float64))
        self.loss.extend(losses)
        self.smooth.extend(smooth)
        self.lr.extend(np.asarray(batch["lrs"], np.float64))
        self.progress = {k: v for k, v in batch.items() if k not in ("steps", "losses", "lrs")}
        self.revision += 1

    def add_epoch(self, epoch: dict[str, Any]) -> None:
        record = dict(epoch["record"])
        self.epochs = [r for r in self.epochs if r.get("epoch") != record.get("epoch")]
        self.epochs.append(record)
        if epoch.get("confusion") is not None:
            self.confusion = np.asarray(epoch["confusion"])
            self.confusion_epoch = record.get("epoch")
        if epoch.get("state") is not None:
            self.state = epoch["state"]
        self.revision += 1

    def epoch_axis(self) -> np.ndarray:
        """Batch steps in epochs (batch 45 of 45 in epoch 1 → 1.0), after `x_offset`."""
        return self.step.values / self.batches_per_epoch + self.x_offset

    def epoch_series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs after `x_offset`, values) of a per-epoch key, None values left out."""
        pairs = [(r["epoch"] + self.x_offset, r[key]) for r in self.epochs
                 if r.get(key) is not None and r.get("epoch") is not None]
        if not pairs:
            return np.empty(0), np.empty(0)
        x, y = zip(*pairs, strict=True)
        return np.asarray(x, np.float64), np.asarray(y, np.float64)
