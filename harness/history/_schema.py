"""The history's schema, one for SQLite and PostgreSQL, and the migrations of older SQLite stores.

Schema 4 (both backends): each run under its unique run id (`run_key`), with the sha256 of its
results.jsonl (`results_sha256`: the full records stay in the run folder), and each cell as a
compact record (`compact`, harness.history._compact) beside the columns queries need. Rows of older
schemas keep what they stored: schema-1 cells their JSON columns, schema-2 and -3 cells their whole
record (`record`); every kind is read back. `regressions` is NULL for a run recorded without a
comparison (`bench history import`).

The statements are written for SQLite; `for_postgres` turns them into PostgreSQL's types.
"""

from __future__ import annotations

SCHEMA_VERSION = 4

_RUN_FIELDS = """
    suite TEXT NOT NULL,
    run_key TEXT NOT NULL UNIQUE,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    git_commit TEXT,
    suite_sha256 TEXT,
    run_dir TEXT,"""
_RUNS_V2 = f"""
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,{_RUN_FIELDS}
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

RUNS_V4 = f"""
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,{_RUN_FIELDS}
    results_sha256 TEXT,
    cells INTEGER NOT NULL,
    failed_checks INTEGER NOT NULL,
    failed_cells INTEGER NOT NULL,
    na_cells INTEGER NOT NULL,
    regressions INTEGER,
    pinned INTEGER NOT NULL DEFAULT 0,
    recorded_at TEXT NOT NULL,
    info TEXT,
    suite_identity TEXT,
    partial TEXT
)"""
CELLS_V4 = """
CREATE TABLE cells (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    model TEXT NOT NULL,
    scheme TEXT NOT NULL,
    device TEXT NOT NULL,
    status TEXT NOT NULL,
    size_bytes INTEGER,
    gzip_bytes INTEGER,
    compact BLOB,
    error TEXT,
    metrics TEXT,
    latency_ms TEXT,
    latency_samples_ms TEXT,
    verdicts TEXT,
    record TEXT,
    PRIMARY KEY (run_id, model, scheme, device)
)"""
CREATE = [RUNS_V4, CELLS_V4, _INDEX]

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
# Schema 3 → 4: both tables rebuilt as schema 4 (the old JSON columns may be NULL now, a cell keeps its
# place in its run), every row kept as it was.
_COPIED_RUNS = ("id, suite, run_key, started_at, finished_at, git_commit, suite_sha256, run_dir, cells, failed_checks,"
                " failed_cells, na_cells, regressions, pinned, recorded_at, info, suite_identity, partial")
_COPIED_CELLS = ("run_id, model, scheme, device, status, error, size_bytes, gzip_bytes, metrics, latency_ms,"
                 " latency_samples_ms, verdicts, record")
_MIGRATE_3 = [
    RUNS_V4.replace("CREATE TABLE runs", "CREATE TABLE runs_v4"),
    f"INSERT INTO runs_v4 ({_COPIED_RUNS}) SELECT {_COPIED_RUNS} FROM runs",
    CELLS_V4.replace("CREATE TABLE cells", "CREATE TABLE cells_v4").replace("REFERENCES runs(", "REFERENCES runs_v4("),
    f"INSERT INTO cells_v4 (position, {_COPIED_CELLS}) SELECT rowid, {_COPIED_CELLS} FROM cells",
    "DROP TABLE cells",
    "DROP TABLE runs",
    "ALTER TABLE runs_v4 RENAME TO runs",
    "ALTER TABLE cells_v4 RENAME TO cells",
    _INDEX,
]
_V2_CREATE = [_RUNS_V2, _CELLS, _INDEX]
SQLITE_UPGRADES = {0: CREATE, 1: [*_MIGRATE_1, *_MIGRATE_2, *_MIGRATE_3], 2: [*_MIGRATE_2, *_MIGRATE_3],
                   3: _MIGRATE_3}
POSTGRES_UPGRADES = {0: CREATE}  # no PostgreSQL store predates schema 4


def for_postgres(statement: str) -> str:
    """A schema statement in PostgreSQL's types: 64-bit integers, an identity key, bytea."""
    return (statement.replace("INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
            .replace("INTEGER", "BIGINT").replace("BLOB", "BYTEA"))
