"""Starting points: classic networks as graph builders, each with fitting data.

Every template builds a graph that infers without problems on its default data
(checked by the tests), lays itself out, and says which built-in dataset and
training settings suit it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnnstudio.core.blocks import (
    add,
    conv_bn_relu,
    double_conv,
    inception_block,
    residual_block,
    unet_up,
    vgg_block,
)
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import auto_layout

# Class counts of the built-in datasets the templates train on.
BUILTIN_CLASSES = {"digits": 10, "xo": 2, "shapes": 3, "shapes-seg": 4, "signals": 4}


@dataclass(frozen=True)
class Template:
    name: str  # stable id used on the command line
    title: str
    description: str
    build: Callable[[int], Graph]  # number of classes → graph
    dataset: str  # built-in dataset name
    task: str = "classification"
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> int:
        return BUILTIN_CLASSES[self.dataset]

    def graph(self, classes: int | None = None) -> Graph:
        graph = self.build(classes or self.classes)
        auto_layout(graph)
        return graph

    def project_dict(self, name: str | None = None) -> dict[str, Any]:
        """A complete project.json document for a new project from this template."""
        return {
            "format": "cnnstudio.project",
            "version": 1,
            "name": name or self.title,
            "task": self.task,
            "graph": self.graph().to_dict(),
            "data": {"source": {"kind": "builtin", "name": self.dataset}, "val_fraction": 0.2},
            "training": dict(self.training),
        }


def _head(graph: Graph, x: str, classes: int, hidden: int | None = None) -> str:
    x = add(graph, "Flatten", x, id="flatten")
    if hidden:
        x = add(graph, "Linear", x, {"out_features": hidden}, id="fc1")
        x = add(graph, "ReLU", x)
        x = add(graph, "Dropout", x, {"p": 0.5})
    return add(graph, "Linear", x, {"out_features": classes}, id="classifier")


def xo_net(classes: int) -> Graph:
    """The course's X-vs-O toy net: three 3×3 filters on a 9×9 picture, pool, vote."""
    g = Graph()
    x = add(g, "Input", None, {"shape": [1, 9, 9]}, id="input")
    x = add(g, "Conv2d", x, {"out_channels": 3, "kernel_size": 3, "padding": 1}, id="conv1")
    x = add(g, "ReLU", x)
    x = add(g, "MaxPool2d", x, {"kernel_size": 2, "stride": 2, "ceil_mode": True}, id="pool1")
    _head(g, x, classes)
    return g


def mxnet_mnist(classes: int) -> Graph:
    """The two-convolution MNIST net of the MXNet tutorial: 2,315,018 parameters."""
    g = Graph()
    x = add(g, "Input", None, {"shape": [1, 28, 28]}, id="input")
    x = add(g, "Conv2d", x, {"out_channels": 64, "kernel_size": 5}, id="conv1")
    x = add(g, "ReLU", x)
    x = add(g, "MaxPool2d", x, {"kernel_size": 2, "stride": 2}, id="pool1")
    x = add(g, "Conv2d", x, {"out_channels": 128, "kernel_size": 5}, id="conv2")
    x = add(g, "ReLU", x)
    x = add(g, "MaxPool2d", x, {"kernel_size": 2, "stride": 2}, id="pool2")
    _head(g, x, classes, hidden=1024)
    return g


def lenet5(classes: int) -> Graph:
    """LeNet-5 (LeCun et al., 1998): tanh, average pooling, 120-84 dense head."""
    g = Graph()
    x = add(g, "Input", None, {"shape": [1, 32, 32]}, id="input")
    x = add(g, "Conv2d", x, {"out_channels": 6, "kernel_size": 5}, id="c1")
    x = add(g, "Tanh", x)
    x = add(g, "AvgPool2d", x, {"kernel_size": 2}, id="s2")
    x = add(g, "Conv2d", x, {"out_channels": 16, "kernel_size": 5}, id="c3")
    x = add(g, "Tanh", x)
    x = add(g, "AvgPool2d", x, {"kernel_size": 2}, id="s4")
    x = add(g, "Flatten", x, id="flatten")
    x = add(g, "Linear", x, {"out_features": 120}, id="c5")
    x = add(g, "Tanh", x)
    x = add(g, "Linear", x, {"out_features": 84}, id="f6")
    x = add(g, "Tanh", x)
    add(g, "Linear", x, {"out_features": classes}, id="classifier")
    return g


