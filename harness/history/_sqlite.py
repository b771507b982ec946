"""The embedded backend: a SQLite file (WAL mode, a busy timeout and short `BEGIN IMMEDIATE`
transactions, so several processes on one machine write at once)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.history._artifacts import artifacts_folder
from harness.history._errors import HistoryError
from harness.history._schema import SCHEMA_VERSION, SQLITE_UPGRADES


class SQLiteBackend:
    """One connection to a SQLite history file (created on first use)."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        self.path = path
        self.label = str(path)
        self.artifacts = artifacts_folder(path)
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
        with self.guard():
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
        version = self._version()
        if version > SCHEMA_VERSION:
            raise HistoryError(f"history store {self.label} was written by a newer quantbench (schema {version})")
        if version < SCHEMA_VERSION:
            self._upgrade()
        self._db.execute("PRAGMA foreign_keys = ON")

    def _version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _upgrade(self) -> None:
        """Create the schema, or migrate an older store, in one transaction (foreign keys off, so
        rebuilding `runs` does not cascade into `cells`)."""
        self._db.execute("PRAGMA foreign_keys = OFF")
        with self.write():  # executescript would commit early, so one statement at a time
            for statement in SQLITE_UPGRADES.get(self._version(), []):  # another process may have done it
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def _error(self, exc: Exception) -> HistoryError:
        corrupt = type(exc) is sqlite3.DatabaseError  # "file is not a database", "disk image is malformed"
        hint = "; move it aside to start a new one, or use another file" if corrupt else ""
        return HistoryError(f"history store {self.label} cannot be used ({exc}){hint}")

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn SQLite errors (corrupt file, locked too long, disk full) into HistoryError."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    @contextmanager
    def write(self) -> Iterator[None]:
        """A write transaction, taken at once (so two writers never deadlock on an upgrade)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(sql, params)

    def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._db.executemany(sql, rows)
