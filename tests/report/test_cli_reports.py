"""`bench report / history / compare`, registered on a Typer app the way harness.cli registers them."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harness import cli_reports
from harness.errors import HarnessError
from tests.report.runs import standard_cells, write_run

app = typer.Typer()
app.command("report")(cli_reports.report)
app.command("history")(cli_reports.history)
app.command("compare")(cli_reports.compare)


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two published runs in one history store; the second is 10 % slower on int8."""
    history = tmp_path / "history.sqlite"
    first = write_run(tmp_path, standard_cells(0))
    second = write_run(tmp_path, standard_cells(50, slowdown=1.10), index=1)
    assert invoke("report", first, "--history", history).exit_code == 0
    done = invoke("report", second, "--history", history)
    assert done.exit_code == 1, done.output
    assert "REGRESSED vs run #1" in done.output and "digits_cnn/int8@local latency_ms" in done.output
    return first, second, history


def test_report_rerenders_from_results_alone(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, standard_cells())
    (run_dir / "run.json").unlink()
    done = invoke("report", run_dir)
    assert done.exit_code == 0, done.output
    assert "no earlier run to compare with" in done.output
    assert {p.name for p in run_dir.iterdir()} >= {"summary.md", "report.html", "junit.xml"}


def test_history_lists_runs_and_pins_a_baseline(two_runs: tuple[Path, Path, Path]) -> None:
    _, _, history = two_runs
    done = invoke("history", "nightly", "--db", history, "--pin", "1")
    assert done.exit_code == 0, done.output
    assert "1 (pinned)" in done.output and "2026-01-06T02:00:00+00:00" in done.output
    assert "0000000000" in done.output and "abababab" in done.output  # git commit, suite hash


def test_compare_by_directory_and_by_history_id(two_runs: tuple[Path, Path, Path]) -> None:
    first, second, history = two_runs
    for a, b in [(first, second), ("1", "2")]:
        done = invoke("compare", a, b, "--db", history)
        assert done.exit_code == 1, done.output
        assert "1 regression(s)" in done.output and "REGRESSED" in done.output
    assert invoke("compare", second, second, "--db", history).exit_code == 0


@pytest.mark.parametrize("args, message", [
    (("report", "nowhere"), "results.jsonl not found"),
    (("history", "nightly", "--db", "missing.sqlite"), "no history store at missing.sqlite"),
    (("compare", "nowhere", "7", "--db", "missing.sqlite"), "nowhere: neither a run directory"),
])
def test_user_errors_raise_harness_error(args: tuple[str, ...], message: str) -> None:
    done = invoke(*args)
    assert isinstance(done.exception, HarnessError) and message in str(done.exception)
