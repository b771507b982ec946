"""The ADB device simulator: wire protocol, AUTH, services, sandbox, shell and benchmark_model."""

from __future__ import annotations

import functools
import hashlib
import socket
import stat
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_cryptography import CryptographySigner

from harness.devices.android import wire
from harness.devices.android.benchmark_log import parse_benchmark_log
from harness.devices.android.sim.fs import Sandbox
from harness.devices.android.sim.shell import DeviceState, Session, Shell, ShellIO
from harness.devices.android.sim.simulator import (
    FEATURES,
    AdbSimulator,
    AuthConfig,
    DeviceSpec,
    Faults,
)
from harness.devices.android.transport import (
    AdbShellTransport,
    DeviceAuthError,
    Transport,
    quote_args,
)
from harness.errors import HarnessError

TMP = "/data/local/tmp"
X_SHA256 = hashlib.sha256(b"x\n").hexdigest()
FAST_BENCH = "--num_runs=5 --warmup_runs=1 --min_secs=0 --warmup_min_secs=0"


@functools.cache
def tiny_tflite() -> bytes:
    """A real, tiny .tflite (matmul + relu) converted by TensorFlow once per test process."""
    import tensorflow as tf

    module = tf.Module()
    module.weights = tf.Variable(tf.ones([8, 4]))

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def dense(x: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(tf.matmul(x, module.weights) + 1.0)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([dense.get_concrete_function()], module)
    return converter.convert()


def install_benchmark(transport: Transport, tmp_path: Path, executable: bool = True) -> None:
    """Push the tiny model and a stand-in benchmark_model binary (the real one is arm64)."""
    model, tool = tmp_path / "tiny.tflite", tmp_path / "benchmark_model"
    model.write_bytes(tiny_tflite())
    tool.write_bytes(b"stand-in for the arm64 binary")
    tool.chmod(0o644)
    transport.push(model, f"{TMP}/tiny.tflite", 10)
    transport.push(tool, f"{TMP}/benchmark_model", 10)
    if executable:
        assert transport.shell(f"chmod +x {TMP}/benchmark_model", 5).exit_code == 0


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[AdbSimulator]:
    with AdbSimulator(tmp_path / "device", max_payload=4096) as simulator:
        yield simulator


@pytest.fixture
def transport(sim: AdbSimulator) -> Iterator[AdbShellTransport]:
    with AdbShellTransport("127.0.0.1", sim.port, connect_timeout=5) as t:
        yield t


def run_shell(line: str, tmp_path: Path, cpus: int = 8) -> tuple[int, str, str]:
    """Run one line in the simulator's shell without any networking."""
    fs = Sandbox(tmp_path / "shell-device")
    fs.make_dirs()
    out, err = bytearray(), bytearray()
    shell = Shell(DeviceState(fs, {"ro.product.model": "ADB Simulator"}, "aarch64", cpus),
                  Session(threading.Event(), lambda: None))
    status = shell.run(line, ShellIO(out.extend, err.extend))
    return status, out.decode(), err.decode()


# --- wire protocol ------------------------------------------------------------------------


def _send_raw(sock: socket.socket, msg: wire.Message, with_checksum: bool = True) -> None:
    packed = bytearray(wire.pack_message(msg))
    if not with_checksum:
        packed[16:20] = b"\0\0\0\0"
    sock.sendall(packed)


def _read_raw(sock: socket.socket) -> wire.Message:
    reader = sock.makefile("rb")
    command, arg0, arg1, length, check = wire.unpack_header(reader.read(wire.HEADER_SIZE), 1 << 20)
    payload = reader.read(length)
    wire.verify_checksum(payload, check)
    return wire.Message(command, arg0, arg1, payload)


HOST_CNXN = b"host::features=shell_v2\0"


@pytest.mark.parametrize(("version", "with_checksum"), [(wire.VERSION_MIN, True), (wire.VERSION_SKIP_CHECKSUM, False)])
def test_cnxn_handshake_banner(sim: AdbSimulator, version: int, with_checksum: bool) -> None:
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        _send_raw(sock, wire.Message(wire.A_CNXN, version, 1 << 20, HOST_CNXN), with_checksum)
        reply = _read_raw(sock)
    assert reply.name == "CNXN"
    assert reply.arg0 == wire.VERSION_SKIP_CHECKSUM and reply.arg1 == 4096
    banner = reply.payload.decode()
    assert banner.startswith("device::ro.product.name=adbsim;ro.product.model=ADB Simulator;")
    assert banner.endswith("features=" + ",".join(FEATURES))


def test_bad_magic_closes_connection(sim: AdbSimulator) -> None:
    packed = bytearray(wire.pack_message(wire.Message(wire.A_CNXN, wire.VERSION_MIN, 4096, b"host::\0")))
    packed[20:24] = b"\0\0\0\0"
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.sendall(packed)
        assert sock.recv(24) == b""


def test_android_pubkey_roundtrip(tmp_path: Path) -> None:
    keygen(str(tmp_path / "adbkey"))
    signer = CryptographySigner(str(tmp_path / "adbkey"))
    key = wire.decode_android_pubkey(signer.GetPublicKey())
    token = bytes(range(20))
    assert wire.verify_token_signature(key, token, signer.Sign(token))
    assert not wire.verify_token_signature(key, bytes(20), signer.Sign(token))


# --- AUTH ---------------------------------------------------------------------------------


@pytest.fixture
def host_key(tmp_path: Path) -> Path:
    keygen(str(tmp_path / "adbkey"))
    return tmp_path / "adbkey"


def test_auth_with_trusted_key_signs_token(tmp_path: Path, host_key: Path) -> None:
    auth = AuthConfig(public_keys=(Path(f"{host_key}.pub").read_text(),))
    with AdbSimulator(tmp_path / "device", auth=auth) as sim, \
            AdbShellTransport("127.0.0.1", sim.port, rsa_key=host_key, connect_timeout=5) as t:
        assert t.shell("getprop ro.product.model", 5).stdout == "ADB Simulator\n"


def test_auth_accepts_offered_key_when_configured(tmp_path: Path, host_key: Path) -> None:
    with AdbSimulator(tmp_path / "device", auth=AuthConfig(accept_any_key=True)) as sim:
        with AdbShellTransport("127.0.0.1", sim.port, rsa_key=host_key, connect_timeout=5) as t:
            assert t.shell("true", 5).exit_code == 0
        # the accepted key is now trusted: a new connection signs the token directly
        with AdbShellTransport("127.0.0.1", sim.port, rsa_key=host_key, connect_timeout=5) as t:
            assert t.shell("echo ok", 5).stdout == "ok\n"


def test_auth_rejects_unknown_key_and_missing_key(tmp_path: Path, host_key: Path) -> None:
    keygen(str(tmp_path / "otherkey"))
    auth = AuthConfig(public_keys=(Path(tmp_path / "otherkey.pub").read_text(),))
    with AdbSimulator(tmp_path / "device", auth=auth) as sim:
        with pytest.raises(DeviceAuthError, match="authorized"):
            AdbShellTransport("127.0.0.1", sim.port, rsa_key=host_key, connect_timeout=1)
        with pytest.raises(DeviceAuthError, match="no RSA key"):
            AdbShellTransport("127.0.0.1", sim.port, connect_timeout=1)


# --- services -----------------------------------------------------------------------------


def test_shell_v1_has_no_exit_code_and_v2_has(sim: AdbSimulator, transport: AdbShellTransport) -> None:
    device = AdbDeviceTcp("127.0.0.1", sim.port, default_transport_timeout_s=5)
    device.connect()
    try:
        assert device.shell("echo out; echo err >&2; exit 3") == "out\nerr\n"
        assert device.exec_out("echo raw") == "raw\n"
    finally:
        device.close()
    result = transport.shell("echo out; echo err >&2; exit 3", 5)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert transport.shell("no-such-tool", 5).exit_code == 127


def test_push_pull_round_trip_larger_than_max_payload(sim: AdbSimulator, transport: AdbShellTransport,
                                                      tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000  # 256 kB: many 4 kB messages, several 64 kB sync chunks
    local = tmp_path / "blob.bin"
    local.write_bytes(data)
    local.chmod(0o750)
    transport.push(local, f"{TMP}/new/dir/blob.bin", 10)
    on_device = sim.fs.host_path(f"{TMP}/new/dir/blob.bin")
    assert on_device.read_bytes() == data
    assert stat.S_IMODE(on_device.stat().st_mode) == 0o750
    transport.pull(f"{TMP}/new/dir/blob.bin", tmp_path / "back.bin", 10)
    assert (tmp_path / "back.bin").read_bytes() == data
    with pytest.raises(HarnessError, match="No such file"):
        transport.pull(f"{TMP}/missing", tmp_path / "missing", 5)
    assert not (tmp_path / "missing").exists()


def test_list_and_stat(sim: AdbSimulator, transport: AdbShellTransport) -> None:
    assert transport.shell(f"echo -n 12345 > {TMP}/five.txt && mkdir {TMP}/sub", 5).exit_code == 0
    device = AdbDeviceTcp("127.0.0.1", sim.port, default_transport_timeout_s=5)
    device.connect()
    try:
        entries = {entry.filename.decode(): entry for entry in device.list(TMP)}
        mode, size, _mtime = device.stat(f"{TMP}/five.txt")
        missing = device.stat(f"{TMP}/nope")
    finally:
        device.close()
    assert set(entries) == {".", "..", "five.txt", "sub"}
    assert entries["five.txt"].size == 5 and stat.S_ISREG(entries["five.txt"].mode)
    assert stat.S_ISDIR(entries["sub"].mode)
    assert (stat.S_ISREG(mode), size) == (True, 5)
    assert missing == (0, 0, 0)


def test_unknown_service_is_refused_with_clse(sim: AdbSimulator) -> None:
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        _send_raw(sock, wire.Message(wire.A_CNXN, wire.VERSION_SKIP_CHECKSUM, 1 << 20, HOST_CNXN))
        assert _read_raw(sock).name == "CNXN"
        _send_raw(sock, wire.Message(wire.A_OPEN, 7, 0, b"reboot:\0"))
        reply = _read_raw(sock)
    assert (reply.name, reply.arg0, reply.arg1) == ("CLSE", 0, 7)


# --- sandbox ------------------------------------------------------------------------------


def test_paths_cannot_escape_the_sandbox(sim: AdbSimulator, transport: AdbShellTransport, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host data")
    sim.fs.host_path(TMP).joinpath("link").symlink_to(outside)

    result = transport.shell(f"cat {TMP}/link/secret; ls {TMP}/link", 5)
    assert result.exit_code == 1 and result.stdout == ""
    assert "Permission denied" in result.stderr
    assert "No such file" in transport.shell("cat ../../../../../etc/hostname", 5).stderr
    with pytest.raises(HarnessError, match="Permission denied"):
        transport.pull(f"{TMP}/link/secret", tmp_path / "stolen", 5)
    local = tmp_path / "payload"
    local.write_text("x")
    with pytest.raises(HarnessError, match="Permission denied"):
        transport.push(local, f"{TMP}/link/planted", 5)
    transport.push(local, "/../../../planted", 5)  # `..` stops at the device root
    assert not (outside / "planted").exists()
    assert sim.fs.host_path("/planted").read_text() == "x"
    assert transport.shell(f"echo hi > {TMP}/link/planted", 5).exit_code == 1
    assert transport.shell("rm -rf /", 5).exit_code == 1
    assert (outside / "secret").exists() and sim.fs.root.exists()


def test_quoted_names_never_execute(sim: AdbSimulator, transport: AdbShellTransport) -> None:
    name = "odd name; touch pwned && $(touch pwned2) `touch pwned3` 'q' \"d\" $HOME"
    path = f"{TMP}/{name}"
    assert transport.shell(quote_args(["echo", "payload"]) + " > " + quote_args([path]), 5).exit_code == 0
    assert transport.shell(quote_args(["cat", path]), 5).stdout == "payload\n"
    assert transport.shell(quote_args(["ls", TMP]), 5).stdout == name + "\n"
    unquoted = transport.shell("echo $(touch pwned4)", 5)
    assert unquoted.exit_code == 2 and "not supported" in unquoted.stderr
    assert not list(sim.fs.root.rglob("pwned*"))


# --- shell --------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "expected"), [
    ("echo a; echo b", (0, "a\nb\n", "")),
    ("false && echo no || echo yes", (0, "yes\n", "")),
    ("true || echo no; echo $?", (0, "0\n", "")),
    ("missing-tool arg", (127, "", "sh: missing-tool: not found\n")),
    ("cat /nope 2>&1", (1, "cat: /nope: No such file or directory\n", "")),
    ("echo one > /f; echo two >> /f; cat /f", (0, "one\ntwo\n", "")),
    ("echo 'a;b' \"c d\" e\\ f", (0, "a;b c d e f\n", "")),
    ("echo x | sha256sum", (0, f"{X_SHA256}  -\n", "")),
    ("test -d /data/local/tmp && [ -f /data ] || echo notfile", (0, "notfile\n", "")),
    ("uname -m; nproc; getprop ro.product.model", (0, "aarch64\n8\nADB Simulator\n", "")),
    ("echo a &&", (2, "", "sh: syntax error: unexpected end of input\n")),
    ("sh -c 'exit 7'; echo $?", (0, "7\n", "")),
])
def test_shell_interpreter(tmp_path: Path, line: str, expected: tuple[int, str, str]) -> None:
    assert run_shell(line, tmp_path) == expected


def test_file_builtins(tmp_path: Path) -> None:
    line = ("mkdir -p /a/b && echo hello > /a/b/f && chmod 755 /a/b/f && stat -c '%s %a %n' /a/b/f"
            " && md5sum /a/b/f && ls /a/b && test -x /a/b/f && rm -r /a && ls /a")
    status, out, err = run_shell(line, tmp_path)
    assert status == 1
    assert out.splitlines() == ["6 755 /a/b/f", "b1946ac92492d2347c6235b4d2611184  /a/b/f", "f"]
    assert err == "ls: /a: No such file or directory\n"


def test_taskset_records_mask_and_limits_cpus(sim: AdbSimulator, transport: AdbShellTransport) -> None:
    assert transport.shell("taskset 80 nproc", 5).stdout == "1\n"
    assert transport.shell("taskset f0 nproc", 5).stdout == "4\n"
    assert transport.shell("taskset 100 nproc", 5).exit_code == 1  # no such CPU
    assert [(call.mask, call.argv) for call in sim.taskset_log] == [(0x80, ("nproc",)), (0xF0, ("nproc",))]


def test_cpu_sysfs_and_getprop(tmp_path: Path) -> None:
    spec = DeviceSpec(cpus="2x1.8GHz+1x2800MHz", model="Sim Phone", extra_props={"ro.soc.model": "SIM1"})
    with AdbSimulator(tmp_path / "device", device=spec) as sim, \
            AdbShellTransport("127.0.0.1", sim.port) as t:
        cpu = "/sys/devices/system/cpu"
        out = t.shell(f"cat {cpu}/possible {cpu}/online {cpu}/cpu0/cpufreq/cpuinfo_max_freq "
                      f"{cpu}/cpu2/cpufreq/cpuinfo_max_freq", 5).stdout
        assert out.split() == ["0-2", "0-2", "1800000", "2800000"]
        props = t.shell("getprop", 5).stdout
        assert "[ro.product.model]: [Sim Phone]" in props and "[ro.soc.model]: [SIM1]" in props
    with AdbSimulator(tmp_path / "bare", faults=Faults(omit_cpufreq=True)) as sim, \
            AdbShellTransport("127.0.0.1", sim.port) as t:
        assert t.shell("test -e /sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq", 5).exit_code == 1
        assert t.shell("cat /sys/devices/system/cpu/present", 5).stdout == "0-7\n"


# --- benchmark_model ----------------------------------------------------------------------


def test_benchmark_model_runs_the_model_for_real(sim: AdbSimulator, transport: AdbShellTransport,
                                                 tmp_path: Path) -> None:
    install_benchmark(transport, tmp_path, executable=False)
    assert transport.shell(f"{TMP}/benchmark_model --graph={TMP}/tiny.tflite", 5).exit_code == 126
    assert transport.shell(f"chmod +x {TMP}/benchmark_model", 5).exit_code == 0
    result = transport.shell(f"cd {TMP} && taskset 80 ./benchmark_model --graph=tiny.tflite "
                             f"--num_threads=1 {FAST_BENCH}", 30)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["INFO: STARTING!", "INFO: Log parameter values verbosely: [0]", "INFO: Min num runs: [5]"]
    assert "INFO: Graph: [tiny.tflite]" in lines and "INFO: Num threads: [1]" in lines
    assert "INFO: #threads used for CPU inference: [1]" in lines
    assert "INFO: Loaded model tiny.tflite" in lines
    assert f"INFO: The input model file size (MB): {len(tiny_tflite()) / 1e6:g}" in lines
    assert any(line.startswith("INFO: Initialized session in ") and line.endswith("ms.") for line in lines)
    assert ("INFO: Running benchmark for at least 5 iterations and at least 0 seconds "
            "but terminate if exceeding 150 seconds.") in lines
    counts = [line for line in lines if line.startswith("INFO: count=")]
    assert len(counts) == 2 and all(" median=" in line for line in counts)
    assert int(counts[1].split()[1].removeprefix("count=")) >= 5
    timings = [line for line in lines if line.startswith("INFO: Inference timings in us: Init: ")]
    assert len(timings) == 1 and ", First inference: " in timings[0] and ", Inference (avg): " in timings[0]
    assert lines[-1].startswith("INFO: Memory footprint delta from the start of the tool (MB): init=")
    assert sim.taskset_log[-1].mask == 0x80
    parsed = parse_benchmark_log(result.stdout)  # the harness's own parser reads it
    assert parsed.complete and parsed.timings.count is not None and parsed.timings.count >= 5
    assert parsed.parameters["num_threads"] == "1" and parsed.memory.init_mb is not None


def _regular_count(stdout: str) -> int:
    regular = [line for line in stdout.splitlines() if line.startswith("INFO: count=")][1]
    return int(regular.split()[1].removeprefix("count="))


def test_benchmark_model_min_and_max_secs(transport: AdbShellTransport, tmp_path: Path) -> None:
    install_benchmark(transport, tmp_path)
    tool = f"{TMP}/benchmark_model --graph={TMP}/tiny.tflite --warmup_runs=1 --warmup_min_secs=0"
    assert _regular_count(transport.shell(f"{tool} --num_runs=1 --min_secs=0.2", 30).stdout) > 1
    started = time.monotonic()
    capped = transport.shell(f"{tool} --num_runs=100000000 --min_secs=0 --max_secs=0.2", 30)
    assert time.monotonic() - started < 10
    assert 1 < _regular_count(capped.stdout) < 100000000


def test_benchmark_model_missing_graph_fails_like_the_tool(transport: AdbShellTransport, tmp_path: Path) -> None:
    install_benchmark(transport, tmp_path)
    missing = transport.shell(f"{TMP}/benchmark_model --graph={TMP}/absent.tflite", 10)
    assert missing.exit_code == 1
    assert missing.stderr == f"ERROR: Failed to mmap model {TMP}/absent.tflite\nERROR: Benchmarking failed.\n"
    no_graph = transport.shell(f"{TMP}/benchmark_model", 10)
    assert no_graph.exit_code == 1
    assert "Please specify the name of your TF Lite input file with --graph" in no_graph.stderr


def test_other_executables_do_not_run(transport: AdbShellTransport, tmp_path: Path) -> None:
    tool = tmp_path / "tool"
    tool.write_bytes(b"#!/bin/sh\ntouch /tmp/should-not-exist\n")
    tool.chmod(0o755)
    transport.push(tool, f"{TMP}/tool", 5)
    result = transport.shell(f"{TMP}/tool", 5)
    assert result.exit_code == 126 and "only runs benchmark_model" in result.stderr


def test_shell_packets_roundtrip() -> None:
    stream = wire.pack_shell_packet(wire.SHELL_STDOUT, b"out") + wire.pack_shell_packet(wire.SHELL_EXIT, b"\x05")
    assert wire.split_shell_packets(stream) == [(wire.SHELL_STDOUT, b"out"), (wire.SHELL_EXIT, b"\x05")]
    with pytest.raises(wire.ProtocolError):
        wire.split_shell_packets(stream[:-1])
    assert struct.unpack("<BI", stream[:5]) == (1, 3)
