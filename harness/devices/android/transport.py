"""Host-side transports to an Android device over adb.

`AdbShellTransport` speaks the ADB protocol itself (the PyPI `adb-shell` library, TCP, no
adb server); `AdbCliTransport` drives Debian's `adb` command-line client with a private
adb server on its own port. Both bound every remote call by a timeout (DeviceTimeout)
and report a dropped connection as DeviceLost; the next call reconnects, retrying for up to
`connect_timeout` seconds (a phone or adbd restarting on the same address). abort() cuts the
call in flight short from another thread (CallAborted); after close() no call runs at all,
so nothing (an adb server, a connection) is started again once a transport is closed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from adb_shell import exceptions as adb_errors
from adb_shell.adb_device import AdbDevice
from adb_shell.auth.sign_cryptography import CryptographySigner
from adb_shell.transport.base_transport import BaseTransport

from harness.devices.android import wire
from harness.errors import HarnessError


class DeviceLost(HarnessError):
    """The connection to the device dropped (or never came up) during a remote call."""


class DeviceTimeout(HarnessError):
    """A remote call did not finish within its timeout."""


class DeviceAuthError(HarnessError):
    """The device did not authorize this host's ADB key."""


class CallAborted(HarnessError):
    """abort() (from another thread) cut this remote call short."""


RETRY_PAUSE_S = 0.25  # between connection attempts within the reconnect window


@dataclass(frozen=True)
class ShellResult:
    """What a remote command left behind."""

    exit_code: int
    stdout: str
    stderr: str


class Transport(Protocol):
    """How the harness talks to a device; quoting arguments is the caller's job."""

    def shell(self, cmd: str, timeout: float) -> ShellResult:
        """Run a shell command line on the device."""
        ...

    def push(self, local: Path, remote: str, timeout: float) -> None:
        """Copy a local file to a device path (keeping its permission bits)."""
        ...

    def pull(self, remote: str, local: Path, timeout: float) -> None:
        """Copy a device file to a local path."""
        ...

    def abort(self) -> None:
        """From another thread: make the call in flight fail now (CallAborted or DeviceLost)."""
        ...

    def close(self) -> None:
        """Release the connection (idempotent); later calls fail without reconnecting."""
        ...


def quote_args(args: list[str]) -> str:
    """Join arguments into one shell command line, each quoted for a POSIX shell."""
    return " ".join(shlex.quote(arg) for arg in args)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _check_local_file(local: Path) -> None:
    if not local.is_file():
        raise HarnessError(f"cannot push {local}: not a file")


def _check_local_dir(local: Path) -> None:
    if not local.parent.is_dir():
        raise HarnessError(f"cannot pull to {local}: {local.parent} is not a directory")


# --- adb-shell -------------------------------------------------------------------------


class _DeadlineSocket(BaseTransport):
    """adb-shell's transport over TCP: every read/write bounded by one overall deadline,
    and end-of-stream reported as a lost connection (adb-shell would spin on it)."""

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)
        self._sock: socket.socket | None = None
        self.deadline = 0.0

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise adb_errors.TcpTimeoutException("deadline passed")
        return remaining

    def _ready(self) -> socket.socket:
        if self._sock is None:
            raise ConnectionResetError("not connected")
        self._sock.settimeout(self._remaining())
        return self._sock

    def connect(self, transport_timeout_s: float | None) -> None:
        try:
            self._sock = socket.create_connection(self._address, timeout=self._remaining())
        except TimeoutError as exc:
            raise adb_errors.TcpTimeoutException(f"connecting to {self._address}") from exc
        # adb-shell writes header and payload separately; Nagle would hold the payload back.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None

    def abort(self) -> None:
        """From another thread: a blocked read or write returns at once (the owner closes)."""
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def bulk_read(self, numbytes: int, transport_timeout_s: float | None) -> bytes:
        try:
            data = self._ready().recv(numbytes)
        except TimeoutError as exc:
            raise adb_errors.TcpTimeoutException("read timed out") from exc
        if not data:
            raise ConnectionResetError("the device closed the connection")
        return data

    def bulk_write(self, data: bytes, transport_timeout_s: float | None) -> int:
        try:
            self._ready().sendall(data)
        except TimeoutError as exc:
            raise adb_errors.TcpTimeoutException("write timed out") from exc
        return len(data)


