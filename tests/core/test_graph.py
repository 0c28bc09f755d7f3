"""Graph editing: validation, specific errors, listeners, file form."""

import pytest

from cnnstudio.core.errors import (
    ArityError,
    CycleError,
    DuplicateIdError,
    FormatError,
    InvalidIdError,
    MissingNodeError,
    ParameterError,
    UnknownTypeError,
)
from cnnstudio.core.graph import Graph


def chain() -> Graph:
    g = Graph()
    g.add_node("Input", {"shape": [1, 8, 8]}, id="input")
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3}, id="conv1", inputs=["input"])
    g.add_node("ReLU", {}, id="relu1", inputs=["conv1"])
    return g


def test_add_node_assigns_fresh_ids_and_initial_params():
    g = chain()
    node = g.add_node("Conv2d", inputs=["relu1"])
    assert node.id == "conv2"
    assert node.params == {"out_channels": 16, "kernel_size": 3}
    assert g.add_node("MaxPool2d").id == "maxpool1"


@pytest.mark.parametrize("make, error", [
    (lambda g: g.add_node("Conv9d", {}), UnknownTypeError),
    (lambda g: g.add_node("Conv2d", {"out_channels": 0, "kernel_size": 3}), ParameterError),
    (lambda g: g.add_node("Conv2d", {"kernel_size": 3}), ParameterError),
    (lambda g: g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "foo": 1}),
     ParameterError),
    (lambda g: g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "in_channels": 1}),
     ParameterError),
    (lambda g: g.add_node("ReLU", {}, id="relu1"), DuplicateIdError),
    (lambda g: g.add_node("ReLU", {}, id="forward"), InvalidIdError),
    (lambda g: g.add_node("ReLU", {}, id="a.b"), InvalidIdError),
    (lambda g: g.add_node("ReLU", {}, id="_private"), InvalidIdError),
    (lambda g: g.add_node("ReLU", {}, inputs=["nowhere"]), MissingNodeError),
    (lambda g: g.add_node("ReLU", {}, inputs=["relu1", "conv1"]), ArityError),
    (lambda g: g.connect("relu1", "input"), ArityError),
    (lambda g: g.connect("relu1", "conv1"), ArityError),
])
def test_bad_edits_raise_specific_errors_and_change_nothing(make, error):
    g = chain()
    before = g.to_dict()
    with pytest.raises(error):
        make(g)
    assert g.to_dict() == before


def test_connect_refuses_cycles_and_names_the_node():
    g = chain()
    g.add_node("Add", {}, id="add", inputs=["relu1"])
    with pytest.raises(CycleError) as info:
        g.connect("add", "add")
    assert info.value.node == "add"
    g.add_node("ReLU", {}, id="r2", inputs=["add"])
    with pytest.raises(CycleError):
        g.connect("r2", "add")


def test_parameter_error_names_node_and_param():
    g = chain()
    with pytest.raises(ParameterError) as info:
        g.set_param("conv1", "kernel_size", 0)
    assert info.value.node == "conv1" and info.value.param == "kernel_size"
    assert str(info.value) == "conv1.kernel_size: must be between 1 and 1024, got 0"
    with pytest.raises(ParameterError, match="must be an integer"):
        g.set_param("conv1", "kernel_size", True)
    with pytest.raises(ParameterError, match="list of 2 integers"):
        g.set_param("conv1", "kernel_size", [3, 3, 3])
    with pytest.raises(ParameterError, match="'same' needs stride 1"):
        g.set_params("conv1", {"out_channels": 4, "kernel_size": 3, "padding": "same",
                               "stride": 2})


def test_remove_node_cuts_edges_and_can_be_undone():
    g = chain()
    g.add_node("ReLU", {}, id="r2", inputs=["conv1"])
    index = g.index_of("conv1")
    node = g.node("conv1")
    cut = g.remove_node("conv1")
    assert cut == [("relu1", 0), ("r2", 0)]
    assert g.node("relu1").inputs == [] and "conv1" not in g
    g.insert_node(node, index)
    for target, i in cut:
        g.connect("conv1", target, i)
    assert g.ids == ["input", "conv1", "relu1", "r2"]
    assert g.node("relu1").inputs == ["conv1"]


