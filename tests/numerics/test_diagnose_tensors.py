"""Per-sample stacking of intermediate tensors in `bench diagnose` (a transformer's layer norm has scalar tensors)."""

from __future__ import annotations

import numpy as np

from harness.numerics.diagnose import _per_sample


def test_scalar_tensors_are_stacked_and_batched_ones_concatenated() -> None:
    assert _per_sample([np.array(2.0), np.array(3.0)]).tolist() == [2.0, 3.0]
    batched = _per_sample([np.ones((1, 4)), np.zeros((1, 4))])
    assert batched.shape == (2, 4) and batched[0].tolist() == [1.0] * 4
