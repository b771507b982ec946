"""Chart specs: the Pareto front, and figures plotly itself accepts."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from harness.history import trend_cells
from harness.report.charts import LATENCY_TREND, MAX_TREND_LINES, build_charts, pareto_front
from harness.report.overview import FAMILY_COLOURS
from harness.report.rows import build_rows
from tests.report.big import big_suite
from tests.report.runs import XSS, cell, standard_cells, with_verdicts


@pytest.mark.parametrize("higher, expected", [(True, [0, 2, 3]), (False, [0, 1])])
def test_pareto_front(higher: bool, expected: list[int]) -> None:
    """x is a cost (size, latency); y an accuracy (higher better) or an error (lower better)."""
    points = [(1.0, 0.80), (2.0, 0.79), (2.0, 0.85), (4.0, 0.90), (5.0, 0.90)]
    assert pareto_front(points, higher) == expected


def test_figures_are_valid_plotly_and_escape_names() -> None:
    records = standard_cells() + [cell(XSS, "float32", seed=3), cell(XSS, "int8", status="failed")]
    runs = [("2026-01-01T00:00:00+00:00", trend_cells(standard_cells(1))),
            ("2026-01-02T00:00:00+00:00", trend_cells(records))]
    charts = build_charts(build_rows(records), records, runs)
    assert [len(charts[k]) for k in ("tradeoffs", "latency", "trends")] == [4, 2, 6]
    for figure in (f for section in charts.values() for f in section):
        go.Figure(data=figure["data"], layout=figure["layout"])  # raises on any unknown property
    titles = [f["layout"]["title"]["text"] for f in charts["latency"]]
    assert titles[1] == "&lt;script&gt;alert(1)&lt;/script&gt;: latency median and interquartile range per cell"


def test_trends_need_two_runs() -> None:
    records = standard_cells()
    assert build_charts(build_rows(records), records, [("2026-01-01T00:00:00", trend_cells(records))])["trends"] == []


def test_charts_read_log_axes_pareto_labels_family_colours_and_no_raw_samples() -> None:
    records = with_verdicts([cell("m", "float32", seed=1), cell("m", "int8", size_bytes=1_000_000, latency_ms=6.0),
                             cell("m", "dynamic_range", size_bytes=1_100_000, latency_ms=8.0, top1=0.85),
                             cell("m", "qat", size_bytes=1_000_000, latency_ms=6.5, top1=0.89),
                             cell("m", "prune+int8", size_bytes=900_000, latency_ms=40.0, top1=0.88)])
    records[3]["scheme_kind"], records[4]["scheme_kind"] = "qat", "prune+int8"
    records[1]["latency_ms"]["repeat_medians"] = [5.9, 6.0, 6.1]
    charts = build_charts(build_rows(records), records, [])
    size, speed = charts["tradeoffs"]
    assert size["layout"]["xaxis"]["type"] == speed["layout"]["xaxis"]["type"] == "log"
    labelled = [t for t in size["data"] if "text" in t["mode"]]
    assert [t["name"] for t in labelled] == ["Pareto front"]  # the other points are named on hover only
    assert labelled[0]["text"] == ["prune+int8@local", "int8@local"]
    colours = {t["name"]: t["marker"]["color"] for t in size["data"] if t["name"] in FAMILY_COLOURS}
    assert colours == FAMILY_COLOURS  # baseline, post-training, training-time and combined, one colour each
    latency = charts["latency"][0]
    assert latency["layout"]["yaxis"]["type"] == "log"
    post = next(t for t in latency["data"] if t["name"] == "post-training")
    assert len(post["y"]) == 2 and len(post["error_y"]["array"]) == 2  # one median and IQR bar per cell
    assert len(str(latency)) < 5_000  # summaries, not the 60 samples per cell
    assert any(t["name"] == "post-training: repeat medians" and t["y"] == [5.9, 6.0, 6.1] for t in latency["data"])


def test_the_latency_trend_marks_the_step_find_step_detects() -> None:
    nights = [standard_cells(i, slowdown=1.3 if i >= 3 else 1.0) for i in range(5)]
    runs = [(f"2026-01-0{i + 1}T00:00:00+00:00", trend_cells(records)) for i, records in enumerate(nights)]
    records = nights[-1]
    trends = build_charts(build_rows(records), records, runs, step_ratio=1.05)["trends"]
    latency = next(f for f in trends if f["title"] == f"trend: {LATENCY_TREND}")
    steps = [t for t in latency["data"] if t["name"].startswith("step")]
    assert len(steps) == 1 and steps[0]["text"] == ["digits_cnn/int8@local"] and steps[0]["x"] == ["2026-01-04 00:00:00"]
    assert latency["layout"]["yaxis"]["type"] == "log"


def test_a_big_suite_trend_draws_the_stepped_and_most_changed_cells_and_family_medians() -> None:
    def night(i: int) -> list[dict]:
        records = big_suite(4, 10, samples=20)
        for r in records:
            if r["model"] == "model_02" and r["scheme"] == "int8" and i >= 3:
                r["latency_ms"]["median"] *= 1.5
        return records

    nights = [night(i) for i in range(6)]
    runs = [(f"2026-01-0{i + 1}T00:00:00+00:00", trend_cells(records)) for i, records in enumerate(nights)]
    records = nights[-1]
    trends = build_charts(build_rows(records), records, runs, step_ratio=1.05)["trends"]
    latency = next(f for f in trends if f["title"].startswith(f"trend: {LATENCY_TREND}"))
    assert latency["title"].endswith(f"({MAX_TREND_LINES} of 40 cells: largest changes)")
    lines = [t for t in latency["data"] if t["mode"] == "lines+markers"]
    assert len(lines) == MAX_TREND_LINES and lines[0]["name"] == "model_02/int8@local"  # the stepped cell first
    assert {t["name"].split(":")[0] for t in latency["data"] if t["mode"] == "lines"} == {
        "baseline", "post-training", "training-time"}
    assert [t["text"] for t in latency["data"] if t["name"].startswith("step")] == [["model_02/int8@local"]]
