"""The five per-output numbers against hand-computed cases, and their JSON-safe form in records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness.config.schema import Bound
from harness.fidelity import OutputInfo, aligned, compare_outputs, json_number, output_fidelity, worst
from harness.results import ResultsWriter, read_results
from harness.tasks import TASKS, threshold_metrics
from harness.verdicts import check

REF = np.array([[1.0, -1.0], [1.0, -1.0]], np.float32)
OUT = np.array([[1.1, -1.0], [1.0, -0.9]], np.float32)
NAMES = ("snr_db", "cosine", "nrmse", "max_abs_error", "mean_abs_error")


def test_hand_computed_case() -> None:
    numbers = compare_outputs(OUT, REF)
    # error² sum 0.02, signal power 4: SNR 10·log10(200); RMSE √(0.02/4) over std 1
    assert numbers["snr_db"] == pytest.approx(10 * math.log10(200), rel=1e-5)
    assert numbers["cosine"] == pytest.approx(4.0 / (2 * math.sqrt(4.02)), rel=1e-5)
    assert numbers["nrmse"] == pytest.approx(math.sqrt(0.005), rel=1e-5)
    assert numbers["max_abs_error"] == pytest.approx(0.1, rel=1e-5)
    assert numbers["mean_abs_error"] == pytest.approx(0.05, rel=1e-5)


def test_identical_outputs() -> None:
    assert compare_outputs(REF, REF.copy()) == {"snr_db": math.inf, "cosine": 1.0, "nrmse": 0.0,
                                                "max_abs_error": 0.0, "mean_abs_error": 0.0}


def test_constant_and_zero_float_outputs() -> None:
    constant = np.full((2, 2), 2.0, np.float32)
    drifted = constant.copy()
    drifted[1, 1] = 2.4
    assert compare_outputs(drifted, constant)["nrmse"] == pytest.approx(0.2 / 2.0, rel=1e-5)  # RMSE / |mean|
    zeros = np.zeros((2, 2), np.float32)
    assert compare_outputs(zeros, zeros.copy())["nrmse"] == 0.0
    assert compare_outputs(zeros, zeros.copy())["cosine"] == 1.0
    off = compare_outputs(np.ones((2, 2), np.float32), zeros)
    assert off["nrmse"] == math.inf and off["snr_db"] == -math.inf and off["cosine"] == 0.0


def test_nan_outputs_give_nan_numbers_and_fail_checks(tmp_path: Path) -> None:
    broken = OUT.copy()
    broken[0, 0] = np.nan
    numbers = compare_outputs(broken, REF)
    assert all(math.isnan(numbers[n]) for n in NAMES)
    metrics, entries = output_fidelity([broken, OUT], [REF, REF], [OutputInfo("a", "float32"), OutputInfo("b", "int8")])
    assert metrics["snr_db"] == "NaN" and entries[0]["snr_db"] == "NaN" and entries[1]["snr_db"] != "NaN"
    verdicts = check({"metrics": metrics}, None, {"snr_db": Bound(min=30), "nrmse": Bound(max=0.1)})
    assert [v["pass"] for v in verdicts] == [False, False]
    record = {"model": "m", "scheme": "int8", "device": "local", "status": "ok", "metrics": metrics,
              "outputs": entries, "verdicts": verdicts}
    ResultsWriter(tmp_path).append(record)  # a NaN finding is written, not a crash
    assert math.isnan(read_results(tmp_path)[0]["verdicts"][0]["value"])  # "NaN" on disk, a float in memory
    from harness.report.junit import render_junit  # noqa: PLC0415

    assert "snr_db: nan breaks snr_db.min 30" in render_junit([record], {"suite": "s"}, None)


def test_worst_output_per_metric() -> None:
    good, bad = compare_outputs(REF, REF.copy()), compare_outputs(OUT, REF)
    result = worst([good, bad])
    assert result["snr_db"] == bad["snr_db"] and result["cosine"] == bad["cosine"]
    assert result["nrmse"] == bad["nrmse"] and result["max_abs_error"] == bad["max_abs_error"]


def test_json_safe_numbers_pass_thresholds_and_serialise(tmp_path: Path) -> None:
    assert [json_number(v) for v in (1.5, math.inf, -math.inf, math.nan)] == [1.5, "Infinity", "-Infinity", "NaN"]
    metrics, entries = output_fidelity([REF.copy()], [REF], [OutputInfo("logits", "float32")])
    assert metrics["snr_db"] == "Infinity"
    assert entries == [{"name": "logits", "shape": [2, 2], "dtype": "float32", "snr_db": "Infinity", "cosine": 1.0,
                        "nrmse": 0.0, "max_abs_error": 0.0, "mean_abs_error": 0.0}]
    record = {"model": "m", "scheme": "int8", "device": "local", "status": "ok", "metrics": metrics,
              "outputs": entries}
    record["verdicts"] = check(record, None, {"snr_db": Bound(min=30)})
    assert record["verdicts"][0]["pass"] is True and record["verdicts"][0]["value"] == math.inf
    ResultsWriter(tmp_path).append(record)  # strict JSON (allow_nan=False): "Infinity" on disk
    assert '"snr_db":"Infinity"' in (tmp_path / "results.jsonl").read_text()
    assert read_results(tmp_path)[0]["outputs"][0]["snr_db"] == math.inf
    json.loads((tmp_path / "results.jsonl").read_text())


def test_reference_aligned_by_output_name() -> None:
    a, b = np.zeros(1), np.ones(1)
    assert aligned([a, b], ["x", "y"], ["y", "x"]) == [b, a]
    assert aligned([a, b], ["x", "y"], ["p", "q"]) == [a, b]  # other names: by position


def test_fidelity_task_and_threshold_names() -> None:
    task = TASKS.get("fidelity")
    assert {m.name for m in task.metrics} == set(NAMES) <= threshold_metrics()
    assert task.score([OUT], None, task.Options()) == {}
    assert task.fidelity([OUT], [REF], task.Options()) == compare_outputs(OUT, REF)
    for name in TASKS.names():  # a task that runs the model itself (generation) has no per-output numbers
        if not TASKS.get(name).runs_model:
            assert set(NAMES) <= {m.name for m in TASKS.get(name).metrics}, name
    with pytest.raises(Exception, match="shape"):
        compare_outputs(OUT[:1], REF)
