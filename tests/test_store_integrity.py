"""The run store and the history never lose, merge or misread a run (issue 20, integrity round 2).

Each test plays one hostile case through the real `bench` command (real runs where the case needs
one, `@pytest.mark.slow`) and asserts the exit code, the one-line message (no traceback) and that
nothing finished was lost; the history reader is also fuzzed with hypothesis.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import uuid
import zlib
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.compare import compare_runs
from harness.history import ARTIFACTS, EarlierRun, History, HistoryError, keep_artifacts
from harness.history._compact import decode
from harness.record import validate_record
from harness.report.markdown import escape_markdown
from harness.report.publish import earlier_run
from harness.results import read_run_info
from tests.conftest import run_bench
from tests.report.runs import standard_cells, write_run
from tests.test_integrity import write_suite

DAMAGES = {  # what a hostile tester wrote into one cell's compact record (zlib-compressed by _damage)
    "not json": "{not json",
    "a list": "[]",
    "no model": json.dumps({"scheme": "int8", "device": "local", "status": "ok"}),
    "size_bytes mistyped": None,  # filled in from a valid record: see _damage
}


def clean(done: subprocess.CompletedProcess, code: int) -> str:
    """stdout + stderr of a command that exited with `code` and printed no traceback."""
    output = done.stdout + done.stderr
    assert done.returncode == code, output
    assert "Traceback" not in output and "internal error" not in output, output
    return output


def one_line_error(done: subprocess.CompletedProcess, text: str) -> None:
    clean(done, 2)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and text in lines[0], done.stderr


def _damage(db: Path, run_id: int, kinds: list[str]) -> None:
    """Damage one cell of run `run_id` per kind, in the order they were recorded."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT rowid, compact FROM cells WHERE run_id = ? ORDER BY position", (run_id,)).fetchall()
        for (rowid, compact), kind in zip(rows, kinds, strict=False):
            text = DAMAGES[kind] or json.dumps({**decode(compact), "size_bytes": "big"})
            conn.execute("UPDATE cells SET compact = ? WHERE rowid = ?", (zlib.compress(text.encode()), rowid))


def _history_with(tmp_path: Path, runs: list[list[dict[str, Any]]], started: datetime | None = None) -> Path:
    """A history store holding these runs (a day apart, ending at `started`)."""
    db = tmp_path / "h.sqlite"
    started = started or datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    with History(db) as store:
        for index, records in enumerate(runs):
            at = (started - timedelta(days=len(runs) - 1 - index)).isoformat()
            store.record(records, {"suite": "nightly", "started_at": at, "run_id": f"night-{index}"}, None, 0)
    return db


# -- 2: the run key ------------------------------------------------------------------------------
@pytest.mark.slow
def test_every_run_is_its_own_history_row_whatever_its_out_folder(tmp_path: Path, session_cache: Path) -> None:
    suite, other = write_suite(tmp_path), write_suite(tmp_path / "second", name="second")
    history = str(tmp_path / "h.sqlite")
    ids = []
    for _ in range(3):  # three nights with `--out runs/out`, the folder removed between them
        shutil.rmtree(tmp_path / "runs", ignore_errors=True)
        clean(run_bench("run", str(suite), "--out", "runs/out", "--history", history, "--cache", str(session_cache),
                        cwd=tmp_path), 0)
        ids.append(read_run_info(tmp_path / "runs" / "out")["run_id"])
    clean(run_bench("run", str(other), "--out", "elsewhere/out", "--history", history, "--cache", str(session_cache),
                    cwd=tmp_path), 0)
    assert len(set(ids)) == 3 and "out" not in ids
    clean(run_bench("run", str(suite), "--resume", "--out", "runs/out", "--history", history, "--cache",
                    str(session_cache), cwd=tmp_path), 0)
    assert read_run_info(tmp_path / "runs" / "out")["run_id"] == ids[-1]  # a resumed run keeps its identity
    with History(Path(history)) as store:
        nights, seconds = store.runs("integrity"), store.runs("second")
        assert len(nights) == 3 and len(seconds) == 1  # the resume replaced its own row, nothing else
        assert all(len(store.records(run.id)) == 2 for run in [*nights, *seconds])
        assert {r["model"] for r in store.records(seconds[0].id)} == {"q[/x]"}
    assert "1 latest run(s)" in clean(run_bench("history", "second", "--history", history, cwd=tmp_path), 0)


