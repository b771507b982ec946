"""Run directories: results.jsonl (one record per cell, appended as produced), results.bin beside it,
and run.json.

A run directory is created atomically under a unique run id and locked while a run writes it,
so two runs never share one; every line read back is checked against the record format. A run
that stops before it wrote run.json leaves its folder as it found it.

A results.jsonl line is the record without its latency sample and its details (`DETAIL_PARTS`):
those are appended to results.bin first (the sample as float32, the details as zlib-compressed
JSON), fsynced, and the line names them with their offsets, lengths and sha256 (`sidecar`), so a
line never points at bytes that are not on disk. Reading a line puts them back after checking each
digest: a record in memory is whole, whatever format it was stored in.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
import uuid
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from harness.errors import HarnessError
from harness.record import (
    DETAIL_PARTS,
    FORMAT_VERSION,
    MAX_DEPTH,
    CellRecord,
    FormatVersionError,
    RecordError,
    RunInfo,
    Sidecar,
    encode_nonfinite,
    format_version,
    record_id,
    validate_record,
)

RESULTS = "results.jsonl"
SIDECAR = "results.bin"
RUN_INFO = "run.json"
LOCK = ".lock"
RUNTIME_LOG = "runtime.log"


def utc_now(precise: bool = False) -> str:
    """The UTC time in ISO 8601, to the second (to the millisecond when `precise`: run start times)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds" if precise else "seconds")


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')


def new_run_id() -> str:
    """A run's identity (run.json `run_id`, the history's run key), unique by construction and never
    taken from a folder name: a UTC timestamp (so run ids sort by time) and a random UUID."""
    return f"{_utc_stamp()}-{uuid.uuid4().hex}"


def new_run_dir_name() -> str:
    """A run directory's name: a UTC timestamp and a short random suffix (unique in its folder,
    which `create_run_dir` makes sure of; the run's identity is `new_run_id`)."""
    return f"{_utc_stamp()}-{secrets.token_hex(3)}"


def create_run_dir(suite_reports: Path) -> Path:
    """A new, empty run directory `suite_reports/<run id>`, created atomically (never shared)."""
    while True:
        path = suite_reports / new_run_dir_name()
        try:
            with _os_errors(path):
                suite_reports.mkdir(parents=True, exist_ok=True)
                path.mkdir()
            return path
        except FileExistsError:
            continue


def holds_a_run(run_dir: Path) -> bool:
    """True when the directory has anything in it but what a run makes before it starts (its lock
    and runtime.log, left by a run killed at start-up)."""
    return run_dir.is_dir() and any(p.name not in (LOCK, RUNTIME_LOG) for p in run_dir.iterdir())


@contextmanager
def locked(run_dir: Path, fresh: bool = False) -> Iterator[None]:
    """Hold the run directory's lock for the block; HarnessError when another run holds it. On
    leaving, the lock is released and its file removed; a block that never wrote run.json (a run
    that failed or was stopped at start-up) also removes the files it made, and the folder if it
    made it (or it is `fresh`: made for this run), so a rerun finds the folder as it was."""
    before = None if fresh else _entries(run_dir)
    handle = _acquire(run_dir)
    try:
        yield
    finally:
        try:
            if not (run_dir / RUN_INFO).exists():
                _remove_new(run_dir, before)
            (run_dir / LOCK).unlink(missing_ok=True)
        except OSError:
            pass  # a folder we cannot tidy is still released
        finally:
            handle.close()


def _entries(run_dir: Path) -> set[str] | None:
    """The names in a folder (None: there is no such folder)."""
    try:
        return {p.name for p in run_dir.iterdir()}
    except OSError:
        return None


def _acquire(run_dir: Path) -> IO[str]:
    """The locked, open lock file with this process's pid in it (HarnessError: another run holds it)."""
    while True:
        with _os_errors(run_dir):
            run_dir.mkdir(parents=True, exist_ok=True)
            handle = open(run_dir / LOCK, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise HarnessError(f"{run_dir} is being written by another bench run (pid {owner}); "
                               "wait for it, or give another --out") from None
        if _is_current(handle, run_dir / LOCK):
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            return handle
        handle.close()  # its holder removed it as it left: lock the file that is there now


def _is_current(handle: IO[str], path: Path) -> bool:
    try:
        there, held = os.stat(path), os.fstat(handle.fileno())
    except FileNotFoundError:
        return False
    return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)


def _remove_new(run_dir: Path, before: set[str] | None) -> None:
    """Remove the files a run made in `run_dir` since `before` (and the folder, if it made it)."""
    for path in run_dir.iterdir():
        if path.name not in (before or set()) and path.name != LOCK and path.is_file():
            path.unlink()
    if before is None:
        (run_dir / LOCK).unlink(missing_ok=True)
        with suppress(OSError):
            run_dir.rmdir()


