"""Publish a finished run: summary.md, report.html, junit.xml, the history store, and the
comparison with earlier runs of the same suite (the same suite identity), cell by cell: each cell
against the most recent earlier run that measured it, or against the pinned run.

The run's own files are always written; a history store that cannot be used only adds a warning
(and the previous run directory on disk stands in for it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from harness.compare import (
    DEFAULT_POLICY,
    NO_EARLIER_RUN,
    Change,
    Comparison,
    Policy,
    Step,
    TrendPoint,
    Verdict,
    compare_runs,
    latency_steps,
    verdict_line,
)
from harness.config.schema import Suite, Thresholds
from harness.errors import HarnessError
from harness.history import (
    EarlierRun,
    History,
    HistoryError,
    HistoryLocation,
    artifacts_folder,
    identity_of,
    keep_artifacts_in,
    selected_cells,
)
from harness.record import CellRecord, RecordError, record_id, validate_run_info
from harness.report.charts import TrendRun
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.markdown import escape_markdown as md
from harness.report.summary import render_summary
from harness.results import RESULTS, RUN_INFO, incompleteness, read_results, read_run_info, utc_now, write_atomic
from harness.verdicts import bounds_for, judge

TREND_RUNS = 30  # earlier runs drawn in the trend charts


@dataclass
class PublishResult:
    """What publishing wrote and found."""

    run_dir: Path
    files: list[Path]
    comparison: Comparison | None
    history_id: int | None
    warnings: list[str] = field(default_factory=list)
    incomplete: str | None = None  # why the records are not the whole run
    unrecorded: str | None = None  # why the configured history could not be used (read or written): fails the run
    steps: list[Step] = field(default_factory=list)  # lasting latency steps across the history window
    records: list[CellRecord] = field(default_factory=list)  # as reported (re-judged when they were)
    verdict: Verdict = Verdict(False, "not judged")  # the run's one-line verdict (console, summary.md, report.html)

    @property
    def regressions(self) -> list[Change]:
        return self.comparison.regressions if self.comparison else []

    @property
    def failed_checks(self) -> int:
        return sum(1 for r in self.records for v in r.get("verdicts") or [] if not v["pass"])

    @property
    def failed_cells(self) -> int:
        return sum(1 for r in self.records if r["status"] == "failed")


def publish_run(run_dir: Path, history_path: HistoryLocation | None, *, thresholds: Thresholds | None = None,
                policy: Policy | None = None, rejudge: bool = False) -> PublishResult:
    """Write the run's reports, compare it with the earlier run and record it in history (unless None).

    `thresholds` judge metric changes vs the earlier run and `policy` latency and size changes;
    without `thresholds`, both come from the suite file named in run.json, when it can still be read.
    `rejudge` (bench report): every cell's checks are recomputed with the suite's thresholds when
    run.json's suite file is there unchanged (its sha256); a warning says when they cannot be.
    """
    records = read_results(run_dir)
    if not records:
        raise HarnessError(f"{run_dir}: no records in {RESULTS}, nothing to report")
    run_info = _run_info(run_dir)
    warnings: list[str] = []
    if rejudge:
        records, thresholds, policy = _rejudged(records, run_info, warnings)
    history_problems: list[str] = []
    store = _open_history(history_path, warnings, history_problems)
    try:
        previous, trend, points = _earlier_runs(store, run_dir, run_info, warnings, [record_id(r) for r in records],
                                                history_problems)
        comparison = None
        if thresholds is None and (previous.records or points):
            suite = _suite(run_info, warnings)
            thresholds = suite.thresholds if suite is not None else None
            if policy is None and suite is not None:
                policy = Policy.of(suite.regression)
        policy = policy or DEFAULT_POLICY
        if previous.records:
            bounds = partial(bounds_for, thresholds) if thresholds is not None else None
            comparison = compare_runs(records, list(previous.records.values()), bounds, policy, previous.label,
                                      labels=previous.labels)
        this_run = TrendPoint.of("this run", run_info.get("git_commit"), records)
        trend.append((run_info["started_at"], this_run.cells))
        steps = latency_steps([*points, this_run], policy)
        incomplete = incompleteness(records, run_info)
        unrecorded = history_problems[0] if history_problems else None
        verdict = verdict_line(records, comparison, incomplete, unrecorded)
        files = _write_reports(run_dir, records, run_info, comparison, trend, warnings, steps, verdict)
        history_id = _record(store, records, run_info, run_dir, comparison, incomplete, warnings, history_problems)
        if history_problems and unrecorded is None:  # the write failed after the reports: they must say so
            unrecorded = history_problems[0]
            verdict = verdict_line(records, comparison, incomplete, unrecorded)
            files = _write_reports(run_dir, records, run_info, comparison, trend, warnings, steps, verdict)
    finally:
        if store is not None:
            store.close()
    return PublishResult(run_dir, files, comparison, history_id, warnings, incomplete, unrecorded, steps, records,
                         verdict)


def _record(store: History | None, records: list[CellRecord], run_info: dict[str, Any], run_dir: Path,
            comparison: Comparison | None, incomplete: str | None, warnings: list[str],
            problems: list[str]) -> int | None:
    """Record the run in history, each cell with the run it was compared with (`compared_with`); a
    partial run is recorded as such, a baseline only for the cells it measured."""
    if store is None:
        return None
    compared = comparison.compared_with if comparison else {}
    kept: list[CellRecord] = [{**r, "compared_with": compared.get(record_id(r))} for r in records]
    partial_run = incomplete or selected_cells(run_info)
    if partial_run:
        warnings.append(f"recorded in history as a partial run ({partial_run}): a baseline only for the cells "
                        f"it measured")
    try:
        history_id = store.record(kept, run_info, run_dir.resolve(), len(comparison.regressions) if comparison else 0,
                                  partial=partial_run)
    except HistoryError as exc:
        warnings.append(f"{exc}: this run was not recorded")
        problems.append(str(exc))
        return None
    warnings += [f"model not kept for later A/B re-timing: {p}" for p in keep_artifacts_in(store.artifacts, records)]
    return history_id


def earlier_run(history_path: HistoryLocation | None, run_dir: Path, suite: str, suite_path: Path | None = None,
                cells: list[str] | None = None) -> EarlierRun:
    """Each cell's baseline for a run starting now (as `publish_run` will choose it), for the runner
    to re-time its models; empty when there is none. A resumed run (run.json in `run_dir`) keeps its
    start time, so its own earlier publication is never its baseline."""
    warnings: list[str] = []
    store = _open_history(history_path, warnings)
    info = read_run_info(run_dir)
    run_info = {"suite": suite, "suite_path": str(suite_path.resolve()) if suite_path else None,
                "started_at": info.get("started_at") or utc_now(precise=True)}
    try:
        previous, _, _ = _earlier_runs(store, run_dir, run_info, warnings, cells, with_trend=False)
    finally:
        if store is not None:
            store.close()
    previous.artifacts = artifacts_folder(history_path) if history_path is not None else None
    return previous


def _run_info(run_dir: Path) -> dict[str, Any]:
    """run.json (checked: a mistyped field is a one-line error), with the suite name and start
    time filled in when run.json is missing."""
    info = read_run_info(run_dir)
    info.setdefault("suite", run_dir.parent.name)
    if not info.get("started_at"):
        mtime = (run_dir / RESULTS).stat().st_mtime
        info["started_at"] = datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")
    try:
        return dict(validate_run_info(info))
    except RecordError as exc:
        raise HarnessError(f"{run_dir / RUN_INFO}: {exc}") from None


def _open_history(path: HistoryLocation | None, warnings: list[str], problems: list[str] | None = None
                  ) -> History | None:
    """The history store, or None (no history asked for, or it cannot be used: a warning, and the reason in
    `problems`, which fails a published run)."""
    if path is None:
        return None
    try:
        return History(path)
    except HistoryError as exc:
        warnings.append(f"{exc}. The run's own files are written; it is not recorded in history.")
        if problems is not None:
            problems.append(str(exc))
        return None


def _earlier_runs(store: History | None, run_dir: Path, run_info: dict[str, Any], warnings: list[str],
                  cells: list[str] | None, problems: list[str] | None = None, *, with_trend: bool = True
                  ) -> tuple[EarlierRun, list[TrendRun], list[TrendPoint]]:
    """Each cell's baseline among the earlier runs of the same suite identity (history's, else the
    sibling run directories'), and (`with_trend`) the trend runs, oldest first, for the charts and step
    detection: each run's cells in their slim form (`History.trend`), read one run at a time."""
    suite, started, identity = run_info["suite"], run_info["started_at"], identity_of(run_info)
    if store is not None:
        try:
            previous = store.baselines(suite, identity, started, cells)
            entries = list(reversed(store.same_suite(suite, identity, before=started)[:TREND_RUNS]))
            drawn = entries if with_trend else []
            points = [TrendPoint(f"run {e.label}", e.git_commit, store.trend(e.id)) for e in drawn]
            trend = [(e.started_at, p.cells) for e, p in zip(drawn, points, strict=True)]
            warnings += store.warnings + previous.notes  # damaged rows, skipped; runs matched by name only
            if not entries:  # a history that starts now: the run directories on disk stand in for it
                previous = _previous_run_dirs(run_dir, run_info, warnings, cells)
            return previous, trend, points
        except HistoryError as exc:
            warnings.append(f"{exc}. Compared with the previous run directories instead.")
            if problems is not None:
                problems.append(str(exc))
    return _previous_run_dirs(run_dir, run_info, warnings, cells), [], []