def test_listeners_hear_every_change_after_it_is_stored():
    g = chain()
    events = []
    start = g.revision
    g.subscribe(lambda event, **kw: events.append((event, kw, len(g))))
    g.add_node("ReLU", {}, id="r2", inputs=["relu1"])
    g.set_param("conv1", "out_channels", 8)
    g.move_node("r2", (1, 2))
    g.disconnect("relu1", "r2")
    g.rename_node("r2", "act")
    g.remove_node("act")
    assert [e[0] for e in events] == ["node_added", "params_changed", "node_moved",
                                      "edge_removed", "node_renamed", "node_removed"]
    assert events[0][2] == 4  # the node was already there when the listener ran
    assert g.revision == start + 6


def test_rename_updates_references():
    g = chain()
    g.rename_node("conv1", "c1")
    assert g.node("relu1").inputs == ["c1"] and g.ids == ["input", "c1", "relu1"]


def test_topological_order_and_sinks_on_a_dag():
    g = chain()
    g.add_node("Conv2d", {"out_channels": 4, "kernel_size": 1}, id="skip", inputs=["input"])
    g.add_node("Add", {}, id="add", inputs=["relu1", "skip"])
    order = g.topological_order()
    assert order.index("add") > max(order.index("relu1"), order.index("skip"))
    assert g.sinks() == ["add"]
    assert g.reaches("input", "add") and not g.reaches("add", "input")


def test_file_form_round_trip_keeps_unknown_keys_and_order():
    doc = {"nodes": [
        {"id": "input", "type": "Input", "params": {"shape": [1, 8, 8]}, "inputs": [],
         "note": "mine"},
        {"id": "fc", "type": "Linear", "params": {"out_features": 3}, "inputs": ["input"],
         "pos": [0.0, 120.0], "color": {"r": 1}},
    ]}
    g = Graph.from_dict(doc)
    assert g.to_dict() == doc


@pytest.mark.parametrize("doc, path", [
    ([], ""),
    ({"nodes": {}}, "nodes"),
    ({"nodes": [1]}, "nodes[0]"),
    ({"nodes": [{"type": "ReLU"}]}, "nodes[0].id"),
    ({"nodes": [{"id": "a", "type": "Nope"}]}, "nodes[0].type"),
    ({"nodes": [{"id": "a", "type": "ReLU"}, {"id": "a", "type": "ReLU"}]}, "nodes[1].id"),
    ({"nodes": [{"id": "a", "type": "ReLU", "inputs": ["b"]}]}, "nodes[0].inputs[0]"),
    ({"nodes": [{"id": "c", "type": "Conv2d", "params": {"out_channels": 2, "kernel_size": 0}}]},
     "nodes[0].params.kernel_size"),
    ({"nodes": [{"id": "a", "type": "ReLU", "params": []}]}, "nodes[0].params"),
    ({"nodes": [{"id": "a", "type": "ReLU", "pos": [1]}]}, "nodes[0].pos"),
    ({"nodes": [{"id": "a", "type": "ReLU", "inputs": ["b"]},
                {"id": "b", "type": "ReLU", "inputs": ["a"]}]}, "nodes"),
])
def test_malformed_graph_documents_name_the_json_path(doc, path):
    with pytest.raises(FormatError) as info:
        Graph.from_dict(doc)
    assert info.value.path == path
    assert "\n" not in str(info.value)


def test_cycle_message_shows_the_loop():
    doc = {"nodes": [{"id": "a", "type": "ReLU", "inputs": ["b"]},
                     {"id": "b", "type": "ReLU", "inputs": ["a"]}]}
    with pytest.raises(FormatError, match="cycle: (a → b → a|b → a → b)"):
        Graph.from_dict(doc)
