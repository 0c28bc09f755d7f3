"""The model as a readable, self-contained PyTorch source file.

One `nn.Module` class named after the project: one attribute per layer, named after its
node id, built with every constructor argument written out (the sizes shape inference
supplies included), and a `forward` with one line per node in topological order, each
commented with that node's output shape. Our own layer types are written inline (Add as
`a + b`, Concat as `torch.cat`, Maxout as `unflatten` + `amax`). Module constants give the
class names, input shape and normalization; `preprocess` and `load_weights` helpers
prepare a batch as training did and read the exported safetensors weights.

The state_dict keys of the class are those of `GraphModule` (`<node id>.<param>`): ids that
are not plain ASCII identifiers are registered with `add_module` and read with `getattr`.
The file needs only torch (and safetensors for `load_weights`) and passes `ruff check`.
"""

from __future__ import annotations

import textwrap

from cnnstudio import __version__
from cnnstudio.core import registry
from cnnstudio.core.graph import Node
from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.nn.builder import _INFERRED_SIZES  # the builder's own rule: one source of truth
from cnnstudio.nn.export.facts import ExportFacts
from cnnstudio.nn.export.pytext import (
    INDENT,
    Names,
    call,
    class_name,
    doc_text,
    is_plain_attribute,
    literal,
    nested_call,
    noqa_long_lines,
    py_str,
    submodule_ref,
    with_comment,
)

MODULE_NAMES = ("CLASS_NAMES", "INPUT_SHAPE", "MEAN", "STD", "preprocess", "load_weights",
                "torch", "nn")
_OWN_TYPES = ("Input", "Add", "Concat", "Maxout")
MAX_CLASS_NAME = 60  # the usage example in the docstring must stay within a line


def _kwargs(node: Node, facts: ExportFacts) -> list[str]:
    """`name=value` for every constructor argument, as `builder.make_layer` passes them."""
    layer = registry.get(node.type)
    params = node.resolved_params()
    input_shape = facts.inference.nodes[node.id].input_shapes[0]
    args = [f"{name}={_INFERRED_SIZES[name](input_shape)}" for name in layer.reserved]
    for name, value in params.items():
        if name == "inplace":
            value = False  # the builder computes out of place: branches may share a tensor
        args.append(f"{name}={literal(value)}")
    return args


def _init_lines(facts: ExportFacts) -> list[str]:
    lines = [f"{INDENT}def __init__(self) -> None:", f"{INDENT * 2}super().__init__()"]
    for node_id in facts.inference.order:
        node = facts.graph.node(node_id)
        layer = registry.get(node.type)
        if layer.torch_class is None:
            continue  # our own types hold nothing: forward writes them inline
        ctor = f"nn.{layer.torch_class}("
        if is_plain_attribute(node_id):
            lines += call(f"self.{node_id} = {ctor}", _kwargs(node, facts), ")", INDENT * 2)
        else:
            # Not an attribute name (a `-`, a keyword): register it under the exact id so
            # the state_dict keys stay `<node id>.<param>`.
            lines += nested_call("self.add_module(", py_str(node_id), ctor, _kwargs(node, facts),
                                 ")", INDENT * 2)
    return lines


def _expression(node: Node, args: list[str], facts: ExportFacts) -> str:
    if node.type == "Add":
        return " + ".join(args)
    if node.type == "Concat":
        return f"torch.cat([{', '.join(args)}], dim=1)"
    if node.type == "Maxout":
        pieces = node.resolved_params()["pieces"]
        channels = facts.inference.nodes[node.id].input_shapes[0][0]
        # Groups of `pieces` consecutive channels, as cnnstudio's Maxout reshapes them.
        return f"{args[0]}.unflatten(1, ({channels // pieces}, {pieces})).amax(dim=2)"
    return f"{submodule_ref(node.id)}({args[0]})"


def _forward_lines(facts: ExportFacts) -> list[str]:
    order = facts.inference.order
    position = {node_id: i for i, node_id in enumerate(order)}
    users: dict[str, set[str]] = {node_id: set() for node_id in order}
    for node_id in order:
        for source in facts.graph.node(node_id).inputs:
            users[source].add(node_id)
    names = Names(["self", "x", *MODULE_NAMES])
    where: dict[str, str] = {}
    for node_id in order:
        # A value lives in `x` when only the very next line reads it; others get a name.
        only_next = [position[u] for u in users[node_id]] == [position[node_id] + 1]
        where[node_id] = "x" if only_next or not users[node_id] else names.take(node_id)
    body = INDENT * 2
    shape_in = fmt_shape(facts.input_shape)
    out = fmt_shape(facts.output_shape)
    lines = [f"{INDENT}def forward(self, x: torch.Tensor) -> torch.Tensor:",
             f'{body}"""A batch of N×{shape_in} inputs → N×{out} outputs."""']
    for node_id in order:
        node = facts.graph.node(node_id)
        shape = fmt_shape(facts.inference.nodes[node_id].shape or ())
        if node.type == "Input":
            if where[node_id] == "x":
                lines.append(f"{body}# x: {shape} per sample ({doc_text(node_id, 40)})")
            else:
                lines += with_comment(f"{body}{where[node_id]} = x", shape)
            continue
        expr = _expression(node, [where[s] for s in node.inputs], facts)
        lines += with_comment(f"{body}{where[node_id]} = {expr}", shape)
    lines.append(f"{body}return {where[facts.module.output_id]}")
    return lines


