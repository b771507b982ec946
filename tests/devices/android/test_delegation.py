"""Delegation on phones: parsed from real benchmark_model logs and from the simulator's, asked for
with a profile's `delegate:`, a failure to apply is a failed cell, and thresholds can demand it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.config.schema import LatencySpec
from harness.devices.android.benchmark_log import parse_benchmark_log, parse_benchmark_logs
from harness.devices.android.device import AdbOptions, MeasurementFailed, check_delegation, raw_from_log
from harness.schemes import SCHEMES
from harness.verdicts import cell_values
from tests.devices.android.conftest import FAST, SPEC_A, StartSim
from tests.devices.test_benchmark_log import CURRENT_LOG, fixture

SETTINGS = LatencySpec(**FAST)


def test_delegation_summary_from_real_logs() -> None:
    cpu, gpu = parse_benchmark_logs(fixture("06"))
    assert gpu.delegates.delegation == {"delegate": "TfLiteGpuDelegateV2", "nodes": 58, "total": 58,
                                        "partitions": 1, "ratio": 1.0, "fully_delegated": True}
    assert cpu.delegates.delegation["delegate"] == "TfLiteXNNPackDelegate"
    partial = raw_from_log(parse_benchmark_log(CURRENT_LOG))["delegates"]["delegation"]
    assert (partial["nodes"], partial["total"], partial["fully_delegated"]) == (63, 66, False)
    values = cell_values({"metrics": {}, "delegates": {"delegation": partial}}, None)
    assert values["fully_delegated"] == 0.0 and values["delegated_nodes_ratio"] == pytest.approx(63 / 66)
    check_delegation("xnnpack", parse_benchmark_log(CURRENT_LOG).delegates, CURRENT_LOG)  # took nodes: fine


def test_a_failed_nnapi_run_of_a_real_log_names_the_delegate() -> None:
    from harness.devices.android.device import _failure_line

    text = fixture("01")
    failed_run = text[text.index("# Failure case"):]  # the tool exits 1: this line becomes the cell's error
    assert _failure_line(failed_run) == "Failed to apply NNAPI delegate."
    assert _failure_line(failed_run.replace("Failed to apply", "Could not use")).startswith("ERROR: Restored")
    taken_nothing = parse_benchmark_log(CURRENT_LOG).delegates
    with pytest.raises(MeasurementFailed, match="Failed to apply GPU delegate: it took no node"):
        check_delegation("gpu", taken_nothing, CURRENT_LOG)  # XNNPACK took the nodes, not the GPU
    check_delegation(None, taken_nothing, CURRENT_LOG)  # nothing asked for: nothing to check


def test_delegate_and_a_delegate_flag_together_are_refused(binary: Path) -> None:
    with pytest.raises(ValueError, match="either as `delegate:` or in extra_flags"):
        AdbOptions(connection="127.0.0.1:5555", benchmark_binary=binary, delegate="gpu",
                   extra_flags=["--use_gpu=true"])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A float CNN with a Flatten (shape ops the simulated GPU does not take) and its int8_only model."""
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    folder = tmp_path_factory.mktemp("delegation")
    model.export(str(folder / "saved"), format="tf_saved_model", verbose=False)
    calibration = np.random.default_rng(0).uniform(0, 1, (8, 8, 8, 1)).astype(np.float32)
    paths = {}
    for scheme in ("float32", "int8_only"):
        implementation = SCHEMES.get(scheme)
        paths[scheme] = folder / f"{scheme}.tflite"
        paths[scheme].write_bytes(implementation.from_saved_model(
            folder / "saved", implementation.Options(), calibration if implementation.needs_calibration else None))
    return paths


def open_phone(start_sim: StartSim, binary: Path, delegate: str):
    from harness.devices.android.device import AndroidDevice

    sim = start_sim("a", SPEC_A)
    return AndroidDevice("phone", AdbOptions(connection=sim.serial, benchmark_binary=binary, delegate=delegate))


def test_simulated_gpu_takes_part_of_a_float_model(start_sim: StartSim, binary: Path, models: dict[str, Path],
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    device = open_phone(start_sim, binary, "gpu")
    try:
        raw = device.measure_latency(models["float32"], SETTINGS)
    finally:
        device.close()
    assert "--use_gpu=true" in raw["command"]
    delegation = raw["delegates"]["delegation"]
    assert delegation["delegate"] == "TfLiteGpuDelegateV2" and delegation["fully_delegated"] is False
    assert 0 < delegation["nodes"] < delegation["total"] and delegation["partitions"] == 2
    assert raw["delegates"]["applied"] == [{"name": "GPU", "coverage": "partial", "kernels": 2}]


@pytest.mark.parametrize(("delegate", "model", "message"), [
    ("gpu", "int8_only", "Failed to apply GPU delegate: it took no node"),
    ("nnapi", "float32", r"benchmark_model failed \(exit 1\): ERROR: Failed to apply NNAPI delegate"),
])
def test_a_delegate_that_does_not_apply_fails_the_cell(start_sim: StartSim, binary: Path, models: dict[str, Path],
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       delegate: str, model: str, message: str) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    device = open_phone(start_sim, binary, delegate)
    try:
        with pytest.raises(MeasurementFailed, match=message) as caught:
            device.measure_latency(models[model], SETTINGS)
    finally:
        device.close()
    assert "delegate" in (caught.value.log or "")
