"""Latency steps across the recent runs (harness.compare.latency_steps): one pass over each run's records."""

from __future__ import annotations

from harness.compare import DEFAULT_POLICY, TrendPoint, latency_steps
from tests.report.runs import cell


def _run(night: int, slow: float, *, failed: bool = False, missing: bool = False) -> TrendPoint:
    records = [cell("m", "float32", latency_ms=10.0, seed=night)]
    if not missing:
        records.append(cell("m", "int8", latency_ms=5.0 * slow, seed=night, status="failed" if failed else "ok"))
    return TrendPoint.of(f"run {night}", f"{night:040x}", records)


def test_a_lasting_step_is_found_with_its_run_and_the_median_before() -> None:
    points = [_run(0, 1.0), _run(1, 1.0, failed=True), _run(2, 1.0, missing=True), _run(3, 1.0), _run(4, 1.5),
              _run(5, 1.5)]
    steps = latency_steps(points, DEFAULT_POLICY)
    assert [(s.cell, s.run, s.git_commit) for s in steps] == [("m/int8@local", "run 4", f"{4:040x}")]
    step = steps[0]
    assert 4.8 < step.before < 5.2 and 7.2 < step.after < 7.8  # a failed or missing night has no value
    assert abs(step.ratio - step.after / step.before) < 1e-12


def test_one_slow_night_is_not_a_step() -> None:
    assert latency_steps([_run(0, 1.0), _run(1, 1.0), _run(2, 1.5), _run(3, 1.0)], DEFAULT_POLICY) == []
