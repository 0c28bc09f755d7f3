"""Hand-written torch modules the ONNX import tests export and import back (small channel
counts, 16×16 inputs: each exports in a fraction of a second)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResNetStyle(nn.Module):
    """A stem, an identity block and a downsampling block (1×1 conv stride 2 + BN skip)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.layer1 = nn.ModuleList([Block(8, 8, 1), Block(8, 8, 1)])
        self.layer2 = nn.ModuleList([Block(8, 16, 2), Block(16, 16, 1)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for block in [*self.layer1, *self.layer2]:
            x = block(x)
        return self.fc(torch.flatten(self.pool(x), 1))


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                            nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + skip)


class InceptionStyle(nn.Module):
    """Four branches (1×1; 1×1→3×3; 1×1→5×5; max pool→1×1) joined by Concat, SiLU."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.b1 = nn.Conv2d(8, 4, 1)
        self.b2 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.SiLU(), nn.Conv2d(4, 6, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(8, 2, 1), nn.SiLU(), nn.Conv2d(2, 4, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(8, 4, 1))
        self.act = nn.SiLU()
        self.head = nn.Linear(18, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.stem(x))
        x = torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)
        return self.head(x.mean((2, 3)))


class VGGStyle(nn.Module):
    """Two conv stages closed by max pooling, then Flatten → Linear → ReLU → Dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
            nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(),
                                        nn.Dropout(0.3), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Signal1d(nn.Module):
    """A 1-D CNN: Conv1d, BatchNorm1d, MaxPool1d, AvgPool1d and a global average."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(2, 8, 5, padding=2)
        self.bn1 = nn.BatchNorm1d(8)
        self.pool1 = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(8, 16, 3, dilation=2)
        self.pool2 = nn.AvgPool1d(3, 2, 1)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(F.leaky_relu(self.bn1(self.conv1(x)), 0.1))
        x = self.pool2(F.elu(self.conv2(x)))
        return self.fc(self.gap(x).flatten(1))


class UNet(nn.Module):
    """Encoder–decoder: ConvTranspose2d up, bilinear and nearest Resize up, skip Concats."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.enc2 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.bottom = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.up2 = nn.ConvTranspose2d(16, 16, 2, stride=2)
        self.dec2 = nn.Sequential(nn.Conv2d(32, 8, 3, padding=1), nn.ReLU())
        self.up1 = nn.Upsample(scale_factor=2, mode="bilinear")
        self.dec1 = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.Tanh())
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottom(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(b), F.interpolate(b, scale_factor=2.0)], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return torch.sigmoid(self.out(d1))


class MLPHead(nn.Module):
    """x.view(x.size(0), -1) into Linear layers (Gemm transB=1), GELU, Softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(4 * 8 * 8, 24)
        self.fc2 = nn.Linear(24, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        x = F.gelu(self.fc1(x.view(x.size(0), -1)))
        return torch.softmax(self.fc2(x), dim=1)


class Padded(nn.Module):
    """Explicit padding layers folded into the next layer: ZeroPad2d before a conv and
    before a max pool after ReLU, and a reflect-padded conv (exported as Pad + Conv)."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d(1)
        self.conv1 = nn.Conv2d(3, 6, 3)
        self.pool_pad = nn.ZeroPad2d(1)
        self.pool = nn.MaxPool2d(3, 2)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.pool_pad(torch.relu(self.conv1(self.pad(x)))))
        return torch.sigmoid(self.conv2(x))


class Unmappable(nn.Module):
    """Operators without a layer of ours: Abs twice, CumSum and Neg once."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x.abs(), 1) + (-x).abs()


MODELS: dict[str, tuple[type[nn.Module], tuple[int, ...]]] = {
    "resnet": (ResNetStyle, (3, 16, 16)),
    "inception": (InceptionStyle, (3, 16, 16)),
    "vgg": (VGGStyle, (3, 16, 16)),
    "signal1d": (Signal1d, (2, 64)),
    "unet": (UNet, (3, 16, 16)),
    "mlp": (MLPHead, (3, 16, 16)),
    "padded": (Padded, (3, 16, 16)),
}
