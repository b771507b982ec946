"""Regressions of a run against an earlier run of the same suite, cell by cell.

Metrics use the suite's drop bounds (`max_abs_drop`, `max_rel_drop`, applied to the drop vs the
earlier run's same cell, through `harness.verdicts.check`); size uses the `size_ratio` bound's
`max_rel_drop` as the allowed relative growth (else `Policy.max_size_growth`). Latency, best
evidence first:

1. paired A/B: the earlier run's model was timed again in this run, side by side with the new one
   (`latency_ab`); a regression needs the paired ratio's confidence interval to lie above
   `min_paired_ratio`. Drift between nights cancels out.
2. repeat medians: both runs measured `repeats` ≥ `min_repeats` independent times (phones too);
   a one-sided Welch t-test on the log repeat medians and a ratio ≥ `min_latency_ratio` (a rank
   test cannot reach p < 0.05 with 3 repeats a side).
3. per-iteration samples (one repeat each, the weakest: iterations of one process are not
   independent): a one-sided Mann–Whitney U test on the bounded per-iteration samples.

2 and 3 compare across runs, so they also measure the machine: when the same model file was
timed by the same runtime on the same core, a slowdown is shown but not flagged (`flag_unchanged`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Required

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from harness.config.schema import Bound
from harness.history import TrendCell, trend_cells
from harness.record import CellRecord, LatencySetup, artifact_sha256, latency_sample, record_id, repeat_medians
from harness.stats import LatencyTest, find_step, log_t_test, rank_test
from harness.verdicts import check, metric_number, record_metrics

BoundsFn = Callable[[str, str], dict[str, Bound]]
"""(model, scheme) → the suite's bounds for that cell, e.g. `functools.partial(bounds_for, thresholds)`."""

_DROP_CHECKS = (".max_abs_drop", ".max_rel_drop")


@dataclass(frozen=True)
class Policy:
    """How large a change must be to count as a regression (a suite's `regression:` block)."""

    alpha: float = 0.05  # significance level of the cross-run latency tests
    min_latency_ratio: float = 1.05  # and the current median must be at least this much slower
    max_size_growth: float = 0.01  # relative size growth allowed when the suite sets no size_ratio.max_rel_drop
    min_paired_ratio: float = 1.05  # a paired A/B interval must lie above this
    min_repeats: int = 3  # repeat medians in both runs for the repeat-median test
    min_samples: int = 5  # fewer latency samples than this in either run: no latency test
    # The same model file timed by the same runtime on the same core in both runs: a slowdown is
    # the machine's (load, thermal, another tenant), shown but not a regression unless this is set.
    flag_unchanged: bool = False

    @classmethod
    def of(cls, regression: Any) -> Policy:
        """The policy a suite's `regression:` block (harness.config.schema.RegressionSpec) sets."""
        return cls(**regression.model_dump())


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Change:
    """One quantity of one cell, previous → current, and whether that is a regression."""

    cell: str
    quantity: str  # a metric name, "size_bytes", "latency_ms" or "status"
    previous: float | str | None
    current: float | str | None
    rule: str  # what was applied, e.g. "top1.max_abs_drop ≤ 0.02"; "" when not judged
    detail: str  # the observed change in words, e.g. "drop 0.0500" or "×1.10, p=1e-06"
    regressed: bool = False
    improved: bool = False
    latency: LatencyTest | None = None

    @property
    def judged(self) -> bool:
        return bool(self.rule)

    @property
    def shown(self) -> bool:
        """Worth a line in a report: a latency test, a regression, or a value that changed."""
        return self.latency is not None or self.regressed or self.previous != self.current


@dataclass
class Comparison:
    """Every change of a run vs its baseline, cell by cell: `compared_with` names the earlier run each
    compared cell's record came from, `previous_label` all of them in one phrase."""

    previous_label: str
    changes: list[Change] = field(default_factory=list)
    new_cells: list[str] = field(default_factory=list)  # cells of this run without an earlier record
    missing_cells: list[str] = field(default_factory=list)
    policy: Policy = DEFAULT_POLICY
    compared_with: dict[str, str] = field(default_factory=dict)  # cell id → label of its baseline run
    unbaselined: list[str] = field(default_factory=list)  # cells this run measured (ok) with no baseline

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regressed]

    @property
    def latency_tests(self) -> list[Change]:
        return [c for c in self.changes if c.latency is not None]


