"""The history's contract, the same on both backends (each test runs on a SQLite file and on a real
PostgreSQL database): round trip, replace, baselines and pins, concurrent publishers, compact rows
that reach the whole record, damaged rows, and the `bench history` / `compare` / `history import`
commands."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import zlib
from contextlib import closing
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from harness.history import History, HistoryError, TrendCell, parse_location, trend_cells
from harness.history._compact import LIMIT
from harness.results import read_results
from tests.conftest import run_bench
from tests.report.runs import cell, standard_cells, write_run

WRITERS, RUNS_EACH = 2, 20
SAMPLE_FIELDS = ("model", "scheme", "device", "status", "size_bytes", "metrics", "latency_ms", "verdicts")


def info(started_at: str, suite: str = "nightly", run_id: str | None = None) -> dict:
    return {"suite": suite, "started_at": started_at, "git_commit": "c0ffee", "suite_sha256": "ab" * 32,
            "run_id": run_id or f"{suite}-{started_at}"}


def raw(location: str, sql: str, params: tuple = ()) -> list[tuple[Any, ...]]:
    """A statement on the store's own database, past the History API (to inspect or damage rows)."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            cursor = conn.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []
    with closing(sqlite3.connect(location)) as conn, conn:
        return conn.execute(sql, params).fetchall()


def test_records_round_trip_compactly_with_counts(store_location: str, tmp_path: Path) -> None:
    records = standard_cells(top1_drop=0.1)  # dynamic_range violates top1.max_abs_drop
    run_dir = write_run(tmp_path / "reports", records)
    with History(store_location) as store:
        run_id = store.record(read_results(run_dir), info("2026-01-01T00:00:00+00:00"), run_dir, regressions=2)
        (entry,) = store.runs("nightly")
        counts = (entry.cells, entry.failed_checks, entry.failed_cells, entry.regressions)
        assert entry.id == run_id and counts == (3, 1, 0, 2) and entry.run_dir == str(run_dir)
        back, whole = store.records(run_id), store.full_records(run_id)
    assert [{k: r[k] for k in SAMPLE_FIELDS} for r in back] == [{k: r[k] for k in SAMPLE_FIELDS} for r in records]
    assert all("latency_samples_ms" not in r for r in back)  # the compact record leaves the raw sample out
    assert [r["latency_samples_ms"] for r in whole] == [r["latency_samples_ms"] for r in records]
    sizes = [len(blob) for (blob,) in raw(store_location, "SELECT compact FROM cells")]
    assert len(sizes) == 3 and max(sizes) <= LIMIT


def test_recording_a_run_again_replaces_it(store_location: str) -> None:
    with History(store_location) as store:
        first = store.record(standard_cells(), info("2026-01-01T00:00:00+00:00"), None, 0)
        again = store.record(standard_cells()[:1], info("2026-01-01T00:00:00+00:00"), None, 0)
        assert first == again and len(store.runs("nightly")) == 1 and len(store.records(first)) == 1
        with pytest.raises(HistoryError, match="is already run #"):  # the same run id for another run
            store.record(standard_cells(), info("2026-01-02T00:00:00+00:00", run_id="nightly-2026-01-01T00:00:00+00:00"),
                         None, 0)


def _run_ids(store: History, started_at: str) -> set[str]:
    """The runs the cells' baselines came from, by label prefix ('run #N')."""
    return {label.split(" (")[0] for label in store.baselines("nightly", None, started_at).labels.values()}


def test_baseline_is_the_previous_run_unless_one_is_pinned(store_location: str) -> None:
    with History(store_location) as store:
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


def test_a_baseline_is_its_whole_record_while_its_run_folder_is_there_unchanged(store_location: str,
                                                                               tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "reports", standard_cells())
    with History(store_location) as store:
        store.record(read_results(run_dir), info("2026-01-01T00:00:00+00:00"), run_dir, 0)
        here = store.baselines("nightly", None, "2026-02-01")
        assert all(r.get("latency_samples_ms") for r in here.records.values())
        assert not [n for n in here.notes if "compact" in n]
        (run_dir / "results.jsonl").write_text((run_dir / "results.jsonl").read_text() + "\n")  # changed since
        changed = store.baselines("nightly", None, "2026-02-01")
    assert len(changed.records) == 3 and all("latency_samples_ms" not in r for r in changed.records.values())
    compact = [n for n in changed.notes if "compact" in n]
    assert compact == [f"run #1 is compared on the history's compact records (run #1: {run_dir}/results.jsonl "
                       "changed since the run was recorded (another sha256)): without its per-iteration latency "
                       "sample, latency is judged on repeat medians or paired A/B only"]


