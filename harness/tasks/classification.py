"""Image classification: top-1 / top-5 accuracy, and agreement with the float model."""

from __future__ import annotations

import numpy as np

from harness.datasets import Dataset
from harness.errors import HarnessError, NotApplicable
from harness.tasks._base import OUTPUT_FIDELITY, TASKS, Metric, Task, TaskOptions


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the k highest scores."""
    if k == 1:
        return float(np.mean(np.argmax(scores, axis=1) == labels))
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def _check_labels(dataset: Dataset, scores: np.ndarray) -> None:
    """One row of scores per label, and labels the model can output (else every accuracy is silently wrong)."""
    classes = scores.shape[1]
    assert dataset.y is not None
    if np.asarray(dataset.y).dtype.kind not in "iu":
        raise HarnessError(f"dataset {dataset.name!r} has labels of type {np.asarray(dataset.y).dtype}, not class "
                           "indices (a classification task needs integer labels)")
    if len(scores) != len(dataset.y):
        raise HarnessError(f"dataset {dataset.name!r} has {len(dataset.y)} labels, the model gave {len(scores)} rows "
                           "of scores")
    low, high = int(np.min(dataset.y)), int(np.max(dataset.y))
    if low < 0 or high >= classes:
        raise HarnessError(f"dataset {dataset.name!r} has labels {low}..{high}, the model outputs {classes} "
                           f"classes (0..{classes - 1})")


@TASKS.register("classification", "top-1 (and top-5 with >= 5 classes); agreement and per-output numerics vs float")
class Classification(Task):
    Options = TaskOptions
    metrics = (
        Metric("top1", True, "top-1 accuracy"),
        Metric("top5", True, "top-5 accuracy (5 or more classes)"),
        Metric("top1_agreement", True, "share of inputs where the top-1 class equals the float model's", vs_float=True),
        *OUTPUT_FIDELITY,
    )
    headline = ("top1", "top1_agreement")
    agreement = "top1_agreement"

    def score(self, outputs: list[np.ndarray], dataset: Dataset, options: TaskOptions) -> dict[str, float]:
        if dataset.y is None:
            raise NotApplicable(f"dataset {dataset.name!r} has no labels")
        scores = outputs[0].reshape(len(outputs[0]), -1)
        _check_labels(dataset, scores)
        result = {"top1": top_k_accuracy(scores, dataset.y, 1)}
        if scores.shape[1] >= 5:
            result["top5"] = top_k_accuracy(scores, dataset.y, 5)
        return result

    def fidelity(self, outputs: list[np.ndarray], reference: list[np.ndarray],
                 options: TaskOptions) -> dict[str, float]:
        a, b = (out[0].reshape(len(out[0]), -1) for out in (outputs, reference))
        return {
            "top1_agreement": float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))
        }
