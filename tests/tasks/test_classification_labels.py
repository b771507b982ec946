"""Labels outside the model's classes fail the cell with the ranges, instead of a silently wrong accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from harness.datasets import Dataset
from harness.errors import HarnessError
from harness.tasks import TASKS
from harness.tasks._base import TaskOptions


def test_labels_outside_the_classes_are_an_error() -> None:
    data = Dataset("d", np.zeros((3, 2), np.float32), np.array([0, 1, 12]), 13, "test")
    with pytest.raises(HarnessError, match=r"labels 0\.\.12, the model outputs 10 classes \(0\.\.9\)"):
        TASKS.get("classification").score([np.zeros((3, 10), np.float32)], data, TaskOptions())


def test_labels_that_are_not_class_indices_are_an_error() -> None:
    boxes = np.array([{"boxes": []}, {"boxes": []}], dtype=object)
    data = Dataset("faces", np.zeros((2, 2), np.float32), boxes, 2, "test")
    with pytest.raises(HarnessError, match="'faces' has labels of type object, not class indices"):
        TASKS.get("classification").score([np.zeros((2, 10), np.float32)], data, TaskOptions())


def test_one_row_of_scores_per_label() -> None:
    data = Dataset("d", np.zeros((3, 2), np.float32), np.array([0, 1, 2]), 3, "test")
    with pytest.raises(HarnessError, match="'d' has 3 labels, the model gave 1 rows of scores"):
        TASKS.get("classification").score([np.zeros((1, 30), np.float32)], data, TaskOptions())
