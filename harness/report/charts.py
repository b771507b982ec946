"""Plotly figure specs (plain dicts: data + layout) for report.html.

Plotly draws some HTML-like tags inside its SVG text, so every user string that goes into a
figure is HTML-escaped: plotly then shows it literally (a model named `<b>x</b>` stays as typed).
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from typing import Any, cast

import numpy as np

from harness.history import TrendCell
from harness.record import CellRecord, latency_sample, repeat_medians
from harness.report._numerics_charts import cell_charts
from harness.report.overview import FAMILY_COLOURS, scheme_family
from harness.report.rows import Row
from harness.schemes import BASELINE
from harness.stats import find_step, typical
from harness.tasks import all_metrics

Figure = dict[str, Any]
TrendRun = tuple[str, list[TrendCell]]  # (the run's ISO start time, its cells as the trends read them)

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


def _family_traces(points: list[tuple[float, float]], rows: list[Row], families: list[str],
                   hover: list[str]) -> list[dict[str, Any]]:
    """One marker trace per scheme family, coloured as everywhere else in the report; names on hover."""
    traces = []
    for family, colour in FAMILY_COLOURS.items():
        picked = [i for i, f in enumerate(families) if f == family]
        if picked:
            traces.append({"type": "scatter", "mode": "markers", "name": family,
                           "x": [points[i][0] for i in picked], "y": [points[i][1] for i in picked],
                           "text": [hover[i] for i in picked], "hovertemplate": "%{text}<extra></extra>",
                           "marker": {"size": 9, "color": colour, "line": {"width": 1, "color": "#ffffff"}}})
    return traces


def _cost(row: Row, axis: str) -> float | None:
    """A cell's size or latency as a ratio to its float baseline (1 for the baseline itself)."""
    if row.scheme == BASELINE and getattr(row, axis) is not None:
        return 1.0
    return cast("float | None", getattr(row, axis.replace("_mb", "_ratio").replace("_ms", "_ratio")))


def _tradeoff(figure_id: str, model: str, rows: list[Row], families: list[str], axis: str,
              label: str) -> Figure | None:
    """Headline metric vs size or latency ratio (log axis) of one model's cells; only Pareto points are labelled."""
    usable = [(r, f) for r, f in zip(rows, families, strict=True) if r.status == "ok" and r.value is not None
              and math.isfinite(r.value) and _cost(r, axis)]
    if not usable:
        return None
    metric = usable[0][0].headline or ""
    usable = [(r, f) for r, f in usable if r.headline == metric]
    points = [(float(cast(float, _cost(r, axis))), cast(float, r.value)) for r, _ in usable]
    known = all_metrics()
    front = pareto_front(points, known[metric].higher_is_better if metric in known else True)
    names = [_text(f"{r.scheme}@{r.device}") for r, _ in usable]
    hover = [f"{n}<br>{label} {p[0]:.3g}<br>{_text(metric)} {p[1]:.4g}" for n, p in zip(names, points, strict=True)]
    data = _family_traces(points, [r for r, _ in usable], [f for _, f in usable], hover) + [
        {"type": "scatter", "mode": "lines+markers+text", "name": "Pareto front", "x": [points[i][0] for i in front],
         "y": [points[i][1] for i in front], "text": [names[i] for i in front], "textposition": "top center",
         "cliponaxis": False, "line": {"dash": "dot", "color": "#222222", "width": 1},
         "marker": {"symbol": "circle-open", "size": 15, "color": "#222222"}, "hoverinfo": "skip"}]
    return _figure(figure_id, f"{model}: {metric} vs {label}", data,
                   xaxis={"title": {"text": label}, "type": "log"}, yaxis={"title": {"text": _text(metric)}})


def quartiles(record: CellRecord) -> tuple[float, float] | None:
    """The first and third quartiles of a cell's (bounded) latency sample, None with fewer than two values."""
    samples = np.asarray(latency_sample(record), dtype=np.float64)
    if len(samples) < 2:
        return None
    q1, q3 = np.percentile(samples, [25, 75])
    return float(q1), float(q3)