_TIMEOUTS = (adb_errors.TcpTimeoutException, adb_errors.AdbTimeoutError)
_LOSSES = (ConnectionError, adb_errors.AdbConnectionError, adb_errors.InvalidResponseError,
           adb_errors.InvalidCommandError, adb_errors.InvalidChecksumError, wire.ProtocolError)


class AdbShellTransport:
    """A device reached over TCP with the `adb-shell` library (optionally with an RSA key)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 5555, *, rsa_key: Path | None = None,
                 connect_timeout: float = 10.0) -> None:
        self.where = f"{host}:{port}"
        self._socket = _DeadlineSocket(host, port)
        self._device = AdbDevice(self._socket, banner="quantbench")
        self._signers = [CryptographySigner(str(rsa_key))] if rsa_key else None
        self._connect_timeout = connect_timeout
        self._aborts, self._closed = 0, False
        self._connect(retry=False)

    def _connect(self, retry: bool) -> None:
        """Connect; with `retry` (a reconnect) a refused or dropped attempt is retried until
        `connect_timeout` has passed, so a device back on the same address is picked up."""
        deadline, generation = time.monotonic() + self._connect_timeout, self._aborts
        while True:
            try:
                return self._connect_once(deadline)
            except DeviceLost:
                if not retry or self._closed or time.monotonic() + RETRY_PAUSE_S >= deadline:
                    raise
            if generation != self._aborts:
                raise CallAborted(f"{self.where}: reconnecting aborted")
            time.sleep(RETRY_PAUSE_S)

    def _connect_once(self, deadline: float) -> None:
        timeout = self._connect_timeout
        self._socket.deadline = deadline
        try:
            self._device.connect(rsa_keys=self._signers, transport_timeout_s=timeout,
                                 auth_timeout_s=timeout, read_timeout_s=timeout)
        except adb_errors.DeviceAuthError as exc:
            raise DeviceAuthError(f"{self.where}: the device requires AUTH and no RSA key was given") from exc
        except _TIMEOUTS as exc:
            self._device.close()
            if self._signers:
                raise DeviceAuthError(f"{self.where}: no connection within {timeout:g}s; "
                                      "is this host's key authorized on the device?") from exc
            raise DeviceTimeout(f"{self.where}: no connection within {timeout:g}s") from exc
        except (*_LOSSES, OSError) as exc:
            self._device.close()
            raise DeviceLost(f"{self.where}: cannot connect: {exc}") from exc

    @contextlib.contextmanager
    def _call(self, timeout: float, what: str) -> Iterator[None]:
        """Bound one remote call by `timeout`, mapping failures to the harness's errors."""
        if self._closed:
            raise DeviceLost(f"{self.where}: the connection is closed")
        generation = self._aborts
        if not self._device.available:
            self._connect(retry=True)
        self._socket.deadline = time.monotonic() + timeout
        try:
            yield
        except _TIMEOUTS as exc:
            self._device.close()  # abandons the stream; the device side sees the close
            raise DeviceTimeout(f"{self.where}: {what} timed out after {timeout:g}s") from exc
        except _LOSSES as exc:
            self._device.close()
            if generation != self._aborts:
                raise CallAborted(f"{self.where}: {what} aborted") from exc
            raise DeviceLost(f"{self.where}: connection lost during {what}: {exc}") from exc

    def shell(self, cmd: str, timeout: float) -> ShellResult:
        """Run `cmd` with shell protocol v2 (separate stdout/stderr and an exit status)."""
        with self._call(timeout, f"shell {cmd!r}"):
            # adb-shell has no public v2 shell; its generic service call returns the raw stream.
            raw = self._device._service(b"shell,v2,raw", cmd.encode(), transport_timeout_s=timeout,
                                        read_timeout_s=timeout, timeout_s=timeout, decode=False)
            packets = wire.split_shell_packets(raw)
        exits = [data for packet_id, data in packets if packet_id == wire.SHELL_EXIT]
        if len(exits) != 1 or len(exits[0]) != 1:
            self._device.close()
            raise DeviceLost(f"{self.where}: shell {cmd!r} ended without an exit status")
        return ShellResult(exits[0][0],
                           _decode(b"".join(d for i, d in packets if i == wire.SHELL_STDOUT)),
                           _decode(b"".join(d for i, d in packets if i == wire.SHELL_STDERR)))

    def push(self, local: Path, remote: str, timeout: float) -> None:
        """Push a file, keeping its permission bits and mtime."""
        _check_local_file(local)
        st = local.stat()
        try:
            with self._call(timeout, f"push {local} -> {remote}"):
                self._device.push(str(local), remote, st_mode=stat.S_IFREG | stat.S_IMODE(st.st_mode),
                                  mtime=int(st.st_mtime), transport_timeout_s=timeout, read_timeout_s=timeout)
        except adb_errors.PushFailedError as exc:
            reason = exc.args[0] if exc.args else b""
            reason = _decode(reason) if isinstance(reason, bytes) else str(reason)
            raise HarnessError(f"{self.where}: push {local} -> {remote} failed: {reason}") from exc

    def pull(self, remote: str, local: Path, timeout: float) -> None:
        """Pull a file; a partial local file is removed on failure."""
        _check_local_dir(local)
        try:
            with self._call(timeout, f"pull {remote} -> {local}"):
                self._device.pull(remote, str(local), transport_timeout_s=timeout, read_timeout_s=timeout)
        except adb_errors.AdbCommandFailureException as exc:
            local.unlink(missing_ok=True)
            raise HarnessError(f"{self.where}: pull {remote} failed: {exc}") from exc
        except HarnessError:
            local.unlink(missing_ok=True)
            raise

    def abort(self) -> None:
        """Cut the call in flight short (its connection is dropped; the next call reconnects)."""
        self._aborts += 1
        self._socket.abort()

    def close(self) -> None:
        """Close the TCP connection; later calls fail instead of reconnecting."""
        self._closed = True
        self._device.close()

    def __enter__(self) -> AdbShellTransport:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# --- Debian's adb client ---------------------------------------------------------------

