"""Our Trainer on a GPU against a hand-tuned PyTorch loop (goal: ≥ 0.95 of its images/s).

The ResNet-style template trains on 3×32×32 images (the built-in "shapes" data, no
download) with both sides:

  * ours: `Trainer` with the project's settings (`device` cuda, `amp` on: float16
    autocast with a gradient scaler, data resident on the GPU when it fits);
  * hand-tuned: what a practitioner writes for speed — the data resident on the GPU as
    uint8 (indexing and float conversion there), channels_last weights and inputs,
    bfloat16 autocast where the GPU has it (else float16 with a scaler), a fused Adam,
    `non_blocking` copies, and with `--compile` the model through `torch.compile`.

Both train the same epochs, batch size, learning rate and initial weights, and validate
each epoch. Per side: training images per second (median of the epochs after the first,
which is warm-up), the validation time, and the peak GPU memory. The ratio ours /
hand-tuned is printed with the goal.

    python benchmarks/bench_gpu.py [--samples 20000] [--epochs 4] [--batch-size 256]
        [--compile] [--device cuda]

Without a CUDA device it says so and runs a tiny CPU dry run (the figures then mean
nothing: it only shows the script works).
"""

from __future__ import annotations

import argparse
import copy
import io
import statistics
import time

import torch
import torch.nn.functional as F

from cnnstudio.core.templates import get_template
from cnnstudio.data import Dataset, load_dataset
from cnnstudio.nn import build_module
from cnnstudio.train import Callback, ProgressPrinter, Trainer

GOAL = 0.95


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


class EpochTimes(Callback):
    """Training time of each epoch (start to the last batch) and its validation time."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.train: list[float] = []
        self.val: list[float] = []
        self._start = self._batches_done = 0.0

    def on_epoch_start(self, trainer, epoch):
        _sync(self.device)
        self._start = time.perf_counter()

    def on_batch_end(self, trainer, info):
        if info.batch == info.batches:  # the epoch's training is done; validation follows
            _sync(self.device)
            self._batches_done = time.perf_counter()
            self.train.append(self._batches_done - self._start)

    def on_epoch_end(self, trainer, record):
        self.val.append(time.perf_counter() - self._batches_done)


def run_ours(initial, dataset: Dataset, args, device: torch.device) -> dict:
    settings = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": 0,
                "device": str(device), "amp": True,
                "optimizer": {"name": "Adam", "lr": 0.001}}
    times = EpochTimes(device)
    _reset_peak(device)
    result = Trainer(copy.deepcopy(initial), dataset, settings,
                     callbacks=[ProgressPrinter(stream=io.StringIO()), times]).fit()
    assert result.status == "completed", result.message
    return {"train": times.train, "val": times.val, "peak": _peak_mib(device),
            "val_acc": result.epochs[-1].get("val_accuracy")}


def run_hand_tuned(initial, dataset: Dataset, args, device: torch.device) -> dict:
    cuda = device.type == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float16
    module = copy.deepcopy(initial).to(device, memory_format=torch.channels_last)
    model = torch.compile(module) if args.compile else module
    opt = torch.optim.Adam(module.parameters(), lr=0.001, fused=cuda)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and not bf16)
    x = dataset.x.to(device, non_blocking=True)  # uint8, resident
    y = dataset.y.to(device, non_blocking=True)
    mean = torch.tensor(dataset.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(dataset.std, device=device).view(1, -1, 1, 1)
    train = dataset.splits["train"].to(device)
    val = dataset.splits["val"].to(device)

    def prepare(idx: torch.Tensor) -> torch.Tensor:
        xb = x[idx].float().div_(255).sub_(mean).div_(std)
        return xb.contiguous(memory_format=torch.channels_last)

    times: dict = {"train": [], "val": []}
    _reset_peak(device)
    generator = torch.Generator(device=device).manual_seed(0)
    bs = args.batch_size
    for _ in range(args.epochs):
        _sync(device)
        start = time.perf_counter()
        model.train()
        order = train[torch.randperm(len(train), device=device, generator=generator)]
        for b in range(0, len(order) - 1, bs):  # a last batch of one cannot use BatchNorm
            idx = order[b:b + bs]
            with torch.autocast(device.type, dtype=dtype, enabled=cuda):
                loss = F.cross_entropy(model(prepare(idx)), y[idx])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        _sync(device)
        middle = time.perf_counter()
        model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=device)
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=cuda):
            for idx in val.split(bs):
                correct += (model(prepare(idx)).argmax(1) == y[idx]).sum()
        accuracy = correct.item() / len(val)
        times["train"].append(middle - start)
        times["val"].append(time.perf_counter() - middle)
    return {**times, "peak": _peak_mib(device), "val_acc": accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--compile", action="store_true", help="torch.compile the hand-tuned model")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: a tiny CPU dry run follows (its figures mean nothing)")
        device = torch.device("cpu")
        args.samples, args.epochs, args.batch_size = 256, 2, 64
    template = get_template("resnet")
    graph = template.graph()
    dataset = load_dataset({"kind": "builtin", "name": template.dataset,
                            "samples": args.samples},
                           input_shape=graph.node("input").params["shape"], task=template.task)
    torch.manual_seed(0)
    initial = build_module(graph)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"ResNet-style template, {len(dataset.splits['train'])} training and"
          f" {len(dataset.splits['val'])} validation images 3×32×32, batch {args.batch_size},"
          f" {args.epochs} epochs, on {name}; torch {torch.__version__}")
    sides = {}
    for side, run in (("ours", run_ours), ("hand-tuned", run_hand_tuned),
                      ("ours (again)", run_ours)):
        sides[side] = run(initial, dataset, args, device)
    train_images = len(dataset.splits["train"])
    print(f"{'side':<14}{'train img/s':>13}{'val s/epoch':>13}{'peak MiB':>10}{'val acc':>9}")
    rates = {}
    for side, r in sides.items():
        steady = r["train"][1:] or r["train"]
        rates[side] = train_images / statistics.median(steady)
        print(f"{side:<14}{rates[side]:>13,.0f}{statistics.median(r['val']):>13.3f}"
              f"{r['peak']:>10.0f}{r['val_acc'] or 0:>9.3f}")
    ours = statistics.mean([rates["ours"], rates["ours (again)"]])
    ratio = ours / rates["hand-tuned"]
    verdict = "OK" if ratio >= GOAL else "BELOW GOAL"
    print(f"ours / hand-tuned images per second: {ratio:.3f} (goal ≥ {GOAL}) {verdict}")


if __name__ == "__main__":
    main()
