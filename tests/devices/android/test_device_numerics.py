"""Device numerics on simulated phones: the phone's benchmark_model outputs (--input_layer_value_files,
--output_filepath) vs the host's outputs of the same .tflite; honest, noisy, fp16 and old-binary phones."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.cache import ArtifactCache
from harness.config.schema import LatencySpec
from harness.devices.android._numerics import io_flags, split_output_file
from harness.devices.android.device import AdbOptions, AndroidDevice
from harness.devices.android.sim._numerics import check_perturbation, split_value_file
from harness.devices.android.sim.simulator import DeviceSpec
from harness.errors import HarnessError
from harness.results import read_results
from harness.runner import SuiteRunner, plan_cells
from harness.suite import load_suite
from tests.devices.android.conftest import StartSim, write_profile

ONE_RUN = LatencySpec(warmup_runs=0, num_runs=1, min_secs=0)
HONEST, NOISY = DeviceSpec(serial="honest"), DeviceSpec(serial="noisy", perturb_outputs="noise:0.03")
FP16, OLD = DeviceSpec(serial="fp16", perturb_outputs="fp16"), DeviceSpec(serial="old", old_benchmark=True)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """one_io.tflite (8 → 5, batch 1) and two_io.tflite (image (6,) + extra (3,) → 4 logits and 2 values)."""
    import keras
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("numerics_models")
    keras.utils.set_random_seed(0)
    single = keras.Input((8,), batch_size=1, name="x")
    one = keras.Model(single, keras.layers.Dense(5)(keras.layers.Dense(12, activation="tanh")(single)))
    image, extra = keras.Input((6,), batch_size=1, name="image"), keras.Input((3,), batch_size=1, name="extra")
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([image, extra]))
    two = keras.Model([image, extra], [keras.layers.Dense(4)(hidden), keras.layers.Dense(2)(hidden)])
    paths = {}
    for name, model in (("one_io", one), ("two_io", two)):
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    converter = tf.lite.TFLiteConverter.from_keras_model(one)  # int8 kernels and int8 input/output tensors
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([row[None]] for row in digits(32))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    paths["int8_io"] = folder / "int8_io.tflite"
    paths["int8_io"].write_bytes(converter.convert())
    return paths


def phone(start_sim: StartSim, spec: DeviceSpec, binary: Path) -> AndroidDevice:
    sim = start_sim(spec.serial, spec)
    return AndroidDevice(spec.serial, AdbOptions(connection=sim.serial, benchmark_binary=binary))


def check(device: AndroidDevice, model: Path, x, count: int = 6) -> dict:
    try:
        return device.check_numerics(model, x, count, ONE_RUN)
    finally:
        device.close()


def digits(count: int = 8) -> np.ndarray:
    return np.random.default_rng(1).uniform(-1, 1, (count, 8)).astype(np.float32)


def test_flags_follow_the_tools_syntax() -> None:
    flags = io_flags(["a:0", "b"], [np.zeros((1, 4)), np.zeros((1, 2, 3))], ["/d/a.raw", "/d/b.raw"], "/d/o.raw")
    assert flags == ["--input_layer=a:0,b", "--input_layer_shape=1,4:1,2,3",
                     "--input_layer_value_files=a::0:/d/a.raw,b:/d/b.raw", "--output_filepath=/d/o.raw"]
    assert split_value_file("a::0:/d/a.raw") == ("a:0", "/d/a.raw")
    with pytest.raises(ValueError, match="noise:R"):
        check_perturbation("noise")
    like = [np.zeros((1, 2), np.float32), np.zeros((1, 3), np.int8)]
    parts = split_output_file(np.arange(2, dtype="<f4").tobytes() + bytes([1, 2, 255]), like)
    assert parts[0].tolist() == [[0.0, 1.0]] and parts[1].tolist() == [[1, 2, -1]]
    with pytest.raises(HarnessError, match="has 10 bytes; the model's outputs take 11"):
        split_output_file(bytes(10), like)


def test_honest_phone_computes_what_the_host_does(start_sim: StartSim, binary: Path, models) -> None:
    device = phone(start_sim, HONEST, binary)
    numerics = check(device, models["one_io"], digits())
    assert numerics["status"] == "ok" and numerics["samples"] == 6 and numerics["invocations"] == 6
    [output] = numerics["outputs"]
    assert output["shape"] == [1, 5] and output["snr_db"] == "Infinity" and output["max_abs_error"] == 0.0
    assert numerics["worst"]["snr_db"] == "Infinity" and numerics["worst"]["cosine"] == 1.0
    print("honest phone: snr_db", output["snr_db"])


def test_noisy_phone_and_fp16_phone(start_sim: StartSim, binary: Path, models) -> None:
    noisy = check(phone(start_sim, NOISY, binary), models["one_io"], digits())
    fp16 = check(phone(start_sim, FP16, binary), models["one_io"], digits())
    noisy_db, fp16_db = noisy["worst"]["snr_db"], fp16["worst"]["snr_db"]
    print(f"noise:0.03 phone: snr_db {noisy_db:.1f}; fp16 phone: snr_db {fp16_db:.1f}")
    assert 24 < noisy_db < 36  # -20 log10(0.03) = 30.5 dB
    assert math.isfinite(fp16_db) and fp16_db > 55  # float16 keeps ~11 bits: about 65-75 dB
    assert fp16["worst"]["cosine"] > 0.999999


def test_multi_input_multi_output_model(start_sim: StartSim, binary: Path, models) -> None:
    rng = np.random.default_rng(2)
    x = {"image": rng.uniform(0, 1, (5, 6)).astype(np.float32), "extra": rng.uniform(-1, 1, (5, 3)).astype(np.float32)}
    device = phone(start_sim, NOISY, binary)
    numerics = check(device, models["two_io"], x, count=4)
    assert numerics["status"] == "ok" and numerics["samples"] == 4
    assert sorted(o["shape"][1] for o in numerics["outputs"]) == [2, 4]
    assert all(20 < o["snr_db"] < 40 for o in numerics["outputs"])
    command = next(c for c in device.last_calls or device._calls if "--input_layer=" in c)
    assert "--input_layer_value_files=" in command and "--output_filepath=" in command


def test_integer_inputs_and_outputs(start_sim: StartSim, binary: Path, models) -> None:
    """int8 tensors: the samples are quantized for the files, the outputs dequantized before comparing."""
    honest = check(phone(start_sim, HONEST, binary), models["int8_io"], digits())
    noisy = check(phone(start_sim, NOISY, binary), models["int8_io"], digits())
    assert honest["outputs"][0]["dtype"] == "int8" and honest["worst"]["snr_db"] == "Infinity"
    print(f"int8 I/O: honest snr_db {honest['worst']['snr_db']}, noise:0.03 snr_db {noisy['worst']['snr_db']:.1f}")
    assert 20 < noisy["worst"]["snr_db"] < 40


def test_old_binary_is_skipped_with_the_reason(start_sim: StartSim, binary: Path, models) -> None:
    numerics = check(phone(start_sim, OLD, binary), models["one_io"], digits())
    assert numerics["status"] == "skipped" and "--output_filepath" in numerics["reason"]
    assert numerics["outputs"] == [] and numerics["worst"] == {}


SUITE = """
name: devnum
datasets:
  inputs: {{kind: synthetic, count: 12, shape: [8], seed: 3}}
