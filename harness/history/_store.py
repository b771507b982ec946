"""`History`: the run history, one API over SQLite (a file) and PostgreSQL (a shared server)."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints

from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from harness.cache import file_digest
from harness.errors import HarnessError
from harness.history._artifacts import EarlierRun, _shown, identity_of, record_name
from harness.history._compact import decode, encode
from harness.history._errors import HistoryError
from harness.history._location import HistoryLocation, PostgresURL, parse_location
from harness.history._postgres import PostgresBackend
from harness.history._sqlite import SQLiteBackend
from harness.history._trend import TrendCell, columns_record, slim
from harness.record import CellRecord, RecordError, cell_id, encode_nonfinite, record_id, validate_record
from harness.results import RESULTS, read_results, utc_now

_JSON_FIELDS = ("metrics", "latency_ms", "latency_samples_ms", "verdicts")
_RUN_COLUMNS = ("id", "suite", "started_at", "finished_at", "git_commit", "suite_sha256", "run_dir", "cells",
                "failed_checks", "failed_cells", "na_cells", "regressions", "pinned", "suite_identity", "partial",
                "results_sha256")
_CELL_COLUMNS = ("model", "scheme", "device", "status", "error", "size_bytes", "gzip_bytes", "metrics", "latency_ms",
                 "latency_samples_ms", "verdicts", "record", "compact")
# what a trend reads of a cell row: its identity, and the stored record of any schema (schema 1: its columns)
_TREND_COLUMNS = ("model", "scheme", "device", "status", "size_bytes", "metrics", "latency_ms", "record", "compact")
_DAMAGE = (RecordError, ValueError, TypeError, RecursionError)  # what reading a damaged cell row raises


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
    regressions: int | None  # None: recorded without a comparison (`bench history import`)
    pinned: bool
    suite_identity: str | None = None  # None: an older row that recorded no suite path
    partial: str | None = None  # why the run measured only some of its suite's cells
    results_sha256: str | None = None  # its results.jsonl as recorded (None: no run folder, or an older row)

    @property
    def label(self) -> str:
        marks = "".join(m for m, on in ((", pinned", self.pinned), (", partial", self.partial)) if on)
        return f"#{self.id} ({self.started_at}{marks})"


_RunRow = TypedDict("_RunRow", get_type_hints(RunEntry))  # type: ignore[misc]  # a run row, checked strictly
_RunRow.__pydantic_config__ = ConfigDict(strict=True)  # type: ignore[attr-defined]
_RUN_ROW = TypeAdapter(_RunRow)
_LARGEST_ID = 2**63 - 1  # SQLite's INTEGER, PostgreSQL's BIGINT


@dataclass
class _Cell:
    """A cell as read back: its checked record, and whether the row holds the compact record only."""

    record: CellRecord
    compact: bool


class History:
    """A history store at `location` (a SQLite file path, created on first use, or a PostgreSQL URL);
    use as a context manager or call close()."""

    def __init__(self, location: HistoryLocation | str, timeout_s: float = 30.0) -> None:
        self.path: HistoryLocation = parse_location(location)
        self.warnings: list[str] = []  # the damaged rows reads skipped, one line each
        self._db = (PostgresBackend(self.path, timeout_s) if isinstance(self.path, PostgresURL)
                    else SQLiteBackend(self.path, timeout_s))
        self.label = self._db.label  # how messages name it: its path, or its redacted URL
        self.artifacts: Path = self._db.artifacts  # where the models it timed are kept for A/B re-timing

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def record(self, records: list[CellRecord], run_info: dict[str, Any], run_dir: Path | None,
               regressions: int | None, partial: str | None = None) -> int:
        """Store (or replace) a run identified by its run id (older run.json: suite and start time),
        with its suite identity, each cell as a compact record; `partial` says why it measured only
        some cells (a baseline for those); `regressions` None: not compared."""
        counts = (len(records), sum(1 for r in records for v in r.get("verdicts") or [] if not v["pass"]),
                  sum(1 for r in records if r["status"] == "failed"), sum(1 for r in records if r["status"] == "n/a"))
        key = run_info.get("run_id") or f"{run_info['suite']}@{run_info['started_at']}"
        run = (run_info["suite"], key, run_info["started_at"], run_info.get("finished_at"), run_info.get("git_commit"),
               run_info.get("suite_sha256"), str(run_dir) if run_dir else None, _results_digest(run_dir), *counts,
               regressions, utc_now(), _json(run_info), identity_of(run_info), partial)
        cells = [(r["model"], r["scheme"], r["device"], r["status"], r.get("size_bytes"), r.get("gzip_bytes"),
                  encode(r), position) for position, r in enumerate(records)]
        with self._db.guard(), self._db.write():
            self._check_same_run(key, run_info)
            run_id = int(self._db.query(
                "INSERT INTO runs (suite, run_key, started_at, finished_at, git_commit, suite_sha256, run_dir,"
                " results_sha256, cells, failed_checks, failed_cells, na_cells, regressions, recorded_at, info,"
                " suite_identity, partial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_key) DO UPDATE SET finished_at = excluded.finished_at,"
                " git_commit = excluded.git_commit, suite_sha256 = excluded.suite_sha256, run_dir = excluded.run_dir,"
                " results_sha256 = excluded.results_sha256, cells = excluded.cells,"
                " failed_checks = excluded.failed_checks, failed_cells = excluded.failed_cells,"
                " na_cells = excluded.na_cells, regressions = excluded.regressions, recorded_at = excluded.recorded_at,"
                " info = excluded.info, suite_identity = excluded.suite_identity, partial = excluded.partial"
                " RETURNING id", run)[0][0])
            self._db.execute("DELETE FROM cells WHERE run_id = ?", (run_id,))
            self._db.execute_many(
                "INSERT INTO cells (run_id, model, scheme, device, status, size_bytes, gzip_bytes, compact, position)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [(run_id, *cell) for cell in cells])
        return run_id

    def _check_same_run(self, key: str, run_info: dict[str, Any]) -> None:
        """A run id already recorded for another run (another suite or start time: a copied or
        hand-made run.json) is refused, never overwritten."""
        rows = self._db.query("SELECT id, suite, started_at FROM runs WHERE run_key = ?", (key,))
        if rows and tuple(rows[0][1:]) != (run_info["suite"], run_info["started_at"]):
            row = rows[0]
            raise HistoryError(f"history store {self.label}: run id {key!r} is already run #{row[0]} "
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
        with self._db.guard():
            rows = self._db.query(query, params)
        entries = [e for e in map(self._entry, rows) if e is not None]
        return entries[:limit] if limit is not None else entries

    def run(self, run_id: int) -> RunEntry:
        """One run by id (HistoryError if there is none, or its row is damaged)."""
        rows: list[tuple[Any, ...]] = []
        if 1 <= run_id <= _LARGEST_ID:
            with self._db.guard():
                rows = self._db.query(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise HistoryError(f"history store {self.label} has no run #{run_id}")
        entry = self._entry(rows[0])
        if entry is None:
            raise HistoryError(self.warnings[-1])
        return entry

    def run_by_key(self, run_key: str) -> int | None:
        """The history id of the run recorded under this run id, if there is one."""
        with self._db.guard():
            rows = self._db.query("SELECT id FROM runs WHERE run_key = ?", (run_key,))
        return int(rows[0][0]) if rows else None

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
        """The cells of a run as result records: compact records (schema 4), whole records (schemas
        2 and 3) or the fields a migrated schema-1 run kept, each checked as a results.jsonl line is
        (`validate_record`); a damaged one is skipped with a warning (`warnings`) naming the run and
        the cell. `full_records` reads a run's whole records from its run folder."""
        return [cell.record for cell in self._cells(run_id)]

    def _cells(self, run_id: int) -> list[_Cell]:
        cells = []
        for values in self._rows(run_id, _CELL_COLUMNS):
            try:
                cells.append(_Cell(_record(values), values["compact"] is not None))
            except _DAMAGE as exc:
                self._damaged(run_id, values, exc)
        return cells

    def trend(self, run_id: int) -> list[TrendCell]:
        """The cells of a run as the trends read them (`TrendCell`: id, status, scheme, scheme kind, size,
        metrics, typical latency), in their order: each stored record (compact, whole or schema-1 columns)
        is read, its trend fields checked and kept, the rest dropped at once, so a run of 10,000 cells
        never holds its records. A cell whose trend fields are damaged is skipped with a warning
        (`warnings`), as `records` skips it."""
        cells = []
        for values in self._rows(run_id, _TREND_COLUMNS):
            try:
                cells.append(_slim(values))
            except _DAMAGE as exc:
                self._damaged(run_id, values, exc)
        return cells

    def _rows(self, run_id: int, columns: tuple[str, ...]) -> list[dict[str, Any]]:
        """A run's cell rows, `columns` of each, in their order in the run."""
        with self._db.guard():
            rows = self._db.query(f"SELECT {', '.join(columns)} FROM cells WHERE run_id = ? ORDER BY position",
                                  (run_id,))
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def _damaged(self, run_id: int, values: dict[str, Any], exc: BaseException) -> None:
        """The warning for a cell row a read skipped, naming its run (and run id) and the cell."""
        with self._db.guard():
            key = self._db.query("SELECT run_key FROM runs WHERE id = ?", (run_id,))
        run = f"run #{run_id} (run id {_shown(key[0][0] if key else None)})"
        self._warn(f"{run}: cell {record_name(values)} skipped: its record is damaged "
                   f"({type(exc).__name__ if isinstance(exc, RecursionError) else exc})")

    def full_records(self, run_id: int) -> list[CellRecord]:
        """A run's whole records, read from its run folder's results.jsonl, which must still have the
        sha256 it had when the run was recorded (HistoryError saying why they cannot be read)."""
        entry = self.run(run_id)
        if entry.run_dir is None or entry.results_sha256 is None:
            raise HistoryError(f"run #{run_id} was recorded without a run folder to read its whole records from")
        results = Path(entry.run_dir) / RESULTS
        if not results.is_file():
            raise HistoryError(f"run #{run_id}: its run folder {entry.run_dir} is not on this machine (no {RESULTS})")
        if file_digest(results) != entry.results_sha256:
            raise HistoryError(f"run #{run_id}: {results} changed since the run was recorded (another sha256)")
        try:
            return read_results(results.parent)
        except HarnessError as exc:
            raise HistoryError(f"run #{run_id}: {exc}") from None

    def _warn(self, message: str) -> None:
        message = f"history store {self.label}: {message}"
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
        or partial. `cells` None: every cell an earlier run measured. A baseline recorded compactly
        is its whole record from its run folder when that is here unchanged; else the compact one,
        with a note."""
        earlier = self.same_suite(suite, identity, before=started_at)
        pinned = next((e for e in earlier if e.pinned), None)
        order = [pinned] if pinned is not None else earlier
        measured = self._measured(suite, started_at)
        chosen: dict[str, tuple[CellRecord, RunEntry]] = {}
        notes: list[str] = []
        for entry in order:
            wanted = {c for c in measured.get(entry.id, set()) - chosen.keys() if cells is None or c in cells}
            if wanted:
                records, note = self.best_records(entry.id)
                notes += [note] if note else []
                chosen |= {record_id(r): (r, entry) for r in records if record_id(r) in wanted and r["status"] == "ok"}
        found = _earlier(chosen, identity)
        found.notes += notes
        return found

    def best_records(self, run_id: int) -> tuple[list[CellRecord], str | None]:
        """A run's records as whole as the history can reach them: from its run folder where the
        history keeps them compactly and the folder is here unchanged (their latency sample and
        per-op detail), else the compact ones and a note saying what they lack."""
        cells = self._cells(run_id)
        if not any(cell.compact for cell in cells):
            return [cell.record for cell in cells], None
        try:
            whole = {record_id(r): r for r in self.full_records(run_id)}
        except HistoryError as exc:
            return [cell.record for cell in cells], (
                f"run #{run_id} is compared on the history's compact records ({exc}): without its per-iteration "
                "latency sample, latency is judged on repeat medians or paired A/B only")
        return [{**whole[record_id(c.record)], "compared_with": c.record.get("compared_with")}
                if c.compact and record_id(c.record) in whole else c.record for c in cells], None

    def _measured(self, suite: str, started_at: str) -> dict[int, set[str]]:
        """Run id → the cells it measured (status ok), for the runs of a suite name started before;
        read from the plain columns, so only the runs a baseline comes from have their records parsed."""
        with self._db.guard():
            rows = self._db.query(
                "SELECT c.run_id, c.model, c.scheme, c.device FROM cells c JOIN runs r ON r.id = c.run_id"
                " WHERE r.suite = ? AND r.started_at < ? AND c.status = 'ok'", (suite, started_at))
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
        with self._db.guard(), self._db.write():
            if identity is None:
                self._db.execute("UPDATE runs SET pinned = 0 WHERE suite = ?", (suite,))
            else:
                self._db.execute("UPDATE runs SET pinned = 0 WHERE suite = ? AND (suite_identity IS NULL"
                                 " OR suite_identity = ?)", (suite, identity))
            if run_id is not None:
                self._db.execute("UPDATE runs SET pinned = 1 WHERE id = ?", (run_id,))


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


def _results_digest(run_dir: Path | None) -> str | None:
    """The sha256 of a run folder's results.jsonl (None: no run folder, or no file in it)."""
    results = run_dir / RESULTS if run_dir is not None else None
    try:
        return file_digest(results) if results is not None and results.is_file() else None
    except OSError:
        return None


