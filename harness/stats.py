"""Summary statistics of per-iteration latency samples."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def summarize(samples_ms: Sequence[float]) -> dict[str, float | int]:
    """median, mean, p90, std, min, max and count of latency samples (milliseconds)."""
    if not samples_ms:
        raise ValueError("no latency samples")
    values = np.asarray(samples_ms, dtype=np.float64)
    return {
        "median": float(np.median(values)),
        "mean": float(values.mean()),
        "p90": float(np.percentile(values, 90)),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "min": float(values.min()),
        "max": float(values.max()),
        "count": int(len(values)),
    }


def coefficient_of_variation(values: Sequence[float]) -> float:
    """std / mean (sample std); 0 for fewer than two values."""
    array = np.asarray(values, dtype=np.float64)
    if len(array) < 2 or array.mean() == 0:
        return 0.0
    return float(array.std(ddof=1) / array.mean())
