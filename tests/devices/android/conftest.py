"""Simulated phones, device profiles and a tiny two-scheme suite for the `adb` device kind."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.devices.android.sim.simulator import AdbSimulator, DeviceSpec, Faults
from tests.conftest import DATA

# Big cluster last on A (CPU 7 → mask 0x80), first on B (CPU 1 → mask 0x2).
SPEC_A = DeviceSpec(serial="sim-a", model="Sim A", cpus="4x1.9GHz+4x2.45GHz")
SPEC_B = DeviceSpec(serial="sim-b", model="Sim B", cpus="2x2.8GHz+6x1.8GHz")
FAST = {"warmup_runs": 1, "num_runs": 5, "min_secs": 0}

needs_adb = pytest.mark.skipif(shutil.which("adb") is None,
                               reason="Debian's adb client is not installed (apt-get install adb)")
TRANSPORTS = [pytest.param("adb-shell", id="adb-shell"), pytest.param("adb", id="adb-cli", marks=needs_adb)]

StartSim = Callable[..., AdbSimulator]


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[StartSim]:
    """Start simulators (stopped after the test): start_sim("a", SPEC_A, Faults(...))."""
    running: list[AdbSimulator] = []

    def start(name: str, spec: DeviceSpec = SPEC_A, faults: Faults | None = None) -> AdbSimulator:
        running.append(AdbSimulator(tmp_path / "phones" / name, device=spec, faults=faults).start())
        return running[-1]

    yield start
    for sim in running:
        sim.stop()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME (the adb client keeps its key in ~/.android) and adb server port."""
    folder = tmp_path / "home"
    folder.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(folder))
    return folder


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    """The host's "benchmark binary": any file does, the simulator runs LiteRT for it."""
    path = tmp_path / "host" / "android_aarch64_benchmark_model"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"stand-in for the arm64 benchmark_model\n")
    return path


def write_profile(root: Path, name: str, sim: AdbSimulator, binary: Path, transport: str = "adb-shell",
                  extra: str = "", timeouts: str = "{connect: 10}") -> Path:
    """devices/<name>.yaml under `root` for a simulator."""
    folder = root / "devices"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f"kind: adb\nconnection: {sim.serial}\ntransport: {transport}\n"
                    f"benchmark_binary: {binary}\ntimeouts: {timeouts}\n{extra}")
    return path


def write_suite(root: Path, devices: list[str], latency: str = "{warmup_runs: 1, num_runs: 5, min_secs: 0}") -> Path:
    """suites/tiny_adb.yaml: tests/data/tiny.yaml with float32 + int8 on `devices` (no float pairs unless
    `latency` asks: these tests count the phone's benchmark runs)."""
    if "float_pairs" not in latency:
        latency = latency[:-1] + ", float_pairs: 0}"
    text = (DATA / "tiny.yaml").read_text()
    text = text.replace("name: tiny", "name: tiny_adb")
    text = text.replace("schemes: [float32, float16, dynamic_range, int8, int8_only, int16x8]",
                        "schemes: [float32, int8]")
    text = text.replace("devices: [local]", f"devices: [{', '.join(devices)}]")
    text = text.replace("latency: {float_pairs: 0, warmup_runs: 2, num_runs: 10, min_secs: 0}", f"latency: {latency}")
    assert "schemes: [float32, int8]" in text and "tiny_adb" in text and f"latency: {latency}" in text
    path = root / "suites" / "tiny_adb.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def kill_adb_server(port: int) -> None:
    """Stop a private adb server a test started (by its port, never the user's 5037)."""
    assert port != 5037
    subprocess.run(["adb", "-P", str(port), "kill-server"], capture_output=True, timeout=20, check=False)
