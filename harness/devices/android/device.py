"""The `adb` device kind: an Android phone running TFLite/LiteRT's `benchmark_model` on one big core.

Per session (one `bench run`): connect, read the device's facts and choose the core, push
the benchmark binary if the device does not already hold the same bytes (sha256sum on the
device), chmod it. Per cell: push the model unless its hash is already there, run

    taskset MASK WORK_DIR/benchmark_model --graph=MODEL --num_threads=1 --warmup_runs=W
        --warmup_min_secs=0 --num_runs=N --min_secs=S --max_secs=M [extra flags] 2>&1

and parse the log. Every argument is quoted for the device's shell. A lost connection
retries the cell once after reconnecting (the same transport: no second adb server, and an
stf:// phone is leased once per session); a timeout fails the cell. close() ends the session
(also from another thread while a cell runs, when the run is interrupted): it aborts the call
in flight, abandons that cell (DeviceClosing: not recorded), removes the pushed files over the
connection it has unless the profile keeps them, disconnects and releases the STF lease. After
close() nothing connects again.

With the suite's `latency: {device_check: N}`, check_numerics() then runs N evaluation samples
through the same command (delegate and flags included) with their inputs as files, and compares
the pulled outputs with the host's (harness.devices.android._numerics).
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.cache import file_digest
from harness.config.schema import CooldownSpec, LatencySpec
from harness.devices._base import DEVICE_KINDS, BinaryDevice, DeviceKind, DeviceOptions
from harness.devices.android import _numerics
from harness.devices.android.benchmark_log import BenchmarkLog, BenchmarkLogError, Delegates, parse_benchmark_log
from harness.devices.android.connection import TracedTransport, default_rsa_key, open_transport, split_connection
from harness.devices.android.probe import DeviceFacts, probe
from harness.devices.android.state import read_state
from harness.devices.android.transport import DeviceLost, DeviceTimeout, Transport, quote_args
from harness.errors import HarnessError
from harness.record import DeviceReading

if TYPE_CHECKING:
    from harness.devices.android.stf import StfLease

log = logging.getLogger("harness.devices.android")

REMOTE_BINARY = "benchmark_model"
# Flags the harness sets from the suite's `latency:` and the profile; extra_flags may not repeat them.
MANAGED_FLAGS = ("graph", "num_threads", "warmup_runs", "warmup_min_secs", "num_runs", "min_secs", "max_secs")
# `delegate:` of a profile → benchmark_model's flags (none: plain CPU kernels, XNNPACK off)
DELEGATE_FLAGS = {"gpu": ["--use_gpu=true"], "nnapi": ["--use_nnapi=true"], "xnnpack": ["--use_xnnpack=true"],
                  "none": ["--use_xnnpack=false"]}
_DELEGATE_FLAG_NAMES = ("use_gpu", "use_nnapi", "use_xnnpack")
_DELEGATE_FAILED = re.compile(r"failed to apply .*delegate", re.IGNORECASE)


class AdbTimeouts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    connect: float = Field(20.0, gt=0, description="seconds to connect or reconnect")
    command: float = Field(30.0, gt=0, description="seconds per short shell command")
    push: float = Field(300.0, gt=0, description="seconds per file pushed")
    run: float | Literal["auto"] = Field("auto", description="seconds per benchmark run; auto = 2 × max_secs + 120")


class AdbOptions(DeviceOptions):
    kind: Literal["adb"] = "adb"
    connection: str = Field(min_length=1, description="host:port (TCP), a USB serial, or stf://HOST/SERIAL | "
                                                      "stf://HOST?model=NAME (an STF lease)")
    transport: Literal["adb-shell", "adb"] = "adb-shell"
    benchmark_binary: Path = Field(description="benchmark_model for the device's ABI, on this host")
    work_dir: str = "/data/local/tmp/quantbench"
    core: Literal["auto"] | int | list[int] = "auto"
    threads: int = Field(1, ge=1)
    extra_flags: list[str] = Field(default_factory=list)
    delegate: Literal["gpu", "nnapi", "xnnpack", "none"] | None = Field(None, description=(
        "run through this delegate (benchmark_model's --use_gpu/--use_nnapi/--use_xnnpack); a delegate "
        "that fails to apply or takes no node fails the cell. Default: the tool's own default"))
    timeouts: AdbTimeouts = AdbTimeouts()
    keep_files: bool = False
    adb: str = Field("adb", description="the adb client (transport: adb)")
    rsa_key: Path | None = Field(None, description="adb-shell: private key (default ~/.android/adbkey)")

    @field_validator("work_dir")
    @classmethod
    def _absolute_dir(cls, value: str) -> str:
        path = PurePosixPath(value)
        if not path.is_absolute() or str(path) == "/" or ".." in path.parts:
            raise ValueError("an absolute device directory (not /, no ..), e.g. /data/local/tmp/quantbench")
        return str(path)

    @field_validator("connection")
    @classmethod
    def _stf_url(cls, value: str) -> str:
        """An stf:// URL is checked here, so `bench validate` names its file, line and field."""
        from harness.devices.android import stf

        if stf.is_stf(value):
            try:
                stf.StfTarget.parse(value)
            except HarnessError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("extra_flags")
    @classmethod
    def _flags(cls, value: list[str]) -> list[str]:
        for flag in value:
            if not flag.startswith("--"):
                raise ValueError(f"{flag!r}: benchmark_model flags look like --name=value")
            name = flag[2:].partition("=")[0]
            if name in MANAGED_FLAGS:
                raise ValueError(f"--{name} is set by the harness (from threads: and the suite's latency:)")
        return value

    @model_validator(mode="after")
    def _one_delegate_setting(self) -> AdbOptions:
        names = {flag[2:].partition("=")[0] for flag in self.extra_flags}
        if self.delegate is not None and names & set(_DELEGATE_FLAG_NAMES):
            raise ValueError("give the delegate either as `delegate:` or in extra_flags, not both")
        return self

    @field_validator("core")
    @classmethod
    def _cores(cls, value: Any) -> Any:
        if isinstance(value, list) and (not value or min(value) < 0):
            raise ValueError("a non-empty list of CPU numbers")
        if isinstance(value, int) and value < 0:
            raise ValueError("a CPU number, a list of them, or auto")
        return value


