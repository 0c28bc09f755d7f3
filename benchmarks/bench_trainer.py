"""The Trainer against a plain hand-written PyTorch loop (SPEC §3 "Fast": ≤ 3 % overhead).

Same model (a template's graph, same initial weights), same in-memory data tensors,
same batch size, optimizer, seed and thread count. Each side trains and validates an
epoch the same way (shuffle, `x[idx]`, `batch_to_float`, forward, cross-entropy, step;
then a validation pass with loss and accuracy). The Trainer runs with the progress bar
a CLI would show (written to a null stream).

Two measurements, printed with their ratios (goal ≤ 1.03):
  * per epoch: within each Trainer run a plain-loop epoch runs beside every Trainer
    epoch (from its hooks, outside the timed window, alternately before and after), so
    both alternate epoch by epoch under the same machine noise; the first pair of each
    run is warm-up; the headline is the median of the per-pair ratios;
  * whole runs, set-up included, alternating which side goes first.
Epochs are timed in wall time and in process CPU time: on a shared machine the CPU time
is what other processes disturb least.

    python benchmarks/bench_trainer.py [--template digits-lenet] [--rounds 6] [--epochs 6]
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import statistics
import time

import torch
import torch.nn.functional as F

from cnnstudio.core.templates import get_template
from cnnstudio.data import load_dataset
from cnnstudio.nn import build_module
from cnnstudio.train import Callback, ProgressPrinter, Trainer, default_cpu_threads
from cnnstudio.train.batches import epoch_permutation
from cnnstudio.train.optim import warm_up

GOAL = 1.03


class PlainLoop:
    """The reference: what one writes by hand, one epoch per `epoch()` call."""

    def __init__(self, module, dataset, *, batch_size: int, lr: float, seed: int) -> None:
        torch.manual_seed(seed)
        self.module, self.dataset, self.batch_size, self.seed = module, dataset, batch_size, seed
        self.opt = torch.optim.Adam(module.parameters(), lr=lr)
        self.done = 0

    def epoch(self) -> tuple[float, float]:
        """Train and validate one epoch; return its (wall, CPU) time in seconds."""
        start, cpu = time.perf_counter(), time.process_time()
        module, dataset, opt, bs = self.module, self.dataset, self.opt, self.batch_size
        train, val = dataset.splits["train"], dataset.splits["val"]
        x, y = dataset.x, dataset.y
        module.train()
        order = train[epoch_permutation(self.seed, self.done, len(train))]
        for i in range(0, len(order), bs):
            idx = order[i:i + bs]
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
        _ = total.item() / len(val), correct.item() / len(val)
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


def plain_run(module, dataset, *, epochs: int, batch_size: int, lr: float, seed: int) -> None:
    loop = PlainLoop(module, dataset, batch_size=batch_size, lr=lr, seed=seed)
    for _ in range(epochs):
        loop.epoch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="digits-lenet")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    template = get_template(args.template)
    dataset = load_dataset({"kind": "builtin", "name": template.dataset},
                           input_shape=template.graph().node("input").params["shape"],
                           task=template.task)
    torch.manual_seed(0)
    initial = build_module(template.graph())
    settings = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": 0,
                "device": "cpu", "optimizer": {"name": "Adam", "lr": 0.001}}
    warm_up()  # torch's first optimizer imports ~800 modules: not an epoch cost
    threads = default_cpu_threads()
    torch.set_num_threads(threads)  # the plain loop gets the trainer's thread policy too

    ours: list[tuple[float, float]] = []
    plain: list[tuple[float, float]] = []
    ours_wall: list[float] = []
    plain_wall: list[float] = []
    for round_ in range(args.rounds):
        # Epoch by epoch: a Trainer run whose epochs alternate with a plain loop's.
        plain_loop = PlainLoop(copy.deepcopy(initial), dataset, batch_size=args.batch_size,
                               lr=0.001, seed=0)
        both = Interleave(plain_loop)
        progress = ProgressPrinter(stream=io.StringIO(), interval=0.2)
        result = Trainer(copy.deepcopy(initial), dataset, settings, callbacks=[progress, both],
                         num_threads=threads).fit()
        assert result.status == "completed", result.message
        ours.extend(both.ours[1:])  # the first epoch of a run is warm-up
        plain.extend(both.theirs[1:])
        # Whole runs with their set-up, alternating which goes first.
        for side in (("ours", "plain") if round_ % 2 == 0 else ("plain", "ours")):
            start = time.perf_counter()
            if side == "ours":
                progress = ProgressPrinter(stream=io.StringIO(), interval=0.2)
                Trainer(copy.deepcopy(initial), dataset, settings, callbacks=[progress],
                        num_threads=threads).fit()
                ours_wall.append(time.perf_counter() - start)
            else:
                plain_run(copy.deepcopy(initial), dataset, epochs=args.epochs,
                          batch_size=args.batch_size, lr=0.001, seed=0)
                plain_wall.append(time.perf_counter() - start)

    def paired(i: int) -> float:
        return statistics.median(a[i] / b[i] for a, b in zip(ours, plain, strict=True))

    def med(values: list[tuple[float, float]], i: int) -> float:
        return statistics.median(v[i] for v in values)

    ratio_wall_wall = statistics.median(ours_wall) / statistics.median(plain_wall)
    report = {
        "template": args.template, "samples": len(dataset.x), "batch_size": args.batch_size,
        "threads": threads, "epochs_measured": len(ours),
        "trainer_epoch_wall_s": med(ours, 0), "plain_epoch_wall_s": med(plain, 0),
        "trainer_epoch_cpu_s": med(ours, 1), "plain_epoch_cpu_s": med(plain, 1),
        "ratio_wall": paired(0), "ratio_cpu": paired(1), "ratio_runs_with_setup": ratio_wall_wall,
        "goal": GOAL,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{args.template}: {len(dataset.splits['train'])} train / {len(dataset.splits['val'])}"
          f" val samples, batch {args.batch_size}, {threads} thread(s), {len(ours)} epoch pairs")
    print(f"  epoch, wall time:  trainer {med(ours, 0) * 1e3:7.1f} ms   plain"
          f" {med(plain, 0) * 1e3:7.1f} ms   ratio {paired(0):.3f}")
    print(f"  epoch, CPU time:   trainer {med(ours, 1) * 1e3:7.1f} ms   plain"
          f" {med(plain, 1) * 1e3:7.1f} ms   ratio {paired(1):.3f}")
    print(f"  whole runs with set-up (wall): ratio {ratio_wall_wall:.3f}")
    print(f"  goal ≤ {GOAL:.2f} (ratios: median over epoch pairs; CPU time is the one other"
          " processes disturb least)")


if __name__ == "__main__":
    main()
