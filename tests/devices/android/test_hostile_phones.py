"""Phones under hostile conditions: closing a session while a cell is measuring (an interrupted run)
aborts it over the connection the session has (no second adb server, no second STF lease) and
removes the pushed files; a phone restarting on the same address is picked up again within
timeouts.connect; `bench devices simulate --port 99999` is a one-line error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.config.schema import LatencySpec
from harness.devices.android.device import AdbOptions, AndroidDevice, DeviceClosing
from harness.devices.android.sim.simulator import AdbSimulator, Faults
from harness.devices.android.sim.stf import StfSimulator
from harness.results import read_results, read_run_info
from tests.conftest import ROOT
from tests.devices.android.conftest import (
    FAST,
    SPEC_A,
    TRANSPORTS,
    StartSim,
    needs_adb,
    write_suite,
)
from tests.devices.android.test_cli_adb import bench
from tests.devices.android.test_simulator import tiny_tflite

pytestmark = pytest.mark.slow  # runs suites over adb against hostile simulated phones

WORK = "/data/local/tmp/quantbench"
SETTINGS = LatencySpec(**FAST)
PATIENCE_S = 120.0  # generous bounds on waiting for a condition: never an assertion on time


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "host" / "tiny.tflite"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tiny_tflite())
    return path


def wait_for(condition: Callable[[], bool], what: str) -> None:
    event = threading.Event()
    for _ in range(int(PATIENCE_S / 0.05)):
        if condition():
            return
        event.wait(0.05)
    raise AssertionError(f"never happened: {what}")


def adb_servers(home: Path) -> list[int]:
    """Pids of adb servers started with this test's HOME (the transport's private servers)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"fork-server" in cmdline and f"HOME={home}".encode() in environ:
            found.append(int(proc.name))
    return found


def measuring_in_a_thread(device: AndroidDevice, model: Path) -> tuple[threading.Thread, list[BaseException]]:
    raised: list[BaseException] = []

    def work() -> None:
        try:
            device.measure_latency(model, SETTINGS)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, raised


def files_in(sim: AdbSimulator) -> list[str]:
    host = sim.fs.host_path(WORK)
    return sorted(p.name for p in host.iterdir()) if host.exists() else []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_closing_during_a_measurement_aborts_it_and_cleans_up_over_the_same_connection(
        start_sim: StartSim, binary: Path, model: Path, home: Path, transport: str) -> None:
    sim = start_sim("a", SPEC_A, Faults(hang_benchmark=True))  # the cell is still measuring at close()
    device = AndroidDevice("phone", AdbOptions(connection=sim.serial, transport=transport, benchmark_binary=binary,
                                               timeouts={"connect": 10}))
    thread, raised = measuring_in_a_thread(device, model)
    wait_for(lambda: len(sim.taskset_log) == 1, "benchmark_model started")
    device.close()
    thread.join(PATIENCE_S)
    assert not thread.is_alive() and len(raised) == 1 and isinstance(raised[0], DeviceClosing), raised
    assert files_in(sim) == [] and not sim.fs.host_path(WORK).exists()  # model and binary removed
    assert len(sim.taskset_log) == 1 and device.notes == []  # no retry, nothing left behind
    wait_for(lambda: adb_servers(home) == [], "no private adb server left running")
    with pytest.raises(DeviceClosing):  # a closed session never connects again
        device.measure_latency(model, SETTINGS)
    assert adb_servers(home) == []