models:
  - {{name: one_io, path: {model}}}
task: {{kind: fidelity, dataset: inputs}}
schemes: [float32]
devices: [{devices}]
latency: {{float_pairs: 0, warmup_runs: 1, num_runs: 2, min_secs: 0, device_check: 8}}
thresholds:
  defaults:
    device_snr_db: {{min: 40}}
"""


def test_suite_threshold_catches_the_perturbed_phone(start_sim: StartSim, binary: Path, models,
                                                    tmp_path: Path) -> None:
    names = []
    for spec in (HONEST, NOISY, OLD):
        write_profile(tmp_path, spec.serial, start_sim(spec.serial, spec), binary)
        names.append(spec.serial)
    suite = tmp_path / "suites" / "devnum.yaml"
    suite.parent.mkdir(parents=True, exist_ok=True)
    suite.write_text(SUITE.format(model=models["one_io"], devices=", ".join(names)))
    loaded = load_suite(suite)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    outcome = SuiteRunner(loaded, run_dir, ArtifactCache(tmp_path / "cache")).run(plan_cells(loaded), ["pytest"])
    records = {r["device"]: r for r in outcome.records}
    verdicts = {d: {v["check"]: v["pass"] for v in r["verdicts"]} for d, r in records.items()}
    assert verdicts["honest"]["device_snr_db.min"] is True
    assert records["honest"]["metrics"]["device_snr_db"] == "Infinity"
    assert verdicts["noisy"]["device_snr_db.min"] is False and outcome.failed_checks >= 1
    print("suite: noisy phone device_snr_db", records["noisy"]["metrics"]["device_snr_db"])
    assert records["noisy"]["timings_s"]["device_check"] > 0
    old = {v["check"]: v for v in records["old"]["verdicts"]}["device_snr_db.min"]
    assert records["old"]["device_numerics"]["status"] == "skipped" and "device numerics skipped" in records["old"]["metrics_na"]
    assert old["pass"] is False and "skipped" in old["note"] and "--output_filepath" in old["note"]
    assert len(read_results(run_dir)) == len(outcome.records)  # every line checked, its details read back too


def test_simulate_rejects_an_unknown_perturbation() -> None:
    from harness.cli_devices import simulate

    with pytest.raises(HarnessError, match="--perturb-outputs: perturb_outputs 'int4': use fp16 or noise:R"):
        simulate(perturb_outputs="int4")
