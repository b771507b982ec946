"""The SQLite history store: round trip, baselines and pins, concurrent writers, corrupt files."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from harness.history import History, HistoryError
from tests.report.runs import standard_cells

WRITERS, RUNS_EACH = 4, 25


def info(started_at: str, suite: str = "nightly") -> dict:
    return {"suite": suite, "started_at": started_at, "git_commit": "c0ffee", "suite_sha256": "ab" * 32}


def test_records_round_trip_with_counts(tmp_path: Path) -> None:
    records = standard_cells(top1_drop=0.1)  # dynamic_range violates top1.max_abs_drop
    with History(tmp_path / "h.sqlite") as store:
        run_id = store.record(records, info("2026-01-01T00:00:00+00:00"), tmp_path / "run", regressions=2)
        (entry,) = store.runs("nightly")
        counts = (entry.cells, entry.failed_checks, entry.failed_cells, entry.regressions)
        assert entry.id == run_id and counts == (3, 1, 0, 2)
        back = store.records(run_id)
    keys = ("model", "scheme", "device", "status", "size_bytes", "metrics", "latency_ms", "latency_samples_ms",
            "verdicts")
    assert [{k: r[k] for k in keys} for r in back] == [{k: r[k] for k in keys} for r in records]


def test_recording_a_run_again_replaces_it(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as store:
        first = store.record(standard_cells(), info("2026-01-01T00:00:00+00:00"), None, 0)
        again = store.record(standard_cells()[:1], info("2026-01-01T00:00:00+00:00"), None, 0)
        assert first == again and len(store.runs("nightly")) == 1 and len(store.records(first)) == 1


def _run_ids(store: History, started_at: str) -> set[str]:
    """The runs the cells' baselines came from, by label prefix ('run #N')."""
    return {label.split(" (")[0] for label in store.baselines("nightly", None, started_at).labels.values()}


def test_baseline_is_the_previous_run_unless_one_is_pinned(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as store:
        ids = [store.record(standard_cells(), info(f"2026-01-0{day}T00:00:00+00:00"), None, 0) for day in (1, 2, 3)]
        store.record(standard_cells(), info("2026-01-02T00:00:00+00:00", suite="other"), None, 0)
        assert _run_ids(store, "2026-01-04T00:00:00+00:00") == {f"run #{ids[2]}"}
        assert _run_ids(store, "2026-01-03T00:00:00+00:00") == {f"run #{ids[1]}"}
        assert store.baselines("nightly", None, "2026-01-01T00:00:00+00:00").records == {}
        store.pin("nightly", ids[0])
        assert _run_ids(store, "2026-01-04T00:00:00+00:00") == {f"run #{ids[0]}"}
        store.pin("nightly", None)
        assert _run_ids(store, "2026-01-04T00:00:00+00:00") == {f"run #{ids[2]}"}
        with pytest.raises(HistoryError, match="not a run of 'other'"):
            store.pin("other", ids[0])


def _writer(path: str, writer: int, barrier) -> None:
    barrier.wait()
    with History(Path(path), timeout_s=60) as store:
        for run in range(RUNS_EACH):
            store.record(standard_cells(seed=run), info(f"2026-02-{writer + 1:02d}T00:00:{run:02d}+00:00"), None, 0)
            store.runs("nightly", limit=3)


def test_concurrent_writers_do_not_corrupt_the_store(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    processes = [context.Process(target=_writer, args=(str(path), w, barrier)) for w in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0] * WRITERS
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with History(path) as store:
        runs = store.runs("nightly")
        assert len(runs) == WRITERS * RUNS_EACH
        assert all(len(store.records(r.id)) == 3 for r in runs)


def test_a_corrupt_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    with pytest.raises(HistoryError, match=r"h\.sqlite cannot be used \(file is not a database\); move it aside"):
        History(path)


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(HistoryError, match="newer quantbench"):
        History(path)