def test_a_run_id_already_recorded_for_another_run_is_refused_not_overwritten(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as store:
        first = store.record(standard_cells(), {"suite": "a", "started_at": "2026-01-01T00:00:00", "run_id": "x"},
                             None, 0)
        with pytest.raises(HistoryError, match="run id 'x' is already run #1"):
            store.record(standard_cells(model="other"), {"suite": "b", "started_at": "2026-01-02T00:00:00",
                                                         "run_id": "x"}, None, 0)
        again = store.record(standard_cells(1), {"suite": "a", "started_at": "2026-01-01T00:00:00", "run_id": "x"},
                             None, 0)  # the same run published again replaces its own row
        assert again == first and store.runs("b") == [] and len(store.records(first)) == 3


# -- 3: a damaged history row --------------------------------------------------------------------
def _five_cells(seed: int) -> list[dict[str, Any]]:
    return standard_cells(seed) + standard_cells(seed + 10, model="digits_b")[:2]


def test_damaged_history_rows_only_warn_in_report_compare_and_history(tmp_path: Path) -> None:
    db = _history_with(tmp_path, [_five_cells(0), _five_cells(1)])
    _damage(db, 2, list(DAMAGES))  # four of run 2's five cells, one kind each
    run_dir = write_run(tmp_path / "reports", _five_cells(2), index=1)  # starts after both
    output = clean(run_bench("report", str(run_dir), "--history", str(db)), 0)
    damaged = ["digits_cnn/float32@local", "digits_cnn/int8@local", "digits_cnn/dynamic_range@local",
               "digits_b/float32@local"]
    warnings = [f"run #2 (run id night-1): cell {c} skipped: its record is damaged" for c in damaged]
    assert all(w in output for w in warnings) and "history: run #3" in output
    assert "Expecting property name" in output and "model: Field required" in output and "size_bytes" in output
    summary = (run_dir / "summary.md").read_text()
    assert all(escape_markdown(w) in summary for w in warnings)  # summary.md escapes user strings
    with History(db) as store:
        assert len(store.records(3)) == 5 and len(store.records(2)) == 1  # recorded; the damaged ones skipped
    compared = clean(run_bench("compare", "2", "3", "--history", str(db)), 1)
    assert "INCOMPLETE: 4 damaged history row(s) skipped" in compared
    assert "3 latest run(s)" in clean(run_bench("history", "nightly", "--history", str(db)), 0)


def test_a_damaged_run_row_is_skipped_with_a_warning_naming_it(tmp_path: Path) -> None:
    db = _history_with(tmp_path, [standard_cells(0), standard_cells(1)])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET cells = 'many', started_at = X'00' WHERE id = 2")
    output = clean(run_bench("history", "nightly", "--history", str(db)), 0)
    assert "run #2 skipped: its row is damaged" in output and "1 latest run(s)" in output
    one_line_error(run_bench("compare", "1", "2", "--history", str(db)), "run #2 skipped: its row is damaged")


def test_a_run_starting_now_is_not_blocked_by_damaged_rows_or_folders(tmp_path: Path) -> None:
    """What `bench run` reads at start: the earlier run to re-time models against."""
    db = _history_with(tmp_path, [standard_cells(0)], started=datetime.now(UTC) - timedelta(hours=1))
    _damage(db, 1, ["not json", "a list", "no model"])
    assert earlier_run(db, tmp_path / "reports" / "nightly" / "new", "nightly").records == {}
    old = write_run(tmp_path / "reports", standard_cells())
    (old / "results.jsonl").write_text('{"model": 1}\n')
    assert earlier_run(None, tmp_path / "reports" / "nightly" / "new", "nightly").records == {}


# -- 5: paths built from record content ----------------------------------------------------------
def test_report_keeps_only_files_whose_bytes_have_the_recorded_digest(tmp_path: Path) -> None:
    secret, model = tmp_path / "secret.txt", tmp_path / "model.tflite"
    secret.write_text("password")
    model.write_bytes(b"TFL3 model bytes")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    records = standard_cells()
    records[0]["artifact"] = {"path": str(secret), "sha256": "../../escaped"}  # artifacts/../../escaped.tflite
    records[1]["artifact"] = {"path": str(secret), "sha256": digest}  # a real digest, of other bytes
    records[2]["artifact"] = {"path": str(model), "sha256": digest}
    run_dir = write_run(tmp_path / "reports", records)
    db = tmp_path / "store" / "h.sqlite"
    output = clean(run_bench("report", str(run_dir), "--history", str(db)), 0)
    assert "model not kept for later A/B re-timing: digits_cnn/float32@local" in output
    assert f"no file with the recorded sha256 {digest}" in output
    assert sorted(p.name for p in (db.parent / ARTIFACTS).iterdir()) == [f"{digest}.tflite"]
    assert (db.parent / ARTIFACTS / f"{digest}.tflite").read_bytes() == model.read_bytes()
    assert not (tmp_path / "escaped.tflite").exists()
    with History(db) as store:
        assert len(store.records(1)) == 3  # the run itself is recorded whole


def test_no_path_is_built_from_a_recorded_value_that_is_not_a_digest(tmp_path: Path) -> None:
    earlier = EarlierRun("run #1", {}, tmp_path)
    bad = {"artifact": {"path": "x", "sha256": "../../x"}, "latency_setup": {"benchmark_binary": {"sha256": "A" * 64}}}
    assert earlier.kept(bad) is None and earlier.kept_binary(bad) is None  # type: ignore[arg-type]
    good = {"artifact": {"path": "x", "sha256": "a" * 64}}
    assert earlier.kept(good) == tmp_path / f"{'a' * 64}.tflite"  # type: ignore[arg-type]
    empty = hashlib.sha256(b"").hexdigest()
    never_ending = {"artifact": {"path": "/dev/zero", "sha256": "a" * 64},
                    "latency_setup": {"benchmark_binary": {"path": "/proc/self/environ", "sha256": empty}}}
    problems = keep_artifacts(tmp_path / "h.sqlite", [{**r, "model": "m", "scheme": "s", "device": "d", "status": "ok"}
                                                      for r in (bad, never_ending)])  # type: ignore[list-item]
    assert len(problems) == 4 and all("m/s@d" in p for p in problems) and not (tmp_path / ARTIFACTS).exists()


# -- 9: a damaged old run folder -----------------------------------------------------------------
@pytest.mark.slow
def test_a_damaged_old_run_folder_or_history_row_does_not_block_a_new_run(tmp_path: Path,
                                                                          session_cache: Path) -> None:
    suite = write_suite(tmp_path)
    old = tmp_path / "reports" / "integrity" / "20200101T000000Z-old"
    old.mkdir(parents=True)
    (old / "run.json").write_text(json.dumps({"suite": "integrity", "started_at": "2020-01-01T00:00:00+00:00"}))
    (old / "results.jsonl").write_text('{"model": "m", "scheme": "s", "device": "d", "status": 7}\n')
    damaged = (old / "results.jsonl").read_bytes()
    output = clean(run_bench("run", str(suite), "--no-history", "--cache", str(session_cache), cwd=tmp_path), 0)
    assert f"earlier run {Path('reports/integrity/20200101T000000Z-old')} skipped" in output
    assert "results.jsonl:1: status" in output and (old / "results.jsonl").read_bytes() == damaged
    db = tmp_path / "h.sqlite"  # a history whose latest run has damaged rows: the next run only warns
    with History(db) as store:
        cells = [{**r, "model": "q[/x]"} for r in standard_cells()]
        store.record(cells, {"suite": "integrity", "started_at": "2026-01-01T00:00:00+00:00", "run_id": "hostile"},
                     None, 0)
    _damage(db, 1, ["not json", "a list", "size_bytes mistyped"])
    output = clean(run_bench("run", str(suite), "--history", str(db), "--cache", str(session_cache),
                             cwd=tmp_path), 0)
    assert output.count("(run id hostile): cell q[/x]/") == 3 and "history: run #2" in output
    with History(db) as store:
        assert len(store.records(2)) == 2


# -- 19: numbers out of range --------------------------------------------------------------------
def test_out_of_range_run_ids_and_limits_are_one_line_errors(tmp_path: Path) -> None:
    db = str(_history_with(tmp_path, [standard_cells()]))
    one_line_error(run_bench("compare", "1", "99999999999999999999999", "--history", db),
                   "has no run #99999999999999999999999")
    one_line_error(run_bench("history", "nightly", "--history", db, "--pin", "99999999999999999999"),
                   "has no run #99999999999999999999")
    done = run_bench("history", "nightly", "--history", db, "--limit", "-5")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "--limit" in done.stderr
    assert "Invalid value for '--limit': Input should be greater than or equal to 1" in done.stderr
    assert "1 latest run(s)" in clean(run_bench("history", "nightly", "--history", db, "--limit",
                                                "99999999999999999999999"), 0)


# -- the history reader, fuzzed ------------------------------------------------------------------
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
                     max_leaves=12)
