"""The real-size networks: published parameter counts, torch parity, groups, layout."""

from collections import Counter

import pytest

from cnnstudio.core.architectures import block_chain, googlenet, resnet50, vgg16
from cnnstudio.core.graph import Graph
from cnnstudio.core.grouping import auto_group
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.core.summary import summary_text

PUBLISHED = {  # torchvision's counts (GoogLeNet without its auxiliary classifiers)
    "resnet50": (resnet50, 25_557_032, 176),
    "googlenet": (googlenet, 6_624_904, 198),
    "vgg16": (vgg16, 138_357_544, 41),
}


@pytest.fixture(scope="module")
def built() -> dict[str, Graph]:
    return {name: build() for name, (build, _, _) in PUBLISHED.items()}


def group_names(graph: Graph) -> list[str]:
    return [g.name for g in graph.groups]


def without_groups(graph: Graph) -> Graph:
    data = graph.to_dict()
    data.pop("groups", None)
    return Graph.from_dict(data)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_networks_have_the_published_parameter_counts(name, built):
    graph = built[name]
    _, params, nodes = PUBLISHED[name]
    inference = infer_shapes(graph, num_classes=1000)
    assert inference.problems == []
    assert inference.total_params == params
    assert f"Total params: {params:,}" in summary_text(name, graph, inference)
    assert inference.nodes["input"].shape == (3, 224, 224)
    assert inference.nodes[inference.output].shape == (1000,)
    assert len(graph) == nodes


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_networks_are_laid_out_and_survive_their_file_form(name, built):
    graph = built[name]
    assert all(node.pos is not None for node in graph)
    assert len({node.pos for node in graph}) == len(graph)
    again = Graph.from_dict(graph.to_dict())
    assert again.to_dict() == graph.to_dict()
    assert group_names(again) == group_names(graph)


def test_class_count_follows_the_argument():
    for build in (resnet50, googlenet, vgg16):
        inference = infer_shapes(build(classes=7), num_classes=7)
        assert inference.ok and inference.nodes["classifier"].shape == (7,)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="classes must be a whole number"):
            resnet50(classes=bad)


def test_resnet50_groups_are_stages_of_bottlenecks(built):
    graph = built["resnet50"]
    names = group_names(graph)
    assert set(names) == {"Stem", "Classifier", *(f"Stage {i}" for i in range(1, 5)),
                          *(f"Bottleneck {i}" for i in range(1, 17))}
    stages = [g for g in graph.groups if g.name.startswith("Stage")]
    assert [len(graph.groups.children(s.id)) for s in stages] == [3, 4, 6, 3]
    for stage in stages:
        assert all(graph.groups.get(c).name.startswith("Bottleneck")
                   for c in graph.groups.children(stage.id))
    first = next(g for g in graph.groups if g.name == "Bottleneck 1")
    types = Counter(graph.node(n).type for n in graph.groups.nodes(first.id))
    # 3 convs on the main path + the projection skip, each with its BatchNorm.
    assert types == {"Conv2d": 4, "BatchNorm2d": 4, "ReLU": 3, "Add": 1}
    assert [n.id for n in graph if n.group is None] == ["input"]


def test_googlenet_groups_are_the_torchvision_modules(built):
    graph = built["googlenet"]
    labels = ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    assert set(group_names(graph)) == {"Stem", "Classifier", "Inception 3", "Inception 4",
                                       "Inception 5", *(f"Inception {x}" for x in labels)}
    module = next(g for g in graph.groups if g.name == "Inception 3a")
    nodes = [graph.node(n) for n in graph.groups.nodes(module.id)]
    assert Counter(n.type for n in nodes) == {"Conv2d": 6, "BatchNorm2d": 6, "ReLU": 6,
                                              "MaxPool2d": 1, "Concat": 1}
    assert all(n.params.get("eps") == 0.001 for n in nodes if n.type == "BatchNorm2d")
    assert sorted(n.params["kernel_size"] for n in nodes if n.type == "Conv2d") \
        == [1, 1, 1, 1, 3, 3]  # torchvision's "5×5" branch is 3×3
    loose = [n.type for n in graph if n.group is None]
    assert loose == ["Input", "MaxPool2d", "MaxPool2d"]  # the pools between the stages


def test_vgg16_groups_are_its_five_blocks(built):
    graph = built["vgg16"]
    assert group_names(graph) == [*(f"VGG block {i}" for i in range(1, 6)), "Classifier"]
    sizes = [len(graph.groups.nodes(g.id)) for g in graph.groups]
    assert sizes == [5, 5, 7, 7, 7, 9]


