"""The layer registry: every layer type, keyed by its stable name (torch's class name).

The palette, inspector, shape inference, module builder, code exporter and file
validation all read these descriptions; nothing else lists layer types.
"""

from __future__ import annotations

from cnnstudio.core.errors import UnknownTypeError, show_value
from cnnstudio.core.layer_type import SPATIAL_ROLES, LayerType
from cnnstudio.core.layers import basic, conv, pool

CATEGORY_ORDER = ("Input", "Convolution", "Pooling", "Normalization", "Activation",
                  "Regularization", "Reshape", "Dense", "Merge")

# Old names that files may still use → current names (none yet; kept for future renames).
RENAMED: dict[str, str] = {}


def _collect(*families: list[LayerType]) -> dict[str, LayerType]:
    table: dict[str, LayerType] = {}
    for family in families:
        for layer in family:
            if layer.name in table:
                raise RuntimeError(f"layer type {layer.name} is described twice")
            if layer.category not in CATEGORY_ORDER:
                raise RuntimeError(f"layer type {layer.name} has unknown category {layer.category}")
            if layer.spatial_role not in SPATIAL_ROLES:
                raise RuntimeError(f"layer type {layer.name} has unknown role {layer.spatial_role}")
            table[layer.name] = layer
    return table


_TYPES = _collect(basic.LAYERS, conv.LAYERS, pool.LAYERS)


def get(name: str) -> LayerType:
    """The description of layer type `name`; raises UnknownTypeError."""
    name = RENAMED.get(name, name)
    try:
        return _TYPES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_TYPES))
        raise UnknownTypeError(f"unknown layer type {show_value(name, python=True)}"
                               f" (known: {known})") from None


def exists(name: str) -> bool:
    return RENAMED.get(name, name) in _TYPES


def all_types() -> list[LayerType]:
    """Every layer type, in palette order (by category, then name)."""
    order = {c: i for i, c in enumerate(CATEGORY_ORDER)}
    return sorted(_TYPES.values(), key=lambda t: (order[t.category], t.name))


def by_category() -> dict[str, list[LayerType]]:
    groups: dict[str, list[LayerType]] = {c: [] for c in CATEGORY_ORDER}
    for layer in all_types():
        groups[layer.category].append(layer)
    return {c: layers for c, layers in groups.items() if layers}