_SQL = (st.none() | st.integers(-2**63, 2**63 - 1) | st.floats() | _TEXT | st.binary(max_size=30)
        | _JSON.map(lambda v: json.dumps(v)))
_BASE = standard_cells()[1]
_FIELDS = sorted({*_BASE, "latency_ab", "artifact", "latency_setup", "weights", "device_numerics", "diagnosis"})
_NEAR = st.builds(lambda key, value: json.dumps({**_BASE, key: value}), st.sampled_from(_FIELDS), _JSON)
_CELL_COLUMNS = ("model", "scheme", "device", "status", "error", "size_bytes", "metrics", "verdicts",
                 "latency_samples_ms", "record", "compact")
_RUN_COLUMNS = ("started_at", "finished_at", "git_commit", "suite_sha256", "run_dir", "cells", "failed_checks",
                "pinned", "run_key", "suite_identity", "partial")
_NOT_NULL = {"model", "scheme", "device", "status", "metrics", "verdicts", "started_at", "cells", "failed_checks",
             "pinned", "run_key"}


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _history_with(tmp_path_factory.mktemp("fuzz"), [standard_cells()])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cell=st.fixed_dictionaries({}, optional={c: _SQL for c in _CELL_COLUMNS} | {"record": _SQL | _NEAR} | {
           "compact": _SQL | _NEAR.map(lambda text: zlib.compress(text.encode()))}),
       run=st.fixed_dictionaries({}, optional={c: _SQL for c in _RUN_COLUMNS}))