def _json(value: Any) -> str:
    return json.dumps(encode_nonfinite(value), allow_nan=False, default=str)


def _stored(row: dict[str, Any]) -> Any:
    """A cell row's stored record as JSON: compact (schema 4), whole (schemas 2 and 3) or its columns (schema 1)."""
    if row["compact"] is not None:
        return decode(row["compact"])
    if row["record"] is not None:
        return json.loads(row["record"])
    return columns_record(row, _JSON_FIELDS)


def _same_cell(stored: dict[str, Any], row: dict[str, Any]) -> None:
    """RecordError when the stored record names another cell than its row."""
    for key in ("model", "scheme", "device"):
        if stored[key] != row[key]:
            raise RecordError(key, f"the record says {stored[key]!r:.60}, its row {_shown(row[key])}")


def _record(row: dict[str, Any]) -> CellRecord:
    """A cell row as a checked record (RecordError, ValueError or TypeError when it is damaged)."""
    record = validate_record(_stored(row))
    _same_cell(dict(record), row)
    return record


def _slim(row: dict[str, Any]) -> TrendCell:
    """A cell row as a TrendCell, its stored record dropped once read (errors as `_record`'s)."""
    stored = _stored(row)
    cell = slim(stored)
    _same_cell(stored, row)
    return cell
