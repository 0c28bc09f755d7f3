"""Re-inference after an edit reuses what the edit did not touch, with the same results
as inferring the edited graph afresh."""

import copy

from cnnstudio.core.architectures import block_chain
from cnnstudio.core.shapes import infer_shapes


def _fresh(graph):
    clone = copy.deepcopy(graph)
    clone.caches.clear()
    return infer_shapes(clone)


def _same(a, b) -> None:
    assert a.order == b.order and a.output == b.output
    assert a.problems == b.problems
    assert list(a.nodes) == list(b.nodes)
    for node_id, info in a.nodes.items():
        assert info == b.nodes[node_id], node_id


def test_edits_give_what_a_fresh_inference_gives():
    g = block_chain()
    convs = [n.id for n in g if n.type == "Conv2d"]
    edits = [(convs[10], {"out_channels": 24}), (convs[10], {"kernel_size": 99}),
             (convs[40], {"out_channels": 3}), (convs[10], {"kernel_size": 3}),
             (convs[40], {"stride": 2})]
    for conv, change in edits:
        g.set_params(conv, {**g.node(conv).params, **change})
        _same(infer_shapes(g), _fresh(g))
    last = convs[-1]
    g.disconnect(g.node(last).inputs[0], last, 0)  # a lone input gap: a problem, then fixed
    _same(infer_shapes(g), _fresh(g))


def test_untouched_layers_keep_their_results_and_an_undone_edit_comes_back():
    g = block_chain()
    before = infer_shapes(g)
    order = before.order
    conv = [n.id for n in g if n.type == "Conv2d"][20]
    params = dict(g.node(conv).params)
    g.set_params(conv, {**params, "out_channels": params["out_channels"] + 8})
    after = infer_shapes(g)
    upstream = order[:order.index(conv)]
    assert all(after.nodes[n] is before.nodes[n] for n in upstream)
    assert after.nodes[conv] is not before.nodes[conv]
    assert after.nodes[conv].shape[0] == params["out_channels"] + 8
    g.set_params(conv, params)  # undone: every layer's earlier result is reused
    undone = infer_shapes(g)
    assert all(undone.nodes[n] is before.nodes[n] for n in order)
    _same(undone, _fresh(g))
