"""What one output value of a layer is made of: the record the Explain view and CLI show.

Pure data and NumPy: building a `ValueExplanation` from a kept forward pass needs no torch,
so it can run on the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The kinds of explanation; the view picks its drawing by kind.
KINDS = ("conv", "pool", "batchnorm", "flatten", "linear", "softmax", "add", "concat",
         "elementwise", "other")


@dataclass
class ValueExplanation:
    """The arithmetic behind one output value of one layer.

    `index` is the value's position without the batch: (channel, *spatial) for maps,
    (unit,) for vectors. `value` is torch's own output there; `result` is what the shown
    arithmetic (`terms`, by `kind`) gives, equal to `value` up to float rounding. For kind
    "other" nothing is computed step by step: `result` is `value` and `note` says why.
    `after` is (node id, type name, value) of the element-wise activation that directly
    follows the layer as its only consumer, else None.
    """

    node: str
    type_name: str
    kind: str
    index: tuple[int, ...]
    value: float
    result: float
    terms: dict[str, Any] = field(default_factory=dict)
    after: tuple[str, str, float] | None = None
    note: str = ""


@dataclass(frozen=True)
class Kept:
    """What an explainer reads from a kept forward pass (built by `LayerTrace`)."""

    node: str
    type_name: str
    inputs: list[np.ndarray]
    input_nodes: list[str]
    output: np.ndarray
    settings: dict[str, Any]  # the layer's weights (NumPy copies) and hyper-parameters

    def value(self, index: tuple[int, ...]) -> float:
        return float(self.output[index])

    def explanation(self, kind: str, index: tuple[int, ...], result: float,
                    terms: dict[str, Any] | None = None, note: str = "") -> ValueExplanation:
        """A ValueExplanation of this layer (its `after` is filled in by the trace)."""
        return ValueExplanation(self.node, self.type_name, kind, index, self.value(index),
                                float(result), terms or {}, None, note)


def fmt(value: float) -> str:
    """A number as a one-line note prints it: 4 significant digits, a true minus sign."""
    return f"{value:.4g}".replace("-", "−")