def compare_runs(current: list[CellRecord], previous: list[CellRecord], bounds: BoundsFn | None,
                 policy: Policy = DEFAULT_POLICY, previous_label: str = "previous run",
                 labels: dict[str, str] | None = None) -> Comparison:
    """Compare the records of a run with earlier records cell by cell (`labels`: the run each earlier
    record came from, when they come from several); `bounds` None leaves metric changes unjudged."""
    earlier = {record_id(r): r for r in previous}
    comparison = Comparison(previous_label, policy=policy)
    for record in current:
        cell = record_id(record)
        before = earlier.pop(cell, None)
        if before is None:
            comparison.new_cells.append(cell)
            if record["status"] == "ok":
                comparison.unbaselined.append(cell)
            continue
        comparison.compared_with[cell] = (labels or {}).get(cell, previous_label)
        comparison.changes += _status_changes(cell, before, record)
        if record["status"] == "ok" and before["status"] == "ok":
            cell_bounds = bounds(record["model"], record["scheme"]) if bounds else {}
            comparison.changes += _metric_changes(cell, before, record, cell_bounds)
            comparison.changes += _size_changes(cell, before, record, cell_bounds, policy)
            comparison.changes += _latency_changes(cell, before, record, policy)
    comparison.missing_cells = list(earlier)
    return comparison


NO_EARLIER_RUN = "no earlier run to compare with"


def comparison_phrase(comparison: Comparison | None) -> str:
    """What the comparison found, in words that follow from its facts alone: no earlier record of
    any cell → "no earlier run to compare with"; else the regressions (or none) vs the runs used,
    and how many measured cells had no earlier measurement."""
    if comparison is None or not comparison.compared_with:
        return NO_EARLIER_RUN
    count = len(comparison.regressions)
    text = f"{count} regression(s)" if count else "no regression"
    text += f" vs {comparison.previous_label}"
    if comparison.unbaselined:
        text += f" · {len(comparison.unbaselined)} cell(s) with no earlier measurement to compare with"
    return text


@dataclass(frozen=True)
class Verdict:
    """A run's one-line verdict: console, summary.md and report.html (`#verdict`) all show this."""

    ok: bool
    detail: str

    @property
    def status(self) -> str:
        return "PASS" if self.ok else "FAIL"

    @property
    def text(self) -> str:
        return f"{self.status}: {self.detail}"


def verdict_line(records: list[CellRecord], comparison: Comparison | None, incomplete: str | None,
                 unrecorded: str | None = None) -> Verdict:
    """The run's verdict from its records, its comparison, why it is incomplete (if it is) and why the
    configured history could not be used (`unrecorded`: then it fails, as "since last night" is unknown)."""
    violating = sum(1 for r in records if any(not v["pass"] for v in r.get("verdicts") or []))
    failed = sum(1 for r in records if r["status"] == "failed")
    regressed, phrase = bool(comparison and comparison.regressions), comparison_phrase(comparison)
    parts = [f"INCOMPLETE ({incomplete})"] if incomplete else []
    parts += [f"{violating} cell(s) violate thresholds"] if violating else []
    parts += [phrase] if regressed else []
    parts += [f"{failed} failed cell(s)"] if failed else []
    parts += [f"HISTORY NOT USED ({unrecorded})"] if unrecorded else []
    if not parts:
        return Verdict(True, f"{len(records)} cells, every check passed · {phrase}")
    return Verdict(False, " · ".join(parts if regressed else [*parts, phrase]))


def _status_changes(cell: str, before: CellRecord, record: CellRecord) -> list[Change]:
    if before["status"] == record["status"]:
        return []
    broke = before["status"] == "ok" and record["status"] == "failed"
    return [Change(cell, "status", before["status"], record["status"], rule="a cell that ran must not fail",
                   detail=record.get("error") or "", regressed=broke, improved=record["status"] == "ok")]


