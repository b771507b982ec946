"""Latency steps across the recent runs (harness.compare.latency_steps): one pass over each run's records."""

from __future__ import annotations

from pathlib import Path

from harness.compare import DEFAULT_POLICY, TrendPoint, latency_steps
from harness.history import History
from harness.record import CellRecord, record_id
from harness.report.charts import LATENCY_TREND, build_charts
from harness.report.publish import publish_run
from harness.report.rows import build_rows
from harness.stats import typical
from harness.verdicts import record_metrics
from tests.report.runs import THRESHOLDS, cell, standard_cells, write_run


def _run(night: int, slow: float, *, failed: bool = False, missing: bool = False) -> TrendPoint:
    records = [cell("m", "float32", latency_ms=10.0, seed=night)]
    if not missing:
        records.append(cell("m", "int8", latency_ms=5.0 * slow, seed=night, status="failed" if failed else "ok"))
    return TrendPoint.of(f"run {night}", f"{night:040x}", records)


def test_a_lasting_step_is_found_with_its_run_and_the_median_before() -> None:
    points = [_run(0, 1.0), _run(1, 1.0, failed=True), _run(2, 1.0, missing=True), _run(3, 1.0), _run(4, 1.5),
              _run(5, 1.5)]
    steps = latency_steps(points, DEFAULT_POLICY)
    assert [(s.cell, s.run, s.git_commit) for s in steps] == [("m/int8@local", "run 4", f"{4:040x}")]
    step = steps[0]
    assert 4.8 < step.before < 5.2 and 7.2 < step.after < 7.8  # a failed or missing night has no value
    assert abs(step.ratio - step.after / step.before) < 1e-12


def test_one_slow_night_is_not_a_step() -> None:
    assert latency_steps([_run(0, 1.0), _run(1, 1.0), _run(2, 1.5), _run(3, 1.0)], DEFAULT_POLICY) == []


def test_published_steps_and_trend_charts_read_from_the_slim_trend_are_those_of_the_whole_records(
        tmp_path: Path) -> None:
    """Five nights published into a history (int8 slower from the fourth): the steps publish_run finds and the
    trend charts drawn from the history's slim trend read are those the whole records give (every metric,
    size and typical latency of each ok cell, run by run)."""
    reports, history = tmp_path / "reports", tmp_path / "history.sqlite"
    for night in range(5):
        result = publish_run(write_run(reports, standard_cells(night, slowdown=1.3 if night >= 3 else 1.0),
                                       index=night), history, thresholds=THRESHOLDS)
    assert [(s.cell, s.git_commit) for s in result.steps] == [("digits_cnn/int8@local", f"{3:040x}")]
    with History(history) as store:
        entries = list(reversed(store.runs("nightly")))
        slim = [TrendPoint(f"run {e.label}", e.git_commit, store.trend(e.id)) for e in entries]
        whole = [store.records(e.id) for e in entries]
    assert slim == [TrendPoint.of(p.run, p.git_commit, records) for p, records in zip(slim, whole, strict=True)]
    assert latency_steps([*slim[:-1], TrendPoint.of("this run", slim[-1].git_commit, result.records)]) == result.steps
    charts = build_charts(build_rows(result.records), result.records,
                          [(e.started_at, p.cells) for e, p in zip(entries, slim, strict=True)])["trends"]
    drawn = {f["title"].removeprefix("trend: "): {t["name"]: t["y"] for t in f["data"]} for f in charts}
    marked = drawn[LATENCY_TREND].pop("step ≥ ×1.05")
    assert drawn == _expected_trends(whole) and marked == [result.steps[0].after]  # the step is marked where found


def _expected_trends(runs: list[list[CellRecord]]) -> dict[str, dict[str, list[float]]]:
    """Each trend quantity's values per cell, oldest run first, read from whole records as the charts always did."""
    expected: dict[str, dict[str, list[float]]] = {}
    for records in runs:
        for r in (r for r in records if r["status"] == "ok"):
            values = {**record_metrics(r), "size MB": r["size_bytes"] / 1e6, LATENCY_TREND: typical(r["latency_ms"])}
            for name, value in values.items():
                expected.setdefault(name, {}).setdefault(record_id(r), []).append(float(f"{value:.5g}"))
    return expected