def test_block_chain_is_a_valid_thousand_node_network_in_stages():
    graph = block_chain()
    assert len(graph) == 1000
    inference = infer_shapes(graph, num_classes=10)
    assert inference.problems == [] and inference.nodes[inference.output].shape == (10,)
    stages = [g for g in graph.groups if g.name.startswith("Stage")]
    assert len(stages) == 4
    blocks = [g for g in graph.groups if g.name.startswith("Residual block")]
    assert len(blocks) == 141
    assert sum(len(graph.groups.children(s.id)) for s in stages) == 141
    assert all(node.pos is not None for node in graph)
    assert len({node.pos for node in graph}) == len(graph)


def test_block_chain_size_follows_the_argument_and_refuses_too_few():
    assert len(block_chain(41)) == 41
    assert 200 - 6 <= len(block_chain(200)) <= 200
    for bad in (40, 0, "many", None):
        with pytest.raises(ValueError, match="at least 41 nodes"):
            block_chain(bad)


@pytest.mark.parametrize("build", [resnet50, googlenet, block_chain])
def test_automatic_grouping_finds_the_blocks_and_stages_they_are_built_with(build):
    graph = build()
    built_sets = {frozenset(graph.groups.nodes(g.id)) for g in graph.groups
                  if g.name not in ("Stem", "Classifier")}
    plain = without_groups(graph)
    auto_group(plain)
    found = {frozenset(plain.groups.nodes(g.id)) for g in plain.groups
             if not (g.name.startswith("Stage") and "blocks" not in g.name)}
    assert found == built_sets


# ---- against torch ------------------------------------------------------------------------


def _torch_references():
    """ResNet-50, GoogLeNet and VGG-16 written by hand as torchvision defines them."""
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, inplanes: int, width: int, stride: int) -> None:
            super().__init__()
            out = width * 4
            self.main = nn.Sequential(
                nn.Conv2d(inplanes, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width),
                nn.ReLU(), nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out))
            self.skip = (nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False),
                                       nn.BatchNorm2d(out))
                         if stride != 1 or inplanes != out else nn.Identity())

    def resnet50_reference() -> nn.Module:
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)]
        inplanes = 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(blocks):
                layers.append(Bottleneck(inplanes, width, stride if i == 0 else 1))
                inplanes = width * 4
        return nn.Sequential(*layers, nn.Linear(2048, 1000))

    def basic(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                             nn.BatchNorm2d(cout, eps=0.001))

    def inception(cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int,
                  pool: int) -> nn.Module:
        return nn.ModuleList([basic(cin, c1, 1),
                              nn.Sequential(basic(cin, c3r, 1), basic(c3r, c3, 3)),
                              nn.Sequential(basic(cin, c5r, 1), basic(c5r, c5, 3)),
                              basic(cin, pool, 1)])

    def googlenet_reference() -> nn.Module:
        modules = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64),
                   (480, 192, 96, 208, 16, 48, 64), (512, 160, 112, 224, 24, 64, 64),
                   (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
                   (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128),
                   (832, 384, 192, 384, 48, 128, 128)]
        return nn.Sequential(basic(3, 64, 7, 2), basic(64, 64, 1), basic(64, 192, 3),
                             *(inception(*m) for m in modules), nn.Linear(1024, 1000))

    def vgg16_reference() -> nn.Module:
        layers: list[nn.Module] = []
        cin = 3
        for cout in (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512):
            layers.append(nn.Conv2d(cin, cout, 3, padding=1))
            cin = cout
        return nn.Sequential(*layers, nn.Linear(512 * 7 * 7, 4096), nn.Linear(4096, 4096),
                             nn.Linear(4096, 1000))

    return {"resnet50": resnet50_reference, "googlenet": googlenet_reference,
            "vgg16": vgg16_reference}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_counts_and_weight_shapes_equal_a_hand_written_torch_reference(name, built):
    torch = pytest.importorskip("torch")
    from cnnstudio.nn.builder import build_module

    with torch.device("meta"):  # shapes only: no 0.5 GB of VGG weights
        reference = _torch_references()[name]()
        ours = build_module(built[name])
    def shapes(module) -> Counter:
        return Counter(tuple(p.shape) for p in module.parameters())

    count = sum(p.numel() for p in reference.parameters())
    assert count == PUBLISHED[name][1]
    assert sum(p.numel() for p in ours.parameters()) == count
    assert shapes(ours) == shapes(reference)
