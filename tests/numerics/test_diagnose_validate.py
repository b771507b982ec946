"""litert-quantizer's validate() route of `bench diagnose`: both `error_metrics` forms, joined with the
independent computation and cross-checked (a small float .tflite and its litert-quantizer int8 model)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.numerics import _validate
from harness.numerics.diagnose import compare_tensors, run_all_tensors
from tests.report.runs import unpacked


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    import keras  # Keras 3 itself: tf.keras may be tf_keras once TFMOT was imported in this process
    import tensorflow as tf

    from harness.schemes import _quantizer

    folder = tmp_path_factory.mktemp("validate")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3), name="image")
    hidden = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    outputs = keras.layers.Dense(2, name="head")(keras.layers.Flatten()(hidden))
    model = keras.Model(inputs, outputs)
    model.export(str(folder / "saved"), verbose=False)
    float_bytes = tf.lite.TFLiteConverter.from_saved_model(str(folder / "saved")).convert()
    x = np.random.default_rng(0).uniform(-1, 1, (6, 8, 8, 3)).astype(np.float32)
    int8 = _quantizer.quantize(float_bytes, _quantizer.static_recipe("int8", float_io=True), x)
    (folder / "float.tflite").write_bytes(float_bytes)
    (folder / "int8.tflite").write_bytes(int8)
    return folder / "float.tflite", folder / "int8.tflite", x


def _engine(models: tuple[Path, Path, np.ndarray]):
    from litert_quantizer import Quantizer

    float_model, int8_model, _ = models
    return Quantizer(bytearray(float_model.read_bytes()),
                     previous_quantized_model=bytearray(int8_model.read_bytes()))


class _OldResult:
    """A pre-2026 comparison result: one float per tensor, for the one metric asked."""

    def __init__(self, new: object, metric: str) -> None:
        self.new, self.metric = new, metric

    def get_signature_comparison_result(self, key: str) -> object:
        from types import SimpleNamespace

        result = self.new.get_signature_comparison_result(key)
        flat = lambda group: {n: v[self.metric] for n, v in group.items()}  # noqa: E731
        return SimpleNamespace(input_tensors=flat(result.input_tensors),
                               intermediate_tensors=flat(result.intermediate_tensors),
                               output_tensors=flat(result.output_tensors))


def test_both_error_metrics_forms_give_the_same_numbers(models) -> None:
    from litert_quantizer.utils.validation_utils import ValidationErrorMetric

    engine = _engine(models)

    def old_validate(test_data=None, error_metrics: str = "mse", use_xnnpack: bool = True, num_threads: int = 16):
        return _OldResult(engine.validate(test_data, [ValidationErrorMetric(error_metrics)], use_xnnpack,
                                          num_threads), error_metrics)

    assert _validate.takes_one_metric(old_validate) and not _validate.takes_one_metric(engine.validate)
    data = _validate.validation_feeds(models[0].read_bytes(), models[2])
    new, old = _validate.call_validate(engine.validate, data), _validate.call_validate(old_validate, data)
    assert new.keys() == old.keys() and len(new) >= 3
    for name in new:
        assert set(new[name]) == {"mse", "snr"}
        assert new[name]["mse"] == pytest.approx(old[name]["mse"]) and new[name]["snr"] == pytest.approx(old[name]["snr"])


def test_validate_joined_and_cross_checked_with_the_independent_computation(models) -> None:
    float_model, int8_model, x = models
    statistics = _validate.validate_statistics(float_model, int8_model, x)
    optimized, reference = run_all_tensors(int8_model, x), run_all_tensors(float_model, x)
    rows = _validate.join_validate(compare_tensors(optimized, reference), statistics)
    joined = [row for row in rows if "validate_mse" in row]
    assert joined and all(math.isfinite(float(row["validate_snr_db"])) for row in joined)  # its SNR adds 1e-9
    check = _validate.cross_check_validate(rows, optimized, reference, statistics)
    assert check["agrees"] and check["compared"] == len(joined) and check["mse_agree"] == len(joined)
    assert float(check["max_mse_rel_difference"]) < 1e-3
    wrong = {name: {**values, "mse": values["mse"] * 2 + 1} for name, values in statistics.items()}
    assert not _validate.cross_check_validate(rows, optimized, reference, wrong)["agrees"]


def test_the_cell_diagnosis_record_is_bounded_ranked_and_cross_checked(models) -> None:
    from harness.numerics import _cell_diagnosis
    from harness.record import Diagnosis
    from harness.schemes import SCHEMES

    float_model, int8_model, x = models
    baseline = {"status": "ok", "artifact": {"path": str(float_model)}}
    result = _cell_diagnosis.cell_diagnosis(int8_model, baseline, x, "tflite", "int8", lambda: Path("unused"))
    assert set(result) <= set(Diagnosis.__annotations__) and result["route"] == "litert_quantizer.validate"
    assert result["cross_check"]["agrees"] and len(result["snr_curve"]) == result["compared"]
    snrs = [float(row["snr_db"]) for row in result["ranked"]]
    assert snrs == sorted(snrs) and float(result["min_snr_db"]) == snrs[0]
    assert _cell_diagnosis.cell_diagnosis(int8_model, None, x, "tflite", "int8", Path)["na"]
    assert "error" in _cell_diagnosis.cell_diagnosis(int8_model, {**baseline, "artifact": {"path": "/nonexistent"}},
                                                     x, "tflite", "int8", Path)
    rows = [{"position": i, "snr_db": 40.0 - (i == 777) * 30} for i in range(1000)]
    points = _cell_diagnosis.curve(rows)
    assert len(points) == _cell_diagnosis.CURVE_POINTS and [777, 10.0] in points
    for kind in ("int8", "int8_only", "int16x8"):
        assert SCHEMES.get(kind).Options(diagnose=True).diagnose


def test_recover_on_int16x8_from_a_tflite_source_keeps_layers_float(models) -> None:
    from types import SimpleNamespace

    from harness.fidelity import snr_db
    from harness.numerics.recover import run
    from harness.schemes import SCHEMES
    from harness.tflite.runtime import load_interpreter

    float_model, _, x = models

    def outputs(path: Path) -> np.ndarray:
        interpreter = load_interpreter(path)
        interpreter.allocate_tensors()
        (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
        values = []
        for sample in x:
            interpreter.set_tensor(inp["index"], sample[None])
            interpreter.invoke()
            values.append(interpreter.get_tensor(out["index"]).copy())
        return np.concatenate(values)

    reference = outputs(float_model)
    scheme = SCHEMES.get("int16x8")
    options = scheme.Options(recover={"metric": "snr_db", "min": 1e9, "max_float_layers": 2, "latency_runs": 0})
    source = SimpleNamespace(format="tflite", path=float_model)
    result = run(scheme, options, source, Path, x, float_model,
                 lambda path: {"snr_db": snr_db(outputs(path), reference)}, None, x)
    assert [s["float_layers"] for s in result["steps"]] == [0, 1, 2] and not result["met"]  # an unreachable bound
    assert len(result["float_layers"]) == 2 and result["float_tensors"]
    assert result["steps"][2]["size_bytes"] != result["steps"][0]["size_bytes"]  # layers really kept float
    with pytest.raises(Exception, match=".tflite source"):
        scheme.from_saved_model(Path("unused"), scheme.Options(float_layers=["conv"]), x)


def test_a_suite_cell_with_diagnose_true_records_its_diagnosis(models, tmp_path: Path, session_cache: Path) -> None:
    import json
    import shutil

    from harness.results import read_results
    from tests.conftest import run_bench

    shutil.copy(models[0], tmp_path / "tiny.tflite")
    (tmp_path / "s.yaml").write_text("""
name: diag
datasets:
  noise: {kind: synthetic, count: 8, low: -1, high: 1}
models: [{name: tiny, path: tiny.tflite}]
task: {kind: fidelity, dataset: noise}
calibration: {dataset: noise, samples: 8}
schemes: [float32, {scheme: int8, diagnose: true}, {scheme: int16x8, id: i16, diagnose: true}]
devices: [local]
latency: {float_pairs: 0, warmup_runs: 1, num_runs: 3, min_secs: 0}
""")
    done = run_bench("run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "run"), "--cache", str(session_cache),
                     "--no-history")
    assert done.returncode == 0, done.stdout + done.stderr
    records = {r["scheme"]: r for r in read_results(tmp_path / "run")}
    for scheme in ("int8", "i16"):
        diagnosis = records[scheme]["diagnosis"]
        assert diagnosis["route"] == "litert_quantizer.validate" and diagnosis["cross_check"]["agrees"], diagnosis
        assert diagnosis["ranked"] and len(json.dumps(diagnosis)) < 20_000
    assert "diagnosis" not in records["float32"]
    page = unpacked((tmp_path / "run" / "report.html").read_text())  # the chart specs are packed in the page
    assert 'id="layer-snr-1"' in page and 'id="layer-snr-2"' in page
