"""Older SQLite history stores are migrated in place: schema 1 (JSON columns, runs unique by start
second) and schema 3 (whole records) to schema 4 (compact records), every old row kept and read."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from harness.history import _CELLS, _INDEX, _RUNS_V2, SCHEMA_VERSION, History, trend_cells
from harness.record import FORMAT_VERSION
from tests.report.runs import standard_cells

V1 = [
    """CREATE TABLE runs (id INTEGER PRIMARY KEY, suite TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
    git_commit TEXT, suite_sha256 TEXT, run_dir TEXT, cells INTEGER NOT NULL, failed_checks INTEGER NOT NULL,
    failed_cells INTEGER NOT NULL, na_cells INTEGER NOT NULL, regressions INTEGER NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0, recorded_at TEXT NOT NULL, UNIQUE (suite, started_at))""",
    """CREATE TABLE cells (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, model TEXT NOT NULL,
    scheme TEXT NOT NULL, device TEXT NOT NULL, status TEXT NOT NULL, error TEXT, size_bytes INTEGER,
    gzip_bytes INTEGER, metrics TEXT NOT NULL, latency_ms TEXT, latency_samples_ms TEXT, verdicts TEXT NOT NULL,
    PRIMARY KEY (run_id, model, scheme, device))""",
    "CREATE INDEX runs_by_suite ON runs (suite, started_at)",
]


def _v1_store(path: Path) -> list[dict]:
    records = standard_cells()
    with sqlite3.connect(path) as db:
        for statement in V1:
            db.execute(statement)
        db.execute("INSERT INTO runs VALUES (7, 'nightly', '2026-01-01T00:00:00+00:00', NULL, 'c0ffee', 'ab', NULL,"
                   " 3, 0, 0, 0, 0, 1, '2026-01-01T00:10:00+00:00')")
        for r in records:
            db.execute("INSERT INTO cells VALUES (7, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (r["model"], r["scheme"], r["device"], r["status"], r["error"], r["size_bytes"],
                        r["gzip_bytes"], json.dumps(r["metrics"]), json.dumps(r["latency_ms"]),
                        json.dumps(r["latency_samples_ms"]), json.dumps(r["verdicts"])))
        db.execute("PRAGMA user_version = 1")
    return records


def test_a_v1_store_is_migrated_in_place_keeping_runs_cells_and_pins(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    records = _v1_store(path)
    with History(path) as store:
        (entry,) = store.runs("nightly")
        assert (entry.id, entry.pinned, entry.git_commit) == (7, True, "c0ffee")
        back = store.records(7)
        assert [r["metrics"] for r in back] == [r["metrics"] for r in records]
        assert store.trend(7) == trend_cells(back) and len(back) == 3  # trends read schema-1 columns too
        assert [r["latency_samples_ms"] for r in back] == [r["latency_samples_ms"] for r in records]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_runs_of_the_same_second_are_two_runs_and_keep_what_trend_and_attribution_need(tmp_path: Path) -> None:
    records = standard_cells()
    records[0]["artifact"] = {"path": "/cache/a.tflite", "sha256": "12" * 32}
    records[0]["latency_setup"] = {"core": 1, "runtime": "ai-edge-litert 2.3.0"}
    records[0]["metrics"]["snr_db"] = float("inf")
    with History(tmp_path / "h.sqlite") as store:
        same = {"suite": "nightly", "started_at": "2026-01-01T00:00:00+00:00"}
        first = store.record(records, {**same, "run_id": "20260101T000000Z-aaaaaa"}, None, 0)
        second = store.record(records, {**same, "run_id": "20260101T000000Z-bbbbbb"}, None, 0)
        assert first != second and len(store.runs("nightly")) == 2
        back = store.records(second)
    assert back[0]["artifact"] == records[0]["artifact"] and back[0]["latency_setup"] == records[0]["latency_setup"]
    assert back[0]["metrics"]["snr_db"] == float("inf")
    assert set(back[0]) >= set(records[0]) - {"latency_samples_ms"}  # the raw sample stays in the run folder


def _v3_store(path: Path) -> list[dict]:
    """A schema-3 store (as quantbench wrote it before compact rows): one run, whole records."""
    records = standard_cells()
    with closing(sqlite3.connect(path)) as db, db:
        for statement in (_RUNS_V2, _CELLS, _INDEX, "ALTER TABLE runs ADD COLUMN suite_identity TEXT",
                          "ALTER TABLE runs ADD COLUMN partial TEXT"):
            db.execute(statement)
        db.execute("INSERT INTO runs (id, suite, run_key, started_at, cells, failed_checks, failed_cells, na_cells,"
                   " regressions, pinned, recorded_at, info, suite_identity) VALUES (3, 'nightly', 'old-run',"
                   " '2026-01-01T00:00:00+00:00', 3, 0, 0, 0, 1, 1, '', '{}', 'nightly@/s.yaml')")
        for r in reversed(records):  # rowid order is the order a run's cells are read back in
            db.execute("INSERT INTO cells (run_id, model, scheme, device, status, metrics, verdicts, record)"
                       " VALUES (3, ?, ?, ?, 'ok', '{}', '[]', ?)", (r["model"], r["scheme"], r["device"], json.dumps(r)))
        db.execute("PRAGMA user_version = 3")
    return records


def test_a_v3_store_keeps_its_whole_records_and_takes_compact_ones_beside_them(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    records = _v3_store(path)
    with History(path) as store:
        (old,) = store.runs("nightly")
        assert (old.id, old.pinned, old.regressions, old.suite_identity) == (3, True, 1, "nightly@/s.yaml")
        back = store.records(3)
        assert store.trend(3) == trend_cells(list(reversed(records)))  # trends read whole (schema-3) records too
        assert back == [{**r, "format_version": FORMAT_VERSION} for r in reversed(records)]  # whole, in their order,
        # read as the current format (these were written before records carried a format_version: format 1)
        assert store.best_records(3) == (back, None)
        new = store.record(standard_cells(1), {"suite": "nightly", "started_at": "2026-01-02T00:00:00+00:00",
                                               "run_id": "new-run", "suite_path": "/s.yaml"}, None, 0)
        chosen = store.baselines("nightly", "nightly@/s.yaml", "2026-01-03")
        assert set(chosen.labels.values()) == {"run #3 (2026-01-01T00:00:00+00:00, pinned)"}
        assert [r["scheme"] for r in store.records(new)] == ["float32", "int8", "dynamic_range"]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        kinds = db.execute("SELECT run_id, record IS NOT NULL, compact IS NOT NULL FROM cells ORDER BY run_id").fetchall()
        assert kinds == [(3, 1, 0)] * 3 + [(new, 0, 1)] * 3
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("DELETE FROM runs WHERE id = 3")  # the rebuilt cells still cascade with their run
        assert db.execute("SELECT COUNT(*) FROM cells WHERE run_id = 3").fetchone() == (0,)
