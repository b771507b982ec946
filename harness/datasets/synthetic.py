"""Seeded random inputs without labels: for latency, calibration and fidelity only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset, LoaderOptions


class _SyntheticOptions(LoaderOptions):
    shape: list[int] = Field(min_length=1)
    count: int = Field(32, ge=1)
    low: float = 0.0
    high: float = 1.0
    seed: int = 0


@DATASETS.register("synthetic", "seeded uniform random inputs, no labels (latency/calibration only)")
class Synthetic:
    Options = _SyntheticOptions

    def load(self, name: str, options: _SyntheticOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        rng = np.random.default_rng(options.seed)
        x = rng.uniform(options.low, options.high, size=(options.count, *options.shape)).astype(np.float32)
        return Dataset(name, x, None, None, f"synthetic {options.shape} x{options.count}")
