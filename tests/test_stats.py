"""Latency statistics: bounded samples, repeats, paired ratios, steps across runs."""

from __future__ import annotations

import numpy as np
import pytest

from harness.compare import Policy, TrendPoint, latency_steps
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
    points = [TrendPoint.of(f"run #{i}", f"{i:040x}", [cell("m", "int8", latency_ms=v, seed=i), cell("m", "float32")])
              for i, v in enumerate(latencies)]
    (step,) = latency_steps(points, Policy(min_latency_ratio=1.2))
    assert (step.cell, step.run, step.git_commit[-1]) == ("m/int8@local", "run #4", "4")
    assert step.ratio == pytest.approx(1.24, abs=0.02)


def test_three_repeat_medians_a_side_can_show_a_slowdown_where_a_rank_test_cannot() -> None:
    from harness.stats import log_t_test, rank_test

    before, after = [1.00, 1.01, 0.99], [1.10, 1.12, 1.09]
    assert rank_test(before, after, "repeat medians", 3).p == pytest.approx(0.05)  # its floor: never < 0.05
    test = log_t_test(before, after, "repeat medians", 3)
    assert test.p < 0.01 and test.t > 5 and test.ratio == pytest.approx(1.10) and test.u is None
    assert log_t_test(after, before, "repeat medians", 3).p > 0.99  # faster is not slower
    assert log_t_test(before, before[:2], "repeat medians", 3) is None


def test_repeat_medians_without_spread_differ_or_not() -> None:
    from harness.stats import log_t_test

    assert log_t_test([1.0] * 3, [7.0] * 3, "repeat medians", 3).p == 0.0
    assert log_t_test([2.0] * 3, [2.0] * 3, "repeat medians", 3).p == 1.0
    assert log_t_test([2.0] * 3, [1.0] * 3, "repeat medians", 3).p == 1.0


def test_a_changed_model_slower_across_runs_on_repeat_medians_is_flagged() -> None:
    from harness.compare import compare_runs

    def night(medians: list[float], sha: str) -> dict:
        record = cell("m", "int8", latency_ms=float(np.median(medians)))
        record["latency_ms"]["repeat_medians"] = medians
        record["artifact"] = {"sha256": sha, "path": "/gone.tflite"}
        return record

    policy = Policy(min_latency_ratio=1.05)
    slower = compare_runs([night([1.10, 1.12, 1.09], "b")], [night([1.00, 1.01, 0.99], "a")], None, policy=policy)
    assert [c.detail for c in slower.regressions][0].startswith("cross-run, repeat medians: ×1.100, Welch t=")
    same = compare_runs([night([1.01, 1.00, 1.02], "b")], [night([1.00, 1.01, 0.99], "a")], None, policy=policy)
    assert not same.regressions
