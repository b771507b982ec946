"""`bench report / history / compare`, registered on a Typer app the way harness.cli registers them."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harness import cli_reports
from harness.errors import HarnessError
from tests.report.runs import plain, standard_cells, write_run

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


# -- bench report re-judges (issue 20, item 10) ---------------------------------------------
NIGHTLY = """\
name: nightly
datasets:
  test: {kind: digits, split: test}
models:
  - {name: digits_cnn, builder: tutorial_cnn, input_shape: [8, 8, 1]}
task: {kind: classification, dataset: test}
calibration: {dataset: test, samples: 8}
schemes: [float32, int8, dynamic_range]
thresholds:
  defaults:
    top1: {max_abs_drop: 0.02}
    size_ratio: {max: 1.0}
"""


def judged_run(tmp_path: Path, records: list[dict], suite_text: str = NIGHTLY) -> Path:
    """A run of a suite file that exists and matches run.json's sha256 (unless `suite_text` differs)."""
    import hashlib

    suite = tmp_path / "nightly.yaml"
    tmp_path.mkdir(exist_ok=True)
    suite.write_text(NIGHTLY)
    run_dir = write_run(tmp_path, records, info={"suite_path": str(suite),
                                                 "suite_sha256": hashlib.sha256(NIGHTLY.encode()).hexdigest()})
    suite.write_text(suite_text)
    return run_dir


@pytest.mark.parametrize("top1", [-5.0, float("nan")])
def test_report_rejudges_a_doctored_metric_and_fails(tmp_path: Path, top1: float) -> None:
    records = standard_cells()
    records[2]["metrics"]["top1"] = top1  # dynamic_range; its recorded verdicts still say pass
    run_dir = judged_run(tmp_path, records)
    before = (run_dir / "results.jsonl").read_bytes()
    done = invoke("report", run_dir)
    assert done.exit_code == 1, done.output
    assert "FAIL: 1 cell(s) violate thresholds" in done.output
    assert "the checks of 1 cell(s) differ from results.jsonl's" in done.output
    assert "top1.max_abs_drop" in plain((run_dir / "summary.md").read_text())
    assert 'failures="1"' in (run_dir / "junit.xml").read_text()
    assert (run_dir / "results.jsonl").read_bytes() == before  # nothing recorded is rewritten


def test_report_says_when_it_cannot_rejudge_and_exits_on_the_recorded_checks(tmp_path: Path) -> None:
    run_dir = judged_run(tmp_path, standard_cells(top1_drop=0.1), suite_text=NIGHTLY + "# edited\n")
    done = invoke("report", run_dir)
    assert done.exit_code == 1, done.output  # the recorded dynamic_range top1.max_abs_drop failed
    assert "checks as recorded, not re-judged:" in done.output and "changed since the run" in done.output
    assert "not re-judged" in plain((run_dir / "summary.md").read_text())
    gone = judged_run(tmp_path / "other", standard_cells())
    (tmp_path / "other" / "nightly.yaml").unlink()
    done = invoke("report", gone)
    assert done.exit_code == 0 and "the suite file is unavailable" in done.output, done.output
    nameless = write_run(tmp_path / "nameless", standard_cells(), info={"suite_path": None})
    done = invoke("report", nameless)  # not "cannot read suite: Is a directory" (it read "" as ".")
    assert "not re-judged: run.json names no suite file" in done.output, done.output


def test_report_passes_a_run_that_still_passes(tmp_path: Path) -> None:
    done = invoke("report", judged_run(tmp_path, standard_cells()))
    assert done.exit_code == 0 and "PASS: 3 cells, every check passed" in done.output, done.output
    assert "re-judged" not in done.output