def _previous_run_dirs(run_dir: Path, run_info: dict[str, Any], warnings: list[str],
                       cells: list[str] | None) -> EarlierRun:
    """Each cell's baseline among the sibling run directories of the same suite identity that
    started before this run, newest first (the record of a cell it measured, status ok); a damaged
    one is skipped with a warning naming it."""
    chosen: dict[str, CellRecord] = {}
    labels: dict[str, str] = {}
    for sibling in _sibling_runs(run_dir, run_info):
        try:
            records = read_results(sibling)
        except HarnessError as exc:
            warnings.append(f"earlier run {sibling} skipped: {exc}")
            continue
        for record in records:
            cell = record_id(record)
            if record["status"] == "ok" and cell not in chosen and (cells is None or cell in cells):
                chosen[cell], labels[cell] = record, f"run {sibling.name}"
        if cells is not None and chosen.keys() >= set(cells):
            break
    used = list(dict.fromkeys(labels.values()))
    label = used[0] if len(used) == 1 else "runs " + ", ".join(u.removeprefix("run ") for u in used)
    return EarlierRun(label if used else "", chosen, labels=labels)


def _sibling_runs(run_dir: Path, run_info: dict[str, Any]) -> list[Path]:
    """The sibling run directories of the same suite identity that started before this run, newest
    first (one whose run.json names no suite file, or this run's, matches by suite name)."""
    identity = identity_of(run_info)
    candidates = []
    for sibling in run_dir.parent.iterdir() if run_dir.parent.is_dir() else []:
        if sibling.resolve() == run_dir.resolve() or not (sibling / RUN_INFO).exists():
            continue
        info = read_run_info(sibling)
        same = info.get("suite") == run_info["suite"] and identity in (None, _identity(info) or identity)
        if same and str(info.get("started_at", "")) < run_info["started_at"]:
            candidates.append((str(info.get("started_at")), sibling))
    return [sibling for _, sibling in sorted(candidates, reverse=True)]


