"""Host transports against the ADB simulator: adb-shell and Debian's adb client, with faults."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from adb_shell.auth.keygen import keygen

from harness.devices.android.sim.simulator import AdbSimulator, AuthConfig, Faults
from harness.devices.android.transport import (
    AdbCliTransport,
    AdbShellTransport,
    DeviceLost,
    DeviceTimeout,
    Transport,
    quote_args,
)
from harness.errors import HarnessError
from tests.devices.android.test_simulator import FAST_BENCH, TMP, install_benchmark

BENCH = f"taskset 80 {TMP}/benchmark_model --graph={TMP}/tiny.tflite {FAST_BENCH}"
needs_adb = pytest.mark.skipif(shutil.which("adb") is None,
                               reason="Debian's adb client is not installed (apt-get install adb)")


def shell_transport(sim: AdbSimulator, tmp_path: Path) -> Transport:
    return AdbShellTransport("127.0.0.1", sim.port, connect_timeout=5)


def cli_transport(sim: AdbSimulator, tmp_path: Path) -> Transport:
    return AdbCliTransport("127.0.0.1", sim.port, home=tmp_path / "home", connect_timeout=10)


@pytest.fixture(params=[pytest.param(shell_transport, id="adb-shell"),
                        pytest.param(cli_transport, id="adb-cli", marks=needs_adb)])
def connect(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[AdbSimulator], Transport]]:
    """Open a transport of each kind to a simulator; closes them after the test."""
    (tmp_path / "home").mkdir()
    opened: list[Transport] = []

    def open_transport(sim: AdbSimulator) -> Transport:
        opened.append(request.param(sim, tmp_path))
        return opened[-1]

    yield open_transport
    for transport in opened:
        transport.close()


def big_file(tmp_path: Path, size: int = 300_000) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * (size // 256))
    return path


def test_quote_args() -> None:
    assert quote_args(["ls", "-l", "a b", "x;y", "$(id)", "it's"]) == \
        "ls -l 'a b' 'x;y' '$(id)' 'it'\"'\"'s'"
    assert quote_args([]) == ""


def test_shell_push_pull_and_benchmark(connect: Callable[[AdbSimulator], Transport], tmp_path: Path) -> None:
    with AdbSimulator(tmp_path / "device", max_payload=4096) as sim:
        transport = connect(sim)
        result = transport.shell("echo out; echo err >&2; exit 5", 10)
        assert (result.exit_code, result.stdout, result.stderr) == (5, "out\n", "err\n")
        assert transport.shell(quote_args(["echo", "a b", "$(id)"]), 10).stdout == "a b $(id)\n"
        local = big_file(tmp_path)
        transport.push(local, f"{TMP}/big.bin", 20)
        assert transport.shell(f"stat -c %s {TMP}/big.bin", 10).stdout == f"{local.stat().st_size}\n"
        transport.pull(f"{TMP}/big.bin", tmp_path / "back.bin", 20)
        assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()
        with pytest.raises(HarnessError, match="No such file"):
            transport.pull(f"{TMP}/absent", tmp_path / "absent", 10)
        install_benchmark(transport, tmp_path)
        bench = transport.shell(BENCH, 30)
        assert bench.exit_code == 0, bench.stderr
        assert "INFO: Inference timings in us: Init: " in bench.stdout
        assert [call.mask for call in sim.taskset_log] == [0x80]


def test_drop_mid_push_raises_device_lost(connect: Callable[[AdbSimulator], Transport], tmp_path: Path) -> None:
    with AdbSimulator(tmp_path / "device", faults=Faults(drop_after_push_bytes=100_000)) as sim:
        transport = connect(sim)
        with pytest.raises(DeviceLost):
            transport.push(big_file(tmp_path), f"{TMP}/big.bin", 20)
        assert not sim.fs.host_path(f"{TMP}/big.bin").exists()  # the partial file is removed
        small = tmp_path / "small.bin"
        small.write_bytes(b"fits under the limit")
        transport.push(small, f"{TMP}/small.bin", 20)  # the transport reconnects
        assert transport.shell(f"cat {TMP}/small.bin", 10).stdout == "fits under the limit"


def test_drop_mid_run_raises_device_lost(connect: Callable[[AdbSimulator], Transport], tmp_path: Path) -> None:
    with AdbSimulator(tmp_path / "device", faults=Faults(drop_during_benchmark=True)) as sim:
        transport = connect(sim)
        install_benchmark(transport, tmp_path)
        with pytest.raises(DeviceLost, match="connection lost"):
            transport.shell(BENCH, 30)
        assert transport.shell("echo back", 10).stdout == "back\n"


def test_hanging_benchmark_hits_the_timeout(connect: Callable[[AdbSimulator], Transport], tmp_path: Path) -> None:
    with AdbSimulator(tmp_path / "device", faults=Faults(hang_benchmark=True)) as sim:
        transport = connect(sim)
        install_benchmark(transport, tmp_path)
        started = time.monotonic()
        with pytest.raises(DeviceTimeout, match="timed out after 1s"):
            transport.shell(BENCH, 1)
        assert time.monotonic() - started < 5
        assert transport.shell("echo alive", 10).stdout == "alive\n"


@needs_adb
def test_cli_with_auth_uses_the_servers_adbkey(tmp_path: Path) -> None:
    android = tmp_path / "home" / ".android"
    android.mkdir(parents=True)
    keygen(str(android / "adbkey"))
    auth = AuthConfig(public_keys=((android / "adbkey.pub").read_text(),))
    with AdbSimulator(tmp_path / "device", auth=auth) as sim, \
            AdbCliTransport("127.0.0.1", sim.port, home=tmp_path / "home", connect_timeout=10) as transport:
        assert transport.shell("getprop ro.product.model", 10).stdout == "ADB Simulator\n"


@needs_adb
def test_cli_private_server_and_unreachable_device(tmp_path: Path) -> None:
    with AdbSimulator(tmp_path / "device") as sim, \
            AdbCliTransport("127.0.0.1", sim.port, home=tmp_path, connect_timeout=10) as transport:
        assert transport.server_port != 5037
        assert transport.serial == sim.serial
    with pytest.raises(DeviceLost, match="adb connect failed"):  # the simulator has stopped
        AdbCliTransport("127.0.0.1", sim.port, home=tmp_path, connect_timeout=5)
