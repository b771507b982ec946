"""The `adb` device kind against simulated phones: pushes, quoting, retries, timeouts, clean-up."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config.schema import LatencySpec
from harness.devices import load_device
from harness.devices.android.benchmark_log import parse_benchmark_log
from harness.devices.android.device import AdbOptions, AndroidDevice, DeviceLostError, MeasurementFailed, raw_from_log
from harness.devices.android.sim.simulator import AdbSimulator, Faults
from harness.devices.android.transport import quote_args
from harness.errors import ConfigError, HarnessError
from harness.runner import latency_stats
from harness.stats import typical
from harness.verdicts import latency_ratio
from tests.devices.android.conftest import FAST, SPEC_A, SPEC_B, TRANSPORTS, StartSim
from tests.devices.android.test_simulator import tiny_tflite
from tests.devices.test_benchmark_log import CURRENT_LOG

SETTINGS = LatencySpec(**FAST)
WORK = "/data/local/tmp/quantbench"
HOSTILE = "we ird; $(touch pwned) `id` 'x'.tflite"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "host" / "tiny.tflite"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tiny_tflite())
    return path


@pytest.fixture
def open_device(binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """AndroidDevice for a simulator over a given transport; closed after the test."""
    opened: list[AndroidDevice] = []
    monkeypatch.setenv("HOME", str(tmp_path))  # the adb client's key goes to tmp_path/.android

    def open_(sim: AdbSimulator, transport: str = "adb-shell", **options) -> AndroidDevice:
        opened.append(AndroidDevice("phone", AdbOptions(connection=sim.serial, transport=transport,
                                                        benchmark_binary=binary, **options)))
        return opened[-1]

    yield open_
    for device in opened:
        device.close()


def pushes(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("adb push ")]


def files_in(sim: AdbSimulator, folder: str = WORK) -> list[str]:
    host = sim.fs.host_path(folder)
    return sorted(p.name for p in host.iterdir()) if host.exists() else []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_measure_pushes_once_pins_the_big_core_and_cleans_up(start_sim: StartSim, open_device, model: Path,
                                                             transport: str) -> None:
    sim = start_sim("a", SPEC_B)
    device = open_device(sim, transport)
    raw = device.measure_latency(model, SETTINGS)
    assert [c.split()[-1] for c in pushes(device.last_calls)] == [f"{WORK}/benchmark_model", f"{WORK}/tiny.tflite"]
    assert raw["stats"]["count"] == 5 and raw["stats"]["median"] > 0 and raw["stats"]["mean"] > 0
    assert raw["init"] > 0 and raw["first"] > 0 and raw["warmup_mean"] > 0 and "samples" not in raw
    assert raw["memory"].keys() >= {"init_mb", "overall_mb"} and "Inference timings in us" in raw["log"]
    assert (raw["mask"], raw["core"], raw["attempts"]) == ("0x2", [1], 1)
    again = device.measure_latency(model, SETTINGS)  # same bytes on the device: no push at all
    assert pushes(device.last_calls) == [] and again["model_pushed"] is False
    assert [(c.mask, c.argv[0]) for c in sim.taskset_log] == [(0x2, f"{WORK}/benchmark_model")] * 2
    assert sim.taskset_log[0].argv[1:] == (f"--graph={WORK}/tiny.tflite", "--num_threads=1", "--warmup_runs=1",
                                           "--warmup_min_secs=0", "--num_runs=5", "--min_secs=0", "--max_secs=60")
    assert files_in(sim) == ["benchmark_model", "tiny.tflite"]
    device.close()
    assert not sim.fs.host_path(WORK).exists()  # created by the session, so removed with its files


def test_binary_is_checked_by_hash_per_session_and_kept_when_asked(start_sim: StartSim, open_device,
                                                                   model: Path) -> None:
    sim = start_sim("a", SPEC_A)
    first = open_device(sim, keep_files=True)
    first.measure_latency(model, SETTINGS)
    first.close()
    assert files_in(sim) == ["benchmark_model", "tiny.tflite"]  # keep_files: true
    second = open_device(sim)  # a new session finds the same binary and model: nothing pushed
    second.measure_latency(model, SETTINGS)
    assert pushes(second.last_calls) == [] and any("sha256sum" in c for c in second.last_calls)
    assert any(c.startswith(f"adb shell chmod 755 {WORK}/benchmark_model") for c in second._calls)
    second.close()
    assert files_in(sim) == []  # this session used them and does not keep them


def test_hostile_model_path_and_work_dir_run_nothing(start_sim: StartSim, open_device, tmp_path: Path) -> None:
    sim = start_sim("a", SPEC_A)
    model = tmp_path / "host" / HOSTILE
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(tiny_tflite())
    work = "/data/local/tmp/q b;$(reboot)|x"
    device = open_device(sim, work_dir=work)
    raw = device.measure_latency(model, SETTINGS)
    assert raw["stats"]["count"] == 5
    (call,) = sim.taskset_log
    assert call.argv[:2] == (f"{work}/benchmark_model", f"--graph={work}/{HOSTILE}")
    assert files_in(sim, work) == sorted(["benchmark_model", HOSTILE])
    assert not any("pwned" in p.name for p in sim.fs.root.rglob("*") if p.name != HOSTILE)
    for line in device.last_calls:  # every argument of every shell command is one quoted word
        if line.startswith("adb shell "):
            words = shlex.split(line.removeprefix("adb shell "))
            assert not any(w.startswith(("$(", "`")) for w in words)
    # and a real POSIX shell (dash) reads the same command back as the same argv, running nothing
    argv = device.command(f"{work}/{HOSTILE}", SETTINGS)
    echoed = subprocess.run(["sh", "-c", "printf '%s\\n' " + quote_args(argv)], cwd=tmp_path,
                            capture_output=True, text=True, check=True)
    assert echoed.stdout.splitlines() == argv and not (tmp_path / "pwned").exists()


def test_dropped_push_is_retried_once_then_device_lost(start_sim: StartSim, open_device, model: Path) -> None:
    sim = start_sim("a", SPEC_A, Faults(drop_after_push_bytes=600))  # the binary fits, the model does not
    device = open_device(sim)
    with pytest.raises(DeviceLostError, match=r"device lost: .*connection lost during push.*retried once"):
        device.measure_latency(model, SETTINGS)
    assert [c.split()[-1] for c in pushes(device.last_calls)] == [
        f"{WORK}/benchmark_model", f"{WORK}/tiny.tflite", f"{WORK}/tiny.tflite"]
    assert sim.taskset_log == [] and files_in(sim) == ["benchmark_model"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dropped_run_is_retried_once_then_device_lost(start_sim: StartSim, open_device, model: Path,
                                                      transport: str) -> None:
    sim = start_sim("a", SPEC_A, Faults(drop_during_benchmark=True))
    device = open_device(sim, transport)
    with pytest.raises(DeviceLostError, match=r"device lost: .*retried once after reconnecting"):
        device.measure_latency(model, SETTINGS)
    assert [call.mask for call in sim.taskset_log] == [0x80, 0x80]  # the first try and the retry
    with pytest.raises(DeviceLostError):  # the device answers, so the next cell tries again
        device.measure_latency(model, SETTINGS)
    assert len(sim.taskset_log) == 4


def test_hanging_binary_hits_the_run_timeout(start_sim: StartSim, open_device, model: Path) -> None:
    sim = start_sim("a", SPEC_A, Faults(hang_benchmark=True))
    device = open_device(sim, timeouts={"run": 2, "connect": 5})
    with pytest.raises(MeasurementFailed, match=r"did not finish within 2 s \(timeouts.run\)"):
        device.measure_latency(model, SETTINGS)
    assert any(c.startswith("adb shell pkill -f ") for c in device.last_calls)
    assert device._shell(["echo", "alive"], "echo") == "alive\n"  # the connection is usable again


def test_unreachable_device_fails_its_cells_quickly(open_device, binary: Path, model: Path,
                                                     start_sim: StartSim) -> None:
    sim = start_sim("gone", SPEC_A)
    sim.stop()  # nothing listens there any more
    device = open_device(sim, timeouts={"connect": 2})
    assert device.describe()["reachable"] is False
    with pytest.raises(DeviceLostError, match="reconnecting failed"):
        device.measure_latency(model, SETTINGS)
    with pytest.raises(DeviceLostError, match="device lost"):  # marked gone: no more waiting
        device.measure_latency(model, SETTINGS)


def test_failed_benchmark_keeps_its_log(start_sim: StartSim, open_device, tmp_path: Path) -> None:
    sim = start_sim("a", SPEC_A)
    broken = tmp_path / "host" / "broken.tflite"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"not a flatbuffer" * 10)
    device = open_device(sim)
    with pytest.raises(MeasurementFailed, match=r"benchmark_model failed \(exit 1\)") as caught:
        device.measure_latency(broken, SETTINGS)
    assert "Failed to mmap model" in (caught.value.log or "")


def test_profile_validation(tmp_path: Path, binary: Path) -> None:
    folder = tmp_path / "devices"
    folder.mkdir()
    base = f"kind: adb\nconnection: 127.0.0.1:5555\nbenchmark_binary: {binary}\n"
    cases = {
        "flags": (base + "extra_flags: [--num_runs=5]\n", 4, "extra_flags"),
        "dash": (base + "extra_flags: [enable_op_profiling]\n", 4, "extra_flags"),
        "relative": (base + "work_dir: tmp/quantbench\n", 4, "work_dir"),
        "transport": (base + "transport: fastboot\n", 4, "transport"),
        "typo": (base + "keep_file: true\n", 4, "keep_file"),
    }
    for name, (text, line, field) in cases.items():
        (folder / f"{name}.yaml").write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_device(name, tmp_path / "suites")
        assert (caught.value.line, caught.value.field) == (line, field), name
    (folder / "ok.yaml").write_text(base + "core: [4, 5]\nextra_flags: [--enable_op_profiling=true]\n"
                                    "timeouts: {run: 90}\nkeep_files: true\n")
    device = load_device("ok", tmp_path / "suites")
    assert isinstance(device, AndroidDevice) and device.options.core == [4, 5]
    (folder / "nobinary.yaml").write_text("kind: adb\nconnection: 127.0.0.1:5555\nbenchmark_binary: /nope/bm\n")
    with pytest.raises(HarnessError, match="benchmark_binary /nope/bm not found"):
        load_device("nobinary", tmp_path / "suites").check()
    usb = AndroidDevice("usb", AdbOptions(connection="8A1X0F3B", benchmark_binary=binary))
    assert "connects over TCP only" in usb.describe()["error"]


def test_log_with_percentiles_delegates_and_op_profile() -> None:
    raw = raw_from_log(parse_benchmark_log(CURRENT_LOG))
    assert raw["stats"] == pytest.approx({"mean": 8.13205, "median": 8.101, "std": 0.201, "min": 7.912,
                                          "max": 9.874, "count": 123, "p5": 7.93, "p95": 8.39})
    assert (raw["init"], raw["first"], raw["warmup_mean"]) == pytest.approx((41.118, 9.95, 8.19743))
    assert raw["delegates"]["nodes_by_delegate"] == {"TfLiteXNNPackDelegate": 63}
    assert raw["memory"]["peak_mb"] == 18.1875
    assert raw["op_profile"]["summary_by_node_type"] and raw["op_profile"]["top_by_computation_time"]
    stats = latency_stats(raw)
    assert stats["median"] == 8.101 and stats["warmup_mean"] == 8.19743


def test_legacy_log_without_median_uses_the_mean() -> None:
    legacy = (Path(__file__).parents[2] / "fixtures" / "benchmark_model_logs"
              / "08_deepspeech_issue_1850_pixel2_legacy_format.log").read_text()
    stats = latency_stats(raw_from_log(parse_benchmark_log(legacy)))
    assert "median" not in stats and stats["mean"] == 479.385 and stats["count"] == 50
    assert typical(stats) == 479.385
    assert typical({"median": 2.0, "mean": 3.0}) == 2.0 and typical(None) is None
    assert latency_ratio({"mean": 6.0}, {"mean": 3.0, "median": 1.0}) == 2.0  # means unless both have medians
    assert latency_ratio({"mean": 6.0, "median": 4.0}, {"mean": 3.0, "median": 1.0}) == 4.0
    assert latency_ratio({"mean": 6.0}, {}) is None