def test_an_interrupted_stf_session_leases_once_and_releases(start_sim: StartSim, binary: Path, model: Path,
                                                             home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = start_sim("a", SPEC_A, Faults(hang_benchmark=True))
    with StfSimulator({"SERIAL-A": (sim.serial, "Sim A")}, token="tok") as stf:
        monkeypatch.setenv("STF_TOKEN", "tok")
        device = AndroidDevice("farm", AdbOptions(connection=f"stf+http://127.0.0.1:{stf.port}/SERIAL-A",
                                                  benchmark_binary=binary, timeouts={"connect": 10}))
        thread, raised = measuring_in_a_thread(device, model)
        wait_for(lambda: len(sim.taskset_log) == 1, "benchmark_model started")
        device.close()
        thread.join(PATIENCE_S)
        assert not thread.is_alive() and isinstance(raised[0], DeviceClosing), raised
        assert stf.calls.count("POST /api/v1/user/devices") == 1  # one lease, taken once
        assert stf.owned == set() and stf.connected == set() and stf.calls[-1] == "DELETE /api/v1/user/devices/SERIAL-A"
        assert files_in(sim) == []


def test_a_lost_stf_phone_is_reconnected_on_the_same_lease(start_sim: StartSim, binary: Path, model: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    sim = start_sim("a", SPEC_A, Faults(drop_during_benchmark=True))
    with StfSimulator({"SERIAL-A": (sim.serial, "Sim A")}, token="tok") as stf:
        monkeypatch.setenv("STF_TOKEN", "tok")
        device = AndroidDevice("farm", AdbOptions(connection=f"stf+http://127.0.0.1:{stf.port}/SERIAL-A",
                                                  benchmark_binary=binary, timeouts={"connect": 10}))
        try:
            with pytest.raises(Exception, match="retried once after reconnecting"):
                device.measure_latency(model, SETTINGS)
            assert stf.calls.count("POST /api/v1/user/devices") == 1 and stf.owned == {"SERIAL-A"}
        finally:
            device.close()
        assert stf.owned == set() and device.notes == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_phone_back_on_the_same_port_is_reconnected_within_timeouts_connect(
        start_sim: StartSim, binary: Path, model: Path, home: Path, tmp_path: Path, transport: str) -> None:
    sim = start_sim("a", SPEC_A)
    device = AndroidDevice("phone", AdbOptions(connection=sim.serial, transport=transport, benchmark_binary=binary,
                                               timeouts={"connect": PATIENCE_S}))
    restarted: list[AdbSimulator] = []
    try:
        assert device.measure_latency(model, SETTINGS)["attempts"] == 1
        sim.stop()  # the phone goes away; it is back on the same port a little later
        restart = threading.Timer(2.0, lambda: restarted.append(
            AdbSimulator(tmp_path / "phones" / "a", device=SPEC_A, port=sim.port).start()))
        restart.start()
        raw = device.measure_latency(model, SETTINGS)
        assert raw["attempts"] in (1, 2) and raw["stats"]["count"] == FAST["num_runs"]
        assert restarted, "measured before the phone came back"
    finally:
        device.close()
        for again in restarted:
            again.stop()


def test_simulate_with_a_port_out_of_range_is_one_line(tmp_path: Path, home: Path) -> None:
    for port in ("99999", "-1"):
        done = bench("simulate", "--port", port, cwd=tmp_path, home=home, module="harness.cli_devices", timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip() == f"error: --port {port}: a TCP port is 0 to 65535 (0: a free one)"
    done = bench("devices", "simulate", "--port", "99999", cwd=tmp_path, home=home, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "0 to 65535" in done.stderr


def _bench_popen(args: list[str], cwd: Path, home: Path, env: dict[str, str]) -> subprocess.Popen:
    environment = {**os.environ, "COLUMNS": "200", "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(home),
                   "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["adb-shell", pytest.param("adb", id="adb-cli", marks=needs_adb), "stf"])
def test_sigint_while_a_phone_measures_keeps_the_finished_cell_and_leaves_nothing_behind(
        start_sim: StartSim, binary: Path, tmp_path: Path, session_cache: Path, home: Path, where: str) -> None:
    """`bench run` on a phone, SIGINT while its second cell is measuring: exit 130, the first cell
    kept, the second not recorded, the work folder empty, no adb server left, the lease released once."""
    sim = start_sim("a", SPEC_A)
    with StfSimulator({"SERIAL-A": (sim.serial, "Sim A")}, token="tok") as stf:
        connection = f"stf+http://127.0.0.1:{stf.port}/SERIAL-A" if where == "stf" else sim.serial
        (tmp_path / "devices").mkdir()
        (tmp_path / "devices" / "phone.yaml").write_text(
            f"kind: adb\nconnection: {connection}\ntransport: {'adb-shell' if where == 'stf' else where}\n"
            f"benchmark_binary: {binary}\ntimeouts: {{connect: 10}}\n")
        suite = write_suite(tmp_path, ["phone"])
        sim.state.hang_benchmark_from = 2  # the second cell's benchmark_model hangs: still measuring at the signal
        run = _bench_popen(["run", str(suite), "--out", str(tmp_path / "run"), "--cache", str(session_cache)],
                           tmp_path, home, {"STF_TOKEN": "tok"})
        try:
            results = tmp_path / "run" / "results.jsonl"
            wait_for(lambda: (results.exists() and results.read_text().count("\n") == 1) or run.poll() is not None,
                     "the first cell recorded")
            wait_for(lambda: len(sim.taskset_log) == 2 or run.poll() is not None, "the second cell measuring")
            run.send_signal(signal.SIGINT)
            _, stderr = run.communicate(timeout=PATIENCE_S)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode == 130, stderr
        assert "Traceback" not in stderr and "interrupted: finished cells are saved" in stderr
        records = read_results(tmp_path / "run")
        assert [(r["scheme"], r["status"]) for r in records] == [("float32", "ok")]  # nothing finished lost
        assert read_run_info(tmp_path / "run")["status"] == "interrupted"
        assert files_in(sim) == []
        wait_for(lambda: adb_servers(home) == [], "no private adb server left running")
        if where == "stf":
            assert stf.calls.count("POST /api/v1/user/devices") == 1 and stf.owned == set()


def test_bench_validate_rejects_a_malformed_stf_url_naming_file_line_and_field(tmp_path: Path, home: Path,
                                                                                binary: Path) -> None:
    profile = tmp_path / "devices" / "farm.yaml"
    profile.parent.mkdir()
    profile.write_text(f"kind: adb\nbenchmark_binary: {binary}\nconnection: stf://farm.example:99999/SERIAL\n")
    suite = write_suite(tmp_path, ["farm"])
    done = bench("validate", str(suite), cwd=tmp_path, home=home, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {profile}:3: connection: ") and "bad host or port" in line, line