def _trained_line(facts: ExportFacts) -> str:
    """E.g. "Trained: run-2 (completed), best epoch 7, val_accuracy 0.9312."."""
    record = facts.latest_result()
    if record is None:
        return "Trained."
    # Run records come from the project file: escaped, they cannot end the docstring.
    run, status = doc_text(str(record.get("id", "a run"))), doc_text(str(record.get("status")))
    parts = [f"Trained: {run} ({status})"]
    best = record.get("best") if isinstance(record.get("best"), dict) else {}
    if isinstance(record.get("best_epoch"), int):
        parts.append(f"best epoch {record['best_epoch']}")
    for key in ("val_accuracy", "val_iou", "val_loss"):
        if isinstance(best.get(key), float):
            parts.append(f"{key} {best[key]:.4f}")
            break
    return ", ".join(parts) + "."


def _header(facts: ExportFacts, cls: str) -> list[str]:
    task = "segmentation" if facts.task == "segmentation" else "classification"
    classes = facts.output_shape[0]
    summary = (f"{task.capitalize()}: {fmt_shape(facts.input_shape)} inputs, {classes} "
               f"{'classes' if facts.class_names or task == 'segmentation' else 'outputs'}, "
               f"{facts.inference.total_params:,} parameters.")
    if facts.trained:
        state = _trained_line(facts)
    else:
        state = (f"UNTRAINED: the project had no trained weights when it was exported; its "
                 f"weights are the random initial ones (seed {facts.seed}).")
    usage = [
        "Usage (needs torch; safetensors for load_weights):",
        "",
        f"    model = {cls}().eval()",
        '    load_weights(model, "model.safetensors")',
        "    scores = model(preprocess(images))  # images: N×C×H×W uint8 or float",
        "",
        "The weights file comes from `cnnstudio export PROJECT --format safetensors`.",
    ]
    title = f"{doc_text(facts.name)}: a PyTorch model exported by CNN Studio {__version__}."
    text = textwrap.wrap(title, 86, initial_indent='"""') + [""]
    for paragraph in (summary, state):
        text += textwrap.wrap(paragraph, 86) + [""]
    return text + usage + ['"""']


def _constants(facts: ExportFacts) -> list[str]:
    mean, std = facts.mean_std()
    if facts.normalization is None:
        why = "not measured: the project is untrained" if not facts.trained else "unknown"
        note = f"  # {why}; identity"
    elif not facts.normalization.get("normalize", True):
        note = "  # training did not normalize"
    else:
        note = ""
    names = [py_str(n) for n in facts.class_names]
    lines = call("CLASS_NAMES = [", names, "]", "")
    if not names:
        lines = ["CLASS_NAMES: list[str] = []  # unknown until the project is trained"]
    lines += [f"INPUT_SHAPE = {literal(tuple(facts.input_shape))}  # one sample, channels first"]
    lines += call("MEAN = (", [literal(float(v)) for v in mean], ",)" if len(mean) == 1 else ")",
                  "")
    lines[-1] += note or "  # per channel, of inputs scaled to 0…1"
    lines += call("STD = (", [literal(float(v)) for v in std], ",)" if len(std) == 1 else ")", "")
    return lines


_HELPERS = '''

def preprocess(x: torch.Tensor) -> torch.Tensor:
    """Prepare a batch as training did: uint8 values (0…255) are scaled to 0…1, then
    each channel is normalized with MEAN and STD. Float input is only normalized."""
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    shape = (1, -1) + (1,) * (x.dim() - 2)
    mean = torch.tensor(MEAN, device=x.device).view(shape)
    std = torch.tensor(STD, device=x.device).view(shape)
    return (x - mean) / std


def load_weights(model: nn.Module, path: str) -> nn.Module:
    """Load weights exported by `cnnstudio export --format safetensors` into `model`.

    Loading is strict: every tensor must match a layer of the model by name and shape.
    """
    from safetensors.torch import load_file  # only this helper needs safetensors

    model.load_state_dict(load_file(path), strict=True)
    return model
'''


def python_source(facts: ExportFacts) -> str:
    """The model as a Python source file (text), ready to write to `NAME.py`."""
    cls = class_name(facts.name, MODULE_NAMES)[:MAX_CLASS_NAME]
    layers = sum(1 for n in facts.graph if n.type != "Input")
    lines = _header(facts, cls)
    docstring = set(range(len(lines)))  # a noqa comment there would be docstring text
    lines += ["", "import torch", "from torch import nn", ""]
    lines += _constants(facts)
    lines += ["", "", f"class {cls}(nn.Module):"]
    lines.append(f'{INDENT}"""{doc_text(facts.name, 40)}: {layers} layers, '
                 f"{facts.inference.total_params:,} parameters, "
                 f'{fmt_shape(facts.input_shape)} → {fmt_shape(facts.output_shape)}."""')
    lines.append("")
    lines += _init_lines(facts)
    lines.append("")
    lines += _forward_lines(facts)
    return "\n".join(noqa_long_lines(lines, docstring)) + "\n" + _HELPERS
