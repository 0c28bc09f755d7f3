"""Shape inference: per node, the output shape or a problem a student can act on.

Besides shapes, every node gets its trainable parameter count (as torch counts it),
multiply-adds, activation memory, receptive field and the formula text with the
user's own numbers. Problems name the node at fault and carry a quick fix when one
exists. Pure Python: re-inferring a 300-node graph takes a few milliseconds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from math import prod
from typing import Any

from cnnstudio.core.errors import CycleError, ParameterError, ShapeError
from cnnstudio.core.graph import Graph
from cnnstudio.core.layer_type import LayerResult, RFStep, Shape, fmt_shape

BYTES_PER_VALUE = 4  # float32 activations
ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Fix:
    """A one-click repair: `kind` is insert_flatten | set_param | remove_node |
    connect_after (connect `source`'s output to `node`)."""

    kind: str
    label: str
    node: str
    args: tuple[tuple[str, Any], ...] = ()

    def arg(self, name: str) -> Any:
        return dict(self.args)[name]


@dataclass(frozen=True)
class Problem:
    node: str | None
    message: str
    severity: str = ERROR
    fix: Fix | None = None  # the first repair offered
    alternatives: tuple[Fix, ...] = ()  # further repairs, offered beside it

    @property
    def fixes(self) -> tuple[Fix, ...]:
        """Every repair offered, the first (`fix`) first."""
        return (self.fix, *self.alternatives) if self.fix is not None else ()

    def __str__(self) -> str:
        return f"{self.node}: {self.message}" if self.node else self.message


@dataclass
class ReceptiveField:
    """Per spatial dimension of the input: how many input pixels one output sees (size)
    and how far apart neighbouring outputs look (jump). `is_global`: sees everything."""

    size: tuple[float, ...] = ()
    jump: tuple[float, ...] = ()
    is_global: bool = False

    def text(self) -> str:
        if self.is_global:
            return "the whole input"
        if not self.size:
            return "—"
        size = "×".join(f"{v:g}" for v in self.size)
        jump = "×".join(f"{v:g}" for v in self.jump)
        return f"{size} (jump {jump})"


@dataclass
class NodeInfo:
    id: str
    type: str
    input_shapes: list[Shape] = field(default_factory=list)
    shape: Shape | None = None
    params: int = 0
    macs: int = 0
    memory: int = 0  # bytes of this node's output, per sample
    formulas: list[str] = field(default_factory=list)
    receptive_field: ReceptiveField | None = None
    step: RFStep | None = None  # how the layer itself changes the field (its rule's `rf`)
    caption: str = ""


@dataclass
class Inference:
    nodes: dict[str, NodeInfo]
    problems: list[Problem]
    order: list[str]  # topological (nodes on a cycle are left out)
    output: str | None  # the model's output node, when it can be told
    frozen: frozenset[str] = frozenset()  # ids of the nodes marked not trainable

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def ok(self) -> bool:
        return not self.errors

    def problems_for(self, node_id: str) -> list[Problem]:
        return [p for p in self.problems if p.node == node_id]

    @property
    def total_params(self) -> int:
        """Every parameter, frozen ones included (as torch's `parameters()` counts)."""
        return sum(info.params for info in self.nodes.values())

    @property
    def frozen_params(self) -> int:
        """The parameters of frozen nodes: training leaves them as they are."""
        return sum(self.nodes[nid].params for nid in self.frozen if nid in self.nodes)

    @property
    def trainable_params(self) -> int:
        return self.total_params - self.frozen_params

    @property
    def total_macs(self) -> int:
        return sum(info.macs for info in self.nodes.values())

    @property
    def total_memory(self) -> int:
        return sum(info.memory for info in self.nodes.values())


def _partial_order(graph: Graph) -> tuple[list[str], list[Problem]]:
    try:
        return graph.topological_order(), []
    except CycleError as err:
        stuck_free = []
        done: set[str] = set()
        progress = True
        while progress:
            progress = False
            for node in graph:
                if node.id not in done and all(s in done for s in node.inputs):
                    done.add(node.id)
                    stuck_free.append(node.id)
                    progress = True
        problems = [Problem(n.id, err.message) for n in graph if n.id not in done]
        return stuck_free, problems


def _propagate_rf(inputs: list[ReceptiveField], result: LayerResult) -> ReceptiveField:
    if not inputs or any(rf.is_global for rf in inputs) or (result.rf and result.rf.is_global):
        return ReceptiveField(is_global=True)
    step = result.rf
    if len(inputs) == 1:  # the common case, kept cheap: most layers have one input
        if step is None:
            return inputs[0]  # fields are never mutated, so sharing is safe
        size, jump = inputs[0].size, inputs[0].jump
        ndim = len(size)
    else:
        ndim = len(inputs[0].size)
        if any(len(rf.size) != ndim for rf in inputs):
            return ReceptiveField(is_global=True)
        size = tuple(max(rf.size[i] for rf in inputs) for i in range(ndim))
        jump = tuple(max(rf.jump[i] for rf in inputs) for i in range(ndim))
        if step is None:
            return ReceptiveField(size, jump)
    if len(step.kernel) != ndim:
        return ReceptiveField(is_global=True)
    new_size = tuple(size[i] + max(step.kernel[i] - 1, 0) * jump[i] for i in range(ndim))
    new_jump = tuple(jump[i] * step.stride[i] for i in range(ndim))
    return ReceptiveField(new_size, new_jump)


def _resolved(graph: Graph, node, cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """`node.resolved_params()`, cached per graph (in `cache`, the graph's by default)
    while the node's type and params stay equal: validating every node's params was a
    third of a 300-node re-inference."""
    if cache is None:
        cache = graph.caches.setdefault("resolved_params", {})
    hit = cache.get(node.id)
    if hit is not None and hit[0] == node.type and hit[1] == node.params:
        return hit[2]
    params = node.layer.resolve(node.params, node=node.id)
    cache[node.id] = (node.type, copy.deepcopy(node.params), params)
    return params


def _infer_node(graph: Graph, node_id: str, infos: dict[str, NodeInfo],
                problems: list[Problem], caches: tuple[dict, dict]) -> None:
    """Infer one node, reusing its last result when nothing it depends on changed: an
    edit changes a few nodes' inputs, and re-running every rule was most of an edit's
    re-inference on a 1,000-node graph. `caches`: the graph's resolved params and
    remembered results."""
    resolved, memo = caches
    node = graph.node(node_id)
    layer = node.layer
    try:
        params = _resolved(graph, node, resolved)
    except ParameterError as err:
        infos[node.id] = NodeInfo(node.id, node.type)
        problems.append(Problem(node.id, f"{err.param}: {err.message}" if err.param else err.message))
        return
    sources = [infos.get(s) for s in node.inputs]
    # What the result depends on besides the layer and its params: the inputs' shapes and
    # fields, and (for a node lacking inputs) whether it is lone. NodeInfos are never
    # mutated once made, so a remembered one can be shared between inferences.
    lone = (not node.inputs and not graph.consumers(node.id)) \
        if len(node.inputs) < layer.min_inputs else None
    depends = (lone, *((None, None) if s is None else (s.shape, s.receptive_field)
                       for s in sources))
    # The last two results per node: an edit undone (or an error fixed) comes straight back.
    recent = memo.get(node.id)
    if recent is not None:
        for i, hit in enumerate(recent):
            if hit[0] is layer and (hit[1] is params or hit[1] == params) and hit[2] == depends:
                infos[node.id] = hit[3]
                problems.extend(hit[4])
                if i:
                    recent.reverse()
                return
    first = len(problems)
    infos[node.id] = info = _infer_fresh(graph, node, layer, params, sources, problems)
    if len(memo) > 2 * len(graph) + 64:  # forget deleted nodes now and then
        for stale in [nid for nid in memo if nid not in graph]:
            del memo[stale]
    entry = (layer, params, depends, info, tuple(problems[first:]))
    memo[node.id] = [entry] if recent is None else [entry, recent[0]]


def _infer_fresh(graph: Graph, node, layer, params: dict[str, Any],
                 sources: list[NodeInfo | None], problems: list[Problem]) -> NodeInfo:
    """Run the node's rule: its NodeInfo, its problems appended to `problems`."""
    info = NodeInfo(node.id, node.type)
    info.caption = layer.caption(params)
    if len(node.inputs) < layer.min_inputs:
        needed = "an input" if layer.min_inputs == 1 else f"at least {layer.min_inputs} inputs"
        fix = None
        if not node.inputs and not graph.consumers(node.id):
            fix = Fix("remove_node", f"Delete {node.id}", node.id)
        problems.append(Problem(node.id, f"{layer.name} needs {needed}, has {len(node.inputs)}"
                                f" (connect an output port to it)", ERROR, fix))
        return info
    if any(s is None or s.shape is None for s in sources):
        return info  # the problem is reported upstream; don't repeat it
    info.input_shapes = [s.shape for s in sources]  # type: ignore[misc]
    try:
        result = layer.rule(info.input_shapes, params)
    except ShapeError as err:
        info.formulas = err.formulas  # the arithmetic that fails, to show where it fails
        fixes = _working_fixes(node, info.input_shapes, err.fixes)
        problems.append(Problem(node.id, str(err), ERROR, fixes[0] if fixes else None,
                                tuple(fixes[1:])))
        return info
    info.shape = tuple(result.shape)
    info.params, info.macs = result.params, result.macs
    info.memory = prod(info.shape) * BYTES_PER_VALUE
    info.formulas, info.step = result.formulas, result.rf
    for note in result.notes:
        fix = None
        if note.fix == "insert_flatten":
            fix = Fix("insert_flatten", f"Insert Flatten before {node.id}", node.id)
        problems.append(Problem(node.id, note.message, WARNING, fix))
    if layer.name == "Input":
        spatial = len(info.shape) - 1
        info.receptive_field = ReceptiveField((1.0,) * spatial, (1.0,) * spatial)
    else:
        rfs = [s.receptive_field for s in sources if s and s.receptive_field]  # type: ignore[union-attr]
        info.receptive_field = _propagate_rf(rfs, result)
    return info


def _working_fixes(node, input_shapes: list[Shape],
                   proposals: list[tuple[str, str, Any]]) -> list[Fix]:
    """The proposed parameter changes that make the node's shape rule succeed."""
    fixes = []
    for label, name, value in proposals:
        params = {**node.params, name: value}
        try:
            node.layer.rule(input_shapes, node.layer.resolve(params, node=node.id))
        except (ParameterError, ShapeError):
            continue
        fixes.append(Fix("set_param", label, node.id, (("param", name), ("value", value))))
    return fixes


def _accepts(node, shape: Shape) -> bool:
    """Whether `node`'s layer takes `shape` as its only input."""
    try:
        node.layer.rule([shape], node.layer.resolve(node.params, node=node.id))
    except (ParameterError, ShapeError):
        return False
    return True


def _connect_source(graph: Graph, inference: Inference, node_id: str) -> str | None:
    """The layer a lone node most sensibly follows: of the layers whose output it accepts,
    the nearest above where it was dropped; without positions, the network's output (or
    the deepest such layer)."""
    node = graph.node(node_id)
    candidates = [nid for nid in inference.order if nid != node_id
                  and inference.nodes[nid].shape is not None
                  and _accepts(node, inference.nodes[nid].shape)]  # type: ignore[arg-type]
    if not candidates:
        return None
    if node.pos is not None:
        x, y = node.pos
        above = [(abs(pos[0] - x) + (y - pos[1]), nid) for nid in candidates
                 if (pos := graph.node(nid).pos) is not None and pos[1] < y]
        if above:
            return min(above)[1]
    if inference.output in candidates:
        return inference.output
    return candidates[-1]


def _offer_connections(graph: Graph, inference: Inference) -> None:
    """A lone node (no input, no consumer: freshly dropped) may be meant to follow a layer:
    offer "Connect after <layer>" before "Delete"."""
    for i, problem in enumerate(inference.problems):
        fix = problem.fix
        if fix is None or fix.kind != "remove_node" or problem.node is None:
            continue
        node = graph.node(problem.node)
        if node.inputs or graph.consumers(node.id) or node.layer.max_inputs == 0:
            continue
        source = _connect_source(graph, inference, node.id)
        if source is not None:
            connect = Fix("connect_after", f"Connect after {source}", node.id,
                          (("source", source),))
            inference.problems[i] = Problem(problem.node, problem.message, problem.severity,
                                            connect, (fix, *problem.alternatives))


def _find_classifier(graph: Graph, node_id: str) -> str | None:
    """The Linear whose out_features sets the output size, looking past activations."""
    current = node_id
    while True:
        node = graph.node(current)
        if node.type == "Linear":
            return current
        if node.layer.spatial_role != "elementwise" or len(node.inputs) != 1:
            return None
        current = node.inputs[0]


# Activations that squash (bounded) rather than rectify: Grad-CAM stops before them.
_SQUASHING = {"Tanh", "Sigmoid", "Softmax"}


def feature_map_node(graph: Graph, node_id: str) -> str:
    """The node whose output is `node_id`'s feature maps: past the normalization and the
    rectifying activation that follow a convolution alone (Grad-CAM weighs rectified maps;
    the raw convolution output's negative parts would cancel the evidence)."""
    current = node_id
    while current in graph:
        consumers = graph.consumers(current)
        layer = graph.node(consumers[0]).layer if len(consumers) == 1 else None
        if (layer is None or layer.spatial_role != "elementwise" or layer.name in _SQUASHING
                or layer.category not in ("Normalization", "Activation")):
            break
        current = consumers[0]
        if layer.category == "Activation":
            break
    return current


def _check_output(graph: Graph, inference: Inference, task: str, num_classes: int | None) -> None:
    sinks = [nid for nid in graph.sinks() if nid in inference.nodes]
    if not sinks:
        return
    # The deepest sink is the model's output; any other sink is a dead end.
    output = sinks[-1] if len(sinks) == 1 else max(sinks, key=inference.order.index)
    inference.output = output
    already = {p.node for p in inference.problems}
    for nid in sinks:
        if nid != output and nid not in already:  # one problem per lonely node is enough
            inference.problems.append(Problem(
                nid, f"its output goes nowhere (a model has one output, here {output});"
                " connect it or delete it", ERROR, Fix("remove_node", f"Delete {nid}", nid)))
    if graph.node(output).type == "Input":
        inference.problems.append(Problem(output, "the network has no layers after its Input"))
    shape = inference.nodes[output].shape
    if shape is None or not num_classes:
        return
    if task == "segmentation":
        wanted = 1 if num_classes == 2 else num_classes
        if shape[0] not in (wanted, num_classes) or len(shape) != 3:
            inference.problems.append(Problem(
                output, f"a segmentation net must output {num_classes}×H×W class scores,"
                f" got {fmt_shape(shape)}"))
        return
    if len(shape) != 1:
        inference.problems.append(Problem(
            output, f"a classifier must output a vector of {num_classes} scores, got"
            f" {fmt_shape(shape)} (end with Flatten and Linear)"))
    elif shape[0] != num_classes:
        linear = _find_classifier(graph, output)
        fix = None
        if linear is not None:
            fix = Fix("set_param", f"Set {linear}.out_features to {num_classes}", linear,
                      (("param", "out_features"), ("value", num_classes)))
        inference.problems.append(Problem(
            linear or output, f"the classifier gives {shape[0]} outputs but the data has"
            f" {num_classes} classes", ERROR, fix))


def infer_shapes(graph: Graph, *, task: str = "classification",
                 num_classes: int | None = None) -> Inference:
    """Infer every node's shape and numbers; never raises for a bad graph (see problems).

    `num_classes`, once the data is known, checks the classifier's output size.
    """
    order, problems = _partial_order(graph)
    infos: dict[str, NodeInfo] = {}
    inputs = [n.id for n in graph if n.type == "Input"]  # all of them: extras are problems
    if not inputs and len(graph):
        problems.append(Problem(None, "the network has no Input node"))
    for extra in inputs[1:]:
        problems.append(Problem(extra, f"only one Input node is allowed (the first is {inputs[0]})"))
    caches = (graph.caches.setdefault("resolved_params", {}),
              graph.caches.setdefault("node_inference", {}))
    for node_id in order:
        _infer_node(graph, node_id, infos, problems, caches)
    if len(infos) < len(graph):  # nodes on a cycle: shown with nothing inferred
        for node in graph:
            if node.id not in infos:
                infos[node.id] = NodeInfo(node.id, node.type)
    inference = Inference(infos, problems, order, None,
                          frozenset(n.id for n in graph if not n.trainable))
    _check_output(graph, inference, task, num_classes)
    _offer_connections(graph, inference)
    return inference