class ResultsFileError(HarnessError):
    """A line of results.jsonl does not match the record format."""


def read_results(run_dir: Path) -> list[CellRecord]:
    """All complete records, each checked against the record format (ResultsFileError naming file,
    line and field otherwise). A line cut short by a crash is ignored (that cell re-runs on resume);
    a cell recorded twice keeps its last record."""
    path = run_dir / RESULTS
    latest: dict[str, CellRecord] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as lines, SidecarReader(run_dir / SIDECAR) as sidecar:
            for number, line in enumerate(lines, start=1):  # streamed: never the whole file in memory
                record = _parse_line(path, number, line, sidecar)
                if record is not None:
                    latest[record_id(record)] = record
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise HarnessError(f"cannot read {path}: {exc.strerror}") from None
    return list(latest.values())


def _parse_line(path: Path, number: int, line: str, sidecar: SidecarReader) -> CellRecord | None:
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None  # cut short by a crash
    except RecursionError:
        raise ResultsFileError(f"{path}:{number}: nested too deeply to read (a record nests at most "
                               f"{MAX_DEPTH} levels)") from None
    try:
        if isinstance(data, dict):
            format_version(data)  # a newer format is refused before its layout is read
            data = sidecar.whole(data)
        return validate_record(data)
    except FormatVersionError as exc:
        raise ResultsFileError(f"{path}:{number}: {exc}") from None
    except RecordError as exc:
        raise ResultsFileError(f"{path}:{number}: {exc}") from None


_SIDECAR = TypeAdapter(Sidecar)


class SidecarReader:
    """results.bin, read for the lines that name their part in it (opened on first use, closed on leaving)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> SidecarReader:
        return self

    def __exit__(self, *_: object) -> None:
        if self._handle is not None:
            self._handle.close()

    def whole(self, data: dict[str, Any]) -> dict[str, Any]:
        """The stored line `data` with its sample and details put back from results.bin (RecordError
        naming `sidecar` when the file is missing or the part does not match its sha256)."""
        if "sidecar" not in data:
            return data
        try:
            ref = _SIDECAR.validate_python(data["sidecar"])
        except ValidationError as exc:
            error = exc.errors()[0]
            raise RecordError(".".join(["sidecar", *map(str, error["loc"])]), error["msg"]) from None
        return join_record(data, self.read(ref), ref["samples"], ref["dtype"])

    def read(self, ref: Sidecar) -> bytes:
        """The bytes of one cell's part, checked against its length and sha256."""
        if self._handle is None:
            try:
                self._handle = open(self.path, "rb")
            except OSError as exc:
                raise RecordError("sidecar", f"cannot read {self.path} ({exc.strerror}), which holds this "
                                  "cell's sample and details: copy a run directory whole") from None
        self._handle.seek(ref["offset"])
        data = self._handle.read(ref["length"])
        if len(data) != ref["length"] or hashlib.sha256(data).hexdigest() != ref["sha256"]:
            raise RecordError("sidecar", f"the {ref['length']} bytes at offset {ref['offset']} of {self.path.name} "
                              "do not match their sha256: the file is damaged or not this run's")
        return data


_ITEMSIZE = {"float32": 4, "float64": 8}


def encode_sample(values: list[float]) -> tuple[bytes, str]:
    """A latency sample's bytes: float32 when that holds every value exactly once read back (a sample
    holds 6 significant digits, `harness.stats.bounded_sample`, which float32 keeps), else float64."""
    array = np.asarray(values, dtype="<f8")
    with np.errstate(over="ignore"):  # a value beyond float32's range: float64 is kept, below
        narrow = array.astype("<f4")
    if np.isfinite(array).all() and _widen(narrow) == array.tolist():
        return narrow.tobytes(), "float32"
    return array.tobytes(), "float64"


def decode_sample(data: bytes, dtype: str) -> list[float]:
    """The sample `encode_sample` wrote, value for value."""
    if dtype == "float32":
        return _widen(np.frombuffer(data, dtype="<f4"))
    return [float(v) for v in np.frombuffer(data, dtype="<f8").tolist()]


def _widen(array: np.ndarray) -> list[float]:
    """float32 values as the 6-significant-digit floats they were written from: the 6-digit integer m
    and the power of ten p of each, then m / 10^p or m * 10^-p, both exact operands, so correctly
    rounded as float("m e-p") is (vectorized: a 1,000-value sample in 0.06 ms, not 0.5). The writer
    keeps float32 only when this gives every value back exactly (`encode_sample`)."""
    values = array.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        power = 5 - np.floor(np.log10(np.where(values == 0, 1.0, np.abs(values))))
        digits = np.round(values * 10.0 ** power)
        widened = np.where(power >= 0, digits / 10.0 ** np.maximum(power, 0), digits * 10.0 ** np.maximum(-power, 0))
    return [float(v) for v in widened.tolist()]


