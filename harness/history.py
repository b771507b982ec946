"""The run history: an embedded SQLite store of every published run and its cells.

WAL mode, a busy timeout and short `BEGIN IMMEDIATE` transactions let several processes write
at once. Schema 2 keeps every cell's whole record (one JSON column, the same format as a
results.jsonl line, `harness.record`) beside the columns queries need, and names each run by its
unique run id; a schema-1 store is migrated in place when it is opened (its cells keep the
fields schema 1 stored). Schema 3 adds each run's suite identity (`suite_identity`: which suite file
it ran) and why a run is partial (`partial`); a schema-2 row gets its identity from the suite path
its run.json recorded, and a row without one is matched by its suite name only, with a note.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Any, get_type_hints

from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict, TypeIs

from harness.cache import file_digest
from harness.errors import HarnessError
from harness.record import (
    FORMAT_VERSION,
    CellRecord,
    RecordError,
    benchmark_binary,
    cell_id,
    encode_nonfinite,
    record_id,
    validate_record,
)
from harness.results import utc_now

DEFAULT_PATH = Path("reports/history.sqlite")
SCHEMA_VERSION = 3

_RUNS_V2 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    suite TEXT NOT NULL,
    run_key TEXT NOT NULL UNIQUE,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    git_commit TEXT,
    suite_sha256 TEXT,
    run_dir TEXT,
    cells INTEGER NOT NULL,
    failed_checks INTEGER NOT NULL,
    failed_cells INTEGER NOT NULL,
    na_cells INTEGER NOT NULL,
    regressions INTEGER NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    recorded_at TEXT NOT NULL,
    info TEXT
)"""
_CELLS = """
CREATE TABLE cells (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    scheme TEXT NOT NULL,
    device TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    size_bytes INTEGER,
    gzip_bytes INTEGER,
    metrics TEXT NOT NULL,
    latency_ms TEXT,
    latency_samples_ms TEXT,
    verdicts TEXT NOT NULL,
    record TEXT,
    PRIMARY KEY (run_id, model, scheme, device)
)"""
_INDEX = "CREATE INDEX IF NOT EXISTS runs_by_suite ON runs (suite, started_at)"
# Schema 1 → 2: runs were unique by (suite, started_at), to the second; cells had no whole record.
_MIGRATE_1 = [
    _RUNS_V2.replace("CREATE TABLE runs", "CREATE TABLE runs_v2"),
    "INSERT INTO runs_v2 (id, suite, run_key, started_at, finished_at, git_commit, suite_sha256, run_dir, cells,"
    " failed_checks, failed_cells, na_cells, regressions, pinned, recorded_at) SELECT id, suite,"
    " suite || '@' || started_at, started_at, finished_at, git_commit, suite_sha256, run_dir, cells, failed_checks,"
    " failed_cells, na_cells, regressions, pinned, recorded_at FROM runs",
    "DROP TABLE runs",
    "ALTER TABLE runs_v2 RENAME TO runs",
    "ALTER TABLE cells ADD COLUMN record TEXT",
    _INDEX,
]
# Schema 2 → 3: the suite identity (from the suite path the run's run.json recorded) and a partial run's reason.
_MIGRATE_2 = [
    "ALTER TABLE runs ADD COLUMN suite_identity TEXT",
    "ALTER TABLE runs ADD COLUMN partial TEXT",
    "UPDATE runs SET suite_identity = suite || '@' || json_extract(info, '$.suite_path')"
    " WHERE json_valid(info) AND json_type(info, '$.suite_path') = 'text' AND json_extract(info, '$.suite_path') != ''",
]
_CREATE = [_RUNS_V2, _CELLS, _INDEX, *_MIGRATE_2]
_UPGRADES = {0: _CREATE, 1: [*_MIGRATE_1, *_MIGRATE_2], 2: _MIGRATE_2}

_JSON_FIELDS = ("metrics", "latency_ms", "latency_samples_ms", "verdicts")
_RUN_COLUMNS = ("id", "suite", "started_at", "finished_at", "git_commit", "suite_sha256", "run_dir", "cells",
                "failed_checks", "failed_cells", "na_cells", "regressions", "pinned", "suite_identity", "partial")


ARTIFACTS = "artifacts"  # beside the store: every timed model, by content (<sha256>.tflite)
BINARY_SUFFIX = ".benchmark_model"  # and every phone's benchmark binary (<sha256>.benchmark_model)


