"""cnnstudio.nn.explain: what a network computes, value by value, and what its filters respond to."""

from cnnstudio.nn.explain.arithmetic import LayerTrace, trace_layer
from cnnstudio.nn.explain.explanation import ValueExplanation
from cnnstudio.nn.explain.occlusion import occlusion_map
from cnnstudio.nn.explain.report import LayerReport, explain_layer
from cnnstudio.nn.explain.responses import Cancelled, FilterTop, TopHit, top_activations
from cnnstudio.nn.explain.synthesis import Synthesis, synthesize

__all__ = [
    "Cancelled",
    "FilterTop",
    "LayerReport",
    "LayerTrace",
    "Synthesis",
    "TopHit",
    "ValueExplanation",
    "explain_layer",
    "occlusion_map",
    "synthesize",
    "top_activations",
    "trace_layer",
]
