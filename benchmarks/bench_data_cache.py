"""Cached tensors vs decoding images every epoch, and memory of the memory-mapped path.

Writes an image folder (10 classes x 300 PNGs, 32x32 RGB) to a temporary directory, then
prints side by side, in one run:

* seconds per epoch for epochs 2+ when iterating shuffled batches of 64 from
  ``cnnstudio.data`` cached uint8 tensors (index + ``batch_to_float``), versus a plain
  PIL-decoding ``torch.utils.data.Dataset`` + ``DataLoader`` over the same files
  (``num_workers=0`` and ``2``), and the ratio (goal: at least 3x);
* the first load (decode + write the disk cache) versus reopening from the cache;
* peak memory (tracemalloc peak and growth of ru_maxrss, each in a fresh process) when
  loading a dataset bigger than ``memory_budget`` (memory-mapped) vs. within it.

Run: ``python benchmarks/bench_data_cache.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CLASSES, PER_CLASS, SIZE, BATCH, EPOCHS = 10, 300, 32, 64, 3
GOAL = 3.0


def write_folder(root: Path) -> None:
    """Smooth random colour blobs plus noise: PNGs of realistic size, not pure noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for c in range(CLASSES):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(PER_CLASS):
            cx, cy, r = rng.uniform(8, 24, 3)
            blob = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)[..., None]
            img = np.where(blob, rng.uniform(100, 255, 3), rng.uniform(0, 90, 3))
            img = img + rng.normal(0, 10, (SIZE, SIZE, 3))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")


class PilFolder(torch.utils.data.Dataset):
    """The usual baseline: open, decode and convert one file per item, every epoch."""

    def __init__(self, files: list[Path], labels: list[int], mean: list[float],
                 std: list[float]) -> None:
        self.files, self.labels = files, labels
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.files[i]) as img:
            arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)
        return (x - self.mean) / self.std, self.labels[i]


def time_epochs(run_epoch) -> float:
    """Seconds per epoch over epochs 2..EPOCHS (epoch 1 warms up)."""
    run_epoch(0)
    start = time.perf_counter()
    for epoch in range(1, EPOCHS):
        run_epoch(epoch)
    return (time.perf_counter() - start) / (EPOCHS - 1)


def bench_throughput(root: Path, cache_dir: Path) -> None:
    from cnnstudio.data import load_dataset

    source = {"kind": "folder", "path": str(root)}
    t0 = time.perf_counter()
    ds = load_dataset(source, input_shape=[3, SIZE, SIZE], cache_dir=cache_dir)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = load_dataset(source, input_shape=[3, SIZE, SIZE], cache_dir=cache_dir)
    warm = time.perf_counter() - t0
    train = ds.splits["train"]
    n = len(train)

    def ours(epoch: int) -> None:
        order = train[torch.randperm(n, generator=torch.Generator().manual_seed(epoch))]
        total = 0.0
        for s in range(0, n, BATCH):
            idx = order[s:s + BATCH]
            xb, yb = ds.batch_to_float(ds.x[idx]), ds.y[idx]
            total += float(xb[0, 0, 0, 0]) + int(yb[0])  # touch the batch

    files = sorted(p for p in root.rglob("*.png"))
    labels = [int(p.parent.name.split("_")[1]) for p in files]
    sel = train.tolist()
    baseline = PilFolder([files[i] for i in sel], [labels[i] for i in sel], ds.mean, ds.std)

    def loader_epochs(workers: int) -> float:
        loader = torch.utils.data.DataLoader(
            baseline, batch_size=BATCH, shuffle=True, num_workers=workers,
            persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))

        def run(epoch: int) -> None:
            for xb, yb in loader:
                float(xb[0, 0, 0, 0]) + int(yb[0])
        return time_epochs(run)

    t_ours = time_epochs(ours)
    t_w0 = loader_epochs(0)
    t_w2 = loader_epochs(2)
    best = min(t_w0, t_w2)
    print(f"\n== epochs 2-{EPOCHS}: {CLASSES} classes x {PER_CLASS} PNG {SIZE}x{SIZE} RGB, "
          f"{n} training images, batch {BATCH}, torch threads {torch.get_num_threads()}")
    print(f"{'pipeline':44s} {'s/epoch':>9s} {'images/s':>10s}")
    for name, t in [("cnnstudio.data cached uint8 tensors", t_ours),
                    ("PIL Dataset + DataLoader, num_workers=0", t_w0),
                    ("PIL Dataset + DataLoader, num_workers=2", t_w2)]:
        print(f"{name:44s} {t:9.4f} {n / t:10.0f}")
    ratio = best / t_ours
    print(f"speed-up vs the faster DataLoader: {ratio:.1f}x (goal >= {GOAL:.0f}x: "
          f"{'met' if ratio >= GOAL else 'NOT met'})")
    print(f"first load (scan + decode + write cache): {cold:.3f} s; "
          f"reopen from the disk cache: {warm:.3f} s ({cold / warm:.1f}x faster)")