_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_sha256(value: object) -> TypeIs[str]:
    """True for a sha256 digest as the harness writes it (64 lowercase hex): the only record
    content ever used in a file name."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def suite_identity(suite: str, suite_path: str | None) -> str | None:
    """Which suite a run ran: its `name:` and the suite file's resolved path (`name@/abs/suite.yaml`),
    so an edited file is still the same suite and another file with the same name is not; None
    when the run recorded no suite path (then runs are matched by name only, and that is said)."""
    return f"{suite}@{suite_path}" if suite_path else None


def identity_of(run_info: dict[str, Any]) -> str | None:
    """The suite identity of a run.json: its `suite_identity`, else from its suite name and path."""
    recorded = run_info.get("suite_identity")
    if isinstance(recorded, str) and recorded:
        return recorded
    path = run_info.get("suite_path")
    return suite_identity(str(run_info["suite"]), path if isinstance(path, str) else None)


@dataclass
class EarlierRun:
    """The baseline of a run, per cell: each cell's record from the most recent earlier run of the
    same suite that measured it (or from the pinned run), the label of that run per cell, and where
    the history keeps its models. `label` names the runs used, for one-line messages."""

    label: str = ""
    records: dict[str, CellRecord] = field(default_factory=dict)
    artifacts: Path | None = None  # the history's artifact store
    labels: dict[str, str] = field(default_factory=dict)  # cell id → the run its record came from
    notes: list[str] = field(default_factory=list)  # how the runs were chosen, when that needs saying

    def label_of(self, cell: str) -> str:
        """The run a cell's earlier record came from."""
        return self.labels.get(cell, self.label)

    def kept(self, record: CellRecord) -> Path | None:
        artifact = record.get("artifact")
        return self._kept(artifact.get("sha256") if artifact else None, ".tflite")

    def kept_binary(self, record: CellRecord) -> Path | None:
        """The artifact store's copy of the benchmark_model binary a phone cell was timed with."""
        return self._kept(benchmark_binary(record).get("sha256"), BINARY_SUFFIX)

    def _kept(self, sha: object, suffix: str) -> Path | None:
        return self.artifacts / f"{sha}{suffix}" if self.artifacts is not None and is_sha256(sha) else None


def keep_artifacts(store_path: Path, records: list[CellRecord]) -> list[str]:
    """Copy each timed model (and each phone's benchmark binary) into the artifact store beside
    the history, once per content, so a later run can time it again beside its own; returns what
    could not be kept."""
    folder, problems = store_path.parent / ARTIFACTS, []
    for record in records:
        if record.get("status") != "ok":
            continue
        artifact: Mapping[str, object] = record.get("artifact") or {}
        binary = benchmark_binary(record)
        for source, sha, suffix in ((artifact.get("path"), artifact.get("sha256"), ".tflite"),
                                    (binary.get("path"), binary.get("sha256"), BINARY_SUFFIX)):
            problem = _keep(folder, source, sha, suffix) if source or sha else None
            if problem:
                problems.append(f"{record_name(record)}: {problem}")
    return problems


def _keep(folder: Path, source: object, sha: object, suffix: str) -> str | None:
    """Copy `source` to folder/<sha><suffix> unless it is there; the problem, if any. `sha` must be
    a digest and the bytes copied must have it: a record names the file, never where it goes."""
    if not is_sha256(sha) or not isinstance(source, str) or not source:
        return f"{source!r:.80} with sha256 {sha!r:.80}: not a file path and a sha256 digest"
    target = folder / f"{sha}{suffix}"
    if target.exists():
        return None
    staged = folder / f".{sha}.{os.getpid()}"
    try:
        if not _has_digest(Path(source), sha):
            return f"{source}: no file with the recorded sha256 {sha}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, staged)
        if file_digest(staged) != sha:
            return f"{source}: changed while it was copied"
        os.replace(staged, target)
    except OSError as exc:
        return f"{source}: {exc.strerror or exc}"
    finally:
        with suppress(OSError):
            staged.unlink(missing_ok=True)
    return None


def _has_digest(path: Path, sha: str) -> bool:
    """A non-empty regular file (not a device, a pipe or a /proc file that never ends) with this sha256."""
    status = path.stat() if path.exists() else None
    return status is not None and S_ISREG(status.st_mode) and status.st_size > 0 and file_digest(path) == sha


def record_name(record: Any) -> str:
    """`model/scheme@device` of a record as read, whatever its fields hold (for a warning)."""
    fields = record if isinstance(record, dict) else {}
    return "/".join(_shown(fields.get(k)) for k in ("model", "scheme")) + f"@{_shown(fields.get('device'))}"


def _shown(value: object) -> str:
    return value if isinstance(value, str) else f"{value!r:.40}"


