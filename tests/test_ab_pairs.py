"""The paired A/B re-timing adds pairs while its interval cannot tell: the stopping rule, on a
device whose timings are scripted (the rule, not the clock, is under test; real timing is in
tests/test_regression_tracker.py and tests/devices/android/test_phone_regressions.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from harness._latency import time_ab
from harness.config.schema import LatencySpec
from harness.devices import Device

A, B = Path("a.tflite"), Path("b.tflite")


class ScriptedDevice(Device):
    """Times model A at 1.0 ms and model B at the next of `ratios` (cycled), one sample a run."""

    def __init__(self, ratios: list[float]) -> None:
        self.ratios, self.calls = ratios, 0

    def measure_latency(self, model: Path, settings: LatencySpec) -> dict[str, Any]:
        if model == A:
            return {"samples": [1.0]}
        self.calls += 1
        return {"samples": [self.ratios[(self.calls - 1) % len(self.ratios)]]}


def spec(**options: Any) -> LatencySpec:
    return LatencySpec(warmup_runs=0, num_runs=1, min_secs=0, **options)


def test_a_clear_slowdown_stops_at_the_planned_pairs() -> None:
    ab = time_ab(ScriptedDevice([1.5, 1.52]), A, B, spec(ab_pairs=6), bound=1.05)  # type: ignore[arg-type]
    assert len(ab["pairs"]) == 6 and ab["extended"] == 0 and ab["ci"][0] > 1.05


def test_an_interval_across_the_bound_adds_pairs_two_at_a_time_up_to_the_budget() -> None:
    ab = time_ab(ScriptedDevice([0.98, 1.14]), A, B, spec(ab_pairs=5, ab_max_pairs=12), bound=1.05)  # type: ignore[arg-type]
    assert len(ab["pairs"]) == 11 and ab["extended"] == 6 and ab["ci"][0] <= 1.05 < ab["ci"][1]
    assert ab["bound"] == 1.05
    assert [p[0] for p in ab["pairs"]] == [1.0] * 11


def test_more_pairs_settle_a_small_but_real_slowdown() -> None:
    ratios = [1.02, 1.14, 1.05, 1.11, 1.07, 1.09]  # x1.08 on average, noisy
    few = time_ab(ScriptedDevice(ratios), A, B, spec(ab_pairs=4, ab_max_pairs=4), bound=1.05)  # type: ignore[arg-type]
    more = time_ab(ScriptedDevice(ratios), A, B, spec(ab_pairs=4), bound=1.05)  # type: ignore[arg-type]
    assert few["ci"][0] <= 1.05 and len(few["pairs"]) == 4
    assert more["ci"][0] > 1.05 and len(more["pairs"]) == 12 and more["extended"] == 8


def test_without_a_bound_the_planned_pairs_are_all() -> None:
    ab = time_ab(ScriptedDevice([0.98, 1.14]), A, B, spec(ab_pairs=4))  # type: ignore[arg-type]
    assert len(ab["pairs"]) == 4 and ab["extended"] == 0


def test_a_budget_below_the_planned_pairs_is_refused() -> None:
    with pytest.raises(ValidationError, match="ab_max_pairs .3. is below ab_pairs .5."):
        spec(ab_pairs=5, ab_max_pairs=3)
    assert spec(ab_pairs=5).most_ab_pairs == 20 and spec(ab_pairs=5, ab_max_pairs=5).most_ab_pairs == 5
