"""Published networks at full size, and a large synthetic one, as grouped graphs.

ResNet-50, GoogLeNet and VGG-16 are built from `core.blocks` exactly as torchvision builds
them (so their parameter counts equal the published ones, checked by the tests), for
3×224×224 inputs. `block_chain` is a ~1,000-node network of residual stages on 3×32×32
inputs, for measuring the editor on large graphs. Every block is a group and the stages
are groups holding their blocks, so the canvas can fold them; positions come from
`auto_layout`.
"""

from __future__ import annotations

from cnnstudio.core.blocks import (
    add,
    bottleneck_block,
    conv_bn_relu,
    group,
    inception_branches,
    residual_block,
    vgg_block,
)
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import auto_layout

IMAGENET_INPUT = [3, 224, 224]
# torchvision's GoogLeNet: BatchNorm eps 0.001; (1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5",
# pool projection) per inception module, and the stages the max-pools separate.
GOOGLENET_EPS = 0.001
GOOGLENET_STAGES: tuple[tuple[int, tuple[tuple[str, tuple[int, ...]], ...]], ...] = (
    (3, (("3a", (64, 96, 128, 16, 32, 32)), ("3b", (128, 128, 192, 32, 96, 64)))),
    (4, (("4a", (192, 96, 208, 16, 48, 64)), ("4b", (160, 112, 224, 24, 64, 64)),
         ("4c", (128, 128, 256, 24, 64, 64)), ("4d", (112, 144, 288, 32, 64, 64)),
         ("4e", (256, 160, 320, 32, 128, 128)))),
    (5, (("5a", (256, 160, 320, 32, 128, 128)), ("5b", (384, 192, 384, 48, 128, 128)))),
)
# ResNet-50: (bottleneck width, blocks, stride of the first block) per stage.
RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
# block_chain: channels and stride of the first block per stage (32 → 32, 16, 8, 4 pixels).
CHAIN_STAGES = ((16, 1), (32, 2), (64, 2), (128, 2))
CHAIN_FIXED_NODES = 13  # input, stem (3), head (3), and the projection skips (2 × 3 stages)
RESIDUAL_BLOCK_NODES = 7


def _start(shape: list[int]) -> tuple[Graph, str]:
    graph = Graph()
    return graph, add(graph, "Input", None, {"shape": shape}, id="input")


def _head(graph: Graph, x: str, classes: int, pool: int = 1, hidden: tuple[int, ...] = (),
          dropout: float | None = None) -> None:
    """Grouped "Classifier": adaptive average pooling to pool×pool, Flatten, then per hidden
    size Linear → ReLU → Dropout, then [Dropout →] Linear to `classes` (id "classifier")."""
    with group(graph, "Classifier"):
        x = add(graph, "AdaptiveAvgPool2d", x, {"output_size": pool}, id="avgpool")
        x = add(graph, "Flatten", x, id="flatten")
        for features in hidden:
            x = add(graph, "ReLU", add(graph, "Linear", x, {"out_features": features}))
            x = add(graph, "Dropout", x, {"p": 0.5})
        if dropout is not None:
            x = add(graph, "Dropout", x, {"p": dropout})
        add(graph, "Linear", x, {"out_features": classes}, id="classifier")


def _check_classes(classes: int) -> None:
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise ValueError(f"classes must be a whole number ≥ 1, got {classes!r}")


def resnet50(classes: int = 1000) -> Graph:
    """ResNet-50 (He et al., 2016; torchvision's v1.5): 25,557,032 parameters for 1000
    classes. Groups: Stem, Stage 1–4 holding Bottleneck 1–16, Classifier."""
    _check_classes(classes)
    graph, x = _start(IMAGENET_INPUT)
    with group(graph, "Stem"):
        x = conv_bn_relu(graph, x, 64, kernel=7, stride=2)
        x = add(graph, "MaxPool2d", x, {"kernel_size": 3, "stride": 2, "padding": 1})
    channels, number = 64, 0
    for stage, (width, blocks, stride) in enumerate(RESNET50_STAGES, 1):
        with group(graph, f"Stage {stage}"):
            for i in range(blocks):
                number += 1
                with group(graph, f"Bottleneck {number}"):
                    x = bottleneck_block(graph, x, width, channels, stride if i == 0 else 1)
                channels = width * 4
    _head(graph, x, classes)
    auto_layout(graph)
    return graph


