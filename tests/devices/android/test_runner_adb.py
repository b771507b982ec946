"""SuiteRunner with simulated phones: devices in parallel, lost devices, hangs, local exclusivity."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from harness.cache import ArtifactCache
from harness.devices.android.device import AndroidDevice
from harness.devices.android.sim.simulator import DeviceSpec, Faults
from harness.devices.local.device import LocalDevice
from harness.errors import HarnessError
from harness.results import read_results
from harness.runner import RunOutcome, SuiteRunner, plan_cells
from harness.runner.host import HostWork
from harness.suite import load_suite
from tests.devices.android.conftest import SPEC_A, SPEC_B, TRANSPORTS, StartSim, write_profile, write_suite

pytestmark = pytest.mark.slow  # runs suites over adb against the phone simulator


class Intervals:
    """Wall-clock intervals of calls, per label, recorded from any thread."""

    def __init__(self) -> None:
        self.spans: dict[str, list[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def wrap(self, monkeypatch: pytest.MonkeyPatch, owner: type, method: str, label) -> None:
        original = getattr(owner, method)

        def timed(this, *args, **kwargs):
            start = time.monotonic()
            try:
                return original(this, *args, **kwargs)
            finally:
                with self._lock:
                    self.spans.setdefault(label(this), []).append((start, time.monotonic()))

        monkeypatch.setattr(owner, method, timed)

    def overlap(self, a: str, b: str) -> bool:
        return any(s1 < e2 and s2 < e1 for s1, e1 in self.spans.get(a, []) for s2, e2 in self.spans.get(b, []))


def meet_in_first_measurements(monkeypatch: pytest.MonkeyPatch, names: tuple[str, str]) -> threading.Barrier:
    """The first measurement of each of the two devices waits (in its device's worker) until the other's
    has started: devices that measure in parallel meet; a runner that measured one device after the
    other would leave the barrier broken after its timeout (a condition, not a wall-clock overlap)."""
    barrier = threading.Barrier(2, timeout=300)
    waiting = set(names)
    lock = threading.Lock()
    original = AndroidDevice.measure_latency

    def meeting(this, *args, **kwargs):
        with lock:
            first = this.name in waiting
            waiting.discard(this.name)
        if first:
            barrier.wait()
        return original(this, *args, **kwargs)

    monkeypatch.setattr(AndroidDevice, "measure_latency", meeting)
    return barrier


def run_suite(suite: Path, cache: Path) -> tuple[RunOutcome, dict]:
    loaded = load_suite(suite)
    run_dir = suite.parent.parent / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    outcome = SuiteRunner(loaded, run_dir, ArtifactCache(cache)).run(plan_cells(loaded), ["pytest"])
    return outcome, json.loads((run_dir / "run.json").read_text())


def by_device(outcome: RunOutcome) -> dict[str, list[dict]]:
    result: dict[str, list[dict]] = {}
    for record in outcome.records:
        result.setdefault(record["device"], []).append(record)
    return result


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_parallel_devices_and_lost_ones(start_sim: StartSim, binary: Path, tmp_path: Path, session_cache: Path,
                                        home: Path, transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sims = {"ok": start_sim("ok", SPEC_A), "other": start_sim("other", SPEC_B),
            "droprun": start_sim("droprun", SPEC_A, Faults(drop_during_benchmark=True)),
            "droppush": start_sim("droppush", SPEC_A, Faults(drop_after_push_bytes=600))}
    for name, sim in sims.items():
        write_profile(tmp_path, name, sim, binary, transport)
    suite = write_suite(tmp_path, list(sims), latency="{warmup_runs: 1, num_runs: 5, min_secs: 0.3}")
    barrier = meet_in_first_measurements(monkeypatch, ("ok", "other"))
    outcome, info = run_suite(suite, session_cache)
    records = by_device(outcome)
    for name in ("ok", "other"):
        assert [(r["scheme"], r["status"]) for r in records[name]] == [("float32", "ok"), ("int8", "ok")]
        for record in records[name]:
            assert record["latency_ms"]["count"] >= 5 and record["latency_ms"]["median"] > 0
            assert (tmp_path / "run" / record["latency_log"]).is_file()
    assert [c.mask for c in sims["ok"].taskset_log] == [0x80, 0x80]
    assert [c.mask for c in sims["other"].taskset_log] == [0x2, 0x2]
    for name in ("droprun", "droppush"):
        for record in records[name]:
            assert record["status"] == "failed" and "device lost" in record["error"], record["error"]
            assert "retried once after reconnecting" in record["error"]
    assert len(sims["droprun"].taskset_log) == 4  # two cells, each tried twice
    assert sims["droppush"].taskset_log == []
    assert not barrier.broken  # the two devices' first measurements were under way at the same time
    assert outcome.exit_code == 1 and info["status"] == "finished"
    assert info["devices"]["other"]["mask"] == "0x2" and info["devices"]["ok"]["model"] == "Sim A"
    for sim in sims.values():  # the harness removed what it pushed
        assert not sim.fs.host_path("/data/local/tmp/quantbench").exists()


def test_hang_times_out_and_missing_cpufreq_is_described(start_sim: StartSim, binary: Path, tmp_path: Path,
                                                         session_cache: Path) -> None:
    hang = start_sim("hang", SPEC_A, Faults(hang_benchmark=True))
    blind = start_sim("blind", DeviceSpec(serial="blind", cpus="2x2.8GHz+2x1.8GHz"), Faults(omit_cpufreq=True))
    write_profile(tmp_path, "hang", hang, binary, timeouts="{connect: 10, run: 2}")
    write_profile(tmp_path, "blind", blind, binary)
    outcome, info = run_suite(write_suite(tmp_path, ["hang", "blind"]), session_cache)
    records = by_device(outcome)
    assert [r["status"] for r in records["hang"]] == ["failed", "failed"]
    assert all("did not finish within 2 s" in r["error"] for r in records["hang"])
    assert [r["status"] for r in records["blind"]] == ["ok", "ok"]
    assert [c.mask for c in blind.taskset_log] == [0x8, 0x8]  # no cpufreq: the highest-numbered CPU
    reason = info["devices"]["blind"]["core_reason"]
    assert "cpufreq not readable; using the highest-numbered CPU 3" in reason
    assert info["devices"]["blind"]["cores"][0] == {"cpu": 0, "max_freq_khz": None, "source": None}


def test_local_latency_never_overlaps_host_work(start_sim: StartSim, binary: Path, tmp_path: Path,
                                                 session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = start_sim("phone", SPEC_A)
    write_profile(tmp_path, "phone", sim, binary)
    suite = write_suite(tmp_path, ["local", "phone"], latency="{warmup_runs: 1, num_runs: 5, min_secs: 0.5}")
    spans = Intervals()
    spans.wrap(monkeypatch, AndroidDevice, "measure_latency", lambda device: "phone")
    spans.wrap(monkeypatch, LocalDevice, "measure_latency", lambda device: "local")
    spans.wrap(monkeypatch, HostWork, "run", lambda host: "host")
    outcome, _ = run_suite(suite, session_cache)
    assert [(r["device"], r["status"]) for r in outcome.records] == [
        ("local", "ok"), ("local", "ok"), ("phone", "ok"), ("phone", "ok")]
    assert len(spans.spans["local"]) == 2 and len(spans.spans["host"]) == 4
    assert not spans.overlap("local", "host")
    local = read_results(tmp_path / "run")[:2]
    assert [r["scheme"] for r in local] == ["float32", "int8"] and local[0]["latency_samples_ms"]


def test_devices_are_closed_when_the_run_stops_early(start_sim: StartSim, binary: Path, tmp_path: Path,
                                                     session_cache: Path) -> None:
    sim = start_sim("a", SPEC_A)
    write_profile(tmp_path, "phone", sim, binary)
    loaded = load_suite(write_suite(tmp_path, ["phone"]))
    runner = SuiteRunner(loaded, tmp_path / "no" / "such" / "dir", ArtifactCache(session_cache))
    with pytest.raises(HarnessError):  # run.json cannot be written: the run stops after connecting
        runner.run(plan_cells(loaded), ["pytest"])
    device = runner.device("phone")
    assert isinstance(device, AndroidDevice) and device._transport is None  # disconnected all the same
