"""Run-vs-run regressions: planted slowdowns and accuracy drops are flagged, noise is not."""

from __future__ import annotations

from functools import partial

import pytest

from harness.compare import Policy, compare_runs, latency_test
from harness.config.schema import Bound, Thresholds
from harness.verdicts import bounds_for
from tests.report.runs import THRESHOLDS, cell, standard_cells

BOUNDS = partial(bounds_for, THRESHOLDS)


def regressed(current, previous, bounds=BOUNDS) -> set[tuple[str, str]]:
    return {(c.cell, c.quantity) for c in compare_runs(current, previous, bounds).regressions}


def test_planted_slowdown_and_accuracy_drop_are_both_flagged() -> None:
    comparison = compare_runs(standard_cells(seed=100, slowdown=1.10, top1_drop=0.05), standard_cells(seed=0),
                              BOUNDS, previous_label="run #1")
    assert {(c.cell, c.quantity) for c in comparison.regressions} == {
        ("digits_cnn/int8@local", "latency_ms"), ("digits_cnn/dynamic_range@local", "top1")}
    slow = next(c for c in comparison.regressions if c.quantity == "latency_ms")
    assert slow.latency is not None and slow.latency.p < 1e-6 and slow.latency.ratio == pytest.approx(1.10, abs=0.02)
    assert slow.latency.n_current == slow.latency.n_previous == 60 and slow.latency.u > 0
    drop = next(c for c in comparison.regressions if c.quantity == "top1")
    assert drop.rule == "top1.max_abs_drop ≤ 0.02" and drop.previous == 0.905 and drop.current == pytest.approx(0.855)


@pytest.mark.parametrize("seed", range(0, 200, 10))
def test_identical_work_with_fresh_samples_is_not_flagged(seed: int) -> None:
    assert regressed(standard_cells(seed=seed + 1000), standard_cells(seed=seed)) == set()


def test_a_significant_but_small_shift_is_noise_not_a_regression() -> None:
    before = [cell("m", "int8", latency_ms=10.0, samples=2000, seed=1)]
    after = [cell("m", "int8", latency_ms=10.2, samples=2000, seed=2)]
    (change,) = compare_runs(after, before, BOUNDS).latency_tests
    assert change.latency.p < 0.05 and change.latency.ratio < Policy().min_latency_ratio
    assert not change.regressed


def test_a_speedup_is_an_improvement() -> None:
    (change,) = compare_runs([cell("m", "int8", latency_ms=8.0, seed=2)], [cell("m", "int8", seed=1)],
                             BOUNDS).latency_tests
    assert change.improved and not change.regressed


def test_too_few_samples_skip_the_latency_test() -> None:
    assert latency_test([1.0, 2.0], [1.0, 2.0, 3.0, 4.0, 5.0]) is None


def test_size_growth_uses_the_suite_bound_else_the_default() -> None:
    before, after = [cell("m", "int8", size_bytes=1_000_000)], [cell("m", "int8", size_bytes=1_030_000)]
    assert regressed(after, before) == {("m/int8@local", "size_bytes")}  # default: 1 % growth allowed
    lenient = Thresholds(defaults={"size_ratio": Bound(max_rel_drop=0.05)})
    assert regressed(after, before, partial(bounds_for, lenient)) == set()


def test_a_cell_that_starts_failing_regresses_and_new_or_dropped_cells_are_listed() -> None:
    before = [cell("m", "float32"), cell("m", "int8"), cell("m", "gone")]
    after = [cell("m", "float32"), cell("m", "int8", status="failed", error="boom"), cell("m", "new")]
    comparison = compare_runs(after, before, BOUNDS)
    assert [(c.cell, c.quantity, c.detail) for c in comparison.regressions] == [("m/int8@local", "status", "boom")]
    assert comparison.new_cells == ["m/new@local"] and comparison.missing_cells == ["m/gone@local"]


def test_without_bounds_metric_changes_are_listed_but_not_judged() -> None:
    comparison = compare_runs(standard_cells(top1_drop=0.3), standard_cells(), None)
    (top1,) = [c for c in comparison.changes if c.quantity == "top1" and c.shown]
    assert not top1.judged and not top1.regressed


def timed(record: dict, artifact: str, runtime: str = "ai-edge-litert 2.3.0", core: int = 1) -> dict:
    """A cell as the runner records it: which model file was timed, by which runtime, on which core."""
    return {**record, "artifact": {"sha256": artifact}, "latency_setup": {"runtime": runtime, "core": core}}


@pytest.mark.parametrize(("current", "regression"), [
    ({"artifact": "a1"}, False),                                  # same file, runtime, core: the machine's
    ({"artifact": "b2"}, True),                                   # a new model file
    ({"artifact": "a1", "runtime": "ai-edge-litert 2.4.0"}, True),  # a runtime upgrade
    ({"artifact": "a1", "core": 0}, True),                        # another core
])
def test_a_slowdown_is_attributed_to_what_changed(current: dict, regression: bool) -> None:
    before = [timed(cell("m", "int8", seed=1), "a1")]
    after = [timed(cell("m", "int8", latency_ms=11.0, seed=2), **current)]
    (change,) = compare_runs(after, before, BOUNDS).latency_tests
    assert change.latency.p < 0.05 and change.latency.ratio >= 1.05
    assert change.regressed is regression
    assert ("the machine changed, not the model" in change.detail) is (not regression)


def test_a_suite_can_ask_to_flag_slowdowns_of_unchanged_models() -> None:
    before = [timed(cell("m", "int8", seed=1), "a1")]
    after = [timed(cell("m", "int8", latency_ms=11.0, seed=2), "a1")]
    (change,) = compare_runs(after, before, BOUNDS, Policy(flag_unchanged=True)).latency_tests
    assert change.regressed and "machine" not in change.detail
