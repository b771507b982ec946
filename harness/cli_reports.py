"""`bench report`, `bench history` (a group: `bench history [list] SUITE`, `bench history import RUN_DIR...`) and
`bench compare`: typer command functions and the history group, registered in harness.cli."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from harness._console import plain_console
from harness.errors import HarnessError
from harness.history import DEFAULT_PATH, History, HistoryError, HistoryLocation, import_run, parse_location
from harness.record import CellRecord
from harness.results import RESULTS, read_results, read_run_info

if TYPE_CHECKING:  # the report modules load plotly/jinja2 lazily, keeping `bench --help` fast
    from harness.compare import Verdict
    from harness.config.schema import Suite
    from harness.report.publish import PublishResult

console = plain_console()


def say(*parts: str | tuple[str, str], target: Console | None = None) -> None:
    """Print plain strings and (text, style) pairs; no string is ever read as markup."""
    (target or console).print(Text.assemble(*parts), highlight=False, soft_wrap=True)


def print_published(result: PublishResult, final: bool = True) -> int:
    """Print where the reports went, any warnings and regressions, and (`final`) the run's verdict
    line; 1 if the run regressed, is incomplete or its history could not be used, else 0."""
    from harness.compare import comparison_phrase

    for message in result.warnings:
        say(("warning:", "yellow"), " ", message)
    names = "  ".join(str(p) for p in result.files)
    say(f"reports: {names}" + (f"   history: run #{result.history_id}" if result.history_id else ""))
    if result.regressions:
        assert result.comparison is not None
        say(("REGRESSED", "bold red"), f" vs {result.comparison.previous_label}:")
        for change in result.regressions:
            say(f"  {change.cell} {change.quantity}: {change.previous} → {change.current} "
                f"({change.detail}; rule {change.rule}; vs {result.comparison.compared_with.get(change.cell, '?')})")
    else:
        say(comparison_phrase(result.comparison))
    for step in result.steps:
        say(("latency step", "yellow"), f": {step.cell} ×{step.ratio:.2f} since {step.run} "
            f"(git {(step.git_commit or '?')[:12]}), and still there")
    if result.incomplete:
        say(("INCOMPLETE", "bold red"), f": {result.incomplete}; the reports say so")
    if final:
        say_verdict(result.verdict)
    if result.unrecorded:
        say(("HISTORY NOT USED", "bold red"), f": {result.unrecorded}; this run cannot say what changed since "
            "the runs it holds")
    return 1 if result.regressions or result.incomplete or result.unrecorded else 0


def say_verdict(verdict: Verdict, target: Console | None = None) -> None:
    """The run's verdict line (harness.compare.verdict_line), PASS in green or FAIL in red."""
    say((verdict.status, "bold green" if verdict.ok else "bold red"), f": {verdict.detail}", target=target)


def publish_after_run(run_dir: Path, history: HistoryLocation | None, suite: Suite) -> tuple[int, Verdict]:
    """For `bench run`: publish the finished run and print the outcome; 1 on a regression vs the
    earlier run, and the verdict line for `bench run` to print last."""
    from harness.compare import Policy
    from harness.report.publish import publish_run

    result = publish_run(run_dir, history, thresholds=suite.thresholds, policy=Policy.of(suite.regression))
    return print_published(result, final=False), result.verdict


HISTORY_HELP = "history store: a SQLite file, or a postgresql://USER@HOST/DB URL (a team's shared store)"


def report(
    run_dir: Annotated[Path, typer.Argument(help="run directory holding results.jsonl")],
    history: Annotated[str | None, typer.Option(help=f"{HISTORY_HELP}, to compare with, read trends from and "
                                                   "record the run in", show_default="none: no history")] = None,
) -> None:
    """Re-judge a run's cells with its suite's thresholds and re-render summary.md, report.html and junit.xml
    from its results.jsonl; exit 1 on a failed check, a failed cell or a regression, as `bench run`."""
    from harness.report.publish import publish_run

    if not (run_dir / RESULTS).is_file():
        raise HarnessError(f"{run_dir / RESULTS} not found: give a run directory (reports/<suite>/<time>)")
    result = publish_run(run_dir, parse_location(history) if history else None, rejudge=True)
    regressed = print_published(result, final=False)
    say_verdict(result.verdict)  # the one verdict line, built from the re-judged records (as bench run's)
    if result.failed_checks or result.failed_cells or regressed or not result.verdict.ok:
        raise typer.Exit(1)


