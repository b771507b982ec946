"""The command line with simulated phones: `bench run` on two devices over both transports,
`bench devices --json` (profiles and `adb devices -l`), and `bench devices simulate`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.devices.android.benchmark_log import parse_benchmark_log
from harness.devices.android.probe import probe
from harness.devices.android.transport import AdbShellTransport
from harness.report.rows import build_rows
from harness.results import read_results, read_run_info
from tests.conftest import ROOT
from tests.devices.android.conftest import (
    SPEC_A,
    SPEC_B,
    TRANSPORTS,
    StartSim,
    kill_adb_server,
    needs_adb,
    write_profile,
    write_suite,
)
from tests.report.runs import plain

pytestmark = pytest.mark.slow  # runs the CLI over adb against the phone simulator


def bench(*args: str, cwd: Path, home: Path, module: str = "harness.cli", env: dict[str, str] | None = None,
          timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` in `cwd` with a private HOME (the adb client keeps its key there)."""
    environment = {**os.environ, "COLUMNS": "200", "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(home),
                   "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bench_run_on_two_simulated_phones(start_sim: StartSim, binary: Path, tmp_path: Path, session_cache: Path,
                                           home: Path, transport: str) -> None:
    sim_a, sim_b = start_sim("a", SPEC_A), start_sim("b", SPEC_B)
    write_profile(tmp_path, "phone_a", sim_a, binary, transport)
    write_profile(tmp_path, "phone_b", sim_b, binary, transport)
    suite = write_suite(tmp_path, ["phone_a", "phone_b"])
    done = bench("run", str(suite), "--reports", str(tmp_path / "reports"), "--cache", str(session_cache),
                 cwd=tmp_path, home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "reports" / "tiny_adb").glob("2*")
    records = read_results(run_dir)
    assert sorted((r["device"], r["scheme"], r["status"]) for r in records) == [
        ("phone_a", "float32", "ok"), ("phone_a", "int8", "ok"),
        ("phone_b", "float32", "ok"), ("phone_b", "int8", "ok")]
    # the big core of each phone: last cluster on A (CPU 7), first cluster on B (CPU 1)
    assert [c.mask for c in sim_a.taskset_log] == [0x80, 0x80]
    assert [c.mask for c in sim_b.taskset_log] == [0x2, 0x2]
    for record in records:
        stats = record["latency_ms"]
        assert stats.keys() >= {"mean", "median", "std", "min", "max", "count", "init", "first", "warmup_mean"}
        assert stats["count"] == 5 and 0 < stats["min"] <= stats["median"] <= stats["max"]
        assert record["latency_samples_ms"] is None and record["memory"].keys() >= {"init_mb", "overall_mb"}
        assert record["latency_setup"]["mask"] == {"phone_a": "0x80", "phone_b": "0x2"}[record["device"]]
        assert "--min_secs=0 " in record["latency_setup"]["command"]
        assert re.fullmatch(r"benchmark_model sha256:[0-9a-f]{16} on .+ Android .+ \(sdk \d+\)",
                            record["latency_setup"]["runtime"]), record["latency_setup"]["runtime"]
        calls = record["latency_setup"]["remote_calls"]  # what the harness sent for this cell
        assert calls[-1] == f"adb shell {record['latency_setup']['command']}" and any("sha256sum" in c for c in calls)
        log = run_dir / record["latency_log"]
        assert log.name == f"digits_cnn__{record['scheme']}__{record['device']}.log"
        assert parse_benchmark_log(log.read_text()).timings.count == 5
        assert record["metrics"]["top1"] > 0.5
    rows = {(row.device, row.scheme): row for row in build_rows(records)}
    for device in ("phone_a", "phone_b"):  # median / float median, per device
        int8, float32 = rows[(device, "int8")], rows[(device, "float32")]
        assert int8.latency_ratio == pytest.approx(int8.latency_ms / float32.latency_ms)
    info = read_run_info(run_dir)
    assert info["devices"]["phone_a"]["core"] == 7 and info["devices"]["phone_b"]["core"] == 1
    assert info["devices"]["phone_b"]["transport"] == transport
    summary = plain((run_dir / "summary.md").read_text())
    assert "| digits_cnn | int8 | phone_a |" in summary and "| digits_cnn | int8 | phone_b |" in summary
    assert "phone_a (core 7)" in summary and "phone_b (core 1)" in summary
    for sim in (sim_a, sim_b):
        assert not sim.fs.host_path("/data/local/tmp/quantbench").exists()


