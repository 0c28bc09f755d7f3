"""What the filters respond to, against the Explain goals (issue 16), on one CPU thread.

Times, each the median of N runs:
  * top-k: every filter of a layer over 2,000 samples (goal < 3 s) — the second
    convolution of a small 3×32×32 CNN (Conv16–pool–Conv32–pool–Linear, made here) over
    2,000 random images, the first convolution of the same net, and the digits sample's
    conv2 over its 1,797 built-in 8×8 digits;
  * occlusion: one 32×32 image on the same CNN (goal < 1 s);
  * synthesis: activation maximisation for 16 filters of its conv2, 128 steps (goal < 15 s),
    and for 16 filters of the second Conv1d of a signals net (1×128, made here).
Each is printed beside its goal as a ratio (below 1.00 meets it). The nets are untrained:
the work, hence the time, does not depend on the weights.

    python benchmarks/bench_explain.py [--repeat 3] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from cnnstudio.core.graph import Graph
from cnnstudio.nn import build_module
from cnnstudio.nn.explain import occlusion_map, synthesize, top_activations

TOP_GOAL_S = 3.0
OCCLUSION_GOAL_S = 1.0
SYNTHESIS_GOAL_S = 15.0
SAMPLES = 2000
DIGITS = Path(__file__).resolve().parent.parent / "sample_projects" / "digits.cnnproj"


def small_cnn() -> Graph:
    """A CIFAR-sized teaching CNN: two conv–ReLU–pool stages and a classifier."""
    graph = Graph()
    graph.add_node("Input", {"shape": [3, 32, 32]}, id="input")
    layers = [("conv1", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
              ("relu1", "ReLU", {}), ("pool1", "MaxPool2d", {"kernel_size": 2}),
              ("conv2", "Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1}),
              ("relu2", "ReLU", {}), ("pool2", "MaxPool2d", {"kernel_size": 2}),
              ("flatten", "Flatten", {}), ("fc", "Linear", {"out_features": 10})]
    previous = "input"
    for node_id, type_name, params in layers:
        graph.add_node(type_name, params, id=node_id, inputs=[previous])
        previous = node_id
    return graph


def small_signal_net() -> Graph:
    """The signals sample's shape: two Conv1d–ReLU–pool stages on a 1×128 signal."""
    graph = Graph()
    graph.add_node("Input", {"shape": [1, 128]}, id="input")
    layers = [("conv1", "Conv1d", {"out_channels": 16, "kernel_size": 5, "padding": 2}),
              ("relu1", "ReLU", {}), ("pool1", "MaxPool1d", {"kernel_size": 2}),
              ("conv2", "Conv1d", {"out_channels": 32, "kernel_size": 5, "padding": 2}),
              ("relu2", "ReLU", {}), ("pool2", "MaxPool1d", {"kernel_size": 2}),
              ("flatten", "Flatten", {}), ("fc", "Linear", {"out_features": 4})]
    previous = "input"
    for node_id, type_name, params in layers:
        graph.add_node(type_name, params, id=node_id, inputs=[previous])
        previous = node_id
    return graph


def median_s(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of `action` in seconds (after one warm-up run)."""
    action()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 → 0…1 → normalised (float input, e.g. synthesised pixels: only normalised)."""
    scaled = x.to(torch.float32) / 255.0 if x.dtype == torch.uint8 else x
    return (scaled - 0.5) / 0.25


def run(repeat: int) -> dict[str, dict[str, float]]:
    torch.manual_seed(0)
    graph = small_cnn()
    module = build_module(graph).eval()
    samples = torch.randint(0, 256, (SAMPLES, 3, 32, 32), dtype=torch.uint8)
    results: dict[str, dict[str, float]] = {}

    def record(name: str, seconds: float, goal: float) -> None:
        results[name] = {"seconds": seconds, "goal_s": goal, "ratio": seconds / goal}

    for layer in ("conv2", "conv1"):
        record(f"top-9, 3x32x32 CNN {layer}, {SAMPLES}",
               median_s(lambda layer=layer: top_activations(
                   module, graph, layer, samples, _to_float, 9), repeat), TOP_GOAL_S)
    if DIGITS.exists():
        from cnnstudio.project.io import read_project
        from cnnstudio.train.model_io import DataRequest

        project = read_project(DIGITS)
        digits = DataRequest.of(project).load()
        digits_module = build_module(project.graph).eval()
        record(f"top-9, digits conv2, {len(digits.x)}",
               median_s(lambda: top_activations(digits_module, project.graph, "conv2",
                                                digits.x, digits.batch_to_float, 9), repeat),
               TOP_GOAL_S)
    image = _to_float(samples[:1])
    record("occlusion, 32x32 image", median_s(lambda: occlusion_map(module, image, 3), repeat),
           OCCLUSION_GOAL_S)
    record("synthesis, 16 filters conv2",
           median_s(lambda: synthesize(module, "conv2", range(16), to_float=_to_float),
                    repeat), SYNTHESIS_GOAL_S)
    signal_module = build_module(small_signal_net()).eval()
    record("synthesis, 16 filters Conv1d conv2",
           median_s(lambda: synthesize(signal_module, "conv2", range(16),
                                       value_range=(-2.4, 2.4)), repeat), SYNTHESIS_GOAL_S)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = run(args.repeat)
    if args.json:
        print(json.dumps({"threads": args.threads, "results": results}))
        return
    print(f"Explain: what the filters respond to ({args.threads} thread,"
          f" median of {args.repeat})")
    print(f"{'measurement':<36}{'median':>10}{'goal':>9}{'ratio':>8}")
    for name, r in results.items():
        print(f"{name:<36}{r['seconds']:>9.3f}s{r['goal_s']:>8.0f}s{r['ratio']:>8.2f}")


if __name__ == "__main__":
    main()
