"""Core's shapes and parameter counts against torch itself, for every layer type.

For each type, hypothesis draws params (as a project file would hold them) and an
input shape, then:
  * core: the params go through the Graph and `infer_shapes` (merges and Input
    through `resolve` and the shape rule), giving a shape and a parameter count, or
    a problem;
  * torch: the layer is built straight from the same params with torch's own class
    (our own types from a plain-torch reference), a zero batch of 2 runs through it.
Both must agree both ways: when torch raises, core reports a problem; when core
reports a problem, torch raises (except for a few refusals that are core's policy,
listed in `_policy_refusal`). When both succeed, shape and count are equal.

Set PARITY_SCALE=20 to search harder (e.g. after changing a shape rule).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from cnnstudio.core import registry  # noqa: E402
from cnnstudio.core.errors import ParameterError, ShapeError  # noqa: E402
from cnnstudio.core.graph import Graph  # noqa: E402
from cnnstudio.core.layer_type import LayerType  # noqa: E402
from cnnstudio.core.params import Param  # noqa: E402
from cnnstudio.core.shapes import ERROR, infer_shapes  # noqa: E402

torch.set_num_threads(1)
SCALE = float(os.environ.get("PARITY_SCALE", "1"))

# Per-sample ranks each type is given. Rank-specific layers get their own rank only:
# torch reads a batch of the wrong rank as an unbatched sample, which is not our case.
_RANKS: dict[str, tuple[int, ...]] = {
    "Conv1d": (2,), "MaxPool1d": (2,), "AvgPool1d": (2,),
    "Conv2d": (3,), "ConvTranspose2d": (3,), "MaxPool2d": (3,), "AvgPool2d": (3,),
    "AdaptiveAvgPool2d": (3,), "AdaptiveMaxPool2d": (3,),
    "Conv3d": (4,), "MaxPool3d": (4,), "AvgPool3d": (4,),
}  # BatchNorm1d/2d and Dropout2d get any rank: torch has no unbatched reading for them
ANY_RANK = (1, 2, 3, 4)
# More examples where the arithmetic has many corners.
_EXAMPLES = {"Conv1d": 250, "Conv2d": 300, "Conv3d": 120, "ConvTranspose2d": 250,
             "MaxPool1d": 200, "MaxPool2d": 250, "MaxPool3d": 100, "AvgPool1d": 200,
             "AvgPool2d": 250, "AvgPool3d": 100, "Upsample": 300, "Flatten": 120,
             "Softmax": 80, "AdaptiveAvgPool2d": 80, "AdaptiveMaxPool2d": 80}
DEFAULT_EXAMPLES = 40


# ---- drawing params ----------------------------------------------------------------------


def _lists(item: st.SearchStrategy, layer: LayerType) -> st.SearchStrategy:
    """A list of one `item` per spatial dimension (1 to 3 when the layer follows its input)."""
    lengths = (layer.ndim,) if layer.ndim else (1, 2, 3)
    return st.one_of(*(st.tuples(*[item] * n).map(list) for n in lengths))


def _ints(layer: LayerType, low: int, high: int, null: bool = False) -> st.SearchStrategy:
    """An int, or a list of one int (or null) per spatial dimension, as files hold them."""
    item = st.integers(low, high)
    return st.one_of(item, _lists(st.one_of(item, st.none()) if null else item, layer))


def _floats(layer: LayerType, low: float, high: float) -> st.SearchStrategy:
    number = st.floats(low, high, allow_nan=False)
    return st.one_of(number, _lists(number, layer))


def _padding(layer: LayerType, p: Param) -> st.SearchStrategy:
    # Strings for every layer: core refuses them where torch does (pools, transposed conv).
    return st.one_of(_ints(layer, 0, 3), st.sampled_from(["same", "valid"]))


def _maybe_null(p: Param, values: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(values, st.none()) if p.nullable else values


# Value strategy per parameter name: (layer, param) → strategy. Ranges straddle the edges
# where torch refuses (half-window pool padding, output_padding vs stride, …).
_VALUES: dict[str, Any] = {
    "out_channels": lambda L, p: st.integers(1, 8),
    "out_features": lambda L, p: st.integers(1, 8),
    "kernel_size": lambda L, p: _ints(L, 1, 6),
    "stride": lambda L, p: _maybe_null(p, _ints(L, 1, 3)),
    "padding": _padding,
    "output_padding": lambda L, p: _ints(L, 0, 2),
    "dilation": lambda L, p: _ints(L, 1, 3),
    "groups": lambda L, p: st.integers(1, 4),
    "divisor_override": lambda L, p: st.one_of(st.none(), st.integers(1, 4)),
    "output_size": lambda L, p: _ints(L, 1, 6, null=True),
    "size": lambda L, p: st.one_of(st.none(), _ints(L, 1, 12, null=True)),
    "scale_factor": lambda L, p: st.one_of(st.none(), _floats(L, 0.25, 3.0)),
    "align_corners": lambda L, p: st.one_of(st.none(), st.booleans()),
    "eps": lambda L, p: st.floats(1e-6, 0.1),
    "momentum": lambda L, p: st.one_of(st.none(), st.floats(0, 1)),
    "p": lambda L, p: st.floats(0, 1),
    "negative_slope": lambda L, p: st.floats(0, 2),
    "alpha": lambda L, p: st.floats(0, 2),
    "dim": lambda L, p: st.integers(-5, 4),
    "start_dim": lambda L, p: st.integers(-5, 4),
    "end_dim": lambda L, p: st.integers(-5, 4),
    "pieces": lambda L, p: st.integers(1, 4),
    # Every mode torch knows, also for ConvTranspose2d, which takes only zeros.
    "padding_mode": lambda L, p: st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
}


def _value(layer: LayerType, p: Param) -> st.SearchStrategy:
    if p.name in _VALUES:
        return _VALUES[p.name](layer, p)
    if p.kind == "bool":
        return st.booleans()
    if p.kind == "choice":
        return st.sampled_from(p.choices)
    raise KeyError(f"no value strategy for {layer.name}.{p.name}")


def _params(layer: LayerType) -> st.SearchStrategy:
    """Params as a file holds them: the required ones, and any of the optional ones."""
    return st.fixed_dictionaries(
        {p.name: _value(layer, p) for p in layer.params if p.required},
        optional={p.name: _value(layer, p) for p in layer.params if not p.required},
    )


_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


@st.composite
def _upsample_case(draw: st.DrawFn, layer: LayerType) -> tuple[dict, list[tuple[int, ...]]]:
    """Mostly a valid Upsample for the drawn map (one of size and scale_factor, a mode of
    the right rank); a quarter of the time params drawn blindly."""
    shape = draw(_ANY_SHAPE)
    if draw(st.integers(0, 3)) == 3:  # not 0: hypothesis favours small values
        return draw(_params(layer)), [shape]
    ndim = max(len(shape) - 1, 1)
    modes = ["nearest", "nearest-exact", _LINEAR_MODES[ndim]] + (["bicubic"] if ndim == 2 else [])
    params: dict[str, Any] = {"mode": draw(st.sampled_from(modes))}
    if draw(st.booleans()):
        sizes = st.integers(1, 12)
        params["size"] = draw(st.one_of(sizes, st.tuples(*[sizes] * ndim).map(list)))
    else:
        factors = st.floats(0.25, 3.0)
        params["scale_factor"] = draw(st.one_of(factors, st.tuples(*[factors] * ndim).map(list)))
    if "linear" in params["mode"] or params["mode"] == "bicubic":
        params["align_corners"] = draw(st.sampled_from([None, False, True]))
    return params, [shape]


def _shape(rank: int) -> st.SearchStrategy:
    top = 6 if rank == 4 else 16  # volumes stay small: the suite must stay fast
    return st.tuples(st.integers(1, 8), *[st.integers(1, top)] * (rank - 1))


_ANY_SHAPE = st.one_of(*(_shape(rank) for rank in ANY_RANK))


@st.composite
def _merge_shapes(draw: st.DrawFn) -> list[tuple[int, ...]]:
    """2 or 3 shapes, mostly fitting an Add or a Concat, sometimes one size off."""
    base = draw(_ANY_SHAPE)
    shapes = [base]
    for _ in range(draw(st.integers(1, 2))):
        change = draw(st.sampled_from(["same", "same", "channels", "size", "rank"]))
        shape = list(base)
        if change == "channels":
            shape[0] = draw(st.integers(1, 8))
        elif change == "size" and len(shape) > 1:
            i = draw(st.integers(1, len(shape) - 1))
            shape[i] = draw(st.integers(1, 16))
        elif change == "rank":
            shape = list(draw(_ANY_SHAPE))
        shapes.append(tuple(shape))
    return shapes


def case(type_name: str) -> st.SearchStrategy:
    """(params, input shapes) for one layer of `type_name`."""
    layer = registry.get(type_name)
    if type_name == "Input":
        return _ANY_SHAPE.map(lambda shape: ({"shape": list(shape)}, [shape]))
    if layer.max_inputs is None:
        return st.tuples(_params(layer), _merge_shapes())
    if type_name == "Upsample":
        return _upsample_case(layer)
    ranks = _RANKS.get(type_name, ANY_RANK)
    shapes = st.one_of(*(_shape(rank) for rank in ranks)).map(lambda shape: [shape])
    return st.tuples(_params(layer), shapes)


# ---- the two sides -----------------------------------------------------------------------


@dataclass
class Outcome:
    shape: tuple[int, ...] | None = None
    params: int = 0
    error: str | None = None


def core_outcome(type_name: str, params: dict[str, Any], shapes: list[tuple[int, ...]]) -> Outcome:
    """What core says: through a real graph for one-input layers, else through the rule."""
    layer = registry.get(type_name)
    if layer.max_inputs == 1:
        graph = Graph()
        graph.add_node("Input", {"shape": list(shapes[0])}, id="x")
        try:
            graph.add_node(type_name, params, id="layer", inputs=["x"])
        except ParameterError as err:
            return Outcome(error=str(err))
        inference = infer_shapes(graph)
        assert not [p for p in inference.errors if p.node != "layer"], inference.errors
        errors = [p for p in inference.problems_for("layer") if p.severity == ERROR]
        if errors:
            return Outcome(error="; ".join(map(str, errors)))
        info = inference.nodes["layer"]
        return Outcome(info.shape, info.params)
    try:
        resolved = layer.resolve(params, node="layer")
        result = layer.rule([] if type_name == "Input" else shapes, resolved)
    except (ParameterError, ShapeError) as err:
        return Outcome(error=str(err))
    return Outcome(tuple(result.shape), result.params)


def _maxout_reference(pieces: int):
    def run(x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c % pieces:
            raise ValueError(f"{c} channels are not groups of {pieces}")
        return torch.stack([x[:, i:i + pieces].amax(1) for i in range(0, c, pieces)], 1)

    return run


# Plain-torch references for our own types, written independently of cnnstudio.nn.
REFERENCES = {
    "Input": lambda kw: (lambda x: x),
    "Add": lambda kw: (lambda *xs: torch.stack(xs).sum(0)),  # stack: equal shapes only
    "Concat": lambda kw: (lambda *xs: torch.cat(xs, 1)),
    "Maxout": lambda kw: _maxout_reference(kw.get("pieces", 2)),
}


def _tuples(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def torch_outcome(type_name: str, params: dict[str, Any], shapes: list[tuple[int, ...]]) -> Outcome:
    """What torch does with the same params on a zero batch of 2."""
    layer = registry.get(type_name)
    kwargs = {k: _tuples(v) for k, v in params.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if layer.torch_class is None:
                module, run = None, REFERENCES[type_name](kwargs)
            else:
                sizes = {"in_channels": shapes[0][0], "in_features": shapes[0][-1],
                         "num_features": shapes[0][0]}
                kwargs.update({name: sizes[name] for name in layer.reserved})
                module = run = getattr(nn, layer.torch_class)(**kwargs)
            y = run(*(torch.zeros(2, *s) for s in shapes))
    except Exception as err:  # noqa: BLE001 - any refusal counts; the message is shown
        return Outcome(error=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
    if 0 in y.shape:
        # torch returns some empty maps (ConvTranspose2d cropped to nothing); an empty
        # tensor trains nothing, so core refuses it, and so does this reference.
        return Outcome(error=f"empty output {tuple(y.shape[1:])}")
    count = sum(p.numel() for p in module.parameters()) if module is not None else 0
    return Outcome(tuple(y.shape[1:]), count)


def _policy_refusal(type_name: str, params: dict[str, Any], shapes: list[tuple]) -> str | None:
    """Refusals where core is stricter than torch on purpose (torch would accept)."""
    rank = len(shapes[0]) + 1  # with the batch dimension
    if type_name == "Flatten" and -rank <= params.get("start_dim", 1) < rank \
            and params.get("start_dim", 1) % rank == 0:
        return "Flatten from dim 0 would merge the samples of a batch"
    if type_name == "Softmax" and -rank <= params.get("dim", 1) < rank \
            and params.get("dim", 1) % rank == 0:
        return "softmax over the batch mixes samples"
    if type_name == "Dropout2d" and rank != 4:
        return "torch warns and guesses what Dropout2d means on a map that is not C×H×W"
    return None


def check_parity(type_name: str, params: dict[str, Any], shapes: list[tuple[int, ...]]) -> None:
    """Fail unless core and torch agree on `type_name` with these params and input shapes."""
    core = core_outcome(type_name, params, shapes)
    case_text = f"{type_name} params={params} input shapes={shapes}\ncore: {core}"
    policy = _policy_refusal(type_name, params, shapes)
    if policy:
        assert core.error, f"core accepts what it should refuse ({policy}): {case_text}"
        return
    ref = torch_outcome(type_name, params, shapes)
    case_text += f"\ntorch: {ref}"
    if ref.error and not core.error:
        pytest.fail(f"torch refuses but core accepts:\n{case_text}")
    if core.error and not ref.error:
        pytest.fail(f"core refuses but torch accepts:\n{case_text}")
    if not core.error:
        assert core.shape == ref.shape, f"shape differs from torch:\n{case_text}"
        assert core.params == ref.params, f"parameter count differs from torch:\n{case_text}"


# ---- tests -------------------------------------------------------------------------------

TYPES = [layer.name for layer in registry.all_types()]


def test_every_type_and_parameter_has_a_parity_case() -> None:
    """A new layer type or parameter needs a strategy here before it can ship."""
    for layer in registry.all_types():
        assert layer.name in REFERENCES or layer.torch_class, layer.name
        assert layer.torch_class is None or hasattr(nn, layer.torch_class), layer.name
        if layer.name == "Input":
            continue
        for p in layer.params:
            _value(layer, p)  # raises KeyError when a parameter has no strategy


@pytest.mark.parametrize("type_name", TYPES)
def test_layer_matches_torch(type_name: str) -> None:
    examples = max(10, int(_EXAMPLES.get(type_name, DEFAULT_EXAMPLES) * SCALE))

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(case(type_name))
    def run(drawn: tuple[dict[str, Any], list[tuple[int, ...]]]) -> None:
        params, shapes = drawn
        check_parity(type_name, params, shapes)

    run()


# Known corners, pinned so they stay fixed whatever hypothesis draws.
CORNERS = [
    ("MaxPool2d", {"kernel_size": 4, "stride": 4, "ceil_mode": True}, [(1, 2, 2)]),
    ("MaxPool2d", {"kernel_size": 2, "stride": 2, "ceil_mode": True}, [(4, 7, 7)]),
    ("MaxPool2d", {"kernel_size": 3, "padding": 2}, [(1, 8, 8)]),
    ("MaxPool2d", {"kernel_size": 3, "padding": 1, "dilation": 3}, [(1, 8, 8)]),
    ("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, [(1, 6, 6)]),
    ("Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": "same",
                "padding_mode": "reflect"}, [(1, 1, 1)]),
    ("Conv2d", {"out_channels": 2, "kernel_size": 4, "padding": "same"}, [(1, 5, 5)]),
    ("Conv2d", {"out_channels": 2, "kernel_size": 4, "padding": "same", "dilation": 2,
                "padding_mode": "circular"}, [(1, 3, 3)]),
    ("ConvTranspose2d", {"out_channels": 2, "kernel_size": 3, "stride": 2,
                         "output_padding": 1}, [(1, 4, 4)]),
    ("ConvTranspose2d", {"out_channels": 2, "kernel_size": 3, "stride": 2,
                         "output_padding": 2}, [(1, 4, 4)]),
    ("Upsample", {"size": [None, 4]}, [(1, 3, 3)]),
    ("Upsample", {"scale_factor": 0.3}, [(1, 3, 3)]),
    ("AdaptiveAvgPool2d", {"output_size": [None, 2]}, [(3, 5, 7)]),
    ("BatchNorm1d", {}, [(4,)]),
    ("BatchNorm1d", {}, [(4, 9)]),
    ("Flatten", {"start_dim": 2}, [(2, 3, 4)]),
    ("Flatten", {"start_dim": 0}, [(2, 3, 4)]),
    ("Softmax", {"dim": -1}, [(2, 3)]),
    ("Softmax", {"dim": 0}, [(2, 3)]),
]


@pytest.mark.parametrize(("type_name", "params", "shapes"), CORNERS,
                         ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(CORNERS)])
def test_known_corner_matches_torch(type_name: str, params: dict, shapes: list) -> None:
    check_parity(type_name, params, shapes)