def alexnet_small(classes: int) -> Graph:
    """AlexNet's shape (5 convolutions, 3 dense layers) scaled to 32×32 inputs."""
    g = Graph()
    x = add(g, "Input", None, {"shape": [3, 32, 32]}, id="input")
    for i, (channels, kernel, pool) in enumerate(
        [(64, 5, True), (128, 5, True), (192, 3, False), (192, 3, False), (128, 3, True)], 1
    ):
        x = add(g, "Conv2d", x, {"out_channels": channels, "kernel_size": kernel,
                                 "padding": kernel // 2}, id=f"conv{i}")
        x = add(g, "ReLU", x)
        if pool:
            x = add(g, "MaxPool2d", x, {"kernel_size": 3, "stride": 2}, id=f"pool{i}")
    x = add(g, "Flatten", x, id="flatten")
    x = add(g, "Dropout", x, {"p": 0.5})
    x = add(g, "Linear", x, {"out_features": 512}, id="fc1")
    x = add(g, "ReLU", x)
    x = add(g, "Dropout", x, {"p": 0.5})
    x = add(g, "Linear", x, {"out_features": 512}, id="fc2")
    x = add(g, "ReLU", x)
    add(g, "Linear", x, {"out_features": classes}, id="classifier")
    return g


def vgg_style(classes: int) -> Graph:
    """Three VGG blocks (32, 64, 128 channels) and a dense head (Simonyan & Zisserman)."""
    g = Graph()
    x = add(g, "Input", None, {"shape": [3, 32, 32]}, id="input")
    for channels in (32, 64, 128):
        x = vgg_block(g, x, channels, 2, batch_norm=True)
    _head(g, x, classes, hidden=256)
    return g


def resnet_style(classes: int) -> Graph:
    """A small ResNet: stem, two residual stages, global average pooling."""
    g = Graph()
    x = add(g, "Input", None, {"shape": [3, 32, 32]}, id="input")
    x = conv_bn_relu(g, x, 32)
    x = residual_block(g, x, 32, 32)
    x = residual_block(g, x, 32, 32)
    x = residual_block(g, x, 64, 32, stride=2)
    x = residual_block(g, x, 64, 64)
    x = add(g, "AdaptiveAvgPool2d", x, {"output_size": 1}, id="gap")
    _head(g, x, classes)
    return g


def inception_style(classes: int) -> Graph:
    """A stem and two inception blocks with pooling between, global average pooling."""
    g = Graph()
    x = add(g, "Input", None, {"shape": [3, 32, 32]}, id="input")
    x = conv_bn_relu(g, x, 32)
    x = inception_block(g, x, 16, 24, 8, 8)
    x = add(g, "MaxPool2d", x, {"kernel_size": 2, "stride": 2})
    x = inception_block(g, x, 32, 48, 16, 16)
    x = add(g, "AdaptiveAvgPool2d", x, {"output_size": 1}, id="gap")
    _head(g, x, classes)
    return g


def unet(classes: int) -> Graph:
    """A two-level U-Net (Ronneberger et al., 2015): per-pixel class scores."""
    g = Graph()
    x = add(g, "Input", None, {"shape": [3, 32, 32]}, id="input")
    e1 = double_conv(g, x, 16)
    x = add(g, "MaxPool2d", e1, {"kernel_size": 2, "stride": 2})
    e2 = double_conv(g, x, 32)
    x = add(g, "MaxPool2d", e2, {"kernel_size": 2, "stride": 2})
    x = double_conv(g, x, 64)
    x = unet_up(g, x, e2, 32, learned=True)
    x = unet_up(g, x, e1, 16, learned=False)
    add(g, "Conv2d", x, {"out_channels": classes, "kernel_size": 1}, id="classifier")
    return g


def cnn_1d(classes: int) -> Graph:
    """A 1-D CNN for signals of length 128."""
    g = Graph()
    x = add(g, "Input", None, {"shape": [1, 128]}, id="input")
    x = add(g, "Conv1d", x, {"out_channels": 16, "kernel_size": 5, "padding": 2}, id="conv1")
    x = add(g, "ReLU", x)
    x = add(g, "MaxPool1d", x, {"kernel_size": 2}, id="pool1")
    x = add(g, "Conv1d", x, {"out_channels": 32, "kernel_size": 5, "padding": 2}, id="conv2")
    x = add(g, "ReLU", x)
    x = add(g, "MaxPool1d", x, {"kernel_size": 2}, id="pool2")
    _head(g, x, classes, hidden=64)
    return g


def digits_lenet(classes: int) -> Graph:
    """A LeNet-style net for the 8×8 digits: two small convolutions and a dense head."""
    g = Graph()
    x = add(g, "Input", None, {"shape": [1, 8, 8]}, id="input")
    x = add(g, "Conv2d", x, {"out_channels": 16, "kernel_size": 3, "padding": 1}, id="conv1")
    x = add(g, "ReLU", x)
    x = add(g, "Conv2d", x, {"out_channels": 32, "kernel_size": 3, "padding": 1}, id="conv2")
    x = add(g, "ReLU", x)
    x = add(g, "MaxPool2d", x, {"kernel_size": 2, "stride": 2}, id="pool1")
    _head(g, x, classes, hidden=64)
    return g


_ADAM = {"optimizer": {"name": "Adam", "lr": 0.001}}

TEMPLATES: dict[str, Template] = {t.name: t for t in [
    Template("xo", "X vs O", "The course's toy net: tell a 9×9 X from an O.", xo_net, "xo",
             training={"epochs": 10, "batch_size": 32, **_ADAM}),
    Template("mxnet-mnist", "Two-conv MNIST net", "The MXNet tutorial's net: 64 and 128 5×5 "
             "filters, dense 1024 (digits resized to 28×28).", mxnet_mnist, "digits",
             training={"epochs": 5, "batch_size": 64, **_ADAM}),
    Template("digits-lenet", "Digits LeNet", "A small LeNet-style net for the 8×8 digits.",
             digits_lenet, "digits",
             # Measured: 97.8–98.6 % validation accuracy over seeds 0–3 in ~12 s on a CPU.
             training={"epochs": 20, "batch_size": 32,
                       "optimizer": {"name": "AdamW", "lr": 0.0005},
                       "schedule": {"name": "onecycle"}}),
    Template("lenet5", "LeNet-5", "LeCun's 1998 net on 32×32 digits.", lenet5, "digits",
             training={"epochs": 15, "batch_size": 64, **_ADAM}),
    Template("alexnet-small", "AlexNet (small)", "Five convolutions, three dense layers, "
             "for 32×32 colour images.", alexnet_small, "shapes",
             training={"epochs": 10, "batch_size": 64, **_ADAM}),
    Template("vgg", "VGG-style", "Stacks of 3×3 convolutions and pooling.", vgg_style, "shapes",
             training={"epochs": 10, "batch_size": 64, **_ADAM}),
    Template("resnet", "ResNet-style", "Residual blocks with skip connections (Add).",
             resnet_style, "shapes", training={"epochs": 10, "batch_size": 64, **_ADAM}),
    Template("inception", "Inception-style", "Parallel branches joined by Concat.",
             inception_style, "shapes", training={"epochs": 10, "batch_size": 64, **_ADAM}),
    Template("unet", "U-Net", "Encoder-decoder with skips for per-pixel segmentation.", unet,
             "shapes-seg", task="segmentation",
             training={"epochs": 10, "batch_size": 32, **_ADAM}),
    Template("cnn1d", "1-D CNN for signals", "Convolutions along time for signal classes.",
             cnn_1d, "signals", training={"epochs": 10, "batch_size": 64, **_ADAM}),
]}


def get_template(name: str) -> Template:
    """The template called `name`; raises KeyError with the known names."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise KeyError(f"unknown template {name!r} (known: {', '.join(TEMPLATES)})") from None