def rss_anon() -> int:
    """Resident anonymous memory (heap, not file pages) in bytes; -1 where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def memory_child(root: str, cache_dir: str, budget: int, side: int) -> None:
    """Runs in a fresh process: load once and print what it cost, as JSON."""
    import tracemalloc

    from cnnstudio.data import load_dataset

    # Warm up first, so library code paged in on first use is not counted as data.
    warm = load_dataset({"kind": "builtin", "name": "shapes", "samples": 30},
                        input_shape=[3, side, side])
    warm.batch_to_float(warm.x[warm.splits["val"]]).sum()
    del warm
    before, anon_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rss_anon()
    tracemalloc.start()
    ds = load_dataset({"kind": "folder", "path": root}, input_shape=[3, side, side],
                      cache_dir=cache_dir, memory_budget=budget)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    anon = rss_anon() - anon_before if anon_before >= 0 else -1
    checksum = int(ds.x[ds.splits["val"][:64]].sum())  # same data either way?
    print(json.dumps({"peak_traced": peak, "rss_growth": (after - before) * 1024,
                      "anon": anon, "checksum": checksum}))


def bench_memory(root: Path, tmp: Path) -> None:
    side = 96  # upscale to make the decoded set (~83 MB) clearly bigger than the budget
    x_bytes = CLASSES * PER_CLASS * 3 * side * side
    budget = 16 << 20
    rows = []
    for label, cache_name, b in [("in memory (budget 1 GiB), cold", "mem", 1 << 30),
                                 ("in memory (budget 1 GiB), from cache", "mem", 1 << 30),
                                 ("memory-mapped (budget 16 MiB), cold", "map", budget),
                                 ("memory-mapped (budget 16 MiB), from cache", "map", budget)]:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(root), str(tmp / cache_name),
             str(b), str(side)], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        rows.append((label, json.loads(out.stdout.strip().splitlines()[-1])))
    assert len({r["checksum"] for _, r in rows}) == 1, "memory-mapped data differs"
    print(f"\n== memory: {CLASSES * PER_CLASS} images as [3, {side}, {side}] uint8 = "
          f"{x_bytes / 2**20:.1f} MiB decoded (fresh process each)")
    mib = 2**20
    print(f"{'load':44s} {'traced peak':>12s} {'anon after':>11s} {'maxrss growth':>14s}")
    for label, r in rows:
        anon = f"{r['anon'] / mib:7.1f} MiB" if r["anon"] >= 0 else "        n/a"
        print(f"{label:44s} {r['peak_traced'] / mib:8.1f} MiB {anon} "
              f"{r['rss_growth'] / mib:10.1f} MiB")
    print("traced peak: NumPy/Python heap during the load (tracemalloc); anon after: resident\n"
          "heap memory held once loaded (RssAnon); maxrss growth also counts the cache file's\n"
          "pages touched through the map, which the OS can drop under memory pressure.")


def main() -> None:
    torch.set_num_threads(1)  # measured steadier on 2 cores (ARCHITECTURE.md)
    with tempfile.TemporaryDirectory(prefix="cnnstudio-bench-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        write_folder(tmp / "images")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"wrote {CLASSES * PER_CLASS} PNGs in {time.perf_counter() - t0:.1f} s; "
              f"peak RSS so far {rss:.0f} MiB")
        bench_throughput(tmp / "images", tmp / "cache")
        bench_memory(tmp / "images", tmp)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory-child"]:
        memory_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
