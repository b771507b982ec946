"""Per-cell numerics charts of report.html and the numerics section of summary.md.

`layer-snr-<i>`: SNR vs the float model per tensor in graph order (a cell's `diagnosis.snr_curve`, at most
200 points); `recovery-<i>`: the `recover:` loop's metric, size and latency against the float layers kept.
`i` is the cell's index in the record list, as `cell-<i>`. Every user string is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from typing import Any

from harness.record import CellRecord, record_id
from harness.report.rows import fmt

Figure = dict[str, Any]
_LAYOUT = {"height": 340, "width": 640, "margin": {"l": 60, "r": 70, "t": 60, "b": 50}, "hovermode": "closest",
           "font": {"family": "system-ui, sans-serif", "size": 12}, "legend": {"orientation": "h", "y": -0.3}}
_CAP_DB = 120.0  # an exact tensor (infinite SNR) is drawn at the cap


def _text(value: object) -> str:
    return html.escape(str(value), quote=False)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _figure(figure_id: str, cell: int, title: str, data: list[dict[str, Any]], **layout: Any) -> Figure:
    return {"id": figure_id, "cell": cell, "title": title, "data": data,
            "layout": {**_LAYOUT, "title": {"text": _text(title), "x": 0.01, "xanchor": "left"}, **layout}}


def layer_snr(index: int, record: CellRecord) -> Figure | None:
    """SNR per tensor in graph order (None without a diagnosis curve)."""
    diagnosis = record.get("diagnosis")
    points = diagnosis.get("snr_curve") if diagnosis else None
    if diagnosis is None or not isinstance(points, list) or not points:
        return None
    usable = [(p[0], _number(p[1])) for p in points if isinstance(p, list) and len(p) == 2]
    x = [p for p, v in usable if v is not None]
    y = [min(v, _CAP_DB) for _, v in usable if v is not None]
    trace = {"type": "scatter", "mode": "lines+markers", "name": "snr_db", "x": x, "y": y, "marker": {"size": 4}}
    title = f"{record_id(record)}: SNR per tensor in graph order ({diagnosis.get('route', '?')})"
    return _figure(f"layer-snr-{index}", index, title, [trace], xaxis={"title": {"text": "op position"}},
                   yaxis={"title": {"text": f"snr_db (exact: {_CAP_DB:g})"}})


def recovery_curve(index: int, record: CellRecord) -> Figure | None:
    """The recover loop's metric, size (KB) and latency (ms) per number of float layers (None without steps)."""
    recovery = record.get("recovery")
    steps = recovery.get("steps") if recovery else None
    if recovery is None or not isinstance(steps, list) or not steps:
        return None
    k = [s.get("float_layers") for s in steps]
    series = lambda key, scale=1.0: [None if _number(s.get(key)) is None else _number(s.get(key)) * scale  # noqa: E731
                                     for s in steps]
    metric = _text(recovery.get("metric", "metric"))
    data: list[dict[str, Any]] = [
            {"type": "scatter", "mode": "lines+markers", "name": metric, "x": k, "y": series("metric")},
            {"type": "scatter", "mode": "lines+markers", "name": "size KB", "x": k, "y": series("size_bytes", 1e-3),
             "yaxis": "y2", "line": {"dash": "dot"}},
            {"type": "scatter", "mode": "lines+markers", "name": "latency ms", "x": k, "y": series("latency_ms"),
             "yaxis": "y3", "line": {"dash": "dash"}}]
    return _figure(f"recovery-{index}", index, f"{record_id(record)}: {metric} vs float layers kept", data,
                   xaxis={"title": {"text": "float layers"}, "domain": [0, 0.85]}, yaxis={"title": {"text": metric}},
                   yaxis2={"title": {"text": "size KB"}, "overlaying": "y", "side": "right", "anchor": "x"},
                   yaxis3={"title": {"text": "latency ms"}, "overlaying": "y", "side": "right", "anchor": "free",
                           "position": 1.0})


def cell_charts(records: list[CellRecord]) -> list[Figure]:
    """Every cell's numerics figures, in record order."""
    figures = []
    for index, record in enumerate(records):
        figures += [f for f in (layer_snr(index, record), recovery_curve(index, record)) if f]
    return figures


def summary_lines(records: list[CellRecord], escape: Any) -> list[str]:
    """summary.md's numerics section: per diagnosed cell its worst tensors and cross-check; per recovered
    cell its float layers and whether the bound holds ([] when there is neither)."""
    lines = []
    for record in records:
        diagnosis, recovery = record.get("diagnosis"), record.get("recovery")
        if isinstance(diagnosis, dict) and diagnosis.get("ranked"):
            worst = ", ".join(f"{escape(str(r.get('tensor')))} {fmt(_number(r.get('snr_db')), '.1f')} dB"
                              for r in diagnosis["ranked"][:3])
            check = diagnosis.get("cross_check") or {}
            agreed = check.get("agrees") if "agrees" in check else check.get("first_layer_agrees")
            agrees = ("agrees" if agreed else "DISAGREES") if isinstance(agreed, bool) else "not cross-checked"
            lines.append(f"- {escape(record_id(record))} diagnosis ({escape(str(diagnosis.get('route')))}, "
                         f"{agrees}): worst {worst}")
        if isinstance(recovery, dict) and recovery.get("steps"):
            layers = recovery.get("float_layers") or []
            lines.append(f"- {escape(record_id(record))} recovery: {len(layers)} float layer(s), "
                         f"{escape(str(recovery.get('metric')))} bound {'met' if recovery.get('met') else 'NOT met'}")
    return ["", "## Numerics", "", *lines] if lines else []
