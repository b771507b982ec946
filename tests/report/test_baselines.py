"""The baseline is the same suite, per cell (issue 21): earlier runs match by suite identity (the
suite's `name:` and its file's resolved path), each cell is compared with the most recent earlier
run that measured it, and the one verdict line never contradicts the comparison. Runs are built
by hand (tests/report/runs.py): no model is trained."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness import cli, cli_reports
from harness.compare import NO_EARLIER_RUN, Change, Comparison, verdict_line
from harness.history import _CELLS, _INDEX, _RUNS_V2, History
from harness.report.publish import earlier_run, publish_run
from tests.report.runs import THRESHOLDS, standard_cells, write_run

FLOAT, INT8, DYNAMIC = (f"digits_cnn/{s}@local" for s in ("float32", "int8", "dynamic_range"))


def unescaped(summary: Path) -> str:
    """summary.md as it reads rendered: CommonMark backslash escapes (every user string has them) removed."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", summary.read_text())


def _run(reports: Path, records: list[dict], index: int, suite_file: Path, only: bool = False) -> Path:
    """A finished run of the suite named 'nightly' from `suite_file` (`only`: an `--only` run of these cells)."""
    argv = ["bench", "run", str(suite_file), *(["--only", "digits_cnn/int8"] if only else [])]
    return write_run(reports, records, index=index, info={
        "suite_path": str(suite_file), "argv": argv,
        "plan": [f"{r['model']}/{r['scheme']}@{r['device']}" for r in records]})


def _compared_with(run_dir: Path, history: Path | None) -> dict[str, str]:
    result = publish_run(run_dir, history, thresholds=THRESHOLDS)
    assert result.comparison is not None
    return {cell: label.split(" (")[0] for cell, label in result.comparison.compared_with.items()}


def test_a_partial_run_of_another_suite_file_with_the_same_name_is_never_the_baseline(tmp_path: Path) -> None:
    reports, history = tmp_path / "reports", tmp_path / "history.sqlite"
    ours, theirs = tmp_path / "suites" / "nightly.yaml", tmp_path / "elsewhere" / "nightly.yaml"
    publish_run(_run(reports, standard_cells(0), 0, ours), history, thresholds=THRESHOLDS)  # run #1
    other = standard_cells(9, top1_drop=0.3)[:2]  # another file's 2-cell --only run: far from ours
    publish_run(_run(reports, other, 1, theirs, only=True), history, thresholds=THRESHOLDS)  # run #2
    again = _run(reports, standard_cells(1), 2, ours)
    assert _compared_with(again, None) == dict.fromkeys([FLOAT, INT8, DYNAMIC], "run 20260105T020000Z")
    assert _compared_with(again, history) == dict.fromkeys([FLOAT, INT8, DYNAMIC], "run #1")
    with History(history) as store:
        identities = {e.id: e.suite_identity for e in store.runs("nightly")}
        assert identities[1] == f"nightly@{ours}" and identities[2] == f"nightly@{theirs}"
        assert {r["compared_with"].split(" (")[0] for r in store.records(3)} == {"run #1"}
    listed = CliRunner().invoke(app, ["history", "nightly", "--history", str(history)])
    assert listed.exit_code == 0 and "2 (partial)" in listed.output and "suite file" in listed.output, listed.output


