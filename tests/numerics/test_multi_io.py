"""Multi-input, multi-output models through every post-training scheme, both conversion routes
(TFLiteConverter from Keras, litert-quantizer from a float .tflite), scored by the fidelity task."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.results import read_results
from harness.schemes import SCHEMES as SCHEME_REGISTRY
from harness.tflite.runtime import predict
from tests.conftest import run_bench

pytestmark = pytest.mark.slow  # converts real models and runs the CLI in a subprocess (about 20 s)

SUITE = """
name: two_io
datasets:
  calib: {kind: npz, path: calib.npz, inputs: [image, extra]}
  noise: {kind: synthetic, count: 16, inputs: {image: {shape: [6]}, extra: {shape: [3], low: -1, high: 1}}}
models:
  - {name: keras_two_io, path: two_io.keras}
  - {name: tflite_two_io, path: two_io.tflite}
task: {kind: fidelity, dataset: noise}
calibration: {dataset: calib, samples: 16}
schemes: [float32, float16, dynamic_range, int8, int8_only, int16x8]
devices: [local]
latency: {float_pairs: 0, warmup_runs: 1, num_runs: 3, min_secs: 0}
thresholds:
  defaults:
    snr_db: {min: 15}
    cosine: {min: 0.95}
"""
SCHEMES = ["float16", "dynamic_range", "int8", "int8_only", "int16x8"]


def two_io_model(folder: Path) -> None:
    """Two inputs (image (6,), extra (3,)) and two outputs (4 logits, 2 box values), as .keras and float .tflite."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    image, extra = keras.Input((6,), name="image"), keras.Input((3,), name="extra")
    # Every layer and the model named as a fresh process names them, whatever this process built before: the
    # converted tensors' names hold the model's (the tests name dense_1, and look for what is closest to it).
    joined = keras.layers.Concatenate(name="concatenate")([image, extra])
    hidden = keras.layers.Dense(16, activation="relu", name="dense")(joined)
    model = keras.Model([image, extra], [keras.layers.Dense(4, name="dense_1")(hidden),
                                         keras.layers.Dense(2, name="dense_2")(hidden)], name="functional")
    model.save(folder / "two_io.keras")
    model.export(str(folder / "saved"), verbose=False)
    (folder / "two_io.tflite").write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(folder / "saved")).convert())
    rng = np.random.default_rng(0)
    np.savez(folder / "calib.npz", image=rng.uniform(0, 1, (16, 6)), extra=rng.uniform(-1, 1, (16, 3)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("two_io")
    two_io_model(folder)
    return folder


def run_suite(folder: Path, cache: Path, text: str, name: str) -> list[dict]:
    (folder / f"{name}.yaml").write_text(text.replace("name: two_io", f"name: {name}"))
    done = run_bench("run", str(folder / f"{name}.yaml"), "--reports", str(folder / "r"), "--cache", str(cache),
                     "--no-history")
    assert done.returncode == 0, done.stdout + done.stderr
    [run_dir] = (folder / "r" / name).iterdir()
    return read_results(run_dir)


@pytest.fixture(scope="module")
def run(folder: Path, session_cache: Path) -> tuple[Path, list[dict]]:
    return folder, run_suite(folder, session_cache, SUITE, "two_io")


def test_every_scheme_of_both_routes_reports_every_output(run) -> None:
    _, records = run
    assert [(r["model"], r["scheme"]) for r in records] == [
        (m, s) for m in ("keras_two_io", "tflite_two_io") for s in ["float32", *SCHEMES]]
    for record in records:
        assert record["status"] == "ok", record["error"]
        assert sorted(o["name"] for o in record["outputs"]) == ["output_0", "output_1"]
        assert sorted(o["shape"] for o in record["outputs"]) == [[16, 2], [16, 4]]
        if record["scheme"] == "float32":
            assert record["metrics"] == {} and "snr_db" not in record["outputs"][0]
            continue
        worst = min(float(o["snr_db"]) for o in record["outputs"])
        assert float(record["metrics"]["snr_db"]) == worst > 15, record["scheme"]
        assert record["metrics"]["nrmse"] == max(o["nrmse"] for o in record["outputs"])
        # the implicit cross-kernel check (kernel_gap_db: {max: 10}) and the scheme's claims join the suite's own
        claims = {c.name for c in SCHEME_REGISTRY.get(record["scheme"]).claims}  # checked on every cell
        assert {v["check"] for v in record["verdicts"]} == {"snr_db.min", "cosine.min", "kernel_gap_db.max", *claims}
        assert all(v["pass"] for v in record["verdicts"]), record["verdicts"]
    by_cell = {(r["model"], r["scheme"]): r for r in records}
    assert [o["dtype"] for o in by_cell["keras_two_io", "int8_only"]["outputs"]] == ["int8", "int8"]
    assert by_cell["keras_two_io", "int8"]["calibration"]["drawn"] == 16
    assert float(by_cell["keras_two_io", "float16"]["metrics"]["snr_db"]) > 50  # fp16 weights: tiny error


def test_predict_binds_inputs_by_name_and_says_what_is_missing(run) -> None:
    folder, _ = run
    model = folder / "two_io.tflite"
    x = {"image": np.ones((3, 6), np.float32), "extra": np.zeros((3, 3), np.float32)}
    outputs = predict(model, x, batch_size=2)
    assert sorted(o.shape for o in outputs) == [(3, 2), (3, 4)]
    swapped = predict(model, {"extra": x["extra"], "image": x["image"]}, batch_size=3)
    assert all(np.array_equal(a, b) for a, b in zip(outputs, swapped))
    with pytest.raises(HarnessError, match="no samples for input 'extra'"):
        predict(model, {"image": x["image"]})
    with pytest.raises(HarnessError, match="2 inputs"):
        predict(model, x["image"])


def test_synthetic_inputs_from_each_models_signature(folder: Path, session_cache: Path) -> None:
    """No shapes declared: evaluation and calibration data come from the model's inputs (Keras: the
    SavedModel signature; .tflite: the interpreter's), one declared range; both routes see the same inputs."""
    text = (SUITE.replace("{kind: npz, path: calib.npz, inputs: [image, extra]}",
                          "{kind: synthetic, count: 16, seed: 1, inputs: {extra: {low: -1, high: 1}}}")
                 .replace("{image: {shape: [6]}, extra: {shape: [3], low: -1, high: 1}}", "{extra: {low: -1, high: 1}}")
                 .replace("[float32, float16, dynamic_range, int8, int8_only, int16x8]", "[float32, int8]"))
    records = run_suite(folder, session_cache, text, "two_io_signature")
    assert [r["status"] for r in records] == ["ok"] * 4, [r["error"] for r in records]
    keras_int8, tflite_int8 = (r for r in records if r["scheme"] == "int8")
    assert records[0]["evaluation"]["source"] == "synthetic from the model's inputs x16"
    assert float(keras_int8["metrics"]["snr_db"]) > 15 and float(tflite_int8["metrics"]["snr_db"]) > 15


def test_diagnose_per_tensor_with_the_debugger_cross_checked(run) -> None:
    folder, _ = run
    [run_dir] = (folder / "r" / "two_io").iterdir()
    done = run_bench("diagnose", str(run_dir), "keras_two_io/int8", "--samples", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((run_dir / "diagnose" / "keras_two_io__int8__local.json").read_text())
    assert result["samples"] == 4 and result["compared"] >= 4
    assert [r["position"] for r in result["layers"]] == sorted(r["position"] for r in result["layers"])
    assert {"FULLY_CONNECTED", "CONCATENATION"} <= {r["op"] for r in result["layers"]}
    check = result["cross_check"]
    assert check["found_in_cell_model"] == check["debugger_tensors"] > 0 and check["first_layer_agrees"]
    assert any("debugger_rmse_per_scale" in r for r in result["layers"])
    tflite = run_bench("diagnose", str(run_dir), "tflite_two_io/int16x8", "--samples", "2")
    assert tflite.returncode == 0, tflite.stdout + tflite.stderr
    result = json.loads((run_dir / "diagnose" / "tflite_two_io__int16x8__local.json").read_text())
    assert all(float(r["snr_db"]) > 15 for r in result["layers"])  # .tflite source: litert-quantizer validate()
    check = result["cross_check"]
    assert check["route"] == "litert_quantizer.validate" and check["agrees"] and check["compared"] > 0
    missing = run_bench("diagnose", str(run_dir), "nothing/int8")
    assert missing.returncode == 2 and "no cells match 'nothing/int8'" in missing.stdout + missing.stderr


def _op_dtypes(model: bytes) -> dict[str, str]:
    """Output tensor name → dtype of every op (what `bench diagnose` lists)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    return {details[t]["name"]: np.dtype(details[t]["dtype"]).name
            for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED" for t in op["outputs"]}


@pytest.mark.parametrize("route", ["tflite", "saved_model"])
def test_int8_float_layers_keep_those_ops_float(folder: Path, route: str) -> None:
    from harness.schemes import SCHEMES

    scheme = SCHEMES.get("int8")
    calibration = {"image": np.random.default_rng(0).uniform(0, 1, (8, 6)).astype(np.float32),
                   "extra": np.random.default_rng(1).uniform(-1, 1, (8, 3)).astype(np.float32)}

    def convert(**options) -> bytes:
        if route == "tflite":
            return scheme.from_tflite((folder / "two_io.tflite").read_bytes(), scheme.Options(**options), calibration)
        return scheme.from_saved_model(folder / "saved", scheme.Options(**options), calibration)

    full = _op_dtypes(convert())
    assert set(full.values()) == {"int8"}
    kept = next(name for name in sorted(full) if "dense" in name)  # a hidden layer, named alike in both models
    selective = _op_dtypes(convert(float_layers=[kept]))
    assert selective[kept] == "float32"
    assert sorted(name for name, dtype in selective.items() if dtype == "int8") == [n for n in sorted(full) if n != kept]
    with pytest.raises(HarnessError, match=r"float_layers: 2 name\(s\) match no op output tensor") as caught:
        convert(float_layers=[kept, kept + "_typo", "zzz"])  # a typo'd name used to leave the model plain int8
    assert f"{kept + '_typo'!r}: closest {kept!r}" in str(caught.value) and "'zzz': nothing close" in str(caught.value)


def test_a_float_layers_name_matching_nothing_fails_its_cell_only(folder: Path, session_cache: Path) -> None:
    """The cell fails naming the name and its closest candidates; the other cells run and are kept."""
    text = (SUITE.replace("  - {name: keras_two_io, path: two_io.keras}\n", "")
                 .replace("[float32, float16, dynamic_range, int8, int8_only, int16x8]",
                          "[float32, int8, {scheme: int8, id: typo, float_layers: [dense_1_typo]}]"))
    (folder / "typo.yaml").write_text(text.replace("name: two_io", "name: typo"))
    done = run_bench("run", str(folder / "typo.yaml"), "--reports", str(folder / "r"), "--cache", str(session_cache),
                     "--no-history")
    assert done.returncode == 1, done.stdout + done.stderr
    [run_dir] = (folder / "r" / "typo").iterdir()
    records = {r["scheme"]: r for r in read_results(run_dir)}
    assert [records[s]["status"] for s in ("float32", "int8", "typo")] == ["ok", "ok", "failed"]
    assert "float_layers: 1 name(s) match no op output tensor of the model" in records["typo"]["error"]
    assert "'dense_1_typo': closest " in records["typo"]["error"]