def split_record(record: CellRecord | dict[str, Any]) -> tuple[dict[str, Any], bytes, int, str]:
    """A record as format 3 stores it: the line (without its sample, details and `sidecar`) and one part:
    its sample's bytes then its compressed details, with the sample's value count and dtype. The
    inverse is `join_record`; a store other than results.bin (the history) may keep the part as a blob."""
    line, details = take_details(dict(record))
    line.pop("sidecar", None)
    sample = line.pop("latency_samples_ms") if line.get("latency_samples_ms") else []  # None stays: not sampled
    data, dtype = encode_sample(sample) if sample else (b"", "float32")
    if details:
        data += zlib.compress(_dumps(details, separators=(",", ":")).encode("utf-8"), 6)
    return line, data, len(sample), dtype


def join_record(line: dict[str, Any], part: bytes, count: int, dtype: str) -> dict[str, Any]:
    """The whole record from `split_record`'s line and part (RecordError when the part is not one)."""
    cut = count * _ITEMSIZE.get(dtype, 8)
    if cut > len(part):
        raise RecordError("sidecar.samples", f"{count} values do not fit in {len(part)} bytes")
    whole = dict(line)
    if count:
        whole["latency_samples_ms"] = decode_sample(part[:cut], dtype)
    if part[cut:]:
        put_details(whole, decode_details(part[cut:]))
    return whole


def take_details(record: dict[str, Any]) -> tuple[dict[str, Any], list[list[Any]]]:
    """The record without its `DETAIL_PARTS`, and those parts as [path, value] pairs."""
    line, details = dict(record), []
    for path in DETAIL_PARTS:
        parent = line
        if len(path) == 2:
            if not isinstance(line.get(path[0]), dict) or path[1] not in line[path[0]]:
                continue
            parent = line[path[0]] = dict(line[path[0]])
        if path[-1] in parent:
            details.append([list(path), parent.pop(path[-1])])
    return line, details


def put_details(record: dict[str, Any], details: Any) -> None:
    """Put `take_details`'s parts back into `record` (RecordError when they are not such parts)."""
    known = {tuple(path) for path in DETAIL_PARTS}
    items: list[Any] = details if isinstance(details, list) else [details]
    for item in items:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], list) and tuple(item[0]) in known):
            raise RecordError("sidecar.details", f"not a detail part: {item!r:.60}")
        path, value = item
        parent = record.setdefault(path[0], {}) if len(path) == 2 else record
        if not isinstance(parent, dict):
            raise RecordError(path[0], f"holds details, so it is an object, not {type(parent).__name__}")
        parent[path[-1]] = value


def decode_details(data: bytes) -> Any:
    try:
        return json.loads(zlib.decompress(data))
    except (zlib.error, ValueError, RecursionError):
        raise RecordError("sidecar.details", "not compressed JSON") from None


def _dumps(value: Any, **options: Any) -> str:
    return json.dumps(encode_nonfinite(value), default=_jsonable, allow_nan=False, **options)


class SidecarWriter:
    """Appends a run's cells' parts to results.bin: fsynced before the lines that name them are written."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self, records: Sequence[CellRecord | dict[str, Any]]) -> str:
        """results.jsonl's lines of `records`, their samples and details appended to results.bin first."""
        with _os_errors(self.path), open(self.path, "ab+") as handle:
            lines = [self._line(handle, record) for record in records]
            handle.flush()
            os.fsync(handle.fileno())
        return "".join(lines)

    def _line(self, handle: IO[bytes], record: CellRecord | dict[str, Any]) -> str:
        line, data, count, dtype = split_record({**record, "format_version": FORMAT_VERSION})
        if data:
            line["sidecar"] = {**self._stored(handle, data, record.get("sidecar")), "samples": count, "dtype": dtype}
        return _dumps(line, separators=(",", ":")) + "\n"

    @staticmethod
    def _stored(handle: IO[bytes], data: bytes, earlier: Any) -> dict[str, Any]:
        """Where `data` is in the file: where the record read from it found it, else appended now."""
        digest = hashlib.sha256(data).hexdigest()
        if isinstance(earlier, dict) and earlier.get("sha256") == digest and isinstance(earlier.get("offset"), int):
            handle.seek(earlier["offset"])
            if handle.read(len(data)) == data:
                return {"offset": earlier["offset"], "length": len(data), "sha256": digest}
        offset = handle.seek(0, os.SEEK_END)
        handle.write(data)
        return {"offset": offset, "length": len(data), "sha256": digest}


