"""Task registry and the metrics tasks report (with their direction, for threshold checks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from harness.datasets import Dataset
from harness.fidelity import FIDELITY_METRICS
from harness.registry import Registry


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    description: str
    vs_float: bool = False  # compares with the float32 cell: absent (not checked) on the float32 cell itself


# Metrics every cell gets, whatever the task: compared with the float baseline of the model.
CELL_METRICS = (
    Metric("size_ratio", False, "model file size / float32 model file size", vs_float=True),
    Metric("gzip_ratio", False, "gzip -9 compressed size / the float32 model's compressed size", vs_float=True),
    Metric("weight_sparsity", True, "share of kernel weights that are zero, read back from the .tflite"),
    Metric("unique_weights", False, "most distinct values in one output channel of any kernel, read back"),
    Metric("latency_ratio", False, "median latency / float32 median latency, same device", vs_float=True),
    Metric("float_ops", False, "ops that run in float (float activations), read back from the .tflite"),
    Metric("integer_only", True, "1 when every op runs in integers and the model's I/O is integer, else 0"),
    Metric("bytes_float32", False, "bytes of float32 constants in the .tflite"),
    Metric("recipe_coverage", True, "targeted ops quantized as the scheme asked / targeted ops, read back "
           "(recipe cells: checked `min: 1.0` by default)"),
    Metric("fully_delegated", True, "1 when the delegate took every node (benchmark_model log), else 0"),
    Metric("delegated_nodes_ratio", True, "nodes the delegate took / all nodes (benchmark_model log)"),
    Metric("kernel_gap_db", False, "worst-output SNR vs float on XNNPACK (the deployed path) minus the worst of "
           "LiteRT's builtin and reference kernels' (first 32 samples); default check max 10", vs_float=True),
    # latency: {device_check: N}: the phone's outputs vs the host's outputs of the same .tflite
    *(Metric(f"device_{name}", higher, f"{name} of the phone's outputs vs the host's (same .tflite and "
             "inputs), worst output")
      for name, (higher, _) in FIDELITY_METRICS.items()),
)


# Per-output numerics vs the float model, every task's: the worst output's value under each name
# (the runner adds them, with every output's numbers under the record's `outputs`).
OUTPUT_FIDELITY = tuple(Metric(name, higher, description, vs_float=True)
                        for name, (higher, description) in FIDELITY_METRICS.items())


class TaskOptions(BaseModel):
    """A task's own keys in a suite's `task:` block (none by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Task:
    """What a task is: subclass it and register the subclass with `@TASKS.register(name, summary)`.

    `headline` and `agreement` are the roles the report gives its metrics: the first metric of
    `headline` a cell's record has leads its row (console, summary.md, report.html; a record with none
    of them shows `snr_db`, the first per-output number), and `agreement` is shown as its "agreement"
    (how often the optimized model says what the float model says)."""

    Options: ClassVar[type[TaskOptions]] = TaskOptions
    metrics: ClassVar[tuple[Metric, ...]] = ()
    headline: ClassVar[tuple[str, ...]] = ()  # of its metrics, in order of preference
    agreement: ClassVar[str | None] = None  # one of its vs_float metrics
    runs_model: ClassVar[bool] = False  # the runner calls `generate` instead of batch inference on a dataset

    def latency_workload(self, options: Any) -> dict[str, Any]:
        """LatencySpec fields its cells' timing needs (the suite's own settings win): none by default."""
        return {}

    def generate(self, model: Path, options: Any) -> tuple[np.ndarray, Any]:
        """For a task that `runs_model`: its outputs on the model and the record part saying how."""
        raise NotImplementedError

    def score(self, outputs: list[np.ndarray], dataset: Dataset, options: Any) -> dict[str, float]:
        """Task metrics of the model's outputs (all of them, in order) on a labelled dataset.

        Raises NotApplicable when the dataset has no labels."""
        raise NotImplementedError

    def fidelity(self, outputs: list[np.ndarray], reference: list[np.ndarray], options: Any) -> dict[str, float]:
        """Task-level agreement of an optimized model's outputs with the float model's on the same inputs
        (the per-output numbers, OUTPUT_FIDELITY, are added by the runner for every task)."""
        raise NotImplementedError


TASKS: Registry[Task] = Registry("task", "harness.tasks", base=Task)


def all_metrics() -> dict[str, Metric]:
    """Every metric name a threshold may refer to."""
    metrics = {m.name: m for m in CELL_METRICS}
    for name in TASKS.names():
        metrics.update({m.name: m for m in TASKS.get(name).metrics})
    return metrics


def threshold_metrics() -> set[str]:
    return set(all_metrics())


def headline_metrics() -> tuple[str, ...]:
    """Metric names in the order a record's headline is picked (the first it has): every task's
    `headline`, those of the per-output numbers every task gets (OUTPUT_FIDELITY, which any record
    has) after the task-specific ones, then `snr_db` (a task that declares none)."""
    shared = {m.name for m in OUTPUT_FIDELITY}
    declared = [name for task in TASKS.names() for name in TASKS.get(task).headline]
    return tuple(dict.fromkeys([n for n in declared if n not in shared] + [n for n in declared if n in shared]
                               + [OUTPUT_FIDELITY[0].name]))


def agreement_metrics() -> tuple[str, ...]:
    """Every task's `agreement` metric (a record has at most one: its task's)."""
    return tuple(dict.fromkeys(a for name in TASKS.names() if (a := TASKS.get(name).agreement) is not None))
