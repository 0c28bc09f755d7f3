"""PyTorch import (`FILE.py:CLASS` + safetensors): hand-written model files, each imported
and checked against the original module itself.

For every model: the parameter count our shape inference gives equals torch's count of the
original, `build_module(graph)` with the imported weights gives the original's outputs
(eval mode, within 1e-4, BatchNorm running stats randomised so they matter), and our own
ONNX export of the imported project gives them too in onnxruntime.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save as save_bytes
from safetensors.torch import save_file

from cnnstudio.core.shapes import infer_shapes
from cnnstudio.nn import build_module
from cnnstudio.nn.export import compiled, gather
from cnnstudio.nn.export.compiled import INPUT_NAME, OUTPUT_NAME
from cnnstudio.nn.importing.torch_import import import_pytorch
from cnnstudio.project import Project

torch.set_num_threads(1)

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n"

RESNET = """
class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Net(nn.Module):
    input_shape = (3, 16, 16)

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = nn.Sequential(Block(8, 8, 1), Block(8, 8, 1))
        self.layer2 = nn.Sequential(Block(8, 16, 2), Block(16, 16, 1))
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))
"""

INCEPTION = """
class Inception(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.b1 = nn.Conv2d(cin, 8, 1)
        self.b3 = nn.Sequential(nn.Conv2d(cin, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(cin, 4, 1), nn.GELU(), nn.Conv2d(4, 4, 5, padding=2))
        self.pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, 4, 1))

    def forward(self, x):
        out = torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], 1)
        return F.relu(out)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.inc1 = Inception(16)
        self.inc2 = Inception(24)
        self.head = nn.Linear(24, 5)

    def forward(self, x):
        x = F.max_pool2d(F.leaky_relu(self.bn(self.stem(x)), 0.1), 2)
        x = self.inc2(self.inc1(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        x = F.dropout(x, 0.2, training=self.training)
        return F.softmax(self.head(x), dim=1)
"""

VGG = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, padding=1), nn.ELU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(8, 16, 3, padding=1), nn.SiLU(), nn.AvgPool2d(2),
            nn.Dropout2d(0.1), nn.Identity())
        self.classifier = nn.Sequential(nn.Linear(16 * 7 * 7, 32), nn.BatchNorm1d(32),
                                        nn.Tanh(), nn.Dropout(0.5), nn.Linear(32, 10))

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)
"""

CNN1D = """
class Net(nn.Module):
    input_shape = [2, 64]

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(2, 8, 5, padding=2)
        self.bn1 = nn.BatchNorm1d(8)
        self.pool1 = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(8, 16, 3, dilation=2)
        self.pool2 = nn.AvgPool1d(2)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(16 * 14, 3)

    def forward(self, x):
        x = self.pool1(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool2(self.conv2(x).sigmoid())
        return self.fc(self.flat(x))
"""

UNET = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.down = nn.MaxPool2d(2)
        self.enc2 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec = nn.Conv2d(16, 8, 3, padding=1)
        self.bottom = nn.Conv2d(16, 8, 1)
        self.out = nn.Conv2d(16, 1, 1)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.down(e1))
        d = F.relu(self.dec(torch.cat([self.up(e2), e1], dim=1)))
        side = F.interpolate(self.bottom(e2), scale_factor=2, mode="nearest")
        side = self.upsample(self.down(side))
        return torch.sigmoid(self.out(torch.cat((d, side), 1)))
"""

CONV3D = """
class Net(nn.Module):
    input_shape = (1, 8, 8, 8)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool3d(2)
        self.conv2 = nn.Conv3d(4, 4, (1, 3, 3))
        self.avg = nn.AvgPool3d((1, 2, 2))
        self.fc = nn.Linear(4 * 4 * 1 * 1, 2)

    def forward(self, x):
        x = self.avg(self.conv2(self.pool(F.elu(self.conv(x), alpha=0.5))))
        return nn.functional.softmax(self.fc(x.reshape(x.shape[0], -1)), -1)
"""

FUNCTIONAL = """
class Net(nn.Module):
    input_shape = (3, 12, 12)

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 6, 3, padding=1)
        self.b = nn.Conv2d(3, 6, 1)
        self.act = nn.Sigmoid()
        self.gelu_tanh = nn.GELU(approximate="tanh")
        self.amax = nn.AdaptiveMaxPool2d((2, 2))
        self.fc = nn.Linear(24, 4)
        self.soft = nn.Softmax(dim=1)
        self.unused_head = nn.Linear(4, 4)

    def forward(self, x):
        y = torch.add(self.a(x).relu(), F.silu(self.b(x)))
        y = F.avg_pool2d(F.gelu(y), 3, stride=2, padding=1, count_include_pad=False)
        y = torch.tanh(self.gelu_tanh(self.act(y)))
        y = self.amax(y + y.contiguous())
        return self.soft(self.fc(y.flatten(1)))