class ResultsWriter:
    """Appends records durably: each one is flushed and fsynced before the next cell starts (its
    sample and details to results.bin first)."""

    def __init__(self, run_dir: Path, name: str = RESULTS) -> None:
        with _os_errors(run_dir):
            run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / name
        self.sidecar = SidecarWriter(run_dir / SIDECAR)
        with _os_errors(self.path):
            self._repair_tail()

    def _repair_tail(self) -> None:
        """Terminate a last line left unterminated by a crash, so appends start on a fresh line."""
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb+") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")

    def append(self, record: CellRecord | dict[str, Any]) -> None:
        self.extend([record])

    def extend(self, records: Sequence[CellRecord | dict[str, Any]]) -> None:
        text = self.sidecar.lines(records)
        with _os_errors(self.path), open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def rewrite_results(run_dir: Path, records: list[CellRecord]) -> None:
    """Replace results.jsonl with exactly these records (atomically)."""
    write_atomic(run_dir / RESULTS, SidecarWriter(run_dir / SIDECAR).lines(records))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return encode_nonfinite(value.item())
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def write_atomic(path: Path, text: str) -> None:
    """Write a file through a temporary one beside it; on any failure nothing is left behind and
    a full disk or a read-only folder becomes a HarnessError naming the file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with _os_errors(path):
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_run_info(run_dir: Path, info: RunInfo | dict[str, Any]) -> None:
    """Write run.json atomically."""
    write_atomic(run_dir / RUN_INFO, _dumps({**info, "format_version": FORMAT_VERSION}, indent=2))


def stopped_after_cells(run_dir: Path, exc: BaseException, stage: str) -> None:
    """run.json of a run stopped after its cells ran (`stage`: what it was doing, e.g. publishing):
    `interrupted` (Ctrl-C, SIGTERM) or `failed`, with why and where, so it is never left `running`
    or `finished` without its reports. Best effort: the cause is re-raised by the caller."""
    info = read_run_info(run_dir)
    if info.get("status") not in ("running", "finished"):
        return  # no run.json yet, or the runner already said how it stopped
    interrupted = isinstance(exc, KeyboardInterrupt)
    info.update(status="interrupted" if interrupted else "failed", stopped_in=stage,
                stop_reason=f"{str(exc) or type(exc).__name__} while {stage}")
    with suppress(Exception):
        write_run_info(run_dir, info)


def read_run_info(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / RUN_INFO).read_text())
    except (OSError, ValueError):
        return {}
    except RecursionError:
        raise HarnessError(f"{run_dir / RUN_INFO}: nested too deeply to read") from None
    return data if isinstance(data, dict) else {}


def incompleteness(records: list[CellRecord] | list[dict[str, Any]], run_info: dict[str, Any]) -> str | None:
    """Why a run's records are not the whole run (None when they are): it did not finish, or cells
    it planned have no record. A report of such a run must say so and must not pass."""
    done = {record_id(r) for r in records}
    missing = [c for c in run_info.get("plan") or [] if c not in done]
    status = run_info.get("status")
    if status in (None, "finished") and not missing:
        return None
    why = {"running": "the run is still running, or died", "interrupted": "the run was interrupted",
           "failed": "the run stopped on an error"}.get(str(status), "")
    if why and run_info.get("stopped_in"):  # every cell ran; what it was doing next did not finish
        why += f" while {run_info['stopped_in']} (`bench run --resume` finishes it)"
    parts = [why] if why else []
    if missing:
        parts.append(f"{len(missing)} of {len(run_info['plan'])} planned cell(s) have no result")
    return "; ".join(parts) or None


def latest_run_dir(suite_reports: Path) -> Path | None:
    """The most recent run directory of a suite (names start with a UTC timestamp, so they sort)."""
    if not suite_reports.is_dir():
        return None
    runs = [p for p in suite_reports.iterdir() if p.is_dir() and (p / RUN_INFO).exists()]
    return max(runs, key=lambda p: (str(read_run_info(p).get("started_at", "")), p.name), default=None)


_DISK_ERRORS = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
                errno.EDQUOT: "the disk quota is exceeded", errno.EACCES: "permission denied",
                errno.EPERM: "permission denied"}


@contextmanager
def _os_errors(path: Path) -> Iterator[None]:
    """OSErrors of writing a run's files as one clear HarnessError (FileExistsError passes)."""
    try:
        yield
    except FileExistsError:
        raise
    except OSError as exc:
        reason = _DISK_ERRORS.get(exc.errno or 0, exc.strerror or str(exc))
        raise HarnessError(f"cannot write {path}: {reason}") from None