def test_a_partial_only_run_of_the_same_suite_is_the_baseline_only_for_its_cells(tmp_path: Path) -> None:
    reports, history, suite = tmp_path / "reports", tmp_path / "history.sqlite", tmp_path / "nightly.yaml"
    publish_run(_run(reports, standard_cells(0), 0, suite), history, thresholds=THRESHOLDS)  # run #1
    partial = standard_cells(1)[:2]
    partial[1] = {**partial[1], "status": "failed", "error": "RuntimeError: boom"}  # int8 ran but did not measure
    result = publish_run(_run(reports, partial, 1, suite, only=True), history, thresholds=THRESHOLDS)  # run #2
    assert "recorded in history as a partial run (cells chosen with --only)" in " ".join(result.warnings)
    again = _run(reports, standard_cells(2), 2, suite)
    assert _compared_with(again, history) == {FLOAT: "run #2", INT8: "run #1", DYNAMIC: "run #1"}
    summary = unescaped(again / "summary.md")
    assert "## Compared with runs #1, #2: no regression" in summary
    assert "| digits_cnn/float32@local | run #2 (2026-01-06T02:00:00+00:00, partial) |" in summary
    cells = [FLOAT, INT8, DYNAMIC]  # what `bench run` re-times against: the same choice, per cell
    earlier = earlier_run(history, again, "nightly", suite, cells)
    assert {c: label.split(" (")[0] for c, label in earlier.labels.items()} == {
        FLOAT: "run #2", INT8: "run #1", DYNAMIC: "run #1"}


def test_a_pinned_partial_run_is_the_baseline_for_its_cells_and_the_others_have_none(tmp_path: Path) -> None:
    reports, history, suite = tmp_path / "reports", tmp_path / "history.sqlite", tmp_path / "nightly.yaml"
    publish_run(_run(reports, standard_cells(0), 0, suite), history, thresholds=THRESHOLDS)
    publish_run(_run(reports, standard_cells(1)[:2], 1, suite, only=True), history, thresholds=THRESHOLDS)
    with History(history) as store:
        store.pin("nightly", 2)
    again = _run(reports, standard_cells(2), 2, suite)
    result = publish_run(again, history, thresholds=THRESHOLDS)
    assert result.comparison is not None and result.comparison.unbaselined == [DYNAMIC]
    assert set(result.comparison.compared_with) == {FLOAT, INT8}
    assert result.verdict.text == ("PASS: 3 cells, every check passed · no regression vs run #2 "
                                   "(2026-01-06T02:00:00+00:00, pinned, partial) · 1 cell(s) with no earlier "
                                   "measurement to compare with")
    assert "| digits_cnn/dynamic_range@local | no earlier measurement |" in unescaped(again / "summary.md")


app = typer.Typer()
app.command("report")(cli_reports.report)
app.command("history")(cli_reports.history)