"""

GLOBAL_MEANS = """
class Net(nn.Module):
    input_shape = (3, 10, 10)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.fc1 = nn.Linear(6, 3)
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        y = self.conv(x)
        a = y.mean((2, 3), keepdim=True).squeeze(-1).squeeze(3 - 1)
        b = torch.mean(y, dim=[-2, -1])
        return self.fc1(a) + self.fc2(b)
"""

LENET = """
class Net(nn.Module):
    input_shape = (1, 32, 32)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 20)
        self.fc2 = nn.Linear(20, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 16 * 5 * 5)           # the older tutorials' flattening
        return self.fc2(F.relu(self.fc1(x)).reshape(-1, 20))
"""

MODELS = {
    "resnet": (RESNET, None),
    "inception": (INCEPTION, (3, 16, 16)),
    "vgg": (VGG, "1,28,28"),
    "cnn1d": (CNN1D, None),
    "unet": (UNET, (3, 16, 16)),
    "conv3d": (CONV3D, None),
    "functional": (FUNCTIONAL, None),
    "means": (GLOBAL_MEANS, None),
    "lenet": (LENET, None),
}


def load_class(path: Path, name: str = "Net") -> type[torch.nn.Module]:
    """The test's own copy of the class: the reference the import is compared with."""
    spec = importlib.util.spec_from_file_location(f"reference_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def randomised(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Weights and BatchNorm statistics far from their defaults, so each one matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.rand(tensor.shape, generator=generator)
                if name.endswith("running_var"):
                    tensor.copy_(0.5 + noise)
                else:
                    tensor.copy_((noise - 0.5) * 0.8)
    return model.eval()


def write_model(tmp_path: Path, key: str) -> tuple[Path, torch.nn.Module, Path]:
    source, _ = MODELS[key]
    path = tmp_path / f"{key}.py"
    path.write_text(HEADER + textwrap.dedent(source))
    original = randomised(load_class(path)(), seed=len(key))
    weights = tmp_path / f"{key}.safetensors"
    save_file({k: v.contiguous() for k, v in original.state_dict().items()}, str(weights))
    return path, original, weights


@pytest.mark.parametrize("key", list(MODELS))
def test_import_matches_the_original(tmp_path: Path, key: str) -> None:
    path, original, weights = write_model(tmp_path, key)
    stages: list[str] = []
    imported = import_pytorch(f"{path}:Net", input_shape=MODELS[key][1], weights=weights,
                              progress=lambda stage, done, total: stages.append(stage))
    assert imported.kind == "pytorch" and imported.source == f"{key}.py"
    assert stages[0] == "loading" and stages[-1] == "done"
    graph = imported.graph
    assert all(node.pos is not None for node in graph)
    inference = infer_shapes(graph)
    assert not inference.errors
    assert sum(info.params for info in inference.nodes.values()) == sum(
        p.numel() for name, p in original.named_parameters() if not name.startswith("unused_"))

    ours = build_module(graph)
    ours.load_state_dict({k: torch.from_numpy(v) for k, v in imported.weights.items()},
                         strict=True)
    ours.eval()
    x = torch.randn((3, *ours.input_shape), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = original(x)
        got = ours(x)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-4, rtol=0)

    # Our ONNX export of the imported project, run in onnxruntime.
    onnxruntime = pytest.importorskip("onnxruntime")
    project = Project(name=key, graph=graph, weights=save_bytes(
        {k: torch.from_numpy(v).contiguous() for k, v in imported.weights.items()}))
    data = compiled.onnx_bytes(gather(project))
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    onnx_out = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    assert np.abs(onnx_out - expected.numpy()).max() <= 1e-4


def test_view_minus_one_is_refused_unless_it_keeps_one_sample_per_row(tmp_path: Path
                                                                       ) -> None:
    from cnnstudio.nn.importing.common import ModelImportError

    path = tmp_path / "halves.py"
    path.write_text(HEADER + textwrap.dedent(LENET).replace(
        "x.view(-1, 16 * 5 * 5)", "x.view(-1, 8 * 5 * 5).reshape(-1, 16 * 5 * 5)"))
    with pytest.raises(ModelImportError, match="view"):
        import_pytorch(f"{path}:Net")


def test_ids_come_from_module_paths_and_weights_are_renamed(tmp_path: Path) -> None:
    path, original, weights = write_model(tmp_path, "resnet")
    imported = import_pytorch(f"{path}:Net", weights=weights)
    ids = set(imported.graph.ids)
    assert {"layer1_0_conv1", "layer2_0_downsample_0", "layer1_0_add", "fc"} <= ids
    state = original.state_dict()
    # BatchNorm buffers travel too, renamed from the module path to the node id.
    for theirs, ours in (("layer2.0.downsample.1.running_var", "layer2_0_downsample_1.running_var"),
                         ("layer1.0.conv1.weight", "layer1_0_conv1.weight"),
                         ("fc.bias", "fc.bias")):
        assert np.array_equal(imported.weights[ours], state[theirs].numpy())
    add = imported.graph.node("layer2_0_add")
    assert add.type == "Add" and sorted(add.inputs) == ["layer2_0_bn2", "layer2_0_downsample_1"]
    # Repeated blocks become groups.
    assert imported.graph.groups


def test_without_weights_imports_the_constructed_weights(tmp_path: Path) -> None:
    path = tmp_path / "cnn1d.py"
    # The file seeds torch when it runs, so its Net() starts from the same weights each time.
    path.write_text(HEADER + "torch.manual_seed(3)\n" + textwrap.dedent(CNN1D))
    imported = import_pytorch(f"{path}:Net")
    original = load_class(path)()
    state = original.state_dict()
    assert set(imported.weights) == set(state)  # top-level names: ids equal the paths
    for key, value in state.items():
        assert np.array_equal(imported.weights[key], value.numpy())


def test_input_shape_option_wins_over_the_attribute(tmp_path: Path) -> None:
    path, _, weights = write_model(tmp_path, "resnet")
    imported = import_pytorch(f"{path}:Net", weights=weights, input_shape=(3, 24, 24))
    assert imported.graph.node("input").params["shape"] == [3, 24, 24]


def test_subclasses_of_torch_layers_that_keep_forward(tmp_path: Path) -> None:
    path = tmp_path / "sub.py"
    path.write_text(HEADER + textwrap.dedent("""
        class SameConv(nn.Conv2d):
            def __init__(self, cin, cout):
                super().__init__(cin, cout, 3, padding=1, bias=False)


        class Net(nn.Module):
            input_shape = (2, 6, 6)

            def __init__(self):
                super().__init__()
                self.conv = SameConv(2, 3)

            def forward(self, x):
                return self.conv(x)
        """))
    imported = import_pytorch(f"{path}:Net")
    node = imported.graph.node("conv")
    assert node.type == "Conv2d" and node.params["padding"] == [1, 1]
    assert set(imported.weights) == {"conv.weight"}


def test_unused_modules_are_noted(tmp_path: Path) -> None:
    path, original, weights = write_model(tmp_path, "functional")
    imported = import_pytorch(f"{path}:Net", weights=weights)
    assert imported.notes == ["left out unused_head (Linear): forward never uses it"]
    assert not any(key.startswith("unused_head") for key in imported.weights)


def test_sys_path_and_modules_are_restored(tmp_path: Path) -> None:
    (tmp_path / "helper_blocks.py").write_text(HEADER + "def block():\n"
                                               "    return nn.Sequential(nn.Conv2d(3, 4, 3))\n")
    path = tmp_path / "uses_helper.py"
    path.write_text(HEADER + "from helper_blocks import block\n\nclass Net(nn.Module):\n"
                    "    input_shape = (3, 8, 8)\n\n    def __init__(self):\n"
                    "        super().__init__()\n        self.body = block()\n\n"
                    "    def forward(self, x):\n        return self.body(x)\n")
    before = list(sys.path)
    imported = import_pytorch(f"{path}:Net")
    assert imported.graph.node("body_0").type == "Conv2d"
    assert sys.path == before
    assert "helper_blocks" not in sys.modules