def googlenet(classes: int = 1000) -> Graph:
    """GoogLeNet (Inception v1, Szegedy et al., 2015) as torchvision builds it, without the
    auxiliary classifiers: 6,624,904 parameters for 1000 classes. Every convolution is
    conv (no bias) → BatchNorm (eps 0.001) → ReLU, and the "5×5" branch is 3×3, as in
    torchvision. Groups: Stem, Inception 3–5 holding Inception 3a–5b, Classifier."""
    _check_classes(classes)
    graph, x = _start(IMAGENET_INPUT)

    def pool(x: str, kernel: int) -> str:
        return add(graph, "MaxPool2d", x, {"kernel_size": kernel, "stride": 2,
                                           "ceil_mode": True})

    with group(graph, "Stem"):
        x = pool(conv_bn_relu(graph, x, 64, kernel=7, stride=2, eps=GOOGLENET_EPS), 3)
        x = conv_bn_relu(graph, x, 64, kernel=1, eps=GOOGLENET_EPS)
        x = pool(conv_bn_relu(graph, x, 192, kernel=3, eps=GOOGLENET_EPS), 3)
    for stage, modules in GOOGLENET_STAGES:
        with group(graph, f"Inception {stage}"):
            for label, widths in modules:
                with group(graph, f"Inception {label}"):
                    x = inception_branches(graph, x, *widths, c5_kernel=3, batch_norm=True,
                                           eps=GOOGLENET_EPS, ceil_mode=True)
        if stage < 5:  # torchvision: 3×3 pooling after stage 3, 2×2 after stage 4
            x = pool(x, 3 if stage == 3 else 2)
    _head(graph, x, classes, dropout=0.2)
    auto_layout(graph)
    return graph


def vgg16(classes: int = 1000) -> Graph:
    """VGG-16 (Simonyan & Zisserman, 2015; torchvision's, without batch norm): 138,357,544
    parameters for 1000 classes. Groups: VGG block 1–5, Classifier."""
    _check_classes(classes)
    graph, x = _start(IMAGENET_INPUT)
    for i, (channels, convs) in enumerate(VGG16_BLOCKS, 1):
        with group(graph, f"VGG block {i}"):
            x = vgg_block(graph, x, channels, convs)
    _head(graph, x, classes, pool=7, hidden=(4096, 4096))
    auto_layout(graph)
    return graph


def block_chain(nodes: int = 1000, classes: int = 10) -> Graph:
    """A valid network of about `nodes` nodes (never more; 1,000 exactly for the default):
    a stem, four stages of residual blocks on 3×32×32 inputs (each stage halves the size
    and doubles the channels), and a classifier. Groups: Stem, Stage 1–4 holding
    Residual block 1–n, Classifier."""
    _check_classes(classes)
    blocks = (nodes - CHAIN_FIXED_NODES) // RESIDUAL_BLOCK_NODES \
        if isinstance(nodes, int) and not isinstance(nodes, bool) else 0
    if blocks < len(CHAIN_STAGES):
        least = CHAIN_FIXED_NODES + RESIDUAL_BLOCK_NODES * len(CHAIN_STAGES)
        raise ValueError(f"a block chain needs at least {least} nodes, got {nodes!r}")
    graph, x = _start([3, 32, 32])
    with group(graph, "Stem"):
        x = conv_bn_relu(graph, x, CHAIN_STAGES[0][0])
    channels, number = CHAIN_STAGES[0][0], 0
    per_stage, extra = divmod(blocks, len(CHAIN_STAGES))
    for stage, (width, stride) in enumerate(CHAIN_STAGES, 1):
        with group(graph, f"Stage {stage}"):
            for i in range(per_stage + (stage <= extra)):
                number += 1
                with group(graph, f"Residual block {number}"):
                    x = residual_block(graph, x, width, channels, stride if i == 0 else 1)
                channels = width
    _head(graph, x, classes)
    auto_layout(graph)
    return graph
