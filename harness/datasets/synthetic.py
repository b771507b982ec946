"""Seeded random inputs without labels: for latency, calibration and fidelity only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset, DatasetLoader, LoaderOptions
from harness.samples import FromSignature


class InputSpec(BaseModel):
    """One model input's per-sample shape and the range its values are drawn from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    shape: list[int] | None = Field(None, min_length=1, description="default: from the model's signature")
    low: float = 0.0
    high: float = 1.0


class _SyntheticOptions(LoaderOptions):
    shape: list[int] | None = Field(None, min_length=1, description=(
        "per-sample shape of a single-input model; without `shape` and `inputs`, every input of the model, "
        "shaped by its signature"))
    inputs: dict[str, InputSpec] | None = Field(None, description=(
        "per model input name: shape (default: the model's), low, high (default: the dataset's)"))
    count: int = Field(32, ge=1)
    low: float = 0.0
    high: float = 1.0
    seed: int = 0

    @model_validator(mode="after")
    def _one_form(self) -> _SyntheticOptions:
        if self.shape is not None and self.inputs is not None:
            raise ValueError("give either `shape` (one input) or `inputs` (one entry per model input)")
        shaped = {spec.shape is not None for spec in (self.inputs or {}).values()}
        if len(shaped) > 1:
            raise ValueError("give every input's `shape`, or none (then each comes from the model's signature)")
        return self


@DATASETS.register("synthetic", "seeded uniform random inputs, no labels (latency, calibration, fidelity); "
                   "`inputs:` for multi-input models")
class Synthetic(DatasetLoader):
    Options = _SyntheticOptions

    def load(self, name: str, options: _SyntheticOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        rng = np.random.default_rng(options.seed)
        if options.shape is not None:
            x = rng.uniform(options.low, options.high, size=(options.count, *options.shape)).astype(np.float32)
            return Dataset(name, x, None, None, f"synthetic {options.shape} x{options.count}")
        if options.inputs is None or any(spec.shape is None for spec in options.inputs.values()):
            ranges = tuple((key, spec.low, spec.high) for key, spec in (options.inputs or {}).items())
            generated = FromSignature(options.count, options.seed, (options.low, options.high), ranges)
            return Dataset(name, generated, None, None, f"synthetic from the model's inputs x{options.count}")
        arrays = {key: rng.uniform(spec.low, spec.high, size=(options.count, *spec.shape)).astype(np.float32)
                  for key, spec in options.inputs.items() if spec.shape is not None}
        shapes = ", ".join(f"{key} {spec.shape}" for key, spec in options.inputs.items())
        return Dataset(name, arrays, None, None, f"synthetic {shapes} x{options.count}")
