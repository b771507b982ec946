"""Opening a connection for an `adb` device profile, and tracing every remote command.

* `host:port` with `transport: adb-shell` — the adb-shell library over TCP (no adb server);
* `host:port` with `transport: adb` — Debian's adb client with a private adb server
  (`AdbCliTransport`: `adb connect`, killed at the end);
* `stf://HOST/SERIAL` or `stf://HOST?model=NAME` — a phone leased from DeviceFarmer STF
  (harness.devices.android.stf), then reached at the address STF's remoteConnect gives;
* a USB serial with `transport: adb` — the user's adb server (the one `adb devices` talks
  to: $ANDROID_ADB_SERVER_PORT or 5037), `adb -s SERIAL`, never killed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.devices.android.transport import (
    AdbCliTransport,
    AdbShellTransport,
    DeviceLost,
    DeviceTimeout,
    ShellResult,
    Transport,
    quote_args,
)
from harness.errors import HarnessError

log = logging.getLogger("harness.devices.android")


def split_connection(connection: str) -> tuple[str, int | None]:
    """("host", port) for `host:port`, (serial, None) for a USB serial."""
    host, sep, port = connection.rpartition(":")
    if sep and host and port.isdigit():
        return host.strip("[]"), int(port)
    return connection, None


def default_server_port() -> int:
    """The adb server port the user's `adb` talks to."""
    value = os.environ.get("ANDROID_ADB_SERVER_PORT", "")
    return int(value) if value.isdigit() else 5037


class ServerCliTransport(AdbCliTransport):
    """A device already known to the user's adb server (USB, or `adb connect`ed): `adb -s SERIAL`.

    Unlike `AdbCliTransport` it neither runs `adb connect` nor stops the server on close();
    connecting (and reconnecting after a loss) waits until `adb get-state` says `device`.
    """

    def __init__(self, serial: str, *, adb: str = "adb", server_port: int | None = None,
                 connect_timeout: float = 20.0) -> None:
        executable = shutil.which(adb)
        if executable is None:
            raise HarnessError(f"the adb client {adb!r} is not installed (Debian package: adb)")
        self.serial = serial
        self.server_port = server_port or default_server_port()
        self._adb = [executable, "-P", str(self.server_port)]
        self._env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(self.server_port)}
        self._connect_timeout, self._lost = connect_timeout, False
        self._init_calls()
        self._connect(connect_timeout, False)

    def _connect(self, timeout: float, wait_for_unknown: bool) -> None:
        """Wait until the server reports the device online; an unknown serial fails at once
        on the first connection, and is waited for after a loss (a USB replug)."""
        deadline = time.monotonic() + timeout
        self._run(["start-server"], timeout, "adb start-server")
        state = ""
        while time.monotonic() < deadline:
            state = self._state(deadline - time.monotonic())
            if state == "device":
                return
            if not wait_for_unknown and "not found" in state:
                raise DeviceLost(f"{self.serial}: the adb server does not know this device ({state})")
            time.sleep(0.2)
        if "unauthorized" in state:
            raise DeviceLost(f"{self.serial}: unauthorized: accept this computer's key on the phone")
        raise DeviceLost(f"{self.serial}: not online within {timeout:g}s (state: {state or 'unknown'})")

    def close(self) -> None:
        """Nothing to release: the adb server belongs to the user (later calls fail)."""
        self._closed = True


def open_transport(connection: str, kind: str, *, adb: str = "adb", rsa_key: Path | None = None,
                   connect_timeout: float = 20.0) -> Transport:
    """Connect as a profile says; raises DeviceLost/DeviceTimeout/HarnessError. An stf:// connection
    leases the phone first; closing the transport releases it (also when connecting fails)."""
    from harness.devices.android import stf

    if stf.is_stf(connection):
        lease = stf.StfLease.acquire(connection)
        try:
            inner = open_transport(lease.address, kind, adb=adb, rsa_key=rsa_key, connect_timeout=connect_timeout)
        except BaseException:
            lease.release()
            raise
        return stf.LeasedTransport(inner, lease)
    host, port = split_connection(connection)
    if kind == "adb-shell":
        if port is None:
            raise HarnessError(f"{connection!r} looks like a USB serial: quantbench's adb-shell transport "
                               "connects over TCP only; use `transport: adb` for USB devices")
        return AdbShellTransport(host, port, rsa_key=rsa_key, connect_timeout=connect_timeout)
    if port is None:
        return ServerCliTransport(connection, adb=adb, connect_timeout=connect_timeout)
    return AdbCliTransport(host, port, adb=adb, connect_timeout=connect_timeout)


def default_rsa_key() -> Path | None:
    """~/.android/adbkey, the key the user's adb already authorized on their phones, if there is one."""
    key = Path.home() / ".android" / "adbkey"
    return key if key.is_file() else None


class TracedTransport:
    """A transport that logs each remote call at debug level and keeps a list of them."""

    def __init__(self, inner: Transport, name: str) -> None:
        self.inner, self.name = inner, name
        self.calls: list[str] = []

    def _note(self, call: str) -> None:
        self.calls.append(call)
        log.debug("%s: %s", self.name, call)

    def shell(self, cmd: str, timeout: float) -> ShellResult:
        self._note(f"adb shell {cmd}")
        return self.inner.shell(cmd, timeout)

    def push(self, local: Path, remote: str, timeout: float) -> None:
        self._note(f"adb push {quote_args([str(local), remote])}")
        self.inner.push(local, remote, timeout)

    def pull(self, remote: str, local: Path, timeout: float) -> None:
        self._note(f"adb pull {quote_args([remote, str(local)])}")
        self.inner.pull(remote, local, timeout)

    def abort(self) -> None:
        self.inner.abort()

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class ListedDevice:
    """One line of `adb devices -l`."""

    serial: str
    state: str
    details: dict[str, str]


def list_server_devices(adb: str = "adb", server_port: int | None = None, timeout: float = 20.0) -> list[ListedDevice]:
    """`adb devices -l` of the user's adb server (started by adb if it is not running)."""
    executable = shutil.which(adb)
    if executable is None:
        return []
    port = server_port or default_server_port()
    env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(port)}
    try:
        done = subprocess.run([executable, "-P", str(port), "devices", "-l"], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DeviceTimeout(f"`adb devices -l` did not answer within {timeout:g}s") from exc
    devices = []
    for line in done.stdout.splitlines():
        if not line.strip() or line.startswith(("List of devices", "*")):
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        details = dict(re.findall(r"(\w+):(\S+)", " ".join(parts[2:])))
        devices.append(ListedDevice(parts[0], parts[1], details))
    return devices
