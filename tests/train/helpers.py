"""Tiny graphs, in-memory datasets and callbacks for the training tests."""

from __future__ import annotations

from typing import Any

import torch

from cnnstudio.core.graph import Graph
from cnnstudio.data import Dataset, channel_stats
from cnnstudio.nn import GraphModule, build_module
from cnnstudio.train import BatchInfo, Callback


def small_graph(classes: int = 3, *, shape: tuple[int, ...] = (1, 8, 8), dropout: float = 0.0,
                final: str | None = None, batch_norm: bool = False) -> Graph:
    """input → conv(4) [→ BN] → ReLU → pool → flatten [→ dropout] → linear [→ final]."""
    g = Graph()
    g.add_node("Input", {"shape": list(shape)}, id="input")
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}, id="conv1",
               inputs=["input"])
    x = "conv1"
    if batch_norm:
        g.add_node("BatchNorm2d", {}, id="bn1", inputs=[x])
        x = "bn1"
    g.add_node("ReLU", {}, id="relu1", inputs=[x])
    g.add_node("MaxPool2d", {"kernel_size": 2}, id="pool1", inputs=["relu1"])
    g.add_node("Flatten", {}, id="flat", inputs=["pool1"])
    x = "flat"
    if dropout:
        g.add_node("Dropout", {"p": dropout}, id="drop", inputs=[x])
        x = "drop"
    g.add_node("Linear", {"out_features": classes}, id="fc", inputs=[x])
    if final:
        g.add_node(final, {}, id="out", inputs=["fc"])
    return g


def seg_graph(channels: int, *, final: str | None = None) -> Graph:
    """A per-pixel scorer for 8×8 masks: conv(4) → ReLU → conv(channels, 1×1) [→ final]."""
    g = Graph()
    g.add_node("Input", {"shape": [1, 8, 8]}, id="input")
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}, id="conv1",
               inputs=["input"])
    g.add_node("ReLU", {}, id="relu1", inputs=["conv1"])
    g.add_node("Conv2d", {"out_channels": channels, "kernel_size": 1}, id="head",
               inputs=["relu1"])
    if final:
        g.add_node(final, {}, id="out", inputs=["head"])
    return g


def build(graph: Graph, seed: int = 0) -> GraphModule:
    torch.manual_seed(seed)
    return build_module(graph)


def make_dataset(n: int = 60, classes: int = 3, *, seed: int = 0, val: int = 12,
                 task: str = "classification") -> Dataset:
    """Random uint8 8×8 images whose class brightens one quadrant (so models can learn),
    with masks for segmentation; the first `n - val` samples train, the rest validate."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 120, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.randint(0, classes, (n,), generator=g)
    for i in range(n):
        q = int(y[i]) % 4
        r, c = (q // 2) * 4, (q % 2) * 4
        x[i, 0, r:r + 4, c:c + 4] += 120
    if task == "segmentation":
        masks = torch.zeros(n, 8, 8, dtype=torch.int64)
        for i in range(n):
            q = int(y[i]) % 4
            r, c = (q // 2) * 4, (q % 2) * 4
            masks[i, r:r + 4, c:c + 4] = 1 + int(y[i]) % (classes - 1)
        y = masks
    splits = {"train": torch.arange(n - val), "val": torch.arange(n - val, n)}
    mean, std = channel_stats(x, splits["train"])
    return Dataset(x=x, y=y, class_names=[f"c{i}" for i in range(classes)], task=task,
                   splits=splits, skipped=[], mean=mean, std=std)


def settings(**overrides: Any) -> dict[str, Any]:
    """Small, fast training settings on the CPU."""
    out: dict[str, Any] = {"epochs": 2, "batch_size": 16, "device": "cpu", "seed": 3,
                           "optimizer": {"name": "SGD", "lr": 0.05, "momentum": 0.9}}
    out.update(overrides)
    return out


def state_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def cpu_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


class Recorder(Callback):
    """Keeps every hook call; optionally stops at (epoch, batch) counted from 1."""

    def __init__(self, stop_at: tuple[int, int] | None = None,
                 stop_after_epoch: int | None = None) -> None:
        self.batches: list[BatchInfo] = []
        self.epochs: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.stop_at = stop_at
        self.stop_after_epoch = stop_after_epoch

    def on_fit_start(self, trainer: Any) -> None:
        self.calls.append("fit_start")

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        self.calls.append(f"epoch_start {epoch}")

    def on_batch_end(self, trainer: Any, info: BatchInfo) -> None:
        self.batches.append(info)
        if self.stop_at == (info.epoch, info.batch):
            trainer.request_stop()

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        self.epochs.append(record)
        if self.stop_after_epoch == record["epoch"]:
            trainer.request_stop()

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        self.calls.append(f"fit_end {result.status}")

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        self.calls.append(f"exception {type(error).__name__}")
