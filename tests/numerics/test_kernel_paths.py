"""Numerics on the path that runs, and how much of a model the local CPU's XNNPACK takes (issue 23).

A tiny Keras MLP (Dense with a fused RELU) quantized with litert-quantizer's `dynamic_wi4b32_afp32`
(blockwise int4 weights): XNNPACK computes it well, LiteRT's builtin and reference kernels do not
(ai-edge-litert 2.3.0: about 18 dB, -3 dB and 0 dB here). The cross-kernel check records each
path's SNR and the gap, and the implicit `kernel_gap_db: {max: 10}` check fails. An int16x8 model
(XNNPACK takes none of its ops) and a model with a CUMSUM (XNNPACK takes the ops around it) say so
in `acceleration`, and a `fully_delegated: {min: 1}` check fails for them on the local device.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness.config.schema import Bound, Thresholds
from harness.numerics import kernels
from harness.record import CellRecord, validate_record
from harness.tflite.runtime import acceleration, delegated_nodes, kernels_used, load_interpreter
from harness.verdicts import IMPLICIT_BOUNDS, bounds_for, check

pytestmark = pytest.mark.slow  # converts real Keras/TF models and quantizes them with litert-quantizer


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """float.tflite (Dense-relu MLP), wi4b32.tflite (its blockwise int4), a16w8.tflite, partial.tflite."""
    import keras
    import tensorflow as tf
    from litert_quantizer import recipe

    from harness.schemes._quantizer import quantize, static_recipe

    folder = tmp_path_factory.mktemp("kernels")
    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
                            keras.layers.Dense(64, activation="relu"), keras.layers.Dense(8)])
    float_model = tf.lite.TFLiteConverter.from_keras_model(mlp).convert()
    calibration = np.random.default_rng(1).normal(size=(8, 64)).astype(np.float32)
    files = {"float": float_model, "wi4b32": quantize(float_model, recipe.dynamic_wi4b32_afp32()),
             "a16w8": quantize(float_model, static_recipe("int16", True), calibration),
             "partial": _with_cumsum(tf)}
    for name, data in files.items():
        (folder / f"{name}.tflite").write_bytes(data)
    return {name: folder / f"{name}.tflite" for name in files}


def _with_cumsum(tf) -> bytes:
    """FULLY_CONNECTED → CUMSUM (no XNNPACK kernel) → FULLY_CONNECTED: two XNNPACK partitions."""
    first, second = tf.Variable(tf.random.normal((16, 16), seed=1)), tf.Variable(tf.random.normal((16, 16), seed=2))

    @tf.function(input_signature=[tf.TensorSpec((1, 16), tf.float32)])
    def forward(x):
        return tf.matmul(tf.math.cumsum(tf.nn.relu(tf.matmul(x, first)), axis=1), second)

    return tf.lite.TFLiteConverter.from_concrete_functions([forward.get_concrete_function()]).convert()


def _inputs(count: int = 32) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(count, 64)).astype(np.float32)


def _float_outputs(models: dict[str, Path]) -> list[np.ndarray]:
    from harness.tflite.runtime import predict

    return predict(models["float"], _inputs(), batch_size=1)


def test_blockwise_int4_kernel_gap_is_recorded_and_fails_the_implicit_check(models: dict[str, Path]) -> None:
    result = kernels.cross_kernel(models["wi4b32"], _inputs(), _float_outputs(models), batch=1)
    paths = result["kernel_paths"]
    assert set(paths) == {"xnnpack", "builtin", "reference"} and not result["unavailable"]
    # LiteRT 2.3.0's builtin and reference FULLY_CONNECTED get blockwise int4 with a fused RELU wrong
    assert paths["xnnpack"] > 12 and paths["builtin"] < 5 and paths["reference"] < 5, paths
    assert result["kernel_gap_db"] == pytest.approx(paths["xnnpack"] - min(paths["builtin"], paths["reference"]))
    record = _record(result)
    verdicts = check(record, _record(None), bounds_for(Thresholds(), "mlp", "wi4b32"))
    gap = next(v for v in verdicts if v["metric"] == "kernel_gap_db")
    assert gap["check"] == "kernel_gap_db.max" and gap["threshold"] == 10 and gap["pass"] is False
    relaxed = Thresholds(defaults={"kernel_gap_db": Bound(max=40)})  # a suite can relax it
    assert all(v["pass"] for v in check(record, _record(None), bounds_for(relaxed, "mlp", "wi4b32")))


def test_float_model_agrees_on_every_path(models: dict[str, Path]) -> None:
    """Float rounding between kernels is no gap: SNRs above the ceiling count as the ceiling."""
    result = kernels.cross_kernel(models["float"], _inputs(), _float_outputs(models), batch=1)
    assert math.isinf(float(result["kernel_paths"]["xnnpack"])) and result["kernel_gap_db"] == 0


def _record(check_result: dict | None) -> CellRecord:
    record = CellRecord(model="mlp", scheme="wi4b32" if check_result else "float32", device="local", status="ok",
                        metrics={}, evaluation={"kernels": "xnnpack"})
    if check_result is not None:
        kernels.attach(record, check_result, 32)
    return validate_record(json.loads(json.dumps(record)))


def test_gap_arithmetic() -> None:
    assert kernels.kernel_gap({"xnnpack": 23.0, "builtin": 1.0, "reference": 0.0}) == 23.0
    assert kernels.kernel_gap({"xnnpack": math.inf, "builtin": 140.0}) == 0.0
    assert kernels.kernel_gap({"xnnpack": 20.0, "builtin": 30.0}) == -10.0
    assert math.isnan(kernels.kernel_gap({"xnnpack": 20.0, "builtin": math.nan}))  # type: ignore[arg-type]
    assert kernels.kernel_gap({"xnnpack": 20.0}) is None and kernels.kernel_gap({"builtin": 2.0}) is None


def test_implicit_check_is_skipped_by_design_and_fails_when_the_check_failed() -> None:
    bounds = bounds_for(Thresholds(), "m", "s")
    assert bounds["kernel_gap_db"] is IMPLICIT_BOUNDS["kernel_gap_db"]
    quiet = CellRecord(model="m", scheme="s", device="local", status="ok", metrics={}, evaluation={})
    assert check(quiet, None, bounds) == []
    broken = CellRecord(model="m", scheme="s", device="local", status="ok", metrics={},
                        evaluation={"kernel_check_error": "RuntimeError: boom"})
    baseline = CellRecord(model="m", scheme="float32", device="local", status="ok", metrics={})
    [verdict] = check(broken, baseline, bounds)
    assert verdict["pass"] is False and "cross-kernel check: RuntimeError: boom" in verdict["note"]


def test_acceleration_counts_xnnpack_nodes(models: dict[str, Path]) -> None:
    full = acceleration(models["wi4b32"])
    assert full["fully_accelerated"] is True and full["fully_delegated"] is True
    assert (full["delegated_nodes"], full["nodes"], full["partitions"]) == (3, 3, 1)
    none = acceleration(models["a16w8"])
    assert none["fully_accelerated"] is False and none["fully_delegated"] is False
    assert none["delegated_nodes"] == 0 and none["partitions"] == 0 and none["nodes"] == 5
    partial = acceleration(models["partial"])
    assert (partial["delegated_nodes"], partial["nodes"], partial["partitions"]) == (2, 3, 2)
    assert partial["fully_accelerated"] is False and partial["ratio"] == pytest.approx(2 / 3)
    assert kernels_used(models["wi4b32"]) == "xnnpack" and kernels_used(models["a16w8"]) == "builtin"
    assert kernels_used(models["partial"]) == "xnnpack+builtin"
    assert delegated_nodes(load_interpreter(models["partial"], kernels="builtin")) == (3, 0, 0)


def test_fully_delegated_threshold_on_local_records(models: dict[str, Path]) -> None:
    bounds = {"fully_delegated": Bound(min=1), "delegated_nodes_ratio": Bound(min=0.9)}
    for name, passes in (("wi4b32", True), ("a16w8", False), ("partial", False)):
        record = CellRecord(model=name, scheme="float32", device="local", status="ok", metrics={},
                            acceleration=acceleration(models[name], 1))
        record = validate_record(json.loads(json.dumps(record)))
        assert [v["pass"] for v in check(record, record, bounds)] == [passes, passes], name
    failed = CellRecord(model="m", scheme="float32", device="local", status="ok", metrics={},
                        acceleration={"error": "the acceleration probe failed (exit 1): boom"})
    assert all(not v["pass"] and "probe failed" in v["note"] for v in check(failed, failed, bounds))


SUITE = """\
name: kernels
datasets:
  noise: {kind: synthetic, count: 40, low: -1, high: 1, seed: 3}
