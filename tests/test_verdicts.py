"""Threshold checks against the float baseline, and how overrides combine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.config.schema import Bound, ThresholdOverride, Thresholds
from harness.results import read_results
from harness.verdicts import bounds_for, check
from tests.conftest import run_bench
from tests.report.runs import plain


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


def test_a_configured_metric_not_produced_fails_with_the_reason() -> None:
    cell = {**record("int8", 0.9, 250, 1.0), "metrics": {}, "metrics_na": "task metrics n/a: dataset 'd' has no labels"}
    verdicts = by_name(check(cell, BASE, {"top1": Bound(max_abs_drop=0.2), "top5": Bound(min=0.5)}))
    assert set(verdicts) == {"top1.max_abs_drop", "top5.min"}
    assert not any(v["pass"] for v in verdicts.values())
    assert verdicts["top1.max_abs_drop"]["note"] == "top1 was not produced: task metrics n/a: dataset 'd' has no labels"


def test_a_drop_without_a_float_baseline_value_fails() -> None:
    unlabelled = {**BASE, "metrics": {}, "metrics_na": "task metrics n/a: no labels"}
    for baseline, why in ((None, "did not finish"), ({**BASE, "status": "failed"}, "is failed"),
                          (unlabelled, "did not produce it (task metrics n/a: no labels)")):
        verdicts = check(record("int8", 0.9, 250, 1.0), baseline, {"top1": Bound(max_abs_drop=0.2),
                                                                   "size_ratio": Bound(max=0.5)})
        expected = [False, True] if baseline is unlabelled else [False, False]  # size_ratio: the float cell's size
        assert [v["pass"] for v in verdicts] == expected, verdicts
        assert all(why in v["note"] for v in verdicts if v["metric"] == "top1"), verdicts


def test_vs_float_metrics_are_not_checked_on_the_float_cell_but_its_own_are() -> None:
    bounds = {"size_ratio": Bound(max=1.0), "top1_agreement": Bound(min=0.9), "top5": Bound(min=0.5),
              "device_snr_db": Bound(min=40)}
    verdicts = by_name(check(BASE, BASE, bounds))
    assert set(verdicts) == {"top5.min", "device_snr_db.min"} and not any(v["pass"] for v in verdicts.values())
    assert "no device numerics" in verdicts["device_snr_db.min"]["note"]


def test_compare_checks_drops_only_where_both_runs_have_the_metric() -> None:
    earlier = {**record("int8", 0.9, 250, 1.0), "metrics": {}}
    assert check(record("int8", 0.9, 250, 1.0), earlier, {"top1": Bound(max_abs_drop=0.01)}, vs_earlier=True) == []


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


# -- end to end: a label key that is not in the npz (issue 20, item 4) -----------------------
def _npz_suite(folder: Path, dataset: str, labels: bool) -> None:
    from sklearn.datasets import load_digits

    from tests.test_integrity import write_suite

    digits = load_digits()
    arrays = {"x": (digits.images[:64] / 16.0).astype(np.float32)[..., None]}
    np.savez(folder / "d.npz", **arrays, **({"y": digits.target[:64]} if labels else {}))
    suite = write_suite(folder).read_text().replace("test: {kind: digits, split: test}", dataset)
    (folder / "suite.yaml").write_text(suite)


@pytest.mark.slow
def test_a_y_key_missing_from_the_npz_fails_the_cells_with_the_reason(tmp_path: Path, session_cache: Path) -> None:
    _npz_suite(tmp_path, "test: {kind: npz, path: d.npz, y_key: labels}", labels=True)
    done = run_bench("run", "suite.yaml", "--cache", str(session_cache), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr, done.stderr
    records = read_results(next((tmp_path / "reports" / "integrity").iterdir()))
    assert len(records) == 2 and all(r["status"] == "failed" for r in records)
    assert all("d.npz has no array 'labels' (has ['x', 'y'])" in r["error"] for r in records)


@pytest.mark.slow
def test_an_accuracy_bound_without_labels_fails_and_says_why(tmp_path: Path, session_cache: Path) -> None:
    _npz_suite(tmp_path, "test: {kind: npz, path: d.npz}", labels=False)
    done = run_bench("run", "suite.yaml", "--cache", str(session_cache), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr, done.stderr
    assert "FAIL: " in done.stdout and "cell(s) violate thresholds" in done.stdout  # the one verdict line
    run_dir = next((tmp_path / "reports" / "integrity").iterdir())
    cell = next(r for r in read_results(run_dir) if r["scheme"] == "dynamic_range")
    (verdict,) = [v for v in cell["verdicts"] if v["metric"] == "top1"]  # beside the scheme's claims, kernel gap
    assert verdict["check"] == "top1.max_abs_drop" and verdict["pass"] is False
    assert verdict["note"] == "top1 was not produced: task metrics n/a: dataset 'test' has no labels"
    assert "top1.max_abs_drop" in plain((run_dir / "summary.md").read_text())