def test_the_verdict_line_with_no_earlier_run_says_so_everywhere(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_run(tmp_path, standard_cells())
    done = CliRunner().invoke(app, ["report", str(run_dir), "--history", str(tmp_path / "h.sqlite")])
    assert done.exit_code == 0, done.output
    lines = done.output.strip().splitlines()
    expected = f"PASS: 3 cells, every check passed · {NO_EARLIER_RUN}"
    assert lines[-1] == expected and lines[-2] == NO_EARLIER_RUN and "no regression" not in done.output
    assert f"**PASS**: 3 cells, every check passed · {NO_EARLIER_RUN}" in unescaped(run_dir / "summary.md")
    assert f'<div id="verdict" class="banner ok">{expected}</div>' in (run_dir / "report.html").read_text()
    verdict = publish_run(run_dir, None).verdict  # `bench run` prints the same line last
    with pytest.raises(typer.Exit):
        cli._verdict(SimpleNamespace(skipped=0, run_dir=run_dir, exit_code=0), 0, verdict)
    assert capsys.readouterr().out.strip().splitlines()[-1] == expected


_CHANGE = st.builds(lambda regressed: Change("m/s@d", "top1", 0.9, 0.8, "rule", "", regressed=regressed),
                    st.booleans())


@given(changes=st.lists(_CHANGE, max_size=3), compared=st.integers(0, 3), unbaselined=st.integers(0, 3),
       failed=st.booleans(), incomplete=st.sampled_from([None, "the run was interrupted"]))
def test_the_verdict_line_follows_from_the_facts(changes: list[Change], compared: int, unbaselined: int,
                                                 failed: bool, incomplete: str | None) -> None:
    comparison = Comparison("run #4", changes=changes if compared else [],
                            compared_with={f"c{i}": "run #4" for i in range(compared)},
                            unbaselined=[f"n{i}" for i in range(unbaselined)])
    records = standard_cells()
    records[0]["status"] = "failed" if failed else "ok"
    text = verdict_line(records, comparison, incomplete).text
    regressions = sum(c.regressed for c in comparison.changes)
    assert (NO_EARLIER_RUN in text) == (compared == 0)
    assert ("no regression vs run #4" in text) == (compared > 0 and regressions == 0)
    assert text.startswith("PASS") == (not failed and not incomplete and not regressions)
    assert (f"{unbaselined} cell(s) with no earlier measurement" in text) == (compared > 0 and unbaselined > 0)


def test_a_schema_2_store_gets_identities_from_run_json_and_older_rows_match_by_name(tmp_path: Path) -> None:
    db, suite = tmp_path / "h.sqlite", tmp_path / "nightly.yaml"
    with sqlite3.connect(db) as conn:
        for statement in (_RUNS_V2, _CELLS, _INDEX):
            conn.execute(statement)
        for run_id, day, info in ((1, 1, {"suite_path": str(suite)}), (2, 2, {})):
            conn.execute("INSERT INTO runs (id, suite, run_key, started_at, cells, failed_checks, failed_cells,"
                         " na_cells, regressions, recorded_at, info) VALUES (?, 'nightly', ?, ?, 3, 0, 0, 0, 0, '', ?)",
                         (run_id, f"k{run_id}", f"2026-01-0{day}T00:00:00+00:00", json.dumps(info)))
            records = standard_cells() if run_id == 1 else standard_cells()[:1]
            conn.executemany("INSERT INTO cells (run_id, model, scheme, device, status, metrics, verdicts, record)"
                             " VALUES (?, ?, ?, ?, 'ok', '{}', '[]', ?)",
                             [(run_id, r["model"], r["scheme"], r["device"], json.dumps(r)) for r in records])
        conn.execute("PRAGMA user_version = 2")
    with History(db) as store:
        assert [(e.id, e.suite_identity) for e in store.runs("nightly")] == [(2, None), (1, f"nightly@{suite}")]
        chosen = store.baselines("nightly", f"nightly@{suite}", "2026-01-03T00:00:00+00:00")
        assert {c: label.split(" (")[0] for c, label in chosen.labels.items()} == {
            FLOAT: "run #2", INT8: "run #1", DYNAMIC: "run #1"}
        assert chosen.notes == ["baseline run(s) #2 matched by suite name only: they were recorded without a "
                                "suite file path (before suite identities)"]
        other = store.baselines("nightly", "nightly@/another/nightly.yaml", "2027-01-01")
        assert other.labels == {FLOAT: "run #2 (2026-01-02T00:00:00+00:00)"}  # only the row without identity


def test_an_interrupted_run_is_recorded_as_partial_and_is_the_baseline_for_its_finished_cells(tmp_path: Path) -> None:
    reports, history, suite = tmp_path / "reports", tmp_path / "history.sqlite", tmp_path / "nightly.yaml"
    publish_run(_run(reports, standard_cells(0), 0, suite), history, thresholds=THRESHOLDS)  # run #1
    stopped = _run(reports, standard_cells(1)[:1], 1, suite)
    info = json.loads((stopped / "run.json").read_text())
    (stopped / "run.json").write_text(json.dumps({**info, "status": "interrupted", "plan": [FLOAT, INT8, DYNAMIC]}))
    result = publish_run(stopped, history, thresholds=THRESHOLDS)  # run #2: `bench report --history` of it
    assert result.verdict.text.startswith("FAIL: INCOMPLETE (the run was interrupted; 2 of 3 planned cell(s) have "
                                          "no result)") and result.history_id == 2
    with History(history) as store:
        assert store.run(2).partial == "the run was interrupted; 2 of 3 planned cell(s) have no result"
    again = _run(reports, standard_cells(2), 2, suite)
    assert _compared_with(again, history) == {FLOAT: "run #2", INT8: "run #1", DYNAMIC: "run #1"}