def _writer(location: str, writer: int, barrier: Any) -> None:
    barrier.wait()
    with History(location, timeout_s=120) as store:
        for run in range(RUNS_EACH):
            store.record(standard_cells(seed=run), info(f"2026-02-{writer + 1:02d}T00:00:{run:02d}+00:00"), None, 0)
            store.runs("nightly", limit=3)


def _race(store_location: str) -> None:
    """WRITERS processes publishing RUNS_EACH runs each into the store, started together at a barrier."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    processes = [context.Process(target=_writer, args=(store_location, w, barrier)) for w in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(600)
    assert [p.exitcode for p in processes] == [0] * WRITERS


def test_two_processes_publishing_at_once_lose_nothing(store_location: str) -> None:
    History(store_location).close()  # the schema first: both writers then race on runs only
    _race(store_location)
    if not store_location.startswith("postgresql://"):
        assert raw(store_location, "PRAGMA integrity_check") == [("ok",)]
        assert raw(store_location, "PRAGMA journal_mode") == [("wal",)]
    with History(store_location) as store:
        runs = store.runs("nightly")
        assert len(runs) == WRITERS * RUNS_EACH and len({r.id for r in runs}) == WRITERS * RUNS_EACH
        assert all(len(store.records(r.id)) == 3 for r in runs)


def test_two_processes_creating_a_new_store_at_once_both_succeed(store_location: str) -> None:
    _race(store_location)
    with History(store_location) as store:
        assert len(store.runs("nightly")) == WRITERS * RUNS_EACH


@pytest.mark.parametrize("damage", [b"not zlib", zlib.compress(b"{not json"), zlib.compress(b"[]"),
                                    zlib.compress(json.dumps({"scheme": "int8", "device": "local"}).encode())])
def test_a_damaged_compact_row_is_skipped_with_a_warning(store_location: str, damage: bytes) -> None:
    with History(store_location) as store:
        run_id = store.record(standard_cells(), info("2026-01-01T00:00:00+00:00"), None, 0)
    raw(store_location, "UPDATE cells SET compact = ? WHERE scheme = 'int8'", (damage,))
    with History(store_location) as store:
        records = store.records(run_id)
    assert [r["scheme"] for r in records] == ["float32", "dynamic_range"]
    assert len(store.warnings) == 1 and "cell digits_cnn/int8@local skipped: its record is damaged" in store.warnings[0]
    with History(store_location) as store:  # the trend read skips it the same way
        trend = store.trend(run_id)
    assert [c.scheme for c in trend] == ["float32", "dynamic_range"]
    assert len(store.warnings) == 1 and "cell digits_cnn/int8@local skipped: its record is damaged" in store.warnings[0]


def test_a_trend_reads_the_slim_part_of_each_cell_only(store_location: str) -> None:
    """`History.trend`: per cell its id, status, scheme, scheme kind, size, metrics and typical latency, the
    same as the whole records give, in the run's order; a failed cell and a +inf metric kept as they are."""
    records = [*standard_cells(), cell("digits_cnn", "int16x8", status="failed", error="RuntimeError: boom")]
    records[0]["metrics"]["snr_db"] = float("inf")
    records[2]["scheme_kind"] = "post-training-kind"
    with History(store_location) as store:
        run_id = store.record(records, info("2026-01-01T00:00:00+00:00"), None, 0)
        trend, whole = store.trend(run_id), store.records(run_id)
    assert trend == trend_cells(records) == trend_cells(whole) and store.warnings == []
    assert [f.name for f in fields(TrendCell)] == ["cell", "status", "scheme", "scheme_kind", "size_bytes", "metrics",
                                                   "latency_ms"]
    assert trend[0] == TrendCell("digits_cnn/float32@local", "ok", "float32", "float32", 4_000_000,
                                 {**records[0]["metrics"]}, records[0]["latency_ms"]["median"])
    assert trend[0].metrics["snr_db"] == float("inf") and trend[2].scheme_kind == "post-training-kind"
    assert (trend[3].status, trend[3].latency_ms, trend[3].metrics) == ("failed", None, {})


def test_a_trend_skips_a_cell_whose_trend_fields_are_damaged(store_location: str) -> None:
    with History(store_location) as store:
        run_id = store.record(standard_cells(), info("2026-01-01T00:00:00+00:00"), None, 0)
    damaged = {**standard_cells()[1], "metrics": {"top1": "high"}, "format_version": 3}
    raw(store_location, "UPDATE cells SET compact = ? WHERE scheme = 'int8'", (zlib.compress(json.dumps(damaged).encode()),))
    with History(store_location) as store:
        assert [c.scheme for c in store.trend(run_id)] == ["float32", "dynamic_range"]
    (warning,) = store.warnings
    assert "cell digits_cnn/int8@local skipped: its record is damaged (metrics.top1:" in warning


