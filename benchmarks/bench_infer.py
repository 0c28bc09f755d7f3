"""Shape inference on a 300-node graph against the 30 ms editing goal (SPEC §3 "Fast").

Builds a deep ResNet-style network (residual blocks with Add skips, 300 nodes), then
times in one run:
  * `infer_shapes` on the whole graph (median of N runs);
  * one parameter edit (`Graph.set_params`) followed by re-inference, as the editor
    does on every change (median of N).
Each is printed beside the goal as a ratio (below 1.00 meets it).

    python benchmarks/bench_infer.py [--repeat 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from cnnstudio.core.blocks import add, conv_bn_relu, residual_block
from cnnstudio.core.graph import Graph
from cnnstudio.core.shapes import infer_shapes

GOAL_MS = 30.0
NODES = 300


def resnet_graph(nodes: int = NODES) -> Graph:
    """A ResNet-style graph of exactly `nodes` nodes: stem, residual stages, head."""
    graph = Graph()
    x = add(graph, "Input", None, {"shape": [3, 32, 32]}, id="input")
    x = conv_bn_relu(graph, x, 16)
    channels, head = 16, 3  # head: pooling, Flatten, Linear
    stage_plan = [(16, 1), (32, 2), (64, 2)]
    stage = 0
    while len(graph) + 9 + head <= nodes:  # a block is 7 nodes, 9 with a projection skip
        out, stride = stage_plan[min(stage, 2)]
        x = residual_block(graph, x, out, channels, stride=stride if out != channels else 1)
        channels = out
        stage = min(len(graph) * 3 // nodes, 2)  # three stages of about equal length
    while len(graph) + head < nodes:
        x = add(graph, "ReLU", x)  # pad to the exact node count
    x = add(graph, "AdaptiveAvgPool2d", x, {"output_size": 1})
    x = add(graph, "Flatten", x)
    add(graph, "Linear", x, {"out_features": 10})
    assert len(graph) == nodes, len(graph)
    return graph


def median_ms(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and worst wall time of `action`, in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), max(times)


def run(repeat: int) -> dict[str, dict[str, float]]:
    graph = resnet_graph()
    inference = infer_shapes(graph)
    assert inference.ok, inference.problems[:3]
    infer_shapes(graph)  # warm caches (registry, resolve) before timing
    results = {}
    median, worst = median_ms(lambda: infer_shapes(graph), repeat)
    results["infer_shapes"] = {"median_ms": median, "max_ms": worst}

    convs = [n.id for n in graph if n.type == "Conv2d"]
    target = convs[len(convs) // 2]
    original = dict(graph.node(target).params)
    flip = [False]

    def edit() -> None:
        # Toggle the bias of a conv in the middle: a real edit that keeps the graph valid.
        flip[0] = not flip[0]
        graph.set_params(target, dict(original, bias=flip[0]))
        infer_shapes(graph)

    median, worst = median_ms(edit, repeat)
    results["edit + infer_shapes"] = {"median_ms": median, "max_ms": worst}
    for entry in results.values():
        entry["goal_ms"] = GOAL_MS
        entry["ratio"] = entry["median_ms"] / GOAL_MS
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="runs per measurement")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = run(args.repeat)
    if args.json:
        print(json.dumps({"nodes": NODES, "results": results}))
        return
    print(f"shape inference on a {NODES}-node ResNet-style graph (median of {args.repeat})")
    print(f"{'measurement':<24}{'median':>10}{'max':>10}{'goal':>10}{'ratio':>8}")
    for name, r in results.items():
        print(f"{name:<24}{r['median_ms']:>8.2f}ms{r['max_ms']:>8.2f}ms"
              f"{r['goal_ms']:>8.0f}ms{r['ratio']:>8.2f}")


if __name__ == "__main__":
    main()
