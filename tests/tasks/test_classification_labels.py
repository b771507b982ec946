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
