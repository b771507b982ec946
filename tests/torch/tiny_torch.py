"""A tiny CNN for the torch-source tests (random weights, seeded: the fidelity task needs no training)."""

import torch
from torch import nn


class TinyCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4))
        self.head = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return TinyCnn()


def not_a_module() -> str:
    return "a string"


class TwoInputs(nn.Module):
    """Two positional inputs and a keyword one; two outputs in a dict (named by its keys in the .tflite)."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Linear(16, 8)

    def forward(self, a: torch.Tensor, b: torch.Tensor, *, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        mixed = self.mix(torch.cat([a, b * mask], dim=1))
        return {"scores": mixed, "total": mixed.sum(dim=1, keepdim=True)}


def two_inputs() -> nn.Module:
    torch.manual_seed(0)
    return TwoInputs()
