"""The local latency measurement: pinned core, benchmark_model-like stopping rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.config.schema import LatencySpec
from harness.devices import load_device
from harness.devices.local.latency_process import measure
from harness.errors import ConfigError, HarnessError
from tests.kit import Kit


@pytest.fixture(scope="module")
def tiny_model(kit: Kit) -> Path:
    return kit.tflite("float32")


def test_measure_counts_runs(tiny_model: Path) -> None:
    result = measure(str(tiny_model), threads=1, warmup_runs=3, num_runs=25, min_secs=0, max_secs=10)
    assert len(result["samples"]) == 25 and result["init"] > 0 and result["first"] > 0
    assert result["warmup_mean"] > 0 and result["peak_rss_mb"] >= result["rss_before_model_mb"] > 0


def test_min_secs_extends_the_run(tiny_model: Path) -> None:
    result = measure(str(tiny_model), threads=1, warmup_runs=0, num_runs=1, min_secs=0.2, max_secs=10)
    assert len(result["samples"]) > 1 and sum(result["samples"]) > 0


def test_device_pins_the_chosen_core(tiny_model: Path, tmp_path: Path) -> None:
    core = max(os.sched_getaffinity(0))
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "pinned.yaml").write_text(f"kind: local\ncore: {core}\nthreads: 1\n")
    device = load_device("pinned", tmp_path / "suites")
    result = device.measure_latency(tiny_model, LatencySpec(warmup_runs=1, num_runs=5, min_secs=0))
    assert result["core"] == [core] and len(result["samples"]) == 5
    assert device.describe()["core_reason"] == "set in the device profile"


def test_profile_errors_name_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "bad.yaml").write_text("kind: local\nthreads: one\n")
    with pytest.raises(ConfigError) as caught:
        load_device("bad", tmp_path / "suites")
    assert (caught.value.line, caught.value.field) == (2, "threads")
    (tmp_path / "devices" / "phone.yaml").write_text("kind: pager\n")
    with pytest.raises(ConfigError, match="unknown device kind 'pager'"):
        load_device("phone", tmp_path / "suites")


def test_unavailable_core_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "far.yaml").write_text("kind: local\ncore: 4096\n")
    with pytest.raises(HarnessError, match="CPU 4096 is not available"):
        load_device("far", tmp_path / "suites")


def test_bench_devices_lists_a_local_profile_with_this_hosts_cpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local device's own inventory (its describe() and the host's cores, clusters and the pinned core's mask)
    is what `bench devices` shows for a local profile: the CLI does not know the kind."""
    from harness.cli_devices import profile_rows

    core = max(os.sched_getaffinity(0))
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "here.yaml").write_text(f"kind: local\ncore: {core}\n")
    monkeypatch.chdir(tmp_path)
    [row] = profile_rows()
    assert (row["name"], row["source"], row["kind"], row["reachable"], row["android"]) == (
        "here", "profile", "local", True, None)
    assert row["mask"] == f"0x{1 << core:x}" and [c["cpu"] for c in row["cores"]] == sorted(os.sched_getaffinity(0))
    assert row["model"] == row["cpu_model"] and row["clusters"]
