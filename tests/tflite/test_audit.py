"""The audit of produced models (ops by precision, bytes by dtype, integer_only with its culprits)
and the verified float baseline (an int8 source refused unless `baseline: as_is`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.cache import ArtifactCache
from harness.config.schema import ModelSpec
from harness.errors import HarnessError
from harness.models.source import resolve_source
from harness.schemes import SCHEMES
from harness.tflite.audit import audit_bytes
from harness.tflite.normalize import normalize, not_float
from harness.verdicts import cell_values

CALIBRATION = np.random.default_rng(1).uniform(0, 1, (16, 8, 8, 1)).astype(np.float32)


def produce(saved_model: Path, scheme: str) -> bytes:
    implementation = SCHEMES.get(scheme)
    return implementation.from_saved_model(saved_model, implementation.Options(),
                                           CALIBRATION if implementation.needs_calibration else None)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Flatten(), keras.layers.Dense(32),
                              keras.layers.Softmax()])
    path = tmp_path_factory.mktemp("audit") / "cnn"
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path


@pytest.fixture(scope="module")
def with_sine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conv followed by SIN, an op without an int8 kernel: it stays float in an int8 model."""
    import tensorflow as tf

    class Model(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = tf.Variable(np.random.default_rng(0).uniform(-1, 1, (3, 3, 1, 4)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 1], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            return tf.sin(tf.nn.conv2d(x, self.kernel, 1, "VALID"))

    module = Model()
    path = tmp_path_factory.mktemp("audit") / "sine"
    tf.saved_model.save(module, str(path), signatures=module.__call__)
    return path


def test_int8_only_is_integer_only(cnn: Path) -> None:
    audit = audit_bytes(produce(cnn, "int8_only"))
    assert audit["integer_only"] is True and audit["integer_only_breakers"] == []
    assert audit["ops_by_kind"]["float"] == 0 and audit["stayed_float"] == []
    assert audit["ops"]["CONV_2D"] == {"count": 1, "float": 0, "int8": 1, "int16": 0, "other": 0, "hybrid": 0}
    assert "float32" not in audit["bytes_by_dtype"] and audit["bytes_by_dtype"]["int8"] == 36 + 36 * 32


def test_float_io_breaks_integer_only_at_the_edges(cnn: Path) -> None:
    audit = audit_bytes(produce(cnn, "int8"))
    assert audit["integer_only"] is False
    reasons = {(row["op"], row["reason"]) for row in audit["stayed_float"]}
    assert reasons == {("QUANTIZE", "quantizes the float model input"),
                       ("DEQUANTIZE", "dequantizes to the float model output")}
    assert any(b.startswith("input ") and b.endswith("is float32") for b in audit["integer_only_breakers"])


def test_an_op_without_an_int8_kernel_is_named(with_sine: Path) -> None:
    audit = audit_bytes(produce(with_sine, "int8"))
    assert audit["integer_only"] is False
    assert audit["ops"]["SIN"]["float"] == 1 and audit["ops"]["CONV_2D"]["int8"] == 1
    reasons = {row["op"]: row["reason"] for row in audit["stayed_float"]}
    assert reasons["SIN"] is None and reasons["DEQUANTIZE"] == "dequantizes for SIN"
    assert any(b.startswith("SIN ×1 runs in float") for b in audit["integer_only_breakers"])


def test_dynamic_range_ops_are_hybrid_and_float16_weights_behind_dequantize(cnn: Path) -> None:
    dynamic = audit_bytes(produce(cnn, "dynamic_range"))
    assert dynamic["ops"]["FULLY_CONNECTED"]["hybrid"] == 1 and dynamic["ops_by_kind"]["int8"] == 0
    half = audit_bytes(produce(cnn, "float16"))
    assert half["ops"]["DEQUANTIZE"]["float"] == half["ops"]["DEQUANTIZE"]["count"] >= 2
    assert half["bytes_by_role"]["weights"] == 2 * (36 + 36 * 32) and "float32" not in half["bytes_by_dtype"]
    baseline = audit_bytes(produce(cnn, "float32"))
    assert baseline["ops_by_kind"]["float"] == baseline["op_count"] - baseline["ops_by_kind"]["other"]
    assert sum(baseline["bytes_by_role"].values()) == baseline["file_bytes"]


def test_audit_values_feed_thresholds(cnn: Path) -> None:
    record = {"metrics": {}, "audit": audit_bytes(produce(cnn, "int8"))}
    values = cell_values(record, None)
    assert values["integer_only"] == 0.0 and values["float_ops"] == 2 and values["bytes_float32"] == 0


def test_an_int8_source_is_refused_as_float_baseline(cnn: Path, tmp_path: Path) -> None:
    source = tmp_path / "quantized_upstream.tflite"
    source.write_bytes(produce(cnn, "int8_only"))
    cache = ArtifactCache(tmp_path / "cache")
    with pytest.raises(HarnessError, match=r"quantized_upstream\.tflite is not a float model") as refused:
        resolve_source(ModelSpec(path=str(source)), None, tmp_path, cache, None)
    assert "ops run in int8 (CONV_2D ×1" in str(refused.value) and "baseline: as_is" in str(refused.value)
    accepted = resolve_source(ModelSpec(path=str(source), baseline="as_is"), None, tmp_path, cache, None)
    assert accepted.path == source and accepted.info["baseline"]["float"] is False
    assert accepted.info["baseline"]["not_float"]["integer_ops"]["int8"]["CONV_2D"] == 1


def test_as_is_is_for_model_files_only() -> None:
    with pytest.raises(ValueError, match="applies to .tflite model files"):
        ModelSpec(builder="tutorial_cnn", baseline="as_is")


def test_weight_only_int8_constants_are_folded_back_to_float(cnn: Path) -> None:
    from litert_quantizer import recipe

    from harness.schemes._quantizer import quantize

    weight_only = quantize(produce(cnn, "float32"), recipe.weight_only_wi8_afp32())
    found = not_float(weight_only)
    assert found["dequantized_constants"] >= 1 and "int8" in found["constants"]
    folded, changes = normalize(weight_only)  # the probe check inside compares outputs
    assert changes["int_constants_behind_dequantize"] == found["dequantized_constants"]
    assert not_float(folded) == {}


def test_suite_with_an_int8_source_refuses_it_or_takes_it_as_is(cnn: Path, tmp_path: Path) -> None:
    """Through the runner: the refused model's cells fail with the reason; `as_is` runs it, audited."""
    from harness.runner import SuiteRunner, plan_cells
    from harness.suite.loader import load_suite

    (tmp_path / "q.tflite").write_bytes(produce(cnn, "int8_only"))
    suite = tmp_path / "int8_source.yaml"
    suite.write_text(
        "name: int8_source\n"
        "datasets:\n  test: {kind: digits, split: test}\n"
        "models:\n  - {name: refused, path: q.tflite}\n  - {name: accepted, path: q.tflite, baseline: as_is}\n"
        "task: {kind: classification, dataset: test, limit: 20}\n"
        "schemes: [float32]\n"
        "latency: {float_pairs: 0, warmup_runs: 1, num_runs: 3, min_secs: 0}\n"
        "thresholds:\n  defaults:\n    integer_only: {min: 1}\n    float_ops: {max: 0}\n")
    loaded = load_suite(suite)
    (tmp_path / "run").mkdir()
    outcome = SuiteRunner(loaded, tmp_path / "run", ArtifactCache(tmp_path / "cache")).run(plan_cells(loaded), [])
    records = {r["model"]: r for r in outcome.records}
    assert records["refused"]["status"] == "failed"
    assert "q.tflite is not a float model (quantized upstream)" in records["refused"]["error"]
    accepted = records["accepted"]
    assert accepted["status"] == "ok", accepted["error"]
    assert accepted["artifact"]["source_info"]["baseline"]["float"] is False
    assert accepted["audit"]["integer_only"] is True
    assert {v["check"]: v["pass"] for v in accepted["verdicts"]} == {"integer_only.min": True, "float_ops.max": True}