class MeasurementFailed(HarnessError):
    """benchmark_model did not produce timings; `log` holds what it printed."""

    def __init__(self, message: str, log_text: str | None = None) -> None:
        super().__init__(message)
        self.log = log_text


class DeviceLostError(HarnessError):
    """The device went away and did not come back within one retry."""


class DeviceClosing(KeyboardInterrupt):
    """The device is being closed (the run was interrupted): the cell in flight is abandoned, not
    recorded as failed (a KeyboardInterrupt, so the runner's per-cell `except Exception` lets it by)."""


def _failure_line(text: str) -> str:
    """The line that says why the tool failed: a delegate's failure first, else the last error line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    delegate = [line for line in lines if _DELEGATE_FAILED.search(line)]
    if delegate:
        return delegate[0]
    errors = [line for line in lines if "error" in line.lower()] or lines
    return errors[-1] if errors else "no output"


def check_delegation(requested: str | None, delegates: Delegates, log_text: str) -> None:
    """A delegate the profile asked for must have taken nodes: else the cell fails (no silent CPU run)."""
    if requested in (None, "none"):
        return
    name = {"gpu": "GPU", "nnapi": "NNAPI", "xnnpack": "XNNPACK"}[requested]
    if delegates.failures:
        raise MeasurementFailed(f"Failed to apply {name} delegate: {delegates.failures[0]}", log_text)
    taken = {d: n for d, n in delegates.nodes_by_delegate.items() if requested in d.lower() and n > 0}
    if not taken:
        raise MeasurementFailed(f"Failed to apply {name} delegate: it took no node of the model "
                                f"(the graph would run on the CPU)", log_text)


def raw_from_log(parsed: BenchmarkLog) -> dict[str, Any]:
    """The device result the runner records: ready statistics (no per-run samples) and extras."""
    timings = parsed.timings.to_dict()
    stats = {"mean": timings["avg"], "median": timings["median"], "std": timings["std"], "min": timings["min"],
             "max": timings["max"], "count": timings["count"], "p5": timings["p5"], "p95": timings["p95"]}
    stats = {key: value for key, value in stats.items() if value is not None}
    if stats.get("mean") is None or stats.get("count") == 0:
        raise BenchmarkLogError("the log has no timed runs")
    memory = {key: value for key, value in parsed.memory.to_dict().items()
              if value is not None and key != "footprint_label"}
    delegates = parsed.delegates
    raw: dict[str, Any] = {
        "stats": stats, "init": timings["init"], "first": timings["first"], "warmup_mean": timings["warmup_avg"],
        "memory": memory,
        "delegates": delegates.to_dict() if (delegates.partitions or delegates.applied or delegates.created
                                             or delegates.failures) else None,
        "model_size_mb": parsed.model_size_mb,
    }
    if parsed.op_profile is not None:
        profile = parsed.op_profile.to_dict()
        raw["op_profile"] = {key: profile.get(key) for key in
                             ("summary_by_node_type", "top_by_computation_time", "nodes_executed", "run_total")}
    return raw


class AndroidDevice(BinaryDevice):
    """One phone (or simulator) for one run; the runner gives it one worker thread."""

    remote = True  # measurements run on the device, so they may overlap host work

    def __init__(self, name: str, options: AdbOptions) -> None:
        self.name, self.options = name, options
        self.binary = Path(options.benchmark_binary).expanduser()
        self.remote_binary = f"{options.work_dir}/{REMOTE_BINARY}"
        self._lock = threading.RLock()
        self._transport: TracedTransport | None = None
        self._facts: DeviceFacts | None = None
        self._ready = False  # work dir made and binary in place, in this connection
        self._created_dir = False
        self._pushed: dict[str, None] = {}  # remote files to clean up, in push order
        self._gone: str | None = None  # set when reconnecting failed: later cells fail at once
        self._calls: list[str] = []
        self.last_calls: list[str] = []  # the remote commands of the latest measure_latency()
        self._closing = threading.Event()  # set by close(): no connection is opened any more
        self._aborted = False  # close() aborted a cell in flight
        self._lease: StfLease | None = None  # an stf:// phone's lease, taken once per session
        self.notes: list[str] = []  # what close() could not do (files left, a lease not released)

    # -- connection and facts -----------------------------------------------------------

    def check(self) -> None:
        """Problems that should stop a run before any work (the CLI exits 2)."""
        if not self.binary.is_file():
            raise HarnessError(
                f"device {self.name!r}: benchmark_binary {self.binary} not found; download benchmark_model for "
                "the device's ABI (e.g. android_aarch64_benchmark_model) from the LiteRT/TensorFlow releases")

    def _connect(self) -> TracedTransport:
        if self._closing.is_set():
            raise DeviceClosing(f"{self.name}: the device is being closed")
        if self._transport is None:
            key = self.options.rsa_key.expanduser() if self.options.rsa_key else default_rsa_key()
            try:
                inner = open_transport(self._address(), self.options.transport, adb=self.options.adb,
                                       rsa_key=key, connect_timeout=self.options.timeouts.connect)
            except DeviceTimeout as exc:  # no answer at all: as good as gone
                raise DeviceLost(str(exc)) from exc
            self._transport = TracedTransport(inner, self.name)
            self._transport.calls = self._calls
        return self._transport

    def _address(self) -> str:
        """Where adb reaches the phone; an stf:// phone is leased on first use, once per session."""
        from harness.devices.android import stf

        if not stf.is_stf(self.options.connection):
            return self.options.connection
        if self._lease is None:
            self._lease = stf.StfLease.acquire(self.options.connection)
        return self._lease.address

    @contextlib.contextmanager
    def _abandoned_if_closing(self) -> Iterator[None]:
        """A call that fails because close() aborted it abandons the cell (DeviceClosing)."""
        try:
            yield
        except Exception as exc:
            if self._closing.is_set():
                raise DeviceClosing(f"{self.name}: closed during the measurement ({exc})") from None
            raise

    def facts(self) -> DeviceFacts:
        """getprop facts, CPUs and the chosen core (connects on first use)."""
        with self._lock:
            if self._facts is None:
                self._facts = probe(self._connect(), self.options.core, self.options.timeouts.command)
            return self._facts

    def describe(self) -> dict[str, Any]:
        host, port = split_connection(self.options.connection)
        info: dict[str, Any] = {
            "kind": "adb", "connection": self.options.connection, "transport": self.options.transport,
            "usb": port is None, "threads": self.options.threads, "work_dir": self.options.work_dir,
            "benchmark_binary": str(self.binary), "extra_flags": list(self.options.extra_flags),
        }
        if self.binary.is_file():
            info["benchmark_sha256"] = file_digest(self.binary)
            info["runtime"] = f"benchmark_model sha256:{info['benchmark_sha256'][:16]}"
        try:
            info.update(self.facts().to_dict())
            info["reachable"] = True
            if "runtime" in info:  # the same binary on another Android build is another runtime
                info["runtime"] += f" on {info.get('model')} Android {info.get('android')} (sdk {info.get('sdk')})"
        except (HarnessError, OSError, DeviceClosing) as exc:
            info.update(reachable=False, error=str(exc), core=None, core_reason=None)
        return info

    # -- files ------------------------------------------------------------------------------

    def _shell(self, argv: list[str], what: str, timeout: float | None = None) -> str:
        result = self._connect().shell(quote_args(argv), timeout or self.options.timeouts.command)
        if result.exit_code != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise HarnessError(f"{self.name}: {what} failed (exit {result.exit_code}): "
                               f"{detail[-1] if detail else 'no output'}")
        return result.stdout

    def _remote_sha256(self, remote: str) -> str | None:
        result = self._connect().shell(quote_args(["sha256sum", remote]), self.options.timeouts.command)
        words = result.stdout.split()
        return words[0].lower() if result.exit_code == 0 and words else None

    def _push_if_changed(self, local: Path, remote: str) -> bool:
        """Push unless the device has the same bytes at `remote`; True if pushed."""
        digest = file_digest(local)
        self._pushed[remote] = None
        if self._remote_sha256(remote) == digest:
            log.debug("%s: %s already on the device (sha256 %s)", self.name, remote, digest[:12])
            return False
        self._connect().push(local, remote, self.options.timeouts.push)
        if self._remote_sha256(remote) not in (digest, None):
            raise HarnessError(f"{self.name}: {remote} differs from {local} after the push")
        return True

    def _prepare(self) -> None:
        """Work dir, binary (hash-checked) and chmod: once per connection."""
        if self._ready:
            return
        self.check()
        work_dir = self.options.work_dir
        exists = self._connect().shell(quote_args(["test", "-d", work_dir]), self.options.timeouts.command)
        if exists.exit_code != 0:
            self._shell(["mkdir", "-p", work_dir], f"mkdir {work_dir}")
            self._created_dir = True
        self._push_if_changed(self.binary, self.remote_binary)
        self._shell(["chmod", "755", self.remote_binary], f"chmod {self.remote_binary}")
        self._ready = True

    # -- measuring ----------------------------------------------------------------------------

    def _binary_on_device(self, binary: Path | None) -> str:
        """Where the device runs `binary` (None: the profile's): another binary, such as the one
        an earlier run timed with, goes beside it as benchmark_model-<sha256 prefix>."""
        self._prepare()
        if binary is None or Path(binary) == self.binary:
            return self.remote_binary
        remote = f"{self.options.work_dir}/{REMOTE_BINARY}-{file_digest(Path(binary))[:16]}"
        self._push_if_changed(Path(binary), remote)
        self._shell(["chmod", "755", remote], f"chmod {remote}")
        return remote

    def command(self, remote_model: str, settings: LatencySpec, remote_binary: str | None = None) -> list[str]:
        """The benchmark_model command line (argv) for one cell."""
        facts = self.facts()
        return [
            "taskset", facts.selection.mask, remote_binary or self.remote_binary, f"--graph={remote_model}",
            f"--num_threads={self.options.threads}", f"--warmup_runs={settings.warmup_runs}",
            "--warmup_min_secs=0", f"--num_runs={settings.num_runs}", f"--min_secs={settings.min_secs:g}",
            f"--max_secs={settings.max_secs:g}", *DELEGATE_FLAGS.get(self.options.delegate or "", []),
            *self.options.extra_flags,
        ]

    def _run_timeout(self, settings: LatencySpec) -> float:
        run = self.options.timeouts.run
        return settings.max_secs * 2 + 120 if run == "auto" else float(run)

    def _measure_once(self, model: Path, settings: LatencySpec, binary: Path | None = None) -> dict[str, Any]:
        remote_binary = self._binary_on_device(binary)
        remote_model = f"{self.options.work_dir}/{model.name}"
        pushed = self._push_if_changed(model, remote_model)
        argv = self.command(remote_model, settings, remote_binary)
        command = quote_args(argv) + " 2>&1"  # one stream, in the order the tool printed it
        timeout = self._run_timeout(settings)
        try:
            result = self._connect().shell(command, timeout)
        except DeviceTimeout:
            self._stop_benchmark(remote_binary)
            raise MeasurementFailed(f"benchmark_model did not finish within {timeout:g} s (timeouts.run)") from None
        text = result.stdout + result.stderr
        if result.exit_code != 0:
            raise MeasurementFailed(f"benchmark_model failed (exit {result.exit_code}): {_failure_line(text)}", text)
        try:
            parsed = parse_benchmark_log(text)
            raw = raw_from_log(parsed)
        except BenchmarkLogError as exc:
            raise MeasurementFailed(f"benchmark_model log: {exc}", text) from None
        check_delegation(self.options.delegate, parsed.delegates, text)
        facts = self.facts()
        raw.update(log=text, core=list(facts.selection.cpus), mask=f"0x{facts.selection.mask}",
                   threads=self.options.threads, command=command, model_pushed=pushed)
        return raw

    def _stop_benchmark(self, remote_binary: str) -> None:
        """After a timeout: kill our binary (matched by its full path) so it frees the core."""
        try:
            self._connect().shell(quote_args(["pkill", "-f", remote_binary]), self.options.timeouts.command)
        except HarnessError as exc:
            log.debug("%s: could not stop benchmark_model: %s", self.name, exc)

    def _forget_connection(self) -> None:
        """After a loss: check everything again once the transport has reconnected (it keeps its
        adb server and the STF lease, and retries connecting for up to timeouts.connect)."""
        self._ready = False

    def measure_latency(self, model: Path, settings: LatencySpec, binary: Path | None = None) -> dict[str, Any]:
        """Statistics from benchmark_model's log (`stats`, no `samples`), the log, and the commands
        issued; `binary` times with another benchmark_model than the profile's (paired A/B)."""
        with self._lock, self._abandoned_if_closing():
            if self._gone:
                raise DeviceLostError(f"device lost: {self._gone}")
            first_call = len(self._calls)
            try:
                for attempt in (1, 2):
                    try:
                        raw = self._measure_once(model, settings, binary)
                        raw.update(attempts=attempt, remote_calls=self._calls[first_call:])
                        return raw
                    except DeviceLost as exc:
                        self._forget_connection()
                        if attempt == 2:
                            raise DeviceLostError(f"device lost: {exc} (retried once after reconnecting)") from None
                        log.warning("%s: %s; reconnecting and retrying the cell once", self.name, exc)
                        self._reconnect(exc)
            finally:
                self.last_calls = self._calls[first_call:]
        raise AssertionError("unreachable")

    def check_numerics(self, model: Path, x: Any, count: int, settings: LatencySpec) -> dict[str, Any]:
        """`device_numerics` of the record: `count` samples of `x` run on the phone vs on the host
        (see harness.devices.android._numerics); a tool failure is recorded, not raised."""
        from harness.tflite.runtime import model_outputs

        with self._lock, self._abandoned_if_closing():
            if self._gone:
                raise DeviceLostError(f"device lost: {self._gone}")
            remote_binary = self._binary_on_device(None)
            remote_model = f"{self.options.work_dir}/{model.name}"
            self._push_if_changed(model, remote_model)
            one_run = settings.model_copy(update={"warmup_runs": 0, "num_runs": 1, "min_secs": 0.0})
            argv = self.command(remote_model, one_run, remote_binary)
            with tempfile.TemporaryDirectory(prefix="quantbench-numerics-") as scratch:
                def run(invocation: _numerics.Invocation, names: list[str]) -> bytes | None:
                    return self._run_sample(argv, invocation, names, Path(scratch), self._run_timeout(one_run))

                try:
                    return _numerics.check_device(model, x, count, run, model_outputs(model))
                except DeviceLost as exc:
                    self._forget_connection()
                    raise DeviceLostError(f"device lost during the numerics check: {exc}") from None
                except (MeasurementFailed, HarnessError) as exc:
                    if self._closing.is_set():
                        raise
                    return _numerics.skipped(str(exc), status="failed")

    def _run_sample(self, argv: list[str], invocation: _numerics.Invocation, names: list[str], scratch: Path,
                    timeout: float) -> bytes | None:
        """Push one invocation's input files, run the tool, pull its output file (None: it wrote none)."""
        work, transport = self.options.work_dir, self._connect()
        remote_inputs = []
        for position, array in enumerate(invocation.inputs):
            local, remote = scratch / f"in{position}.raw", f"{work}/quantbench_in{position}.raw"
            local.write_bytes(_numerics.raw_bytes(array))
            self._pushed[remote] = None
            transport.push(local, remote, self.options.timeouts.push)
            remote_inputs.append(remote)
        remote_output = f"{work}/quantbench_out.raw"
        self._pushed[remote_output] = None
        self._shell(["rm", "-f", "--", remote_output], f"rm {remote_output}")
        flags = _numerics.io_flags(names, invocation.inputs, remote_inputs, remote_output)
        try:
            result = transport.shell(quote_args([*argv, *flags]) + " 2>&1", timeout)
        except DeviceTimeout:
            self._stop_benchmark(argv[2])
            raise MeasurementFailed(f"benchmark_model (numerics check) did not finish within {timeout:g} s") from None
        text = result.stdout + result.stderr
        if result.exit_code != 0:
            raise MeasurementFailed(f"benchmark_model (numerics check) failed (exit {result.exit_code}): "
                                    f"{_failure_line(text)}", text)
        if transport.shell(quote_args(["test", "-f", remote_output]), self.options.timeouts.command).exit_code != 0:
            return None
        local = scratch / "out.raw"
        transport.pull(remote_output, local, self.options.timeouts.push)
        return local.read_bytes()

    def device_state(self, cooldown: CooldownSpec | None = None) -> DeviceReading:
        """Temperatures and core frequencies now (see harness.devices.android.state), whatever the cool-down."""
        cpus = self.facts().cpus
        with self._lock, self._abandoned_if_closing():
            return read_state(self._connect(), cpus, self.options.timeouts.command)

    def _reconnect(self, cause: Exception) -> None:
        try:
            self._connect().shell("true", self.options.timeouts.command)
        except (HarnessError, OSError) as exc:
            self._forget_connection()
            self._gone = f"{cause}; reconnecting failed: {exc}"
            raise DeviceLostError(f"device lost: {self._gone}") from None

    # -- the end ----------------------------------------------------------------------------

    def _remove_work_dir(self, transport: Transport) -> None:
        """rmdir the work dir this session created; without rmdir, `rm -r` it only if it is empty."""
        timeout, work_dir = self.options.timeouts.command, self.options.work_dir
        if transport.shell(quote_args(["rmdir", work_dir]), timeout).exit_code != 127:
            return
        listing = transport.shell(quote_args(["ls", "-a", work_dir]), timeout)
        if listing.exit_code == 0 and not set(listing.stdout.split()) - {".", ".."}:
            transport.shell(quote_args(["rm", "-r", "--", work_dir]), timeout)

    def close(self) -> None:
        """End the session: abort a call in flight (an interrupted run), then, over the connection
        this session has (never a new one), remove what it pushed unless keep_files, disconnect and
        release the STF lease. What could not be done is warned about and kept in `notes`."""
        self._closing.set()
        locked = self._stop_cell_in_flight()
        try:
            if locked:
                self._clean_up()
        finally:
            self._disconnect()
            if locked:
                self._lock.release()

    def _stop_cell_in_flight(self) -> bool:
        """Take the device's lock, aborting the remote calls of a cell in flight until its thread
        lets go (bounded by timeouts.connect + timeouts.command); False if it never did."""
        bound = self.options.timeouts.connect + self.options.timeouts.command
        deadline = time.monotonic() + bound
        while not self._lock.acquire(timeout=0.2):
            if time.monotonic() > deadline:
                self._note(f"{self.name}: a measurement did not stop within {bound:g} s; disconnected "
                           f"without removing the files in {self.options.work_dir}")
                return False
            transport = self._transport
            if transport is not None:
                self._aborted = True
                transport.abort()
        return True

    def _clean_up(self) -> None:
        """Stop our binary and remove the pushed files, over the existing connection only."""
        transport, timeout = self._transport, self.options.timeouts.command
        if transport is None or self.options.keep_files or not self._pushed:
            return
        if self._gone:
            self._note(f"{self.name}: device lost; files left in {self.options.work_dir}: {', '.join(self._pushed)}")
            return
        try:
            if self._aborted:  # the device may not have killed the aborted run's process
                transport.shell(quote_args(["pkill", "-f", self.remote_binary]), timeout)
            removed = transport.shell(quote_args(["rm", "-f", "--", *self._pushed]), timeout)
            if removed.exit_code != 0:
                raise HarnessError(f"rm failed (exit {removed.exit_code}): {removed.stderr.strip()[-200:]}")
            if self._created_dir:
                self._remove_work_dir(transport)
            self._pushed.clear()
        except (HarnessError, OSError) as exc:
            self._note(f"{self.name}: cleaning up {self.options.work_dir} failed: {exc}")

    def _disconnect(self) -> None:
        transport, lease = self._transport, self._lease
        self._transport, self._lease, self._ready = None, None, False
        try:
            if transport is not None:
                transport.close()
        finally:
            if lease is not None:
                lease.release()
                self.notes.extend(lease.problems)

    def _note(self, message: str) -> None:
        log.warning("%s", message)
        self.notes.append(message)


@DEVICE_KINDS.register("adb", "an Android device over adb: benchmark_model on one big core")
class Adb(DeviceKind):
    Options = AdbOptions

    def open(self, name: str, options: AdbOptions) -> AndroidDevice:
        return AndroidDevice(name, options)
