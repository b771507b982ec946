"""Threshold checks against the float baseline, and how overrides combine."""

from __future__ import annotations

from harness.suite.schema import Bound, ThresholdOverride, Thresholds
from harness.verdicts import bounds_for, check


def record(scheme: str, top1: float, size: int, median: float, mae: float | None = None) -> dict:
    metrics = {"top1": top1} if mae is None else {"top1": top1, "mean_abs_error": mae}
    return {"model": "m", "scheme": scheme, "device": "local", "status": "ok", "size_bytes": size,
            "metrics": metrics, "latency_ms": {"median": median}}


BASE = record("float32", 0.90, 1000, 2.0)


def by_name(verdicts: list[dict]) -> dict[str, dict]:
    return {v["check"]: v for v in verdicts}


def test_absolute_and_relative_drop() -> None:
    bounds = {"top1": Bound(max_abs_drop=0.01, max_rel_drop=0.02)}
    verdicts = by_name(check(record("int8", 0.885, 250, 1.0), BASE, bounds))
    assert verdicts["top1.max_abs_drop"]["pass"] is False
    assert abs(verdicts["top1.max_abs_drop"]["value"] - 0.015) < 1e-9
    assert verdicts["top1.max_rel_drop"]["pass"] is True  # 0.015 / 0.9 = 1.7 %
    assert verdicts["top1.max_abs_drop"]["baseline"] == 0.90


def test_drop_exactly_at_threshold_passes() -> None:
    verdicts = check(record("int8", 0.89, 250, 1.0), BASE, {"top1": Bound(max_abs_drop=0.01)})
    assert verdicts[0]["pass"] is True


def test_lower_is_better_metric_drop_means_increase() -> None:
    base = record("float32", 0.9, 1000, 2.0, mae=0.0)
    cell = record("int8", 0.9, 250, 1.0, mae=0.05)
    verdicts = by_name(check(cell, base, {"mean_abs_error": Bound(max=0.01)}))
    assert verdicts["mean_abs_error.max"]["pass"] is False


def test_ratios_against_baseline() -> None:
    verdicts = by_name(check(record("int8", 0.9, 300, 3.0), BASE,
                             {"size_ratio": Bound(max=0.25), "latency_ratio": Bound(max=1.2)}))
    assert verdicts["size_ratio.max"]["value"] == 0.3 and not verdicts["size_ratio.max"]["pass"]
    assert verdicts["latency_ratio.max"]["value"] == 1.5 and not verdicts["latency_ratio.max"]["pass"]


def test_baseline_gets_absolute_bounds_only() -> None:
    verdicts = by_name(check(BASE, BASE, {"top1": Bound(min=0.95, max_abs_drop=0.0), "size_ratio": Bound(max=0.3)}))
    assert list(verdicts) == ["top1.min"] and verdicts["top1.min"]["pass"] is False


def test_missing_metric_is_skipped() -> None:
    assert check(record("int8", 0.9, 250, 1.0), BASE, {"top5": Bound(min=0.5)}) == []


def test_overrides_apply_in_order_per_metric() -> None:
    thresholds = Thresholds(
        defaults={"top1": Bound(max_abs_drop=0.01), "size_ratio": Bound(max=0.3)},
        overrides=[
            ThresholdOverride.model_validate({"schemes": ["float16"], "size_ratio": {"max": 0.55}}),
            ThresholdOverride.model_validate({"models": ["mobile_*"], "schemes": ["int*"], "top1": {"max_abs_drop": 0.03}}),
        ],
    )
    assert bounds_for(thresholds, "tiny", "float16")["size_ratio"].max == 0.55
    assert bounds_for(thresholds, "tiny", "float16")["top1"].max_abs_drop == 0.01
    assert bounds_for(thresholds, "mobile_cnn", "int8")["top1"].max_abs_drop == 0.03
    assert bounds_for(thresholds, "tutorial_cnn", "int8")["top1"].max_abs_drop == 0.01


def test_compressed_size_and_weight_statistics_are_checkable() -> None:
    base = {**BASE, "gzip_bytes": 900, "weights": {"sparsity": 0.0, "max_unique_per_channel": 250}}
    pruned = {**record("prune50", 0.9, 1000, 2.0), "gzip_bytes": 450,
              "weights": {"sparsity": 0.4, "max_unique_per_channel": 16}}
    bounds = {"gzip_ratio": Bound(max=0.6), "weight_sparsity": Bound(min=0.5), "unique_weights": Bound(max=16)}
    verdicts = by_name(check(pruned, base, bounds))
    assert verdicts["gzip_ratio.max"]["pass"] is True and verdicts["gzip_ratio.max"]["value"] == 0.5
    assert verdicts["weight_sparsity.min"]["pass"] is False  # 40 % zeros: pruning fell short
    assert verdicts["unique_weights.max"]["pass"] is True