# Messages with which the adb client reports a transport (not a command) failure.
_CLIENT_LOSS = re.compile(r"couldn't read from device|protocol fault|device offline|device '.*' not found|"
                          r"no devices/emulators found|error: closed|connection reset|failed to get feature set")
_STATUS_MARK = "__quantbench_exit_status="


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AdbCliTransport:
    """A device reached through Debian's `adb` client and a private adb server.

    The server listens on `server_port` (a free one by default), never the user's 5037,
    and is killed by close(). `home` (if given) becomes the server's HOME, so its
    ~/.android/adbkey lives there. adb 29 exits 0 when the connection drops mid-command,
    so each command is run as `sh -c CMD` followed by an exit-status marker on stderr:
    no marker means the connection was lost. After a loss the next call waits (up to
    `connect_timeout`) for the server to bring the device back online.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 5555, *, adb: str = "adb",
                 server_port: int | None = None, home: Path | None = None,
                 connect_timeout: float = 20.0) -> None:
        executable = shutil.which(adb)
        if executable is None:
            raise HarnessError(f"the adb client {adb!r} is not installed (Debian package: adb)")
        self.serial = f"{host}:{port}"
        self.server_port = server_port or _free_port()
        self._adb = [executable, "-P", str(self.server_port)]
        self._env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(self.server_port)}
        if home is not None:
            self._env["HOME"] = str(home)
        self._connect_timeout, self._lost = connect_timeout, False
        self._init_calls()
        try:
            self._connect(connect_timeout, False)
        except HarnessError:
            self.close()
            raise

    def _init_calls(self) -> None:
        self._closed, self._aborts = False, 0
        self._calls_lock = threading.Lock()
        self._running: dict[subprocess.Popen[bytes], bool] = {}  # adb client processes -> aborted?

    def _run(self, args: list[str], timeout: float, what: str) -> subprocess.CompletedProcess[bytes]:
        """One adb client command; never after close() (adb would start its server again)."""
        if self._closed:
            raise DeviceLost(f"{self.serial}: the connection is closed")
        process = subprocess.Popen([*self._adb, *args], env=self._env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self._calls_lock:
            self._running[process] = False
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.communicate()
            raise DeviceTimeout(f"{self.serial}: {what} timed out after {timeout:g}s") from exc
        finally:
            with self._calls_lock:
                aborted = self._running.pop(process)
        if aborted:
            raise CallAborted(f"{self.serial}: {what} aborted")
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def abort(self) -> None:
        """Stop the adb client processes in flight; the adb server and the connection stay."""
        self._aborts += 1
        with self._calls_lock:
            for process in self._running:
                self._running[process] = True
                with contextlib.suppress(OSError):
                    process.terminate()

    def _adb_connect(self, deadline: float, retry: bool) -> None:
        """`adb connect` until it succeeds; with `retry`, until `deadline` (a device coming back)."""
        generation = self._aborts
        while True:
            result = self._run(["connect", self.serial], max(deadline - time.monotonic(), 0.1),
                               f"adb connect {self.serial}")
            if _decode(result.stdout).startswith(("connected to", "already connected to")):
                return
            if not retry or time.monotonic() + RETRY_PAUSE_S >= deadline:
                raise DeviceLost(f"{self.serial}: adb connect failed: "
                                 f"{_decode(result.stdout + result.stderr).strip()}")
            if generation != self._aborts:
                raise CallAborted(f"{self.serial}: reconnecting aborted")
            time.sleep(RETRY_PAUSE_S)

    def _connect(self, timeout: float, after_loss: bool) -> None:
        deadline = time.monotonic() + timeout
        self._run(["start-server"], timeout, "adb start-server")
        if after_loss:  # forget the dropped transport, so the server dials the device afresh
            self._run(["disconnect", self.serial], timeout, f"adb disconnect {self.serial}")
        self._adb_connect(deadline, retry=after_loss)
        state = ""
        while time.monotonic() < deadline:
            state = self._state(deadline - time.monotonic())
            if state == "device":
                return
            if "not found" in state and time.monotonic() + RETRY_PAUSE_S < deadline:
                # The server dropped the transport it had just dialled (its handshake failed, e.g. on a
                # loaded host or a device still coming back): dial again while the window lasts.
                time.sleep(RETRY_PAUSE_S)
                self._adb_connect(deadline, retry=True)
                continue
            time.sleep(0.1)
        if "unauthorized" in state:
            raise DeviceAuthError(f"{self.serial}: the device did not authorize this host's adb key")
        raise DeviceTimeout(f"{self.serial}: not online within {timeout:g}s (state: {state or 'unknown'})")

    def _state(self, timeout: float) -> str:
        result = self._run(["-s", self.serial, "get-state"], max(timeout, 0.1), "adb get-state")
        return _decode(result.stdout + result.stderr).strip()

    def _ensure_online(self) -> None:
        if self._lost:
            self._connect(self._connect_timeout, True)
            self._lost = False

    def _device_lost(self, what: str, message: str) -> DeviceLost:
        self._lost = True
        lines = [line for line in message.splitlines() if line.strip()]
        return DeviceLost(f"{self.serial}: connection lost during {what}: {lines[-1] if lines else 'no exit status'}")

    def _failure(self, result: subprocess.CompletedProcess[bytes], what: str) -> HarnessError:
        message = _decode(result.stderr + result.stdout).strip()
        if _CLIENT_LOSS.search(message):
            return self._device_lost(what, message)
        return HarnessError(f"{self.serial}: {what} failed: {message}")

    def shell(self, cmd: str, timeout: float) -> ShellResult:
        """Run `cmd`; the exit status comes from a marker so a lost connection is noticed."""
        self._ensure_online()
        wrapped = f"sh -c {shlex.quote(cmd)}; echo {_STATUS_MARK}$? >&2"
        what = f"shell {cmd!r}"
        result = self._run(["-s", self.serial, "shell", wrapped], timeout, what)
        stderr = _decode(result.stderr)
        head, mark, tail = stderr.rpartition(_STATUS_MARK)
        if not mark or not tail.strip().isdigit():  # the remote shell never finished
            raise self._device_lost(what, stderr)
        return ShellResult(int(tail.strip()), _decode(result.stdout), head)

    def push(self, local: Path, remote: str, timeout: float) -> None:
        """`adb push` one file (adb keeps its permission bits)."""
        _check_local_file(local)
        self._ensure_online()
        what = f"push {local} -> {remote}"
        result = self._run(["-s", self.serial, "push", str(local), remote], timeout, what)
        if result.returncode != 0:
            raise self._failure(result, what)

    def pull(self, remote: str, local: Path, timeout: float) -> None:
        """`adb pull` one file; a partial local file is removed on failure."""
        _check_local_dir(local)
        self._ensure_online()
        what = f"pull {remote} -> {local}"
        try:
            result = self._run(["-s", self.serial, "pull", remote, str(local)], timeout, what)
        except DeviceTimeout:
            local.unlink(missing_ok=True)
            raise
        if result.returncode != 0:
            local.unlink(missing_ok=True)
            raise self._failure(result, what)

    def close(self) -> None:
        """Disconnect and stop the private adb server; nothing runs adb again afterwards."""
        if self._closed:
            return
        with contextlib.suppress(HarnessError):
            self._run(["kill-server"], 10.0, "adb kill-server")
        self._closed = True

    def __enter__(self) -> AdbCliTransport:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