class _HistoryGroup(typer.core.TyperGroup):
    """`bench history SUITE ...` is `bench history list SUITE ...`: a first word that names no
    subcommand is the suite of `list`."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:  # typer's own click types, not public
        if args and args[0] not in self.commands:
            args = ["list", *args]
        return super().resolve_command(ctx, args)


history_app = typer.Typer(
    cls=_HistoryGroup, add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    help="The run history: `bench history SUITE` lists a suite's runs (`list`); `import` records run folders.")


def _existing(db: str) -> History:
    """The history at `db` to read: a SQLite file must be there already (a published run or
    `bench history import` creates one); a PostgreSQL URL is connected to."""
    location = parse_location(db)
    if isinstance(location, Path) and not location.is_file():
        raise HarnessError(f"no history store at {location} (it is created by the first published run, "
                           "or by `bench history import`)")
    return History(location)


def history(
    suite: Annotated[str, typer.Argument(help="suite name, e.g. cnn")],
    db: Annotated[str, typer.Option("--history", "--db", help=HISTORY_HELP)] = str(DEFAULT_PATH),
    limit: Annotated[int, typer.Option(min=1, help="show the latest N runs")] = 20,
    pin: Annotated[int | None, typer.Option(help="compare later runs with run ID, not the previous run",
                                               show_default="the pin stays as it is")] = None,
    unpin: Annotated[bool, typer.Option("--unpin", help="compare with the previous run again",
                                        show_default="off")] = False,
) -> None:
    """List the recorded runs of a suite: time, git commit, suite hash, verdict counts (`bench history SUITE`
    for short)."""
    with _existing(db) as store:
        if pin is not None or unpin:
            store.pin(suite, None if unpin else pin)
        runs = store.runs(suite, limit=limit)
    for message in store.warnings:
        say(("warning:", "yellow"), " ", message)
    if not runs:
        raise HarnessError(f"{store.label} has no runs of {suite!r}")
    table = Table(title=Text(f"{suite}: {len(runs)} latest run(s) in {store.label}"), header_style="bold")
    files = len({r.suite_identity for r in runs}) > 1  # suite files that share this name: each its own baselines
    for column in ("id", "started", "git", "suite sha", "cells", "failed checks", "failed cells", "n/a",
                   "regressions", "run dir", *(["suite file"] if files else [])):
        table.add_column(column)
    for run in runs:
        cells = [f"{run.id}{' (pinned)' if run.pinned else ''}", run.started_at, (run.git_commit or "–")[:10],
                 (run.suite_sha256 or "–")[:10], f"{run.cells}{' (partial)' if run.partial else ''}",
                 run.failed_checks, run.failed_cells, run.na_cells,
                 "– (imported)" if run.regressions is None else run.regressions, run.run_dir or "–",
                 *([_suite_file(run.suite_identity, suite)] if files else [])]
        table.add_row(*(Text(str(c)) for c in cells))
    console.print(table)


def history_import(
    run_dirs: Annotated[list[Path], typer.Argument(help="finished run folders (each holding run.json and "
                                                        "results.jsonl), e.g. copied from other hosts")],
    db: Annotated[str, typer.Option("--history", "--db", help=HISTORY_HELP)] = str(DEFAULT_PATH),
) -> None:
    """Record run folders produced elsewhere in a history, keyed by the run id in their run.json: a run
    already there is kept (or replaced, when its results.jsonl changed), so there is one copy. A folder
    that is not a finished run is one error line and the others are still imported; exit 2 when any
    failed. Imported runs are not compared (regressions –)."""
    failed = 0
    errors = plain_console(stderr=True)
    with History(parse_location(db)) as store:
        for run_dir in run_dirs:
            try:
                done = import_run(store, run_dir)
            except HistoryError as exc:
                failed += 1
                say(("error:", "bold red"), " ", str(exc), target=errors)
                continue
            again = " (already there)" if done.again else ""
            say(f"{run_dir}: run #{done.history_id}, run id {done.run_id}, {done.cells} cell(s){again}")
    if failed:
        raise typer.Exit(2)


history_app.command("list")(history)
history_app.command("import")(history_import)


def _suite_file(identity: str | None, suite: str) -> str:
    """The suite file part of a suite identity (`name@path`); '–' for a run recorded without one."""
    return identity.removeprefix(f"{suite}@") if identity else "– (matched by name)"


def _load_run(reference: str, db: str, warnings: list[str],
              notes: list[str]) -> tuple[str, list[CellRecord], dict[str, Any]]:
    """(label, records, run info) of a run directory or a history run id (its whole records when its
    run folder is here unchanged: `History.best_records`); the damaged history rows skipped are added
    to `warnings`, what compact records lack to `notes`."""
    path = Path(reference)
    if (path / RESULTS).is_file():
        return f"run {path}", read_results(path), read_run_info(path)
    number = re.fullmatch(r"#?([0-9]+)", reference)
    if number:
        location = parse_location(db)
        if isinstance(location, Path) and not location.is_file():
            raise HarnessError(f"{reference}: no run directory there and no history store at {location}")
        with History(location) as store:
            entry = store.run(int(number[1]))
            records, note = store.best_records(entry.id)
        warnings += store.warnings
        notes += [note] if note else []
        return f"run {entry.label}", records, {"suite_path": None, "suite": entry.suite}
    raise HarnessError(f"{reference}: neither a run directory (with {RESULTS}) nor a history run id")


def compare(
    run_a: Annotated[str, typer.Argument(help="earlier run: run directory or history id")],
    run_b: Annotated[str, typer.Argument(help="later run: run directory or history id")],
    db: Annotated[str, typer.Option("--history", "--db", help=f"{HISTORY_HELP}, for ids")] = str(DEFAULT_PATH),
    suite_file: Annotated[Path | None, typer.Option(help="suite whose thresholds judge metric changes",
                                                       show_default="the later run's suite file")] = None,
) -> None:
    """Per-cell changes from RUN_A to RUN_B; exit code 1 when RUN_B regressed."""
    from harness.compare import DEFAULT_POLICY, Policy, compare_runs
    from harness.report.publish import comparison_markdown
    from harness.suite import load_suite
    from harness.verdicts import bounds_for

    skipped: list[str] = []
    notes: list[str] = []
    label_a, records_a, _ = _load_run(run_a, db, skipped, notes)
    _, records_b, info_b = _load_run(run_b, db, skipped, notes)
    recorded = info_b.get("suite_path")
    source = suite_file or (Path(recorded) if isinstance(recorded, str) and recorded else None)
    suite = load_suite(source).suite if source and source.is_file() else None
    bounds = partial(bounds_for, suite.thresholds) if suite is not None else None
    policy = Policy.of(suite.regression) if suite is not None else DEFAULT_POLICY  # the suite's, as bench run
    comparison = compare_runs(records_b, records_a, bounds, policy, previous_label=label_a)
    warnings = skipped + notes + ([] if suite else ["no suite file: metric changes are listed but not judged, and latency "
                                            "uses the default regression policy (give --suite-file)"])
    console.print(Markdown(comparison_markdown(comparison, warnings)))
    if skipped:
        say(("INCOMPLETE", "bold red"), f": {len(skipped)} damaged history row(s) skipped, so this comparison "
            "does not cover every cell", target=plain_console(stderr=True))
    raise typer.Exit(1 if comparison.regressions or skipped else 0)
