"""Latency statistics: bounded samples, repeats, paired ratios, steps across runs."""

from __future__ import annotations

import numpy as np
import pytest

from harness.compare import TrendPoint, latency_steps, Policy
from harness.stats import bounded_sample, combine_repeats, find_step, paired_ratio
from tests.report.runs import cell


def test_a_bounded_sample_keeps_the_distribution_in_at_most_1000_values() -> None:
    values = np.random.default_rng(0).lognormal(0, 0.3, 60_000)
    kept = bounded_sample(values)
    assert len(kept) == 1000 and kept == sorted(kept)
    assert kept[0] == pytest.approx(values.min(), rel=1e-5) and kept[-1] == pytest.approx(values.max(), rel=1e-5)
    assert np.median(kept) == pytest.approx(np.median(values), rel=2e-3)
    assert bounded_sample([3.0, 1.0]) == [1.0, 3.0]


def test_repeats_give_their_medians_and_the_median_of_them() -> None:
    repeats = [{"stats": {"median": m, "mean": m, "count": 10}, "samples": [m] * 10} for m in (1.0, 1.2, 5.0)]
    stats = combine_repeats(repeats)
    assert stats["repeat_medians"] == [1.0, 1.2, 5.0] and stats["median"] == 1.2 and stats["repeats"] == 3
    logs = [{"stats": {"mean": 2.0, "count": 50}, "samples": None}, {"stats": {"mean": 4.0, "count": 50}}]
    legacy = combine_repeats(logs)  # benchmark_model logs of old releases: means only
    assert "median" not in legacy and legacy["mean"] == 3.0 and legacy["repeat_medians"] == [2.0, 4.0]


def test_paired_ratio_and_its_interval() -> None:
    pairs = [(1.0, 1.10), (1.2, 1.33), (0.9, 0.99), (1.1, 1.20), (1.0, 1.11)]
    result = paired_ratio(pairs)
    assert result["ratio"] == pytest.approx(1.10, abs=0.01) and 1.05 < result["ci"][0] < 1.10 < result["ci"][1]
    assert paired_ratio([(1.0, 2.0)])["ci"] is None


def test_a_step_needs_two_runs_in_a_row() -> None:
    assert find_step([1.0, 1.0, 1.02, 1.4, 1.0, 1.0], 1.3) is None  # one noisy night
    assert find_step([1.0, 1.0, 1.02, 1.4, 1.41, 1.39], 1.3) == 3
    assert find_step([1.0, None, 1.0, 1.5, 1.5], 1.3) == 3


def test_latency_steps_name_the_run_and_commit_where_a_slowdown_started() -> None:
    latencies = [10.0, 10.1, 9.9, 10.0, 12.4, 12.5]
    points = [TrendPoint(f"run #{i}", f"{i:040x}", [cell("m", "int8", latency_ms=v, seed=i), cell("m", "float32")])
              for i, v in enumerate(latencies)]
    (step,) = latency_steps(points, Policy(min_latency_ratio=1.2))
    assert (step.cell, step.run, step.git_commit[-1]) == ("m/int8@local", "run #4", "4")
    assert step.ratio == pytest.approx(1.24, abs=0.02)
