"""Chart specs: the Pareto front, and figures plotly itself accepts."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from harness.report.charts import build_charts, pareto_front
from harness.report.rows import build_rows
from tests.report.runs import XSS, cell, standard_cells


@pytest.mark.parametrize("higher, expected", [(True, [0, 2, 3]), (False, [0, 1])])
def test_pareto_front(higher: bool, expected: list[int]) -> None:
    """x is a cost (size, latency); y an accuracy (higher better) or an error (lower better)."""
    points = [(1.0, 0.80), (2.0, 0.79), (2.0, 0.85), (4.0, 0.90), (5.0, 0.90)]
    assert pareto_front(points, higher) == expected


def test_figures_are_valid_plotly_and_escape_names() -> None:
    records = standard_cells() + [cell(XSS, "float32", seed=3), cell(XSS, "int8", status="failed")]
    runs = [("2026-01-01T00:00:00+00:00", standard_cells(1)), ("2026-01-02T00:00:00+00:00", records)]
    charts = build_charts(build_rows(records), records, runs)
    assert [len(charts[k]) for k in ("tradeoffs", "latency", "trends")] == [4, 2, 6]
    for figure in (f for section in charts.values() for f in section):
        go.Figure(data=figure["data"], layout=figure["layout"])  # raises on any unknown property
    titles = [f["layout"]["title"]["text"] for f in charts["latency"]]
    assert titles[1] == "&lt;script&gt;alert(1)&lt;/script&gt;: latency per iteration"


def test_trends_need_two_runs() -> None:
    records = standard_cells()
    assert build_charts(build_rows(records), records, [("2026-01-01T00:00:00", records)])["trends"] == []