def test_the_history_reader_skips_any_damaged_row_with_a_warning(fuzz_store: Path, cell: dict[str, Any],
                                                                  run: dict[str, Any]) -> None:
    # a new file per example, its connection closed: a copy over a file whose WAL another example's
    # connection still held was read as "database disk image is malformed"
    db = fuzz_store.with_name(f"fuzzed-{uuid.uuid4().hex}.sqlite")
    shutil.copyfile(fuzz_store, db)
    with closing(sqlite3.connect(db)) as conn, conn:
        for table, values, where in (("cells", cell, "rowid = 2"), ("runs", run, "id = 1")):
            values = {k: v for k, v in values.items() if k not in _NOT_NULL or v is not None and v == v}  # NaN: NULL
            if values:
                conn.execute(f"UPDATE {table} SET {', '.join(f'{k} = ?' for k in values)} WHERE {where}",
                             list(values.values()))
    with History(db) as store:
        runs = store.runs("nightly", limit=30)
        records = store.records(1)
        store.baselines("nightly", None, "2027-01-01")
        assert len(records) + sum(": cell " in w for w in store.warnings) == 3 and len(records) >= 2
    assert len(runs) == 1 or any("run #1 skipped: its row is damaged" in w for w in store.warnings)
    for record in records:
        validate_record(record)
    assert all(w.startswith(f"history store {db}: run #1") for w in store.warnings)
    compare_runs(standard_cells(1), records, None)  # whatever was read is safe to compare