def _identity(info: dict[str, Any]) -> str | None:
    try:
        return identity_of(info)
    except (KeyError, TypeError):
        return None


def _rejudged(records: list[CellRecord], run_info: dict[str, Any], warnings: list[str]
              ) -> tuple[list[CellRecord], Thresholds | None, Policy | None]:
    """The records with their checks recomputed by the run's suite file, and its thresholds and
    policy; the records as recorded (and a warning saying why) when the file is gone or changed."""
    from harness.suite import load_suite

    path, recorded = run_info.get("suite_path"), run_info.get("suite_sha256")
    if not path:
        warnings.append(f"checks as recorded, not re-judged: {RUN_INFO} names no suite file")
        return records, None, None
    try:
        loaded = load_suite(path)
    except HarnessError as exc:
        warnings.append(f"checks as recorded, not re-judged: the suite file is unavailable ({exc})")
        return records, None, None
    if loaded.sha256 != recorded:
        warnings.append(f"checks as recorded, not re-judged: {path} changed since the run (sha256 "
                        f"{loaded.sha256[:12]}, run.json: {str(recorded)[:12] or 'none'})")
        return records, None, None
    judged = judge(records, loaded.suite.thresholds)
    changed = sum(1 for old, new in zip(records, judged, strict=True) if old.get("verdicts") != new["verdicts"])
    if changed:
        warnings.append(f"re-judged with {path}: the checks of {changed} cell(s) differ from {RESULTS}'s; "
                        "the reports show the re-judged ones")
    return judged, loaded.suite.thresholds, Policy.of(loaded.suite.regression)