class HistoryError(HarnessError):
    """The history store cannot be opened, read or written."""


@dataclass(frozen=True)
class RunEntry:
    """One recorded run with its verdict counts."""

    id: int
    suite: str
    started_at: str
    finished_at: str | None
    git_commit: str | None
    suite_sha256: str | None
    run_dir: str | None
    cells: int
    failed_checks: int
    failed_cells: int
    na_cells: int
    regressions: int
    pinned: bool
    suite_identity: str | None = None  # None: an older row that recorded no suite path
    partial: str | None = None  # why the run measured only some of its suite's cells

    @property
    def label(self) -> str:
        marks = "".join(m for m, on in ((", pinned", self.pinned), (", partial", self.partial)) if on)
        return f"#{self.id} ({self.started_at}{marks})"


_RunRow = TypedDict("_RunRow", get_type_hints(RunEntry))  # type: ignore[misc]  # a run row, checked strictly
_RunRow.__pydantic_config__ = ConfigDict(strict=True)  # type: ignore[attr-defined]
_RUN_ROW = TypeAdapter(_RunRow)
_LARGEST_ID = 2**63 - 1  # SQLite's INTEGER


class History:
    """A history store at `path` (created on first use); use as a context manager or call close()."""

    def __init__(self, path: Path, timeout_s: float = 30.0) -> None:
        self.path = path
        self.warnings: list[str] = []  # the damaged rows reads skipped, one line each
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from None
        try:
            self._prepare(timeout_s)
        except HistoryError:
            self._db.close()
            raise

    def _prepare(self, timeout_s: float) -> None:
        """Set up the connection and the schema. While another process turns a new file into WAL
        mode, SQLite can answer "database is locked" at once, without waiting: retry until timeout."""
        deadline = time.monotonic() + timeout_s
        with self._guard():
            while True:
                try:
                    self._set_up(timeout_s)
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def _set_up(self, timeout_s: float) -> None:
        self._db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError(f"history store {self.path} was written by a newer quantbench (schema {version})")
        if version < SCHEMA_VERSION:
            self._upgrade()
        self._db.execute("PRAGMA foreign_keys = ON")

    def _upgrade(self) -> None:
        """Create the schema, or migrate a schema-1 or -2 store, in one transaction (foreign keys off, so
        rebuilding `runs` does not cascade into `cells`)."""
        self._db.execute("PRAGMA foreign_keys = OFF")
        with self._transaction():  # executescript would commit early, so one statement at a time
            version = self._db.execute("PRAGMA user_version").fetchone()[0]  # another process may have done it
            for statement in _UPGRADES.get(version, []):
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _error(self, exc: Exception) -> HistoryError:
        corrupt = type(exc) is sqlite3.DatabaseError  # "file is not a database", "disk image is malformed"
        hint = "; move it aside to start a new one, or use another file" if corrupt else ""
        return HistoryError(f"history store {self.path} cannot be used ({exc}){hint}")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn SQLite errors (corrupt file, locked too long, disk full) into HistoryError."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def record(self, records: list[CellRecord], run_info: dict[str, Any], run_dir: Path | None,
               regressions: int, partial: str | None = None) -> int:
        """Store (or replace) a run identified by its run id (older run.json: suite and start time),
        with its suite identity; `partial` says why it measured only some cells (a baseline for those)."""
        counts = (len(records), sum(1 for r in records for v in r.get("verdicts") or [] if not v["pass"]),
                  sum(1 for r in records if r["status"] == "failed"), sum(1 for r in records if r["status"] == "n/a"))
        key = run_info.get("run_id") or f"{run_info['suite']}@{run_info['started_at']}"
        run = (run_info["suite"], key, run_info["started_at"], run_info.get("finished_at"), run_info.get("git_commit"),
               run_info.get("suite_sha256"), str(run_dir) if run_dir else None, *counts, regressions, utc_now(),
               _json(run_info), identity_of(run_info), partial)
        with self._guard(), self._transaction():
            self._check_same_run(key, run_info)
            run_id = self._db.execute(
                "INSERT INTO runs (suite, run_key, started_at, finished_at, git_commit, suite_sha256, run_dir, cells,"
                " failed_checks, failed_cells, na_cells, regressions, recorded_at, info, suite_identity, partial)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_key) DO UPDATE SET finished_at = excluded.finished_at,"
                " git_commit = excluded.git_commit, suite_sha256 = excluded.suite_sha256, run_dir = excluded.run_dir,"
                " cells = excluded.cells, failed_checks = excluded.failed_checks, failed_cells = excluded.failed_cells,"
                " na_cells = excluded.na_cells, regressions = excluded.regressions, recorded_at = excluded.recorded_at,"
                " info = excluded.info, suite_identity = excluded.suite_identity, partial = excluded.partial"
                " RETURNING id", run).fetchone()[0]
            self._db.execute("DELETE FROM cells WHERE run_id = ?", (run_id,))
            self._db.executemany(
                "INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, r["model"], r["scheme"], r["device"], r["status"], r.get("error"), r.get("size_bytes"),
                  r.get("gzip_bytes"), _json(r.get("metrics") or {}), _json(r.get("latency_ms")), None,
                  _json(r.get("verdicts") or []), _json({**r, "format_version": FORMAT_VERSION}))
                 for r in records])
        return int(run_id)

    def _check_same_run(self, key: str, run_info: dict[str, Any]) -> None:
        """A run id already recorded for another run (another suite or start time: a copied or
        hand-made run.json) is refused, never overwritten."""
        row = self._db.execute("SELECT id, suite, started_at FROM runs WHERE run_key = ?", (key,)).fetchone()
        if row is not None and tuple(row[1:]) != (run_info["suite"], run_info["started_at"]):
            raise HistoryError(f"history store {self.path}: run id {key!r} is already run #{row[0]} "
                               f"({_shown(row[1])}, started {_shown(row[2])}), another run")

    def runs(self, suite: str, limit: int | None = None, before: str | None = None) -> list[RunEntry]:
        """Runs of a suite, newest first; `before` keeps those started strictly earlier. A damaged
        run row is skipped with a warning (`warnings`)."""
        if limit is not None and limit < 1:
            raise HistoryError(f"a limit of runs must be at least 1, not {limit}")
        query = f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE suite = ?"
        params: list[Any] = [suite]
        if before is not None:
            query += " AND started_at < ?"
            params.append(before)
        query += " ORDER BY started_at DESC, id DESC"
        with self._guard():
            rows = self._db.execute(query, params).fetchall()
        entries = [e for e in map(self._entry, rows) if e is not None]
        return entries[:limit] if limit is not None else entries

    def run(self, run_id: int) -> RunEntry:
        """One run by id (HistoryError if there is none, or its row is damaged)."""
        row = None
        if 1 <= run_id <= _LARGEST_ID:
            with self._guard():
                row = self._db.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE id = ?",
                                       (run_id,)).fetchone()
        if row is None:
            raise HistoryError(f"history store {self.path} has no run #{run_id}")
        entry = self._entry(row)
        if entry is None:
            raise HistoryError(self.warnings[-1])
        return entry

    def _entry(self, row: tuple[Any, ...]) -> RunEntry | None:
        """A run row checked against RunEntry's types; None (and a warning) when it is damaged."""
        values = dict(zip(_RUN_COLUMNS, row, strict=True))
        if values["pinned"] in (0, 1):
            values["pinned"] = bool(values["pinned"])
        try:
            _RUN_ROW.validate_python(values)  # strict: checked as they are, nothing coerced
            return RunEntry(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            self._warn(f"run #{_shown(values['id'])} skipped: its row is damaged ({where}: {error['msg']})")
            return None

    def records(self, run_id: int) -> list[CellRecord]:
        """The cells of a run as result records: whole records (schema 2), or the fields a
        migrated schema-1 run kept, each checked as a results.jsonl line is (`validate_record`);
        a damaged one is skipped with a warning (`warnings`) naming the run and the cell."""
        with self._guard():
            cursor = self._db.execute(
                "SELECT model, scheme, device, status, error, size_bytes, gzip_bytes, metrics, latency_ms,"
                " latency_samples_ms, verdicts, record FROM cells WHERE run_id = ? ORDER BY rowid", (run_id,))
            rows = cursor.fetchall()
            names = [d[0] for d in cursor.description]
            key = self._db.execute("SELECT run_key FROM runs WHERE id = ?", (run_id,)).fetchone()
        records = []
        for row in rows:
            cells = dict(zip(names, row, strict=True))
            try:
                records.append(_record(cells))
            except (RecordError, ValueError, TypeError, RecursionError) as exc:
                run = f"run #{run_id} (run id {_shown(key[0] if key else None)})"
                self._warn(f"{run}: cell {record_name(cells)} skipped: its record is damaged "
                           f"({type(exc).__name__ if isinstance(exc, RecursionError) else exc})")
        return records

    def _warn(self, message: str) -> None:
        message = f"history store {self.path}: {message}"
        if message not in self.warnings:
            self.warnings.append(message)

    def same_suite(self, suite: str, identity: str | None, before: str | None = None) -> list[RunEntry]:
        """Runs of the same suite, newest first: the same name and suite identity. An older row
        without an identity (or any run, when `identity` is None) matches by its name only."""
        return [e for e in self.runs(suite, before=before) if identity is None or e.suite_identity in (identity, None)]

    def baselines(self, suite: str, identity: str | None, started_at: str,
                  cells: Collection[str] | None = None) -> EarlierRun:
        """Each cell's baseline for a run of this suite starting at `started_at`: the pinned run's
        record of the cell if a run is pinned (its other cells have none), else the record from
        the most recent earlier run that measured the cell (status ok), whether that run was whole
        or partial. `cells` None: every cell an earlier run measured."""
        earlier = self.same_suite(suite, identity, before=started_at)
        pinned = next((e for e in earlier if e.pinned), None)
        order = [pinned] if pinned is not None else earlier
        measured = self._measured(suite, started_at)
        chosen: dict[str, tuple[CellRecord, RunEntry]] = {}
        for entry in order:
            wanted = {c for c in measured.get(entry.id, set()) - chosen.keys() if cells is None or c in cells}
            if wanted:
                chosen |= {record_id(r): (r, entry) for r in self.records(entry.id)
                           if record_id(r) in wanted and r["status"] == "ok"}
        return _earlier(chosen, identity)

    def _measured(self, suite: str, started_at: str) -> dict[int, set[str]]:
        """Run id → the cells it measured (status ok), for the runs of a suite name started before;
        read from the plain columns, so only the runs a baseline comes from have their records parsed."""
        with self._guard():
            rows = self._db.execute(
                "SELECT c.run_id, c.model, c.scheme, c.device FROM cells c JOIN runs r ON r.id = c.run_id"
                " WHERE r.suite = ? AND r.started_at < ? AND c.status = 'ok'", (suite, started_at)).fetchall()
        measured: dict[int, set[str]] = {}
        for run_id, model, scheme, device in rows:
            measured.setdefault(run_id, set()).add(cell_id(str(model), str(scheme), str(device)))
        return measured

    def pin(self, suite: str, run_id: int | None) -> None:
        """Make `run_id` the fixed baseline of its suite (its name and identity); None: compare every
        run of the suite name with the previous runs again."""
        identity = None
        if run_id is not None:
            entry = self.run(run_id)
            if entry.suite != suite:
                raise HistoryError(f"run #{run_id} is not a run of {suite!r}")
            identity = entry.suite_identity
        with self._guard(), self._transaction():
            self._db.execute("UPDATE runs SET pinned = 0 WHERE suite = ? AND (? IS NULL OR suite_identity IS NULL"
                             " OR suite_identity = ?)", (suite, identity, identity))
            self._db.execute("UPDATE runs SET pinned = 1 WHERE id IS ?", (run_id,))


def _earlier(chosen: dict[str, tuple[CellRecord, RunEntry]], identity: str | None) -> EarlierRun:
    """The chosen records as an EarlierRun, with a note for runs matched by suite name only."""
    runs = sorted({e.id: e for _, e in chosen.values()}.values(), key=lambda e: e.id)
    label = f"run {runs[0].label}" if len(runs) == 1 else f"runs {', '.join(f'#{e.id}' for e in runs)}"
    unverified = [f"#{e.id}" for e in runs if identity is None or e.suite_identity is None]
    why = ("this run recorded no suite file path" if identity is None
           else "they were recorded without a suite file path (before suite identities)")
    notes = [f"baseline run(s) {', '.join(unverified)} matched by suite name only: {why}"] if unverified else []
    return EarlierRun(label if runs else "", {c: r for c, (r, _) in chosen.items()},
                      labels={c: f"run {e.label}" for c, (_, e) in chosen.items()}, notes=notes)


def _json(value: Any) -> str:
    return json.dumps(encode_nonfinite(value), allow_nan=False, default=str)


def _record(row: dict[str, Any]) -> CellRecord:
    """A cell row as a checked record (RecordError, ValueError or TypeError when it is damaged)."""
    whole = row.get("record")
    if whole is not None:
        data = json.loads(whole)
    else:  # a schema-1 cell
        data = {k: json.loads(v) if k in _JSON_FIELDS and v is not None else v for k, v in row.items() if k != "record"}
    record = validate_record(data)
    for key in ("model", "scheme", "device"):
        if record[key] != row[key]:
            raise RecordError(key, f"the record says {record[key]!r:.60}, its row {_shown(row[key])}")
    return record
