"""Phones get a run-to-run verdict too: a changed model is re-timed beside the earlier one on the
phone (paired A/B); an unchanged one is compared across runs on repeat medians and not blamed.
Before each cell the phone's temperatures and core frequencies are recorded, after a cool-down."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from harness.cache import ArtifactCache
from harness.compare import compare_runs
from harness.devices.android.sim.fs import set_temperature
from harness.devices.android.sim.simulator import DeviceSpec
from harness.history import EarlierRun
from harness.record import record_id
from harness.report.html import thermal_note
from harness.report.summary import render_summary
from harness.runner import SuiteRunner, plan_cells
from harness.suite import load_suite
from tests.devices.android.conftest import SPEC_A, StartSim, write_profile, write_suite

pytestmark = pytest.mark.slow  # converts models and times them on simulated phones

LATENCY = "{warmup_runs: 2, num_runs: 20, min_secs: 0.1, repeats: 3, ab_pairs: 6}"


def run(suite: Path, cache: Path, run_dir: Path, earlier: EarlierRun | None = None) -> list[dict]:
    loaded = load_suite(suite)
    run_dir.mkdir(parents=True)
    runner = SuiteRunner(loaded, run_dir, ArtifactCache(cache), earlier=earlier)
    return runner.run(plan_cells(loaded), ["pytest"]).records


def earlier(records: list[dict], label: str) -> EarlierRun:
    return EarlierRun(label, {record_id(r): r for r in records})


def widen(suite: Path, filters: int) -> None:
    suite.write_text(suite.read_text().replace("filters: 8", f"filters: {filters}"))


def test_a_slower_model_on_a_phone_is_flagged_and_an_unchanged_one_is_not(
        start_sim: StartSim, binary: Path, tmp_path: Path, session_cache: Path) -> None:
    sim = start_sim("phone", SPEC_A)
    write_profile(tmp_path, "phone", sim, binary)
    suite = write_suite(tmp_path, ["phone"], latency=LATENCY)
    night1 = run(suite, session_cache, tmp_path / "night1")
    widen(suite, 512)  # a far wider model: genuinely slower on the same phone
    night2 = run(suite, session_cache, tmp_path / "night2", earlier(night1, "night1"))
    assert all(r["status"] == "ok" and len(r["latency_ms"]["repeat_medians"]) == 3 for r in night2)
    assert all(len(r["latency_ab"]["pairs"]) == 6 + r["latency_ab"]["extended"] and r["latency_ab"]["ci"] for r in night2)
    slower = compare_runs(night2, night1, None)
    flagged = {c.cell for c in slower.regressions if c.quantity == "latency_ms"}
    assert flagged == {"digits_cnn/float32@phone", "digits_cnn/int8@phone"}, [c.detail for c in slower.latency_tests]
    assert all(c.latency.method == "paired A/B" for c in slower.latency_tests)
    night3 = run(suite, session_cache, tmp_path / "night3", earlier(night2, "night2"))  # nothing changed
    assert all("latency_ab" not in r for r in night3)
    same = compare_runs(night3, night2, None)
    assert not [c for c in same.regressions if c.quantity == "latency_ms"]
    assert {c.latency.method for c in same.latency_tests} == {"repeat medians"}
    state = night3[0]["device_state"]
    assert state["before"]["thermal_c"] == {"cpu-0-0": 36.5, "skin": 31.0} and state["hot"] is False
    assert state["before"]["battery_temp_c"] == 29.5
    assert {c["governor"] for c in state["after"]["cores"]} == {"schedutil"}


def test_cooldown_waits_for_a_hot_phone_and_marks_a_cell_measured_hot(
        start_sim: StartSim, binary: Path, tmp_path: Path, session_cache: Path) -> None:
    hot = start_sim("hot", DeviceSpec(serial="hot", thermal_c={"cpu-big": 55.0}))
    cooling = start_sim("cooling", DeviceSpec(serial="cooling", thermal_c={"cpu-big": 55.0}))
    for name, sim in (("hot", hot), ("cooling", cooling)):
        write_profile(tmp_path, name, sim, binary)
    latency = "{warmup_runs: 1, num_runs: 5, min_secs: 0, cooldown: {max_temp_c: 40, wait_s: 1.5, poll_s: 0.1}}"
    suite = write_suite(tmp_path, ["hot", "cooling"], latency=latency)
    timer = threading.Timer(0.3, set_temperature, (cooling.fs, 0, 35.0))
    timer.start()
    records = {(r["device"], r["scheme"]): r for r in run(suite, session_cache, tmp_path / "run")}
    timer.cancel()
    assert records["hot", "float32"]["device_state"]["hot"] is True
    assert records["hot", "float32"]["device_state"]["cooldown_s"] == 1.5
    assert records["cooling", "float32"]["device_state"]["hot"] is False
    assert records["cooling", "int8"]["device_state"]["before"]["max_temp_c"] == 35.0


def test_a_slower_benchmark_binary_is_timed_beside_the_earlier_one_on_the_phone(
        start_sim: StartSim, binary: Path, tmp_path: Path, session_cache: Path) -> None:
    from harness.history import keep_artifacts

    sim = start_sim("phone", SPEC_A)
    write_profile(tmp_path, "phone", sim, binary)
    suite = write_suite(tmp_path, ["phone"], latency="{warmup_runs: 2, num_runs: 20, min_secs: 0.05, repeats: 2, ab_pairs: 4}")
    widen(suite, 256)  # tens of microseconds an inference: well above the tool's 1 µs resolution
    night1 = run(suite, session_cache, tmp_path / "night1")
    store = tmp_path / "reports" / "history.sqlite"
    assert keep_artifacts(store, night1) == []
    old_sha = night1[0]["latency_setup"]["benchmark_binary"]["sha256"]
    assert (store.parent / "artifacts" / f"{old_sha}.benchmark_model").read_bytes() == binary.read_bytes()
    binary.write_bytes(b"stand-in for a new benchmark_model build\nquantbench-sim-slowdown=3\n")  # same path
    kept = EarlierRun("night1", {record_id(r): r for r in night1}, store.parent / "artifacts")
    night2 = run(suite, session_cache, tmp_path / "night2", kept)
    for record in night2:
        ab = record["latency_ab"]
        assert ab["baseline_binary_sha256"] == old_sha and ab["baseline_sha256"] == record["artifact"]["sha256"]
        assert ab["ratio"] > 2, ab
    slower = compare_runs(night2, night1, None)
    assert {c.cell for c in slower.regressions if c.quantity == "latency_ms"} == {
        "digits_cnn/float32@phone", "digits_cnn/int8@phone"}
    gone = run(suite, session_cache, tmp_path / "night2b", earlier(night1, "night1"))  # no artifact store
    assert all("benchmark_model binary is gone" in r["latency_ab"]["unavailable"] for r in gone)
    assert all(c.latency.method == "repeat medians" for c in compare_runs(gone, night1, None).latency_tests)


def test_a_throttling_phone_is_waited_for_and_marked_throttled(
        start_sim: StartSim, binary: Path, tmp_path: Path, session_cache: Path) -> None:
    """`dumpsys thermalservice`'s thermal status: a phone cool by its zones but throttling
    (status 3, severe) is waited for; one whose status drops in time is measured and recorded
    unthrottled; one without the service (before Android 10) records no status."""
    severe = start_sim("severe", DeviceSpec(serial="severe", thermal_status=3))
    easing = start_sim("easing", DeviceSpec(serial="easing", thermal_status=2))
    old = start_sim("old", DeviceSpec(serial="old", thermal_status=None))
    for name, sim in (("severe", severe), ("easing", easing), ("old", old)):
        write_profile(tmp_path, name, sim, binary)
    latency = "{warmup_runs: 1, num_runs: 5, min_secs: 0, cooldown: {max_temp_c: 45, wait_s: 1.0, poll_s: 0.1}}"
    suite = write_suite(tmp_path, ["severe", "easing", "old"], latency=latency)
    timer = threading.Timer(0.3, easing.set_thermal_status, (0,))
    timer.start()
    records = {(r["device"], r["scheme"]): r for r in run(suite, session_cache, tmp_path / "run")}
    timer.cancel()
    hot = records["severe", "float32"]["device_state"]
    assert hot["hot"] is True and hot["throttled"] is True and hot["cooldown_s"] == 1.0
    assert hot["before"]["thermal_status"] == 3 and hot["before"]["thermal_status_name"] == "severe"
    assert hot["before"]["hal_temps_c"] == {"cpu-0-0": 36.5, "skin": 31.0}
    cooled = records["easing", "int8"]["device_state"]
    assert cooled["hot"] is False and cooled["throttled"] is False and cooled["before"]["thermal_status"] == 0
    plain = records["old", "float32"]["device_state"]
    assert "thermal_status" not in plain["before"] and plain["hot"] is False and plain["throttled"] is False
    assert plain["before"]["max_temp_c"] == 36.5
    summary = render_summary(list(records.values()), {"suite": "phones"})
    assert summary.count("(hot, throttled) |") == 2 and "(hot" not in summary.split("easing")[1].split("\n")[0]
    assert thermal_note(records["severe", "float32"]).startswith("measured HOT AND THROTTLED: before 36.5 °C, "
                                                               "thermal status severe; after 36.5 °C")
