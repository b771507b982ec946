"""Plotly figure specs (plain dicts: data + layout) for report.html.

Plotly draws some HTML-like tags inside its SVG text, so every user string that goes into a
figure is HTML-escaped: plotly then shows it literally (a model named `<b>x</b>` stays as typed).
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from typing import Any, cast

from harness.report.rows import Row
from harness.results import record_id
from harness.tasks import all_metrics
from harness.verdicts import record_metrics

Figure = dict[str, Any]
TrendRun = tuple[str, list[dict[str, Any]]]  # (the run's ISO start time, its records)

_LAYOUT = {"height": 380, "margin": {"l": 60, "r": 20, "t": 70, "b": 60}, "hovermode": "closest",
           "font": {"family": "system-ui, sans-serif", "size": 12}, "legend": {"orientation": "h", "y": -0.25}}


def _text(value: str) -> str:
    return html.escape(value, quote=False)


def _figure(figure_id: str, title: str, data: list[dict[str, Any]], **layout: Any) -> Figure:
    return {"id": figure_id, "title": title, "data": data,
            "layout": {**_LAYOUT, "title": {"text": _text(title), "x": 0.01, "xanchor": "left", "y": 0.97}, **layout}}


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point beats (x: lower is better; y: in the metric's direction), by x."""
    def better_or_equal(a: tuple[float, float], b: tuple[float, float]) -> bool:
        ay, by = (a[1], b[1]) if higher_is_better else (-a[1], -b[1])
        return a[0] <= b[0] and ay >= by

    front = [i for i, p in enumerate(points)
             if not any(better_or_equal(q, p) and q != p for j, q in enumerate(points) if j != i)]
    return sorted(front, key=lambda i: points[i])


def _tradeoff(figure_id: str, model: str, rows: list[Row], axis: str, label: str) -> Figure | None:
    """Headline metric vs size or latency of one model's cells, with the Pareto front marked."""
    usable = [r for r in rows if r.status == "ok" and r.value is not None and math.isfinite(r.value)
              and getattr(r, axis) is not None]
    if not usable:
        return None
    metric = usable[0].headline or ""
    usable = [r for r in usable if r.headline == metric]
    points = [(float(getattr(r, axis)), cast(float, r.value)) for r in usable]
    known = all_metrics()
    front = pareto_front(points, known[metric].higher_is_better if metric in known else True)
    names = [_text(f"{r.scheme}@{r.device}") for r in usable]
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "markers+text", "name": "cells", "x": [p[0] for p in points],
         "y": [p[1] for p in points], "text": names, "textposition": "top center", "marker": {"size": 10},
         "cliponaxis": False},
        {"type": "scatter", "mode": "lines+markers", "name": "Pareto front", "x": [points[i][0] for i in front],
         "y": [points[i][1] for i in front], "line": {"dash": "dot", "color": "#d62728"},
         "marker": {"symbol": "diamond-open", "size": 16, "color": "#d62728"}, "hoverinfo": "skip"},
    ]
    return _figure(figure_id, f"{model}: {metric} vs {label}", data,
                   xaxis={"title": {"text": label}}, yaxis={"title": {"text": _text(metric)}})


def _latency_distribution(figure_id: str, model: str, records: list[dict[str, Any]]) -> Figure | None:
    """One box per cell of its per-iteration latency samples."""
    data = [{"type": "box", "name": _text(f"{r['scheme']}@{r['device']}"), "y": r["latency_samples_ms"],
             "boxpoints": "outliers", "boxmean": True}
            for r in records if r["status"] == "ok" and r.get("latency_samples_ms")]
    if not data:
        return None
    return _figure(figure_id, f"{model}: latency per iteration", data, showlegend=False,
                   yaxis={"title": {"text": "ms"}, "rangemode": "tozero"})


def _trend_values(record: dict[str, Any]) -> dict[str, float]:
    values = {k: v for k, v in record_metrics(record).items() if math.isfinite(v)}  # +inf SNR: no point to draw
    if record.get("size_bytes"):
        values["size MB"] = record["size_bytes"] / 1e6
    if (record.get("latency_ms") or {}).get("median") is not None:
        values["latency median ms"] = record["latency_ms"]["median"]
    return values


def _trends(runs: list[TrendRun]) -> list[Figure]:
    """One chart per metric: a line per cell across runs (oldest first)."""
    series: dict[str, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for label, records in runs:
        for record in records:
            if record["status"] == "ok":
                for name, value in _trend_values(record).items():
                    series[name][record_id(record)].append((label.replace("T", " ")[:19], value))
    figures = []
    for index, (name, cells) in enumerate(series.items()):
        data = [{"type": "scatter", "mode": "lines+markers", "name": _text(cell), "x": [p[0] for p in points],
                 "y": [p[1] for p in points]} for cell, points in cells.items()]
        figures.append(_figure(f"trend-{index}", f"trend: {name}", data, xaxis={"type": "category"},
                               yaxis={"title": {"text": _text(name)}}))
    return figures


def build_charts(rows: list[Row], records: list[dict[str, Any]],
                 trend_runs: list[TrendRun]) -> dict[str, list[Figure]]:
    """Figures by report section: "tradeoffs", "latency" and (with two runs or more) "trends".

    `rows` are `build_rows(records)`, in record order.
    """
    rows_by_model: dict[str, list[Row]] = defaultdict(list)
    records_by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row, record in zip(rows, records, strict=True):
        rows_by_model[row.model].append(row)
        records_by_model[row.model].append(record)
    tradeoffs, latency = [], []
    for index, (model, rows) in enumerate(rows_by_model.items()):
        tradeoffs += [_tradeoff(f"size-{index}", model, rows, "size_mb", "size MB"),
                      _tradeoff(f"speed-{index}", model, rows, "latency_ms", "median latency ms")]
        latency.append(_latency_distribution(f"latency-{index}", model, records_by_model[model]))
    return {"tradeoffs": [f for f in tradeoffs if f], "latency": [f for f in latency if f],
            "trends": _trends(trend_runs) if len(trend_runs) > 1 else []}