def _private_adb_port() -> int:
    import socket

    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


@needs_adb
def test_bench_devices_json_lists_profiles_and_the_adb_server(start_sim: StartSim, binary: Path, tmp_path: Path,
                                                              home: Path) -> None:
    profiled, connected = start_sim("a", SPEC_A), start_sim("b", SPEC_B)
    write_profile(tmp_path, "phone", profiled, binary)
    broken = "kind: adb\nconnection: 127.0.0.1:1\nbenchmark_binary: x\nthreads: one\n"
    (tmp_path / "devices" / "broken.yaml").write_text(broken)
    port = _private_adb_port()
    env = {"ANDROID_ADB_SERVER_PORT": str(port)}
    try:
        connect = subprocess.run(["adb", "-P", str(port), "connect", connected.serial], capture_output=True,
                                 text=True, timeout=30, env={**os.environ, **env}, check=False)
        assert connect.stdout.startswith("connected to"), connect.stdout + connect.stderr
        done = bench("--json", cwd=tmp_path, home=home, module="harness.cli_devices", env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        rows = {row["name"]: row for row in json.loads(done.stdout)}
        phone = rows["phone"]
        assert phone.get("reachable"), phone
        assert (phone["source"], phone["reachable"], phone["model"], phone["abi"]) == (
            "profile", True, "Sim A", "arm64-v8a")
        assert (phone["android"], phone["sdk"], phone["mask"], phone["core"]) == ("14", "34", "0x80", 7)
        assert phone["clusters"] == "4x1.90GHz+4x2.45GHz" and len(phone["cores"]) == 8
        assert phone["cores"][7] == {"cpu": 7, "max_freq_khz": 2450000, "source": "cpuinfo_max_freq"}
        listed = rows[connected.serial]
        assert (listed["source"], listed["reachable"], listed["model"], listed["mask"]) == (
            "adb devices", True, "Sim B", "0x2")
        assert rows["broken"]["reachable"] is False and "broken.yaml:4: threads" in rows["broken"]["error"]
        table = bench("--no-scan", cwd=tmp_path, home=home, module="harness.cli_devices", env=env, timeout=120)
        assert "Sim A" in table.stdout and "0x80" in table.stdout and "Sim B" not in table.stdout
    finally:
        kill_adb_server(port)


def test_bench_devices_is_wired_into_bench(tmp_path: Path, home: Path) -> None:
    from harness.cli import app

    if not any(group.name == "devices" for group in app.registered_groups):
        pytest.skip("`bench devices` is not registered in harness/cli.py yet (app.add_typer(devices_app, ...))")
    done = bench("devices", "--json", "--no-scan", cwd=tmp_path, home=home)
    assert done.returncode == 0 and json.loads(done.stdout) == []


def test_bench_devices_simulate_serves_until_stopped(tmp_path: Path, home: Path) -> None:
    command = [sys.executable, "-m", "harness.cli_devices", "simulate", "--cpus", "2x2.8GHz+6x1.8GHz",
               "--model", "Pixel Sim"]
    process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any(line.startswith("threads:") for line in lines):
            line = process.stdout.readline()
            assert line, process.stderr.read()
            lines.append(line.rstrip("\n"))
        connect = next(line for line in lines if line.strip().startswith("adb connect 127.0.0.1:"))
        port = int(connect.rsplit(":", 1)[1])
        assert f"connection: 127.0.0.1:{port}" in lines and "kind: adb" in lines
        with AdbShellTransport("127.0.0.1", port, connect_timeout=10) as transport:
            facts = probe(transport, "auto", 10)
        assert facts.props["model"] == "Pixel Sim" and facts.selection.mask == "2"
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "simulator stopped" in out