def _latency_distribution(figure_id: str, model: str, records: list[CellRecord],
                          families: list[str]) -> Figure | None:
    """Per cell: the median with its interquartile range, and each repeat's median (log axis); no raw samples."""
    usable = [(r, f) for r, f in zip(records, families, strict=True)
              if r["status"] == "ok" and typical(r.get("latency_ms")) is not None]
    if not usable:
        return None
    data: list[dict[str, Any]] = []
    for family, colour in FAMILY_COLOURS.items():
        mine = [r for r, f in usable if f == family]
        if not mine:
            continue
        medians = [float(cast(float, typical(r.get("latency_ms")))) for r in mine]
        iqr = [quartiles(r) or (m, m) for r, m in zip(mine, medians, strict=True)]
        names = [_text(f"{r['scheme']}@{r['device']}") for r in mine]
        data.append({"type": "scatter", "mode": "markers", "name": family, "x": names, "y": medians,
                     "marker": {"color": colour, "size": 9},
                     "error_y": {"type": "data", "symmetric": False, "color": colour,
                                 "array": [q[1] - m for q, m in zip(iqr, medians, strict=True)],
                                 "arrayminus": [m - q[0] for q, m in zip(iqr, medians, strict=True)]},
                     "hovertemplate": "%{x}: median %{y:.4g} ms<extra>IQR bar</extra>"})
        repeats = [(n, float(v)) for r, n in zip(mine, names, strict=True)
                   for v in repeat_medians(r) or [] if v]
        if repeats:
            data.append({"type": "scatter", "mode": "markers", "name": f"{family}: repeat medians", "showlegend": False,
                         "x": [n for n, _ in repeats], "y": [v for _, v in repeats],
                         "marker": {"color": colour, "size": 5, "symbol": "line-ew-open"},
                         "hovertemplate": "%{x}: repeat median %{y:.4g} ms<extra></extra>"})
    return _figure(figure_id, f"{model}: latency median and interquartile range per cell", data,
                   yaxis={"title": {"text": "ms"}, "type": "log"}, xaxis={"type": "category", "automargin": True})


LATENCY_TREND = "latency ms (typical)"
MAX_TREND_LINES = 24  # per trend chart; a bigger suite draws the cells that changed most and family medians


def _trend_values(cell: TrendCell) -> dict[str, float]:
    values = {k: v for k, v in cell.metrics.items() if math.isfinite(v)}  # +inf SNR: no point to draw
    if cell.size_bytes:
        values["size MB"] = cell.size_bytes / 1e6
    if cell.latency_ms is not None:
        values[LATENCY_TREND] = cell.latency_ms
    return values