def _metric_changes(cell: str, before: CellRecord, record: CellRecord,
                    cell_bounds: dict[str, Bound]) -> list[Change]:
    """Drop checks vs the earlier cell (same semantics as the checks vs float), plus unjudged changes."""
    drops = [v for v in check(record, before, cell_bounds, vs_earlier=True) if v["check"].endswith(_DROP_CHECKS)]
    changes = [Change(cell, v["metric"], v["baseline"], v["observed"], rule=f"{v['check']} ≤ {v['threshold']:g}",
                      detail=f"drop {metric_number(v['value']):+.4g}", regressed=not v["pass"],
                      improved=metric_number(v["value"]) < 0)
               for v in drops]
    judged = {v["metric"] for v in drops}
    now, then = record_metrics(record), record_metrics(before)
    for metric in sorted(now.keys() & then.keys() - judged):
        if now[metric] != then[metric]:
            changes.append(Change(cell, metric, then[metric], now[metric], rule="",
                                  detail=f"change {now[metric] - then[metric]:+.4g}"))
    return changes


def _size_changes(cell: str, before: CellRecord, record: CellRecord, cell_bounds: dict[str, Bound],
                  policy: Policy) -> list[Change]:
    old, new = before.get("size_bytes"), record.get("size_bytes")
    if not old or not new or old == new:
        return []
    bound = cell_bounds.get("size_ratio")
    allowed = bound.max_rel_drop if bound and bound.max_rel_drop is not None else policy.max_size_growth
    growth = new / old - 1
    return [Change(cell, "size_bytes", old, new, rule=f"growth ≤ {allowed:.1%}", detail=f"growth {growth:+.2%}",
                   regressed=growth > allowed + 1e-12, improved=growth < 0)]


def _latency_changes(cell: str, before: CellRecord, record: CellRecord, policy: Policy) -> list[Change]:
    paired = _paired_change(cell, before, record, policy)
    if paired is not None:
        return [paired]
    test = cross_run_test(before, record, policy)
    if test is None:
        return []
    slower = test.p is not None and test.p < policy.alpha and test.ratio >= policy.min_latency_ratio
    unchanged = _same_model_and_runtime(before, record)
    statistic = f"U={test.u:g}" if test.u is not None else f"Welch t={test.t:.2f}"
    detail = f"cross-run, {test.method}: ×{test.ratio:.3f}, {statistic}, p={test.p:.2g}"
    gone = (record.get("latency_ab") or {}).get("unavailable")
    if gone:
        detail += f"; {gone}"
    if slower and unchanged and not policy.flag_unchanged:
        detail += "; same model file, runtime and core as before: the machine changed, not the model"
    faster = test.p is not None and test.ratio <= 1 / policy.min_latency_ratio
    return [Change(cell, "latency_ms", test.previous_median, test.current_median,
                   rule=f"p < {policy.alpha:g} and ×≥{policy.min_latency_ratio:g}",
                   detail=detail, regressed=slower and (policy.flag_unchanged or not unchanged),
                   improved=faster, latency=test)]


_Two = Annotated[list[float], Field(min_length=2, max_length=2)]


class _PairedAB(TypedDict, total=False):
    """The part of `latency_ab` (harness._latency.time_ab) a paired verdict reads; a record whose
    `latency_ab` does not match it is compared across runs instead."""

    __pydantic_config__ = ConfigDict(strict=True)  # type: ignore[misc]
    baseline_sha256: Required[str]
    ci: Required[_Two]
    ratio: Required[float]
    pairs: Required[Annotated[list[_Two], Field(min_length=1)]]
    confidence: float
    extended: int
    bound: float | None


_PAIRED_AB = TypeAdapter(_PairedAB)


def _paired_change(cell: str, before: CellRecord, record: CellRecord, policy: Policy) -> Change | None:
    """The verdict from a paired A/B re-timing of the earlier run's model in this run, if there is one."""
    try:
        ab = _PAIRED_AB.validate_python(record.get("latency_ab") or {})
    except ValidationError:
        return None
    if ab["baseline_sha256"] != artifact_sha256(before):
        return None
    (low, high), pairs = ab["ci"], ab["pairs"]
    old, new = (float(np.median([p[i] for p in pairs])) for i in (0, 1))
    test = LatencyTest(method="paired A/B", p=None, ratio=ab["ratio"], previous_median=old, current_median=new,
                       n_previous=len(pairs), n_current=len(pairs), ci=(low, high))
    detail = (f"paired A/B in this run: ×{ab['ratio']:.3f} [{low:.3f}, {high:.3f}] "
              f"({ab.get('confidence', 0.95):.0%} interval, {len(pairs)} pairs"
              + (f", {ab['extended']} added while it straddled ×{ab.get('bound') or 0:g}" if ab.get("extended") else "")
              + ")")
    return Change(cell, "latency_ms", old, new, rule=f"interval above ×{policy.min_paired_ratio:g}", detail=detail,
                  regressed=low > policy.min_paired_ratio, improved=high < 1 / policy.min_paired_ratio, latency=test)