def _suite(run_info: dict[str, Any], warnings: list[str]) -> Suite | None:
    """The run's suite file, for its thresholds and regression policy (None, with a warning, if unreadable)."""
    from harness.suite import load_suite

    why = f"{RUN_INFO} names no suite file"
    try:
        if run_info.get("suite_path"):
            return load_suite(run_info["suite_path"]).suite
    except HarnessError as exc:
        why = f"the suite file is unavailable ({exc})"
    warnings.append(f"metric changes vs the earlier run are listed but not judged, and latency uses the default "
                    f"policy: {why}")
    return None


def _write_reports(run_dir: Path, records: list[CellRecord], run_info: dict[str, Any],
                   comparison: Comparison | None, trend: list[TrendRun], warnings: list[str],
                   steps: list[Step], verdict: Verdict) -> list[Path]:
    outputs = {
        "summary.md": bounded_summary(render_summary(records, run_info, f"**{verdict.status}**: {md(verdict.detail)}",
                                                     comparison) + comparison_markdown(comparison, warnings)
                                      + steps_markdown(steps)),
        "report.html": render_html(records, run_info, comparison, trend, warnings, verdict=verdict),
        "junit.xml": render_junit(records, run_info, comparison),
    }
    files = []
    for name, text in outputs.items():
        write_atomic(run_dir / name, text)
        files.append(run_dir / name)
    return files


SUMMARY_BYTES = 1 << 20  # summary.md's bound (GitHub shows a step summary up to 1 MiB)
LISTED = 100  # rows of a summary.md table of changes, steps or baselines; beyond, the first ones and a count


def bounded_summary(text: str, limit: int = SUMMARY_BYTES) -> str:
    """summary.md within `limit` bytes: whole lines up to where the last line says it was cut (the sections are
    bounded already; only very long user strings, such as warnings, can reach this)."""
    if len(text.encode("utf-8")) <= limit:
        return text
    note = "\n\n(summary.md cut here at its 1 MiB bound: the whole report is report.html beside it)\n"
    head = text.encode("utf-8")[:limit - len(note.encode("utf-8"))].decode("utf-8", errors="ignore")
    return head[:head.rfind("\n")] + note


def _listed(lines: list[str], what: str) -> list[str]:
    """Table rows cut to LISTED, the count of the rest on a line after the table."""
    if len(lines) <= LISTED:
        return lines
    return [*lines[:LISTED], "", f"and {len(lines) - LISTED} more {what}: in report.html"]


def _number(value: float | str | None) -> str:
    return f"{value:.4g}" if isinstance(value, float) else md(str(value))


