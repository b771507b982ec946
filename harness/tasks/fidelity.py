"""Fidelity for any model, no labels needed: per output tensor, how far the optimized model's outputs
drift from the float model's on the same inputs (the numbers of `harness.fidelity`)."""

from __future__ import annotations

import numpy as np

from harness.datasets import Dataset
from harness.fidelity import compare_outputs, worst
from harness.tasks._base import OUTPUT_FIDELITY, TASKS, Task, TaskOptions


@TASKS.register("fidelity", "any model, no labels: per-output SNR, cosine, NRMSE, max/mean abs error vs float")
class Fidelity(Task):
    Options = TaskOptions
    metrics = OUTPUT_FIDELITY
    headline = ("snr_db",)

    def score(self, outputs: list[np.ndarray], dataset: Dataset, options: TaskOptions) -> dict[str, float]:
        """Nothing to score without a reference: the metrics come from `fidelity`."""
        return {}

    def fidelity(self, outputs: list[np.ndarray], reference: list[np.ndarray],
                 options: TaskOptions) -> dict[str, float]:
        return worst([compare_outputs(a, b) for a, b in zip(outputs, reference, strict=True)])