def _series(runs: list[TrendRun]) -> tuple[dict[str, dict[str, list[tuple[str, float]]]], dict[str, str]]:
    """Per quantity, per cell: (run label, value) oldest first; and each cell's scheme family."""
    series: dict[str, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    families: dict[str, str] = {}
    for started_at, cells in runs:  # run by run, each cell's values once
        label = started_at.replace("T", " ")[:19]
        for cell in cells:
            if cell.status == "ok":
                families[cell.cell] = scheme_family(cell.scheme_kind or cell.scheme)
                for name, value in _trend_values(cell).items():
                    series[name][cell.cell].append((label, value))
    return series, families


def _step_points(cells: dict[str, list[tuple[str, float]]], ratio: float) -> list[tuple[str, tuple[str, float]]]:
    """(cell, its first slower point) for every cell whose trend `find_step` sees a lasting step in."""
    return [(cell, points[i]) for cell, points in cells.items()
            if (i := find_step([p[1] for p in points], ratio)) is not None]


def _steps(found: list[tuple[str, tuple[str, float]]], ratio: float) -> list[dict[str, Any]]:
    """A marker at each detected latency step, the cell named in the hover."""
    if not found:
        return []
    return [{"type": "scatter", "mode": "markers", "name": f"step ≥ ×{ratio:g}", "x": [p[0] for _, p in found],
             "y": [p[1] for _, p in found], "text": [_text(c) for c, _ in found],
             "hovertemplate": "%{text}: slower from %{x}<extra>step</extra>",
             "marker": {"symbol": "x", "size": 14, "color": "#c00000", "line": {"width": 1}}}]


def _change(points: list[tuple[str, float]]) -> float:
    first, last = points[0][1], points[-1][1]
    return abs(last / first - 1) if first else abs(last - first)


def _drawn(cells: dict[str, list[tuple[str, float]]], stepped: set[str]) -> list[str]:
    """The cells a trend draws a line for: all of them up to MAX_TREND_LINES, else the stepped ones
    and then the largest changes from first to last run."""
    if len(cells) <= MAX_TREND_LINES:
        return list(cells)
    ranked = sorted(cells, key=lambda c: (c not in stepped, -_change(cells[c])))
    return ranked[:MAX_TREND_LINES]


def _family_medians(cells: dict[str, list[tuple[str, float]]], families: dict[str, str]) -> list[dict[str, Any]]:
    """Per scheme family, the median over its cells at each run (dashed), standing for the lines not drawn."""
    by_family: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for cell, points in cells.items():
        for label, value in points:
            by_family[families[cell]][label].append(value)
    return [{"type": "scatter", "mode": "lines", "name": f"{family}: median of {sum(1 for c in cells if families[c] == family)}",
             "x": list(runs), "y": [_round(float(np.median(v))) for v in runs.values()],
             "line": {"color": FAMILY_COLOURS[family], "width": 3, "dash": "dash"}}
            for family, runs in by_family.items()]


def _round(value: float) -> float:
    return float(f"{value:.5g}")


def _trends(runs: list[TrendRun], step_ratio: float) -> list[Figure]:
    """One chart per quantity: a line per cell across runs (oldest first), coloured by scheme family;
    on the latency chart the steps `harness.stats.find_step` detects are marked. A big suite draws
    the MAX_TREND_LINES cells that changed most (stepped first) and each family's median."""
    series, families = _series(runs)
    figures = []
    for index, (name, cells) in enumerate(series.items()):
        found = _step_points(cells, step_ratio) if name == LATENCY_TREND else []
        steps = _steps(found, step_ratio)
        drawn = _drawn(cells, {cell for cell, _ in found})
        data = [{"type": "scatter", "mode": "lines+markers", "name": _text(cell), "x": [p[0] for p in cells[cell]],
                 "y": [_round(p[1]) for p in cells[cell]], "line": {"color": FAMILY_COLOURS[families[cell]], "width": 1},
                 "marker": {"size": 4}, "opacity": 0.8} for cell in drawn]
        if len(drawn) < len(cells):
            data += _family_medians(cells, families)
        title = f"trend: {name}" + (f" ({len(drawn)} of {len(cells)} cells: largest changes)" if len(drawn) < len(cells) else "")
        log = name in (LATENCY_TREND, "size MB")
        figures.append(_figure(f"trend-{index}", title, data + steps, xaxis={"type": "category"},
                               showlegend=len(data) <= 16,
                               yaxis={"title": {"text": _text(name)}, **({"type": "log"} if log else {})}))
    return figures


def build_charts(rows: list[Row], records: list[CellRecord], trend_runs: list[TrendRun],
                 step_ratio: float = 1.05) -> dict[str, list[Figure]]:
    """Figures by report section: "tradeoffs", "latency", (with two runs or more) "trends", and "cells": the
    per-cell numerics charts drawn inside each cell's details (`layer-snr-<i>`, `recovery-<i>`).

    `rows` are `build_rows(records)`, in record order; `step_ratio` is the latency step the trend marks
    (the suite's regression `min_latency_ratio`).
    """
    by_model: dict[str, list[tuple[Row, CellRecord, str]]] = defaultdict(list)
    for row, record in zip(rows, records, strict=True):
        by_model[row.model].append((row, record, scheme_family(str(record.get("scheme_kind") or row.scheme))))
    tradeoffs, latency = [], []
    for index, (model, cells) in enumerate(by_model.items()):
        model_rows, model_records, families = [c[0] for c in cells], [c[1] for c in cells], [c[2] for c in cells]
        tradeoffs += [_tradeoff(f"size-{index}", model, model_rows, families, "size_mb", "size × float"),
                      _tradeoff(f"speed-{index}", model, model_rows, families, "latency_ms", "latency × float")]
        latency.append(_latency_distribution(f"latency-{index}", model, model_records, families))
    return {"tradeoffs": [f for f in tradeoffs if f], "latency": [f for f in latency if f],
            "trends": _trends(trend_runs, step_ratio) if len(trend_runs) > 1 else [], "cells": cell_charts(records)}