def steps_markdown(steps: list[Step]) -> str:
    """The summary.md section on lasting latency steps across the history window ("" without any)."""
    if not steps:
        return ""
    lines = ["", "## Latency steps across the recent runs", "",
             "| cell | started at | git commit | before ms | after ms | × |", "|---|---|---|---|---|---|"]
    lines += _listed([f"| {md(s.cell)} | {md(s.run)} | {md((s.git_commit or '–')[:12])} | {s.before:.4g} | "
                      f"{s.after:.4g} | {s.ratio:.2f} |" for s in steps], "latency step(s)")
    return "\n".join(lines) + "\n"


def comparison_markdown(comparison: Comparison | None, warnings: list[str]) -> str:
    """The summary.md section on the earlier runs (and any warnings), starting with a blank line."""
    lines = [""]
    if comparison is None or not comparison.compared_with:
        lines += ["## Compared with an earlier run", "", "No earlier run of this suite (this suite file: its "
                  "name and path) measured any of this run's cells: "
                  f"{NO_EARLIER_RUN}."]
    else:
        lines += [f"## Compared with {md(comparison.previous_label)}: {_found(comparison)}", "",
                  f"Latency: a changed model is re-timed beside the earlier one (paired A/B; a regression needs the "
                  f"interval above ×{comparison.policy.min_paired_ratio:g}); across runs, a one-sided Welch t-test on "
                  f"log repeat medians (with one repeat, Mann–Whitney U on per-iteration samples) needs "
                  f"p < {comparison.policy.alpha:g} and a ratio "
                  f"≥ {comparison.policy.min_latency_ratio:g}.", ""]
        lines += _changes_table(comparison) + _baselines_table(comparison)
        if comparison.missing_cells:
            missing = comparison.missing_cells
            lines += ["", "No longer run: " + ", ".join(md(c) for c in missing[:LISTED])
                      + (f" and {len(missing) - LISTED} more" if len(missing) > LISTED else "")]
    lines += [f"\n> warning: {md(w)}" for w in warnings[:LISTED]]
    lines += [f"\n> and {len(warnings) - LISTED} more warning(s): in report.html"] if len(warnings) > LISTED else []
    return "\n".join(lines) + "\n"


def _found(comparison: Comparison) -> str:
    count = len(comparison.regressions)
    text = f"**{count} regression(s)**" if count else "no regression"
    if comparison.unbaselined:
        text += f" · {len(comparison.unbaselined)} cell(s) with no earlier measurement to compare with"
    return text


def _changes_table(comparison: Comparison) -> list[str]:
    ordered = sorted((c for c in comparison.changes if c.shown), key=lambda c: (not c.regressed, c.cell))
    if not ordered:
        return []
    rows = []
    for change in ordered:
        verdict_text = "**REGRESSED**" if change.regressed else "improved" if change.improved else "ok"
        rows.append(f"| {md(change.cell)} | {md(change.quantity)} | {_number(change.previous)} | "
                    f"{_number(change.current)} | {md(change.detail)} | {md(change.rule) or 'not judged'} | "
                    f"{verdict_text} |")
    return ["| cell | quantity | previous | current | change | rule | verdict |", "|---|---|---|---|---|---|---|",
            *_listed(rows, "change(s), regressions first")]


def _baselines_table(comparison: Comparison) -> list[str]:
    """Which earlier run each cell was compared with, and the cells that had none."""
    pairs = [*comparison.compared_with.items(), *((cell, None) for cell in comparison.new_cells)]
    if len(pairs) > LISTED:  # many cells: how many were compared with each earlier run
        counts = Counter(label for _, label in pairs)
        return ["", "| compared with | cells |", "|---|---|",
                *_listed([f"| {md(label) if label else 'no earlier measurement'} | {n} |"
                          for label, n in counts.most_common()], "earlier run(s)")]
    return ["", "| cell | compared with |", "|---|---|",
            *[f"| {md(cell)} | {md(label) if label else 'no earlier measurement'} |" for cell, label in pairs]]
