"""results.jsonl survives crashes: cut-off lines are ignored, appends start on a fresh line."""

from __future__ import annotations

import json
from pathlib import Path

from harness.results import RESULTS, ResultsWriter, latest_run_dir, read_results, write_run_info


def rec(scheme: str, status: str = "ok") -> dict:
    return {"model": "m", "scheme": scheme, "device": "local", "status": status}


def test_append_and_read(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path)
    writer.append(rec("float32"))
    writer.append(rec("int8"))
    assert [r["scheme"] for r in read_results(tmp_path)] == ["float32", "int8"]


def test_truncated_last_line_is_ignored_and_repaired(tmp_path: Path) -> None:
    ResultsWriter(tmp_path).append(rec("float32"))
    with open(tmp_path / RESULTS, "a") as handle:
        handle.write(json.dumps(rec("int8"))[:20])  # killed mid-write
    assert [r["scheme"] for r in read_results(tmp_path)] == ["float32"]
    ResultsWriter(tmp_path).append(rec("int16x8"))
    assert [r["scheme"] for r in read_results(tmp_path)] == ["float32", "int16x8"]


def test_later_record_of_a_cell_wins(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path)
    writer.append(rec("int8", "failed"))
    writer.append(rec("int8", "ok"))
    assert [r["status"] for r in read_results(tmp_path)] == ["ok"]


def test_latest_run_dir(tmp_path: Path) -> None:
    assert latest_run_dir(tmp_path) is None
    for stamp in ("20260101T000000Z", "20260102T000000Z"):
        (tmp_path / stamp).mkdir()
        write_run_info(tmp_path / stamp, {"suite": "s"})
    (tmp_path / "20270101T000000Z").mkdir()  # no run.json: not a run
    assert latest_run_dir(tmp_path) == tmp_path / "20260102T000000Z"
