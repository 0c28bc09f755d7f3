"""The model as a readable, self-contained PyTorch source file.

One `nn.Module` class named after the project: one attribute per layer, named after its
node id, built with every constructor argument written out (the sizes shape inference
supplies included), and a `forward` with one line per node in topological order, each
commented with that node's output shape. Our own layer types are written inline, as their
`LayerType.code` says (Add as `a + b`, Concat as `torch.cat`, Maxout as `unflatten` +
`amax`). Module constants give the class names, input shape and normalization;
`preprocess` and `load_weights` helpers prepare a batch as training did and read the
exported safetensors weights.

The state_dict keys of the class are those of `GraphModule` (`<node id>.<param>`): ids that
are not plain ASCII identifiers are registered with `add_module` and read with `getattr`.
The file needs only torch (and safetensors for `load_weights`) and passes `ruff check`
both with ruff's default rules and with this project's selection (E, F, W, I, B, UP,
line length included): every line fits in 88 columns and no line needs a `noqa`.
"""

from __future__ import annotations

import textwrap

from cnnstudio import __version__
from cnnstudio.core import registry
from cnnstudio.core.graph import Node
from cnnstudio.core.layer_type import fmt_shape
from cnnstudio.core.summary import summary_rows
from cnnstudio.nn.export.facts import ExportFacts
from cnnstudio.nn.export.pytext import (
    INDENT,
    LINE,
    Names,
    call,
    class_name,
    doc_lines,
    fit,
    is_plain_attribute,
    literal,
    nested_call,
    py_str,
    string_lines,
    submodule_ref,
    width,
    with_comment,
)

MODULE_NAMES = ("CLASS_NAMES", "INPUT_SHAPE", "MEAN", "STD", "preprocess", "load_weights",
                "torch", "nn")
MAX_CLASS_NAME = 60  # the usage example in the docstring must stay within a line


def _kwargs(node: Node, facts: ExportFacts) -> list[str]:
    """`name=value` for every constructor argument, as `builder.make_layer` passes them."""
    layer = registry.get(node.type)
    params = node.resolved_params()
    input_shape = facts.inference.nodes[node.id].input_shapes[0]
    args = [f"{name}={size}" for name, size in layer.inferred_sizes(input_shape).items()]
    for name, value in params.items():
        if name == "inplace":
            value = False  # the builder computes out of place: branches may share a tensor
        args.append(f"{name}={literal(value)}")
    return args


def _init_lines(facts: ExportFacts) -> list[str]:
    body = INDENT * 2
    lines = [f"{INDENT}def __init__(self) -> None:", f"{body}super().__init__()"]
    for node_id in facts.inference.order:
        node = facts.graph.node(node_id)
        layer = registry.get(node.type)
        if layer.torch_class is None:
            continue  # our own types hold nothing: forward writes them inline
        ctor = f"nn.{layer.torch_class}("
        head = f"self.{node_id} = {ctor}"
        if is_plain_attribute(node_id) and width(body + head) <= LINE:
            lines += call(head, _kwargs(node, facts), ")", body)
        else:
            # Not an attribute name (a `-`, a keyword) or too long for a line: register it
            # under the exact id so the state_dict keys stay `<node id>.<param>`.
            lines += nested_call("self.add_module(", node_id, ctor, _kwargs(node, facts),
                                 ")", body)
    return lines


def _assign(target: str, expr: str, body: str) -> list[str]:
    """`target = expr`, in parentheses over more lines when one is too long (the
    expression wrapped at its spaces: local names and our code have no spaces inside)."""
    one = f"{body}{target} = {expr}"
    if width(one) <= LINE:
        return [one]
    inner = body + INDENT
    lines = textwrap.wrap(expr, LINE - width(inner), break_long_words=False,
                          break_on_hyphens=False)
    return [f"{body}{target} = (", *(inner + line for line in lines), f"{body})"]


