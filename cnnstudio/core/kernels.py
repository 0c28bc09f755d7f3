"""Hand-set convolution kernels for the kernel playground: cross-correlation, as torch's
conv2d computes it. Plain numbers (no torch), so the window can offer them at once."""

from __future__ import annotations

KERNEL_PRESETS: dict[str, list[list[float]]] = {
    "Sobel x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "Laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "Blur": [[1 / 9] * 3] * 3,
    "Sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "Identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
}
