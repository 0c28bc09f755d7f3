"""The Trainer against a plain PyTorch loop, on every template and a BatchNorm net.

SPEC §3 "Fast": the trainer adds ≤ 3 % (issue 14: every template and a 3-channel net with
BatchNorm, max-pool and global average pooling, 3×32×32, 1,000 images).

Per case: the same model (same initial weights), the same in-memory data tensors, batch
size, optimizer, seed and thread count on both sides. The plain loop is what one writes
by hand: shuffle, `x[idx]`, the float conversion, forward, cross-entropy, step; then a
validation pass with loss and accuracy under `no_grad`. It converts batches with
`dataset.batch_to_float` (the one fused scale-and-shift a careful user writes), so both
sides feed the model the same tensors. The Trainer runs with the progress bar a CLI shows
(written to a null stream).

Two measurements per case, with their ratios (goal ≤ 1.03):
  * per epoch (train + validation): within each Trainer run a plain-loop epoch runs
    beside every Trainer epoch (from its hooks, outside the timed window, alternately
    before and after), so both sides alternate epoch by epoch under the same machine
    noise; the first pair of each run is warm-up; the ratio is the median of the
    per-pair ratios, in wall time and in process CPU time (the one other processes
    disturb least on a shared machine);
  * whole runs, set-up included, alternating which side goes first (median wall times).
Cases are kept small (few batches) so one run of all of them takes a few minutes on two
cores; `--samples` scales them.

    python benchmarks/bench_trainer.py [--cases vgg,bn-net] [--rounds 3] [--epochs 3]
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from cnnstudio.core.graph import Graph
from cnnstudio.core.templates import get_template
from cnnstudio.data import Dataset, load_dataset
from cnnstudio.nn import build_module
from cnnstudio.train import Callback, ProgressPrinter, Trainer, default_cpu_threads
from cnnstudio.train.batches import batch_count, epoch_permutation
from cnnstudio.train.optim import warm_up

GOAL = 1.03


def bn_net() -> Graph:
    """Issue 14's 3-channel net: three conv–BatchNorm–ReLU stages, max-pool after the
    first two, global average pool, one linear layer (3×32×32 input)."""
    g = Graph()
    g.add_node("Input", {"shape": [3, 32, 32]}, id="input")
    x = "input"
    for i, channels in enumerate((16, 32, 64), 1):
        g.add_node("Conv2d", {"out_channels": channels, "kernel_size": 3, "padding": 1},
                   id=f"conv{i}", inputs=[x])
        g.add_node("BatchNorm2d", {}, id=f"bn{i}", inputs=[f"conv{i}"])
        g.add_node("ReLU", {}, id=f"relu{i}", inputs=[f"bn{i}"])
        x = f"relu{i}"
        if i < 3:
            g.add_node("MaxPool2d", {"kernel_size": 2, "stride": 2}, id=f"pool{i}", inputs=[x])
            x = f"pool{i}"
    g.add_node("AdaptiveAvgPool2d", {"output_size": 1}, id="gap", inputs=[x])
    g.add_node("Flatten", {}, id="flat", inputs=["gap"])
    g.add_node("Linear", {"out_features": 3}, id="fc", inputs=["flat"])
    return g


# case → (template, or None for the BatchNorm net; built-in samples, None = the whole set).
# Sizes give each epoch roughly 0.06–0.9 s on one thread of a 2-core machine.
CASES: dict[str, tuple[str | None, int | None]] = {
    "digits-lenet": ("digits-lenet", None), "lenet5": ("lenet5", None),
    "vgg": ("vgg", 320), "resnet": ("resnet", 192), "inception": ("inception", 320),
    "unet": ("unet", 300), "cnn1d": ("cnn1d", 4000), "bn-net": (None, 1000),
}


def load_case(name: str, scale: float) -> tuple[Graph, Dataset]:
    template_name, samples = CASES[name]
    if template_name is None:
        graph, data, task = bn_net(), "shapes", "classification"
    else:
        template = get_template(template_name)
        graph, data, task = template.graph(), template.dataset, template.task
    source: dict = {"kind": "builtin", "name": data}
    if samples is not None and data != "digits":
        source["samples"] = max(16, round(samples * scale))
    return graph, load_dataset(source, input_shape=graph.node("input").params["shape"],
                               task=task)


class PlainLoop:
    """The reference: what one writes by hand, one epoch per `epoch()` call."""

    def __init__(self, module, dataset, *, batch_size: int, lr: float, seed: int) -> None:
        torch.manual_seed(seed)
        self.module, self.dataset, self.batch_size, self.seed = module, dataset, batch_size, seed
        self.opt = torch.optim.Adam(module.parameters(), lr=lr)
        self.done = 0
        # Like the Trainer: BatchNorm cannot train on a last batch of one sample.
        has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                     for m in module.modules())
        self.batches = batch_count(len(dataset.splits["train"]), batch_size, None, has_bn)

    def epoch(self) -> tuple[float, float]:
        """Train and validate one epoch; return its (wall, CPU) time in seconds."""
        start, cpu = time.perf_counter(), time.process_time()
        module, dataset, opt, bs = self.module, self.dataset, self.opt, self.batch_size
        train, val = dataset.splits["train"], dataset.splits["val"]
        x, y = dataset.x, dataset.y
        module.train()
        order = train[epoch_permutation(self.seed, self.done, len(train))]
        for b in range(self.batches):
            idx = order[b * bs:(b + 1) * bs]
            loss = F.cross_entropy(module(dataset.batch_to_float(x[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        module.eval()
        total, correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
        with torch.no_grad():
            for idx in val.split(bs):
                out = module(dataset.batch_to_float(x[idx]))
                total += F.cross_entropy(out, y[idx]) * len(idx)
                correct += (out.argmax(1) == y[idx]).sum()
        _ = total.item() / len(val), correct.item() / y[val].numel()
        self.done += 1
        return time.perf_counter() - start, time.process_time() - cpu


class Interleave(Callback):
    """Times each Trainer epoch (start hook to end hook: training and validation) and runs
    one plain-loop epoch outside that window, alternately just before (even epochs) and
    just after (odd epochs) it, so the two alternate epoch by epoch, share the machine's
    noise, and neither always runs first."""

    def __init__(self, plain: PlainLoop) -> None:
        self.plain = plain
        self.ours: list[tuple[float, float]] = []
        self.theirs: list[tuple[float, float]] = []
        self._start = self._cpu = 0.0

    def on_epoch_start(self, trainer, epoch):
        if epoch % 2 == 0:
            self.theirs.append(self.plain.epoch())
        self._start, self._cpu = time.perf_counter(), time.process_time()

    def on_epoch_end(self, trainer, record):
        self.ours.append((time.perf_counter() - self._start, time.process_time() - self._cpu))
        if record["epoch"] % 2 == 1:
            self.theirs.append(self.plain.epoch())


def measure(name: str, args: argparse.Namespace, threads: int,
            make_trainer: Callable[..., Trainer] = Trainer) -> dict:
    """Both measurements for one case; `make_trainer` lets a script time a variant."""
    graph, dataset = load_case(name, args.samples)
    torch.manual_seed(0)
    initial = build_module(graph)
    settings = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": 0,
                "device": "cpu", "optimizer": {"name": "Adam", "lr": 0.001}}

    def ours_run(callbacks: list) -> None:
        progress = ProgressPrinter(stream=io.StringIO(), interval=0.2)
        result = make_trainer(copy.deepcopy(initial), dataset, settings,
                              callbacks=[progress, *callbacks], num_threads=threads).fit()
        assert result.status == "completed", result.message

    def plain_run() -> None:
        loop = PlainLoop(copy.deepcopy(initial), dataset, batch_size=args.batch_size,
                         lr=0.001, seed=0)
        for _ in range(args.epochs):
            loop.epoch()

    ours: list[tuple[float, float]] = []
    plain: list[tuple[float, float]] = []
    runs: dict[str, list[float]] = {"ours": [], "plain": []}
    for round_ in range(args.rounds):
        both = Interleave(PlainLoop(copy.deepcopy(initial), dataset,
                                    batch_size=args.batch_size, lr=0.001, seed=0))
        ours_run([both])
        ours.extend(both.ours[1:])  # the first epoch of a run is warm-up
        plain.extend(both.theirs[1:])
        if args.no_runs:
            continue
        for side in (("ours", "plain") if round_ % 2 == 0 else ("plain", "ours")):
            start = time.perf_counter()
            ours_run([]) if side == "ours" else plain_run()
            runs[side].append(time.perf_counter() - start)

    def paired(i: int) -> float:
        return statistics.median(a[i] / b[i] for a, b in zip(ours, plain, strict=True))

    def med(values: list[tuple[float, float]], i: int) -> float:
        return statistics.median(v[i] for v in values)

    return {
        "case": name, "train": len(dataset.splits["train"]), "val": len(dataset.splits["val"]),
        "batch_size": args.batch_size, "threads": threads, "epoch_pairs": len(ours),
        "trainer_epoch_wall_s": med(ours, 0), "plain_epoch_wall_s": med(plain, 0),
        "ratio_wall": paired(0), "ratio_cpu": paired(1),
        "ratio_runs_with_setup": (statistics.median(runs["ours"])
                                  / statistics.median(runs["plain"])) if runs["ours"] else None,
    }


def print_table(rows: list[dict]) -> None:
    print(f"{'case':13s} {'train/val':>9s} {'trainer':>9s} {'plain':>9s} {'wall':>6s}"
          f" {'CPU':>6s} {'runs':>6s}")
    for r in rows:
        runs = "" if r["ratio_runs_with_setup"] is None else f"{r['ratio_runs_with_setup']:.3f}"
        flag = "" if max(r["ratio_wall"], r["ratio_cpu"]) <= GOAL else "  over goal"
        print(f"{r['case']:13s} {r['train']:>4d}/{r['val']:<4d} {r['trainer_epoch_wall_s'] * 1e3:7.1f}ms"
              f" {r['plain_epoch_wall_s'] * 1e3:7.1f}ms {r['ratio_wall']:6.3f} {r['ratio_cpu']:6.3f}"
              f" {runs:>6s}{flag}")
    threads = rows[0]["threads"] if rows else 0
    print(f"ratios trainer / plain loop, goal ≤ {GOAL:.2f}; wall and CPU: median over epoch"
          f" pairs (train + validation); runs: whole runs with set-up; {threads} thread(s),"
          f" batch {rows[0]['batch_size'] if rows else 0}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, from: {', '.join(CASES)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=float, default=1.0,
                        help="scale the generated data sets' sizes")
    parser.add_argument("--no-runs", action="store_true", help="skip the whole-run timing")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    unknown = [c for c in args.cases.split(",") if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}: expected {', '.join(CASES)}")
    return args


def main(argv: list[str] | None = None,
         make_trainer: Callable[..., Trainer] = Trainer) -> list[dict]:
    args = parse_args(argv)
    warm_up()  # torch's first optimizer imports ~800 modules: not an epoch cost
    threads = default_cpu_threads()
    torch.set_num_threads(threads)  # the plain loop gets the trainer's thread policy too
    rows = []
    for name in args.cases.split(","):
        rows.append(measure(name, args, threads, make_trainer))
        if args.json:
            print(json.dumps(rows[-1]), flush=True)
    if not args.json:
        print_table(rows)
    return rows


if __name__ == "__main__":
    main()