def _expression(node: Node, target: str, args: list[str], facts: ExportFacts,
                body: str) -> list[str]:
    """The lines computing `node` from `args` into `target`."""
    inner = body + INDENT
    layer = node.layer
    if layer.code is not None:  # our own types, written inline
        input_shape = facts.inference.nodes[node.id].input_shapes[0]
        return _assign(target, layer.code(args, node.resolved_params(), input_shape), body)
    head = f"{target} = {submodule_ref(node.id)}("
    if width(body + head) <= LINE:
        return call(head, [args[0]], ")", body)
    # An id too long for a line: ask for the submodule by name, the name split in pieces.
    return [f"{body}{target} = self.get_submodule(", *string_lines(node.id, inner),
            f"{body})({args[0]})"]


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
                prefix = f"{body}# x: {shape} per sample ("
                lines.append(f"{prefix}{fit(node_id, LINE - width(prefix) - 1)})")
            else:
                lines += with_comment(f"{body}{where[node_id]} = x", shape)
            continue
        code = _expression(node, where[node_id], [where[s] for s in node.inputs], facts, body)
        lines += with_comment(code, shape)
    lines.append(f"{body}return {where[facts.module.output_id]}")
    return lines


def _trained_line(facts: ExportFacts) -> str:
    """E.g. "Trained: run-2 (completed), best epoch 7, val_accuracy 0.9312."."""
    record = facts.latest_result()
    if record is None:
        return "Trained."
    # Run records come from the project file: `doc_lines` escapes them (they cannot end
    # the docstring); cut, they cannot fill it.
    run, status = fit(str(record.get("id", "a run")), 60), fit(str(record.get("status")), 60)
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
    title = f"{fit(facts.name, 60)}: a PyTorch model exported by CNN Studio {__version__}."
    text = doc_lines(title, LINE - 3)
    text = [f'"""{text[0]}', *text[1:], ""]
    for paragraph in (summary, state):
        text += doc_lines(paragraph, LINE) + [""]
    return text + usage + ['"""']


def _class_names(names: list[str]) -> list[str]:
    literals = [py_str(n) for n in names]
    if all(width(f"{INDENT}{lit},") <= LINE for lit in literals):
        return call("CLASS_NAMES = [", literals, "]", "")
    lines = ["CLASS_NAMES = ["]
    for name, lit in zip(names, literals, strict=True):
        if width(f"{INDENT}{lit},") <= LINE:
            lines.append(f"{INDENT}{lit},")
        else:  # split in pieces, in parentheses (a bare split reads like a missing comma)
            lines += [f"{INDENT}(", *string_lines(name, INDENT * 2), f"{INDENT}),"]
    return [*lines, "]"]


def _constants(facts: ExportFacts) -> list[str]:
    mean, std = facts.mean_std()
    if facts.normalization is None:
        why = "not measured: the project is untrained" if not facts.trained else "unknown"
        note = f"{why}; identity"
    elif not facts.normalization.get("normalize", True):
        note = "training did not normalize"
    else:
        note = "per channel, of inputs scaled to 0…1"
    lines = _class_names(facts.class_names)
    if not facts.class_names:
        lines = ["CLASS_NAMES: list[str] = []  # unknown until the project is trained"]
    lines += with_comment(f"INPUT_SHAPE = {literal(tuple(facts.input_shape))}",
                          "one sample, channels first")
    lines += with_comment(call("MEAN = (", [literal(float(v)) for v in mean],
                               ",)" if len(mean) == 1 else ")", ""), note)
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
    lines = _header(facts, cls)
    lines += ["", "import torch", "from torch import nn", ""]
    lines += _constants(facts)
    lines += ["", "", f"class {cls}(nn.Module):", *_class_docstring(facts), ""]
    lines += _init_lines(facts)
    lines.append("")
    lines += _forward_lines(facts)
    return "\n".join(lines) + "\n" + _HELPERS


def _class_docstring(facts: ExportFacts) -> list[str]:
    # Layers counted as `cnnstudio summary` lists them: one row per node, Input included.
    layers = len(summary_rows(facts.graph, facts.inference))
    text = (f"{fit(facts.name, 40)}: {layers} layers (Input included), "
            f"{facts.inference.total_params:,} parameters, "
            f"{fmt_shape(facts.input_shape)} → {fmt_shape(facts.output_shape)}.")
    one = doc_lines(text, LINE - width(INDENT) - 6)
    if len(one) == 1:
        return [f'{INDENT}"""{one[0]}"""']
    wrapped = doc_lines(text, LINE - width(INDENT) - 3)
    return [f'{INDENT}"""{wrapped[0]}', *(f"{INDENT}{line}" for line in wrapped[1:]),
            f'{INDENT}"""']