models:
  - {name: mlp, path: float.tflite}
task: {kind: classification, dataset: noise}
calibration: {dataset: noise, samples: 8}
schemes: [float32, dynamic_range, int16x8]
latency: {float_pairs: 0, warmup_runs: 1, num_runs: 2, min_secs: 0}
thresholds:
  defaults:
    fully_delegated: {min: 1}
"""


def test_suite_records_acceleration_kernel_paths_and_diagnose_says_its_kernels(models: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    """Every local record has `acceleration`; int16x8 (no XNNPACK op) fails `fully_delegated: {min: 1}`;
    cells record their kernel paths; `bench diagnose` runs on the deployed kernels and says so."""
    from harness.results import read_results
    from tests.conftest import latest, run_bench

    (tmp_path / "float.tflite").write_bytes(models["float"].read_bytes())
    (tmp_path / "suite.yaml").write_text(SUITE)
    ran = run_bench("run", "suite.yaml", "--reports", "reports", "--cache", "cache", cwd=tmp_path)
    assert ran.returncode == 1 and "Traceback" not in ran.stdout + ran.stderr, ran.stdout + ran.stderr
    run_dir = latest(tmp_path / "reports" / "kernels")
    records = {r["scheme"]: r for r in read_results(run_dir)}
    assert all(r["status"] == "ok" for r in records.values()), [r["error"] for r in records.values()]
    assert all("acceleration" in r and "error" not in r["acceleration"] for r in records.values())
    assert records["float32"]["acceleration"]["fully_accelerated"] is True
    sixteen = records["int16x8"]
    assert sixteen["acceleration"]["delegated_nodes"] == 0 and sixteen["evaluation"]["kernels"] == "builtin"
    verdicts = {v["check"]: v["pass"] for v in sixteen["verdicts"]}
    assert verdicts["fully_delegated.min"] is False and verdicts["kernel_gap_db.max"] is True
    assert set(sixteen["kernel_paths"]) == {"xnnpack", "builtin", "reference"}
    assert records["dynamic_range"]["evaluation"]["kernels"] == "xnnpack"
    assert "kernel_gap_db" in records["dynamic_range"]["metrics"] and "kernel_paths" not in records["float32"]
    done = run_bench("diagnose", str(run_dir), "mlp/dynamic_range", "--samples", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kernels: deployed: xnnpack (the kernels the cell's model is deployed on)" in done.stdout
    written = json.loads(next((run_dir / "diagnose").glob("*.json")).read_text())
    assert written["kernels"] == "deployed: xnnpack"