def cross_run_test(before: CellRecord, record: CellRecord, policy: Policy = DEFAULT_POLICY) -> LatencyTest | None:
    """The run-to-run test of two records: on repeat medians when both have enough, else on the
    per-iteration samples (one-sided: is the current run slower?)."""
    medians = [_numbers(repeat_medians(r)) or [] for r in (before, record)]
    test = log_t_test(medians[0], medians[1], "repeat medians", policy.min_repeats)
    if test is not None:
        return test
    samples = [latency_sample(r) for r in (before, record)]
    return rank_test(samples[0], samples[1], "per-iteration samples", policy.min_samples)


def _numbers(value: object) -> list[float] | None:
    """`value` when it is a list of real numbers (stored records are checked, but not every
    nested field a record may carry is typed), else None."""
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    return [float(v) for v in value]


def _same_model_and_runtime(before: CellRecord, record: CellRecord) -> bool:
    """Both runs timed the same .tflite bytes with the same runtime on the same core."""
    artifacts = [artifact_sha256(r) for r in (before, record)]
    setups: list[LatencySetup] = [r.get("latency_setup") or {} for r in (before, record)]
    runtimes = [s.get("runtime") for s in setups]
    return (artifacts[0] is not None and artifacts[0] == artifacts[1] and runtimes[0] is not None
            and runtimes[0] == runtimes[1] and setups[0].get("core") == setups[1].get("core"))


def latency_test(previous: list[float], current: list[float],
                 policy: Policy = DEFAULT_POLICY) -> LatencyTest | None:
    """The per-iteration test of two sample sets (one-sided); None when either has too few samples."""
    return rank_test(previous, current, "per-iteration samples", policy.min_samples)


@dataclass(frozen=True)
class TrendPoint:
    """One run of a suite's recent history, oldest first: its cells as the trends read them (slim)."""

    run: str  # label
    git_commit: str | None
    cells: list[TrendCell]

    @classmethod
    def of(cls, run: str, git_commit: str | None, records: list[CellRecord]) -> TrendPoint:
        """A run given as whole records (this run's own), kept in the slim form."""
        return cls(run, git_commit, trend_cells(records))


@dataclass(frozen=True)
class Step:
    """A lasting slowdown of one cell: where it started, and its size."""

    cell: str
    run: str
    git_commit: str | None
    before: float  # median of the typical latencies before the step (ms)
    after: float  # the first run's at the step
    ratio: float


def latency_steps(points: list[TrendPoint], policy: Policy = DEFAULT_POLICY) -> list[Step]:
    """For every cell, the run where its latency stepped up by `min_latency_ratio` and stayed
    there for two runs in a row (`harness.stats.find_step`), named with its git commit."""
    typicals = [_typicals(p) for p in points]  # one pass per run: linear in cells
    cells = dict.fromkeys(c.cell for p in points for c in p.cells)
    steps = []
    for cell in cells:
        series = [by_cell.get(cell) for by_cell in typicals]
        start = find_step(series, policy.min_latency_ratio)
        if start is not None:
            before = float(np.median([v for v in series[max(0, start - 5):start] if v is not None]))
            after = series[start]
            assert after is not None
            steps.append(Step(cell, points[start].run, points[start].git_commit, before, after, after / before))
    return steps


def _typicals(point: TrendPoint) -> dict[str, float | None]:
    """Each ok cell's typical latency in one run (the first record of a cell, as listed, counts)."""
    found: dict[str, float | None] = {}
    for cell in point.cells:
        if cell.status == "ok":
            found.setdefault(cell.cell, cell.latency_ms)
    return found
