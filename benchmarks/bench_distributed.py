"""Training throughput: one process against `--nproc N` processes (DDP, gloo on the CPU).

Each configuration runs the real command, `python -m cnnstudio train PROJECT [--nproc N]
--json`, on a template's project with its built-in data, and reads the throughput the
trainer reports at each epoch's last batch (training images per second over all
processes, validation and start-up excluded; `CNNSTUDIO_JSON_BATCHES` asks for those
lines). The first epoch is warm-up; a run's figure is the median of the others, and the
configurations take turns for `--rounds` rounds (machine noise hits them alike); the
table shows the median over the rounds and the range. Wall time (start-up included: every
process imports torch) is shown beside it.

Configurations, with batch size B per process:
  1 process,  batch B      the single-process baseline
  N processes, batch B     what `--nproc N` gives with unchanged settings (global batch N×B)
  1 process,  batch N×B    the same global batch in one process (same optimisation steps)

    python benchmarks/bench_distributed.py [--template digits-lenet] [--nproc 2]
        [--epochs 5] [--batch 64] [--rounds 3] [--device cpu]

On a 2-core machine expect no gain: a single process already uses one core for its
intra-op thread and the other is left free, and two ranks add an all-reduce of the
gradients (and of the loss) per batch over the loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnnstudio.core.templates import get_template
from cnnstudio.project import project_from_dict, write_project


def run(project: Path, template: str, nproc: int, batch: int, epochs: int,
        device: str) -> dict[str, float]:
    """Train once through the CLI; return throughput (median after the first epoch)."""
    doc = get_template(template).project_dict()
    doc["training"] = {**doc.get("training", {}), "epochs": epochs, "batch_size": batch,
                       "device": device}
    write_project(project_from_dict(doc), project)
    command = [sys.executable, "-m", "cnnstudio", "train", str(project), "--json"]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    env = {**os.environ, "CNNSTUDIO_JSON_BATCHES": "1e9"}  # each epoch's last batch only
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"training failed: {proc.stderr.strip()}")
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    rates = [e["images_per_second"] for e in events
             if e["event"] == "batch" and e["batch"] == e["batches"]]
    seconds = [e["seconds"] for e in events if e["event"] == "epoch"]
    steady = rates[1:] or rates
    return {"images_per_second": statistics.median(steady),
            "epoch_seconds": statistics.median(seconds[1:] or seconds), "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="digits-lenet")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64, help="per process")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    n, b = args.nproc, args.batch
    configs = [(f"1 process,   batch {b}", 1, b),
               (f"{n} processes, batch {b} each", n, b),
               (f"1 process,   batch {n * b}", 1, n * b)]
    print(f"{args.template}, {args.epochs} epochs, device {args.device},"
          f" {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in configs}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CNNSTUDIO_CACHE_DIR", str(Path(tmp) / "cache"))
        for _ in range(args.rounds):
            for name, nproc, batch in configs:
                runs[name].append(run(Path(tmp) / "p.cnnproj", args.template, nproc, batch,
                                      args.epochs, args.device))
    median = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
              for name, rs in runs.items()}
    base = median[configs[0][0]]["images_per_second"]
    print(f"{'configuration':<28} {'images/s':>9} {'range':>13} {'vs 1 proc':>10}"
          f" {'epoch s':>8} {'wall s':>7}")
    for name, rs in runs.items():
        m, rates = median[name], [r["images_per_second"] for r in rs]
        print(f"{name:<28} {m['images_per_second']:>9.0f} {min(rates):>6.0f}-{max(rates):<6.0f}"
              f" {m['images_per_second'] / base:>10.2f} {m['epoch_seconds']:>8.2f}"
              f" {m['wall']:>7.1f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
