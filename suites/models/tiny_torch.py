"""A small PyTorch CNN for suites/torch.yaml, trained here on Fashion-MNIST (the Debian package
dataset-fashion-mnist, the data suites/cnn.yaml uses) for two epochs: 52 s on one core of the (busy) 2-core VM.

quantbench calls `fashion_cnn()` once and caches the exported program by this file's content; the inputs
are what the suite's datasets give (`range: [0, 1]`, `layout: nchw`: N x 1 x 28 x 28 in 0..1)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch import nn

DATA = Path("/usr/share/datasets/fashion-mnist")


class FashionCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def _idx(name: str, offset: int) -> np.ndarray:
    return np.frombuffer(gzip.decompress((DATA / name).read_bytes()), np.uint8, offset=offset)


def train_images() -> tuple[torch.Tensor, torch.Tensor]:
    """The 60,000 training images (N x 1 x 28 x 28 in 0..1) and labels."""
    images = _idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32) / 255
    return torch.from_numpy(images), torch.from_numpy(_idx("train-labels-idx1-ubyte.gz", 8).astype(np.int64))


def fashion_cnn(epochs: int = 2, batch_size: int = 128) -> nn.Module:
    """The CNN trained with Adam (seeded: the same weights every time on this machine)."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model, (x, y) = FashionCnn(), train_images()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()
