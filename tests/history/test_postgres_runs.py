"""Real runs published into a PostgreSQL history (`bench run --history postgresql://...`): compared
with each other through it, listed and compared by id, imported into SQLite too, every cell's row
within the bound, and the URL's password in no output, report or run.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.history import History
from harness.history._compact import LIMIT
from harness.results import read_run_info
from tests.conftest import run_bench
from tests.history.conftest import PASSWORD
from tests.history.test_contract import raw
from tests.test_integrity import write_suite

ROW_LIMIT = 1536  # issue 25: at most 1.5 KB per cell and run


def _ok(done, code: int = 0) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == code and "Traceback" not in output, output
    assert PASSWORD not in output
    return output


@pytest.mark.slow
def test_bench_run_history_compare_and_import_against_postgres(tmp_path: Path, session_cache: Path,
                                                              postgres_url: str) -> None:
    suite = write_suite(tmp_path)
    for night in ("one", "two"):
        _ok(run_bench("run", str(suite), "--out", f"runs/{night}", "--history", postgres_url, "--cache",
                      str(session_cache), cwd=tmp_path))
    folders = [tmp_path / "runs" / night for night in ("one", "two")]
    for folder in folders:
        assert not [f for f in folder.rglob("*") if f.is_file() and PASSWORD.encode() in f.read_bytes()]
    assert "postgresql://***@/" in " ".join(read_run_info(folders[1])["argv"])
    with History(postgres_url) as store:
        runs = store.runs("integrity")
        assert [r.run_dir for r in runs] == [str(f.resolve()) for f in reversed(folders)]
        assert runs[0].regressions == 0 and store.best_records(runs[0].id)[1] is None  # whole records reached
        rows = raw(postgres_url, "SELECT length(compact), pg_column_size(cells.*) FROM cells")
    assert len(rows) == 4 and all(blob <= LIMIT and row <= ROW_LIMIT for blob, row in rows), rows
    summary = (folders[1] / "summary.md").read_text()
    assert "compared with" in summary and f"#{runs[1].id}" in summary  # night two vs night one, through PostgreSQL
    listed = _ok(run_bench("history", "integrity", "--history", postgres_url, cwd=tmp_path))
    assert "2 latest run(s) in postgresql://***@/" in listed
    _ok(run_bench("compare", str(runs[1].id), str(runs[0].id), "--history", postgres_url, cwd=tmp_path))
    local = tmp_path / "local.sqlite"
    for _ in range(2):  # the same folders imported twice: one copy
        _ok(run_bench("history", "import", *map(str, folders), "--history", str(local), cwd=tmp_path))
    with History(local) as store:
        assert len(store.runs("integrity")) == 2
    assert all(blob <= LIMIT for (blob,) in raw(str(local), "SELECT length(compact) FROM cells"))
