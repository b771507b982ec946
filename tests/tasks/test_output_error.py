"""The output error every task reports vs the float model."""

from __future__ import annotations

import numpy as np

from harness.tasks import TASKS
from harness.tasks._base import output_mae


def test_output_mae_covers_every_element_of_every_output() -> None:
    reference = [np.zeros((2, 3), np.float32), np.zeros((2, 1), np.float32)]
    outputs = [np.full((2, 3), 0.5, np.float32), np.full((2, 1), -4.0, np.float32)]
    assert output_mae(outputs, reference) == (6 * 0.5 + 2 * 4.0) / 8


def test_every_task_reports_it_the_same_way() -> None:
    for name in TASKS.names():
        assert "output_mae" in {m.name for m in TASKS.get(name).metrics}, name
    scores = np.array([[0.1, 0.9], [0.8, 0.2]], np.float32)
    fidelity = TASKS.get("classification").fidelity([scores], [scores[:, ::-1].copy()], None)
    assert fidelity == {"top1_agreement": 0.0, "output_mae": output_mae([scores], [scores[:, ::-1].copy()])}
