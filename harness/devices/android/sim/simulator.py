"""An ADB device simulator: a loopback TCP server that speaks the real ADB protocol.

It does the CNXN handshake (optionally with RSA AUTH), multiplexes streams
(OPEN/OKAY/WRTE/CLSE with flow control and the negotiated max payload) and serves
`shell:` (v1), `shell,v2,...:` (shell protocol v2), `exec:` and `sync:` (STAT/STA2/LST2,
LIST/LIS2, SEND, RECV, QUIT) over a sandbox directory. Commands run in the simulator's
own shell (sim_shell), never the host's. Faults can be injected per simulator.

    with AdbSimulator(tmp_path / "device") as sim:
        AdbShellTransport("127.0.0.1", sim.port)  # or: adb connect 127.0.0.1:<sim.port>
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric import rsa

from harness.devices.android import wire
from harness.devices.android.sim._numerics import NumericsSpec, check_perturbation
from harness.devices.android.sim.fs import Sandbox, parse_cpu_spec, write_cpu_sysfs, write_thermal_sysfs
from harness.devices.android.sim.shell import (
    DeviceState,
    Session,
    Shell,
    ShellIO,
    StreamClosed,
    TasksetCall,
)
from harness.devices.android.wire import Message

LOOPBACK = "127.0.0.1"
DEFAULT_MAX_PAYLOAD = 1024 * 1024  # what current adbd advertises
MIN_MAX_PAYLOAD = 4096  # the protocol's v1 payload size; AUTH keys must fit
FEATURES = ("shell_v2", "stat_v2", "ls_v2", "fixed_push_mkdir")
_MACHINES = {"arm64-v8a": "aarch64", "armeabi-v7a": "armv7l", "x86_64": "x86_64", "x86": "i686"}


@dataclass(frozen=True)
class DeviceSpec:
    """What the simulated phone reports: banner, getprop values and CPU topology."""

    serial: str = "adbsim-0001"
    model: str = "ADB Simulator"
    product: str = "adbsim"
    device: str = "adbsim"
    manufacturer: str = "quantbench-simulator"
    android_release: str = "14"
    sdk: int = 34
    abi: str = "arm64-v8a"
    cpus: str = "4x1.9GHz+4x2.45GHz"
    extra_props: Mapping[str, str] = field(default_factory=dict)
    # /sys/class/thermal zones (type → °C), the battery's temperature and the cores' governor;
    # a test changes them while it runs with `set_temperature`.
    thermal_c: Mapping[str, float] = field(default_factory=lambda: {"cpu-0-0": 36.5, "skin": 31.0})
    battery_temp_c: float | None = 29.5
    # `dumpsys thermalservice`'s platform thermal status (0 none, 1 light … 6 shutdown; None: a
    # phone older than Android 10 without the service); a test changes it with `set_thermal_status`.
    thermal_status: int | None = 0
    governor: str = "schedutil"
    # benchmark_model's outputs as this phone computes them (None, "fp16", "noise:R": see sim._numerics),
    # and a binary too old for --input_layer_value_files / --output_filepath
    perturb_outputs: str | None = None
    old_benchmark: bool = False

    def __post_init__(self) -> None:
        check_perturbation(self.perturb_outputs)

    def props(self) -> dict[str, str]:
        """The getprop table."""
        return {
            "ro.serialno": self.serial, "ro.product.model": self.model,
            "ro.product.name": self.product, "ro.product.device": self.device,
            "ro.product.manufacturer": self.manufacturer,
            "ro.build.version.release": self.android_release, "ro.build.version.sdk": str(self.sdk),
            "ro.product.cpu.abi": self.abi, "ro.product.cpu.abilist": self.abi,
            **self.extra_props,
        }

    def banner(self) -> bytes:
        """The CNXN system-identity string."""
        return (f"device::ro.product.name={self.product};ro.product.model={self.model};"
                f"ro.product.device={self.device};features={','.join(FEATURES)}").encode()


@dataclass(frozen=True)
class Faults:
    """Failures to inject; each fires every time its situation arises."""

    drop_after_push_bytes: int | None = None  # drop the TCP connection once a SEND passes N bytes
    drop_during_benchmark: bool = False  # drop the TCP connection after benchmark_model's warmup
    hang_benchmark: bool = False  # benchmark_model hangs after initialising, until killed
    omit_cpufreq: bool = False  # no cpuN/cpufreq/ files in /sys


@dataclass(frozen=True)
class AuthConfig:
    """Require RSA AUTH: `public_keys` are adbkey.pub contents the device already trusts."""

    public_keys: tuple[str, ...] = ()
    accept_any_key: bool = False  # accept any RSAPUBLICKEY, as if the user tapped "Allow"


class AdbSimulator:
    """A simulated Android device on 127.0.0.1; `port=0` picks a free port."""

    def __init__(self, sandbox: Path, *, device: DeviceSpec | None = None, faults: Faults | None = None,
                 auth: AuthConfig | None = None, port: int = 0,
                 max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        if max_payload < MIN_MAX_PAYLOAD:
            raise ValueError(f"max_payload must be at least {MIN_MAX_PAYLOAD}")
        device, faults = device or DeviceSpec(), faults or Faults()
        self.device, self.faults, self.auth, self.max_payload = device, faults, auth, max_payload
        self._trusted: list[rsa.RSAPublicKey] = [wire.decode_android_pubkey(k) for k in auth.public_keys] if auth else []
        self.fs = Sandbox(sandbox)
        freqs = parse_cpu_spec(device.cpus)
        self.fs.make_dirs()
        write_cpu_sysfs(self.fs, freqs, with_cpufreq=not faults.omit_cpufreq)
        write_thermal_sysfs(self.fs, device, freqs, with_cpufreq=not faults.omit_cpufreq)
        self.state = DeviceState(self.fs, device.props(), _MACHINES.get(device.abi, "aarch64"), len(freqs),
                                 hang_benchmark=faults.hang_benchmark,
                                 drop_during_benchmark=faults.drop_during_benchmark,
                                 numerics=NumericsSpec(device.perturb_outputs, device.old_benchmark),
                                 thermal_status=device.thermal_status)
        self._requested_port, self._port = port, 0
        self._lock = threading.Lock()
        self._running: set[threading.Event] = set()  # cancel flags of commands in flight
        self._connections: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the simulator listens on (after start())."""
        return self._port

    @property
    def serial(self) -> str:
        """The serial `adb connect` gives this device."""
        return f"{LOOPBACK}:{self._port}"

    @property
    def taskset_log(self) -> list[TasksetCall]:
        """Every `taskset MASK CMD...` run so far, oldest first."""
        with self.state.lock:
            return list(self.state.taskset_log)

    def set_thermal_status(self, status: int) -> None:
        """Change the platform thermal status `dumpsys thermalservice` reports."""
        with self.state.lock:
            self.state.thermal_status = status

    def start(self) -> AdbSimulator:
        """Start serving in a background thread; returns self once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(self._on_client, LOOPBACK, self._requested_port))
        self._port = server.sockets[0].getsockname()[1]
        self._loop, self._executor = loop, ThreadPoolExecutor(8, thread_name_prefix="adbsim-cmd")
        self._thread = threading.Thread(target=self._serve, args=(server,), name="adb-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Kill running commands, close every connection and the listening socket."""
        if self._thread is None or self._loop is None or self._executor is None:
            return
        with self._lock:
            for cancelled in self._running:
                cancelled.set()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._thread = None

    def __enter__(self) -> AdbSimulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _serve(self, server: asyncio.Server) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            server.close()
            for conn in list(self._connections):
                conn.abort()  # their serve() loops end by themselves
            pending = asyncio.all_tasks(loop)
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=5))
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(server.wait_closed())
            loop.close()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(self, reader, writer)
        self._connections.add(conn)
        try:
            await conn.serve()
        finally:
            self._connections.discard(conn)

    # -- used by connections ----------------------------------------------------------------

    def call_in_loop(self, callback: Callable[[], None]) -> None:
        """Schedule `callback` on the simulator's event loop (from any thread)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(callback)

    def signature_ok(self, token: bytes, signature: bytes) -> bool:
        """Does the signature verify against a key this device trusts?"""
        return any(wire.verify_token_signature(key, token, signature) for key in self._trusted)

    def offer_key(self, payload: bytes) -> bool:
        """Handle an RSAPUBLICKEY: trust it if configured (or any key is accepted)."""
        try:
            key = wire.decode_android_pubkey(payload)
        except ValueError:
            return False
        known = any(k.public_numbers() == key.public_numbers() for k in self._trusted)
        if known or (self.auth is not None and self.auth.accept_any_key):
            if not known:
                self._trusted.append(key)
            return True
        return False

    async def run_command(self, command: str, io: ShellIO, session: Session) -> int | None:
        """Run a shell command in a worker thread; None if its stream went away."""
        assert self._loop is not None and self._executor is not None
        with self._lock:
            self._running.add(session.cancelled)

        def work() -> int | None:
            try:
                return Shell(self.state, session).run(command, io)
            except StreamClosed:
                return None

        try:
            return await self._loop.run_in_executor(self._executor, work)
        finally:
            with self._lock:
                self._running.discard(session.cancelled)

    def thread_writer(self, stream: _Stream, frame: Callable[[bytes], bytes]) -> Callable[[bytes], None]:
        """A blocking write function for worker threads that sends on `stream`."""
        loop = self._loop
        assert loop is not None

        def write(data: bytes) -> None:
            if not data:
                return
            future = asyncio.run_coroutine_threadsafe(stream.write(frame(bytes(data))), loop)
            while True:
                try:
                    future.result(timeout=0.1)
                    return
                except TimeoutError:
                    if stream.cancelled.is_set():
                        future.cancel()
                        raise StreamClosed from None

        return write


class _Stream:
    """One side of an ADB stream: ordered, acknowledged writes and a byte reader."""

    def __init__(self, conn: _Connection, local_id: int, remote_id: int) -> None:
        self.conn, self.local_id, self.remote_id = conn, local_id, remote_id
        self.closed = False
        self.cancelled = threading.Event()  # also the cancel flag of the command it runs
        self._acked = asyncio.Event()
        self._acked.set()
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._buffer = bytearray()

    async def write(self, data: bytes) -> None:
        """Send data in WRTE messages of at most the negotiated size, each acknowledged."""
        step = self.conn.send_max
        for start in range(0, len(data), step):
            await self._acked.wait()
            if self.closed:
                raise StreamClosed
            self._acked.clear()
            await self.conn.send(Message(wire.A_WRTE, self.local_id, self.remote_id, data[start:start + step]))

    async def read_exactly(self, size: int) -> bytes:
        """The next `size` bytes the host wrote; raises StreamClosed at end of stream."""
        while len(self._buffer) < size:
            chunk = await self._inbox.get()
            if chunk is None:
                self._inbox.put_nowait(None)
                raise StreamClosed
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def on_okay(self) -> None:
        self._acked.set()

    def on_data(self, payload: bytes) -> None:
        self._inbox.put_nowait(payload)

    def on_closed(self) -> None:
        """The host closed the stream, or the connection is gone."""
        self.closed = True
        self.cancelled.set()
        self._acked.set()
        self._inbox.put_nowait(None)

    async def close(self) -> None:
        """Close from the device side (CLSE), once."""
        if self.closed:
            return
        self.on_closed()
        self.conn.streams.pop(self.local_id, None)
        await self.conn.send(Message(wire.A_CLSE, self.local_id, self.remote_id))


class _Connection:
    """One host connection: handshake, AUTH, stream table and services."""

    def __init__(self, sim: AdbSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sim, self.reader, self.writer = sim, reader, writer
        self.streams: dict[int, _Stream] = {}
        self.send_max = sim.max_payload
        self.online = False
        self.alive = True
        self._next_id = 1
        self._token = b""
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        """Read and dispatch messages until the connection ends."""
        try:
            while True:
                header = await self.reader.readexactly(wire.HEADER_SIZE)
                command, arg0, arg1, length, check = wire.unpack_header(header, self.sim.max_payload)
                payload = await self.reader.readexactly(length) if length else b""
                wire.verify_checksum(payload, check)
                await self._dispatch(Message(command, arg0, arg1, payload))
        except (asyncio.IncompleteReadError, ConnectionError, wire.ProtocolError, StreamClosed):
            pass
        finally:
            self._teardown()

    async def send(self, msg: Message) -> None:
        """Write one message; raises StreamClosed if the connection is gone."""
        if not self.alive:
            raise StreamClosed
        self.writer.write(wire.pack_message(msg))
        try:
            await self.writer.drain()
        except ConnectionError as exc:
            raise StreamClosed from exc

    def abort(self) -> None:
        """Drop the TCP connection at once (a fault, or the simulator stopping)."""
        self.alive = False
        self.writer.transport.abort()

    def drop_from_thread(self) -> None:
        """abort(), callable from a command's worker thread."""
        self.sim.call_in_loop(self.abort)

    def _teardown(self) -> None:
        self.alive = False
        for stream in self.streams.values():
            stream.on_closed()
        self.streams.clear()
        for task in self._tasks:
            task.cancel()
        self.writer.transport.abort()

    # -- messages ----------------------------------------------------------------------------

    async def _dispatch(self, msg: Message) -> None:
        if msg.command == wire.A_CNXN:
            await self._on_connect(msg)
        elif msg.command == wire.A_AUTH:
            await self._on_auth(msg)
        elif not self.online:
            return  # stream traffic before the handshake is ignored, as adbd does
        elif msg.command == wire.A_OPEN:
            await self._on_open(msg)
        elif (stream := self.streams.get(msg.arg1)) is None or stream.remote_id != msg.arg0:
            return  # a message for a stream that is already gone
        elif msg.command == wire.A_OKAY:
            stream.on_okay()
        elif msg.command == wire.A_WRTE:
            stream.on_data(msg.payload)
            await self.send(Message(wire.A_OKAY, stream.local_id, stream.remote_id))
        elif msg.command == wire.A_CLSE:  # adbd answers a close with its own CLSE
            self.streams.pop(stream.local_id, None)
            stream.on_closed()
            await self.send(Message(wire.A_CLSE, stream.local_id, stream.remote_id))

    async def _on_connect(self, msg: Message) -> None:
        self.send_max = min(self.sim.max_payload, msg.arg1 or MIN_MAX_PAYLOAD)
        if self.sim.auth is None:
            await self._go_online()
        else:
            await self._send_token()

    async def _on_auth(self, msg: Message) -> None:
        if not self._token or self.online:
            return
        if msg.arg0 == wire.AUTH_SIGNATURE:
            if self.sim.signature_ok(self._token, msg.payload):
                await self._go_online()
            else:
                await self._send_token()
        elif msg.arg0 == wire.AUTH_RSAPUBLICKEY and self.sim.offer_key(msg.payload):
            await self._go_online()
        # an unknown key gets no answer: the device waits on a prompt nobody accepts

    async def _send_token(self) -> None:
        self._token = os.urandom(wire.TOKEN_SIZE)
        await self.send(Message(wire.A_AUTH, wire.AUTH_TOKEN, 0, self._token))

    async def _go_online(self) -> None:
        self.online = True
        await self.send(Message(wire.A_CNXN, wire.VERSION_SKIP_CHECKSUM, self.sim.max_payload,
                                self.sim.device.banner()))

    async def _on_open(self, msg: Message) -> None:
        service = msg.payload.rstrip(b"\0").decode("utf-8", "surrogateescape")
        handler = self._service(service)
        if handler is None:
            await self.send(Message(wire.A_CLSE, 0, msg.arg0))
            return
        stream = _Stream(self, self._next_id, msg.arg0)
        self._next_id += 1
        self.streams[stream.local_id] = stream
        await self.send(Message(wire.A_OKAY, stream.local_id, stream.remote_id))
        task = asyncio.create_task(self._run_service(handler, stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _service(self, name: str) -> Callable[[_Stream], Awaitable[None]] | None:
        kind, _, argument = name.partition(":")
        base, *options = kind.split(",")
        if base == "shell":
            return partial(self._shell, argument, "v2" in options)
        if base == "exec":
            return partial(self._shell, argument, False)
        if name == "sync:":
            return lambda stream: _SyncService(self, stream).serve()
        return None

    async def _run_service(self, handler: Callable[[_Stream], Awaitable[None]], stream: _Stream) -> None:
        try:
            await handler(stream)
        except StreamClosed:
            pass
        finally:
            with contextlib.suppress(StreamClosed):
                await stream.close()

    # -- services ----------------------------------------------------------------------------

    async def _shell(self, command: str, v2: bool, stream: _Stream) -> None:
        def framed(packet_id: int) -> Callable[[bytes], bytes]:
            return partial(wire.pack_shell_packet, packet_id) if v2 else bytes

        out = self.sim.thread_writer(stream, framed(wire.SHELL_STDOUT))
        err = self.sim.thread_writer(stream, framed(wire.SHELL_STDERR))
        if not command.strip():
            message = b"sh: the ADB simulator has no interactive shell; pass a command\n"
            await stream.write(framed(wire.SHELL_STDERR)(message))
            code: int | None = 1
        else:
            code = await self.sim.run_command(command, ShellIO(out, err), Session(stream.cancelled, self.drop_from_thread))
        if v2 and code is not None:
            await stream.write(wire.pack_shell_packet(wire.SHELL_EXIT, bytes([code & 0xFF])))


class _InjectedDrop(Exception):
    """Faults.drop_after_push_bytes fired."""


class _SyncService:
    """The `sync:` service: file transfer and listing over one stream."""

    def __init__(self, conn: _Connection, stream: _Stream) -> None:
        self.conn, self.stream, self.fs = conn, stream, conn.sim.fs

    async def serve(self) -> None:
        """Handle sync requests until QUIT, an error, or the stream closing."""
        handlers: dict[bytes, Callable[[str], Awaitable[bool]]] = {
            b"STAT": self._stat_v1, b"STA2": partial(self._stat_v2, b"STA2"),
            b"LST2": partial(self._stat_v2, b"LST2"), b"LIST": partial(self._list, False),
            b"LIS2": partial(self._list, True), b"SEND": self._send, b"RECV": self._recv,
        }
        while True:
            request, length = wire.SYNC_REQUEST.unpack(await self.stream.read_exactly(wire.SYNC_REQUEST.size))
            if request == b"QUIT":
                return
            if request not in handlers or length > wire.SYNC_PATH_MAX:
                await self._fail(f"bad sync request {request!r} (length {length})")
                return
            path = (await self.stream.read_exactly(length)).decode("utf-8", "surrogateescape")
            if not await handlers[request](path):
                return

    async def _fail(self, message: str) -> None:
        data = message.encode()
        await self.stream.write(wire.SYNC_REQUEST.pack(b"FAIL", len(data)) + data)

    def _lookup(self, path: str) -> tuple[Path, os.stat_result]:
        host = self.fs.host_path(path)
        return host, host.stat()

    async def _stat_v1(self, path: str) -> bool:
        try:
            _, st = self._lookup(path)
            fields = (st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF)
        except OSError:
            fields = (0, 0, 0)  # v1 reports a missing file as all zeros
        await self.stream.write(wire.STAT_V1.pack(b"STAT", *fields))
        return True

    async def _stat_v2(self, reply_id: bytes, path: str) -> bool:
        try:
            _, st = self._lookup(path)
            record = wire.STAT_V2.pack(reply_id, 0, *_stat_v2_fields(st))
        except OSError as exc:
            record = wire.STAT_V2.pack(reply_id, exc.errno or 0, *([0] * 10))
        await self.stream.write(record)
        return True

    async def _list(self, v2: bool, path: str) -> bool:
        records = bytearray()
        try:
            host, st = self._lookup(path)
            entries = [(".", st), ("..", st)] + [(n, (host / n).lstat()) for n in sorted(os.listdir(host))]
        except OSError:
            entries = []  # adbd answers an unreadable directory with an empty listing
        for name, entry in entries:
            raw = name.encode("utf-8", "surrogateescape")
            if v2:
                records += wire.DENT_V2.pack(b"DNT2", 0, *_stat_v2_fields(entry), len(raw)) + raw
            else:
                records += wire.DENT_V1.pack(b"DENT", entry.st_mode, entry.st_size & 0xFFFFFFFF,
                                             int(entry.st_mtime) & 0xFFFFFFFF, len(raw)) + raw
        records += wire.DENT_V2.pack(b"DONE", *([0] * 12)) if v2 else wire.DENT_V1.pack(b"DONE", 0, 0, 0, 0)
        await self.stream.write(bytes(records))
        return True

    async def _send(self, spec: str) -> bool:
        path, comma, mode_text = spec.rpartition(",")
        path, mode = (path, int(mode_text)) if comma and mode_text.isdigit() else (spec, 0o644)
        if path.endswith("/"):
            await self._fail("couldn't create file: Is a directory")
            return False
        if stat.S_ISLNK(mode):
            await self._fail("symlinks are not supported by the ADB simulator")
            return False
        partial_file: Path | None = None  # removed unless the transfer completes, as adbd does
        try:
            host = self.fs.host_path(path)
            host.parent.mkdir(parents=True, exist_ok=True)
            with open(host, "wb") as handle:
                partial_file = host
                mtime = await self._receive_file(handle)
            if mtime is None:
                return False
            os.chmod(host, stat.S_IMODE(mode))
            os.utime(host, (mtime, mtime))
            partial_file = None
        except OSError as exc:
            await self._fail(f"couldn't create file: {exc.strerror}")
            return False
        except _InjectedDrop:
            host.unlink(missing_ok=True)  # before the host can see the connection go
            self.conn.abort()
            raise StreamClosed from None
        finally:
            if partial_file is not None:
                partial_file.unlink(missing_ok=True)
        await self.stream.write(wire.SYNC_REQUEST.pack(b"OKAY", 0))
        return True

    async def _receive_file(self, handle: BinaryIO) -> int | None:
        """Copy DATA chunks into the file until DONE; returns DONE's mtime (None after a FAIL)."""
        limit, received = self.conn.sim.faults.drop_after_push_bytes, 0
        while True:
            chunk_id, size = wire.SYNC_REQUEST.unpack(await self.stream.read_exactly(wire.SYNC_REQUEST.size))
            if chunk_id == b"DONE":
                return size
            if chunk_id != b"DATA" or size > wire.SYNC_DATA_MAX:
                await self._fail(f"bad data message {chunk_id!r} of {size} bytes")
                return None
            data = await self.stream.read_exactly(size)
            if limit is not None and received + size > limit:
                raise _InjectedDrop
            handle.write(data)
            received += size

    async def _recv(self, path: str) -> bool:
        try:
            with open(self.fs.host_path(path), "rb") as handle:
                while chunk := handle.read(wire.SYNC_DATA_MAX):
                    await self.stream.write(wire.SYNC_REQUEST.pack(b"DATA", len(chunk)) + chunk)
        except OSError as exc:
            await self._fail(f"open failed: {exc.strerror}")
            return False
        await self.stream.write(wire.SYNC_REQUEST.pack(b"DONE", 0))
        return True


def _stat_v2_fields(st: os.stat_result) -> tuple[int, ...]:
    """dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime for STA2/LST2/DNT2."""
    return (st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid, st.st_gid, st.st_size,
            int(st.st_atime), int(st.st_mtime), int(st.st_ctime))
