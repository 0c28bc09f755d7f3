"""Fine-tuning an imported model on a small folder of images (the README's figures).

1. "The model you already have": a small ResNet-style torch model (stem, two residual
   blocks with downsampling skips, 72,915 parameters) trained for 4 epochs on 2,500 of
   the built-in `shapes` pictures (circle / square / triangle), exported to ONNX.
2. A new task as a folder of PNGs: "round" (circle) or "angular" (square, triangle) shapes
   of another seed, 40 + 40 per split in train/ and val/, 200 + 200 in test/.
3. `cnnstudio import` the ONNX file; point the project at the folder; the class-count fix
   (a 2-class head); then four ways to train it for 8 epochs (`cnnstudio train`):
   head only (frozen up to the last block's end), the last block and the head (frozen up
   to the first block's end), every layer from the imported weights, and every layer from
   new weights (`--fresh`).
4. Test accuracy of each with `cnnstudio predict` on the 400 test pictures.

    python benchmarks/bench_finetune.py [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from cnnstudio.core.edits import apply_fix, with_ancestors
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.data.builtin_data import make_shapes
from cnnstudio.project import read_project, write_project

EPOCHS = 8
# name: (the node to freeze up to, or None for nothing, train --fresh)
VARIANTS = {"head only": ("block2_3", False), "last block + head": ("block1_3", False),
            "every layer": (None, False), "every layer, new weights": (None, True)}


class Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False),
                                  nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.skip(x))


class TinyResNet(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU())
        self.block1 = Block(16, 32)
        self.block2 = Block(32, 64)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def pretrain(path: Path) -> dict[str, Any]:
    """Train TinyResNet on `shapes` for 4 epochs and export it to ONNX at `path`."""
    torch.manual_seed(0)
    x, y = make_shapes(n=3000, seed=0)
    xs = torch.from_numpy(x).float()
    xs = (xs - xs.mean((0, 2, 3), keepdim=True)) / xs.std((0, 2, 3), keepdim=True)
    ys = torch.from_numpy(y)
    model = TinyResNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = time.perf_counter()
    for _ in range(4):
        model.train()
        order = torch.randperm(2500)
        for i in range(0, 2500, 64):
            idx = order[i:i + 64]
            loss = nn.functional.cross_entropy(model(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        accuracy = (model(xs[2500:]).argmax(1) == ys[2500:]).float().mean().item()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 3, 32, 32),), str(path), dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          training=torch.onnx.TrainingMode.PRESERVE)
    return {"seconds": seconds, "held_out_accuracy": accuracy,
            "params": sum(p.numel() for p in model.parameters())}


def write_folder(root: Path) -> None:
    """round / angular PNGs of another seed, in train/ val/ test/."""
    x, y = make_shapes(n=3000, seed=7)
    names = np.where(y == 0, "round", "angular")
    used = np.zeros(len(y), bool)
    for split, count in (("train", 40), ("val", 40), ("test", 200)):
        for name in ("round", "angular"):
            picks = np.flatnonzero((names == name) & ~used)[:count]
            used[picks] = True
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in picks:
                Image.fromarray(x[i].transpose(1, 2, 0)).save(folder / f"{i:04d}.png")


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cnnstudio", *args], check=True,
                          capture_output=True, text=True)
    return done.stdout


def prepare(imported: Path, path: Path, freeze_up_to: str | None) -> None:
    """What the window does with Data → folder, Problems → Fix, Freeze up to here."""
    project = read_project(imported)
    project.data = {"source": {"kind": "folder", "path": "shapes_folder"}}
    (problem,) = infer_shapes(project.graph, num_classes=2).errors  # the class-count one
    assert problem.fix is not None
    apply_fix(project.graph, problem.fix)
    if freeze_up_to is not None:
        project.graph.set_trainable(with_ancestors(project.graph, [freeze_up_to]), False)
    project.training = {"epochs": EPOCHS, "batch_size": 16, "device": "cpu",
                        "optimizer": {"name": "Adam", "lr": 0.003}}
    write_project(project, path)


def variant(folder: Path, name: str, path: Path, fresh: bool) -> dict[str, Any]:
    start = time.perf_counter()
    lines = [json.loads(line) for line in cli("train", str(path), "--json",
                                               *(["--fresh"] if fresh else [])).splitlines()]
    command = time.perf_counter() - start
    epochs = [line for line in lines if line["event"] == "epoch"]
    images = sorted(str(p) for p in (folder / "shapes_folder" / "test").glob("*/*.png"))
    predictions = json.loads(cli("predict", str(path), *images, "--top", "1", "--json"))
    right = sum(p["top"][0]["class"] == Path(p["image"]).parent.name for p in predictions)
    project = read_project(path)
    inference = infer_shapes(project.graph)
    return {"variant": name, "trainable_params": inference.trainable_params,
            "total_params": inference.total_params, "init": project.runs[-1]["init"],
            "val_accuracy": [round(e["val_accuracy"], 3) for e in epochs],
            "train_seconds": round(sum(e["seconds"] for e in epochs), 2),
            "command_seconds": round(command, 1),
            "test_accuracy": round(right / len(predictions), 3), "test_images": len(predictions)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="work here (default: a temp dir)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="finetune-"))
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"pretrain": pretrain(folder / "tiny_resnet.onnx")}
    write_folder(folder / "shapes_folder")
    start = time.perf_counter()
    cli("import", str(folder / "tiny_resnet.onnx"), "-o", str(folder / "imported.cnnproj"))
    out["import_seconds"] = round(time.perf_counter() - start, 1)
    out["variants"] = []
    for i, (name, (freeze_up_to, fresh)) in enumerate(VARIANTS.items()):
        path = folder / f"variant{i}.cnnproj"
        prepare(folder / "imported.cnnproj", path, freeze_up_to)
        out["variants"].append(variant(folder, name, path, fresh))
    if args.json:
        print(json.dumps(out))
        return 0
    pre = out["pretrain"]
    print(f"pretrained: {pre['params']:,} params, {pre['seconds']:.1f} s, held-out accuracy"
          f" {pre['held_out_accuracy']:.3f}; import {out['import_seconds']} s")
    for v in out["variants"]:
        print(f"{v['variant']:<26} trainable {v['trainable_params']:>6,} of"
              f" {v['total_params']:,}  test accuracy {v['test_accuracy']:.3f}"
              f"  training {v['train_seconds']:.2f} s  val by epoch {v['val_accuracy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