def test_a_store_from_a_newer_version_is_refused(store_location: str) -> None:
    History(store_location).close()
    if store_location.startswith("postgresql://"):
        raw(store_location, "UPDATE quantbench_schema SET version = 99")
    else:
        raw(store_location, "PRAGMA user_version = 99")
    with pytest.raises(HistoryError, match="newer quantbench"):
        History(store_location)


# -- the commands --------------------------------------------------------------------------------
def _shown(location: str) -> str:
    return str(parse_location(location))


def _ok(done: Any, code: int = 0) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == code and "Traceback" not in output, output
    assert "s3cret-pw" not in output
    return output


def test_history_compare_and_import_commands(store_location: str, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    runs = [write_run(reports, standard_cells(seed=i), index=i, info={"run_id": f"night-{i}"}) for i in range(2)]
    unfinished = write_run(reports, standard_cells(), index=2, info={"run_id": "night-2", "status": "interrupted"})
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    done = run_bench("history", "import", str(runs[0]), str(unfinished), str(empty), str(runs[1]),
                     "--history", store_location)
    output = _ok(done, 2)
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors == [f"error: {unfinished}: not a finished run (run.json says 'interrupted')",
                      f"error: {empty}: not a finished run (no run.json and results.jsonl there)"]
    assert f"{runs[0]}: run #1, run id night-0, 3 cell(s)" in output and f"{runs[1]}: run #2" in output
    again = _ok(run_bench("history", "import", *map(str, runs), "--history", store_location))
    assert again.count("(already there)") == 2
    impostor = write_run(tmp_path / "elsewhere", standard_cells(), index=5, info={"run_id": "night-0"})
    refused = run_bench("history", "import", str(impostor), "--history", store_location)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        f"error: {impostor}: not imported: history store {_shown(store_location)}: run id 'night-0' is already run #1 "
        "(nightly, started 2026-01-05T02:00:00+00:00), another run"]
    with History(store_location) as store:
        entries = store.runs("nightly")
        assert [(e.id, e.regressions) for e in entries] == [(2, None), (1, None)]  # one copy each, not compared
    listed = _ok(run_bench("history", "nightly", "--history", store_location))
    assert "2 latest run(s)" in listed and "– (imported)" in listed
    assert "2 latest run(s)" in _ok(run_bench("history", "list", "nightly", "--limit", "5", "--history",
                                              store_location))
    compared = _ok(run_bench("compare", "1", "2", "--history", store_location))
    assert "digits_cnn" in compared
    later = write_run(reports, standard_cells(seed=3), index=3, info={"run_id": "night-3"})
    reported = run_bench("report", str(later), "--history", store_location)  # a URL too: compared and recorded
    assert "history: run #3" in reported.stdout and "vs run" in reported.stdout, reported.stdout + reported.stderr
    assert "s3cret-pw" not in reported.stdout + reported.stderr


def test_bench_history_names_a_postgres_store_without_its_password(postgres_url: str) -> None:
    History(postgres_url).close()
    done = run_bench("history", "nightly", "--history", postgres_url)
    output = done.stdout + done.stderr
    assert done.returncode == 2 and "has no runs of 'nightly'" in output and "s3cret-pw" not in output
    assert "postgresql://***@/" in output


def test_a_corrupt_sqlite_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    with pytest.raises(HistoryError, match=r"h\.sqlite cannot be used \(file is not a database\); move it aside"):
        History(path)


def test_a_postgres_server_that_refuses_is_one_line_without_the_password(postgres: Any) -> None:
    wrong = postgres.url("postgres").replace("s3cret-pw", "wrong-pw-123")
    with pytest.raises(HistoryError) as caught:
        History(wrong)
    message = str(caught.value)
    assert "password authentication failed" in message and "wrong-pw-123" not in message
    assert message.startswith("history store postgresql://***@/postgres?host=") and "\n" not in message


def test_importing_a_published_run_keeps_its_row_until_its_results_change(store_location: str, tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "reports", standard_cells(), info={"run_id": "night-0"})
    with History(store_location) as store:
        published = store.record(read_results(run_dir), json.loads((run_dir / "run.json").read_text()), run_dir, 2)
    _ok(run_bench("history", "import", str(run_dir), "--history", store_location))
    with History(store_location) as store:
        assert store.run(published).regressions == 2  # the same results.jsonl: the published row stays
    results = run_dir / "results.jsonl"
    results.write_text("".join(results.read_text().splitlines(keepends=True)[:2]))  # changed since: 2 cells
    _ok(run_bench("history", "import", str(run_dir), "--history", store_location))
    with History(store_location) as store:
        (entry,) = store.runs("nightly")
        assert (entry.id, entry.regressions, entry.cells) == (published, None, 2)
