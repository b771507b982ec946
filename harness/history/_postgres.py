"""The shared backend: a PostgreSQL server, through psycopg 3 (`pip install 'quantbench[postgres]'`).

Several hosts publish into one store at once: every write is one transaction, runs are keyed by
their unique run id, and the schema is created under an advisory lock, so nothing is lost. Every
message names the store by its redacted URL and has the URL's credentials taken out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from harness.history._artifacts import artifacts_folder
from harness.history._errors import HistoryError
from harness.history._location import PostgresURL
from harness.history._schema import POSTGRES_UPGRADES, SCHEMA_VERSION, for_postgres

if TYPE_CHECKING:
    import psycopg

_LOCK = 0x7175616E7462  # the advisory lock the schema is created under ("quantb")
_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS quantbench_schema (version INTEGER NOT NULL)"


class PostgresBackend:
    """One connection (autocommit; `write()` opens a transaction) to a PostgreSQL history."""

    def __init__(self, url: PostgresURL, timeout_s: float) -> None:
        self.url = url
        self.label = str(url)
        self.artifacts = artifacts_folder(url)  # this host's copies of the models it timed
        try:
            import psycopg
        except ImportError:
            raise HistoryError(f"history store {self.label}: a PostgreSQL history needs psycopg "
                               "(pip install 'quantbench[postgres]')") from None
        self._errors: type[Exception] = psycopg.Error
        with self.guard():
            self._db: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(
                url.url, autocommit=True, connect_timeout=max(1, int(timeout_s)))
        try:
            self._prepare()
        except HistoryError:
            self._db.close()
            raise

    def _prepare(self) -> None:
        """Create or check the schema, one process at a time (an advisory lock in one transaction)."""
        with self.guard(), self.write():
            self.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK,))
            self.execute(for_postgres(_VERSION_TABLE))
            rows = self.query("SELECT version FROM quantbench_schema")
            version = int(rows[0][0]) if rows else 0
            if version > SCHEMA_VERSION:
                raise HistoryError(f"history store {self.label} was written by a newer quantbench (schema {version})")
            if version < SCHEMA_VERSION:
                if version not in POSTGRES_UPGRADES:
                    raise HistoryError(f"history store {self.label} has schema {version}, which no quantbench wrote "
                                       "in PostgreSQL")
                for statement in POSTGRES_UPGRADES[version]:
                    self.execute(for_postgres(statement))
                self.execute("DELETE FROM quantbench_schema")
                self.execute("INSERT INTO quantbench_schema (version) VALUES (?)", (SCHEMA_VERSION,))

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn psycopg errors (no server, refused, lost connection) into HistoryError, credentials out."""
        try:
            yield
        except Exception as exc:
            if not isinstance(exc, getattr(self, "_errors", ())):
                raise
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise HistoryError(self.url.scrub(f"history store {self.label} cannot be used ({detail})")) from None

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._db.transaction():
            yield

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(_dialect(sql), params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(_dialect(sql), params)

    def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._db.cursor() as cursor:
            cursor.executemany(_dialect(sql), rows)


def _dialect(sql: str) -> str:
    """The statement with psycopg's placeholders (`%s` for `?`; the harness's SQL has no `%`)."""
    return sql.replace("?", "%s")
