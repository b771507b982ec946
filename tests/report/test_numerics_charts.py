"""Per-cell numerics charts: SNR per layer (`layer-snr-<i>`) and the recover curve (`recovery-<i>`) in
report.html, bounded in size, valid plotly, names escaped; the numerics section of summary.md."""

from __future__ import annotations

import plotly.graph_objects as go

from harness.report._numerics_charts import cell_charts
from harness.report.html import render_html
from harness.report.summary import render_summary
from tests.report.runs import cell, plain, unpacked, with_verdicts

XSS = "<script>alert(1)</script>"


def _records() -> list[dict]:
    records = with_verdicts([cell("m", "float32", seed=1), cell("m", "int8"), cell(XSS, "int16x8")])
    curve = [[i, "Infinity" if i == 0 else 40.0 - i / 10] for i in range(200)]
    ranked = [{"position": 199, "op": "CONV_2D", "tensor": XSS, "snr_db": 20.1}]
    records[1]["diagnosis"] = {"route": "litert_quantizer.validate", "snr_curve": curve, "ranked": ranked,
                               "cross_check": {"agrees": True}}
    records[2]["recovery"] = {"metric": "top1", "met": True, "float_layers": ["ln"],
                              "steps": [{"float_layers": 0, "metric": 0.76, "size_bytes": 243_100, "latency_ms": 0.79},
                                        {"float_layers": 1, "metric": 0.82, "size_bytes": 240_400, "latency_ms": 0.73}]}
    return records


def test_cell_charts_are_valid_bounded_and_in_the_cells_details() -> None:
    records = _records()
    figures = cell_charts(records)
    assert [f["id"] for f in figures] == ["layer-snr-1", "recovery-2"]
    for figure in figures:
        go.Figure(data=figure["data"], layout=figure["layout"])  # raises on any unknown property
        assert len(str(figure)) < 12_000
    assert max(figures[0]["data"][0]["y"]) == 120.0  # an exact tensor drawn at the cap
    assert "&lt;script&gt;" in figures[1]["title"] or "&lt;script&gt;" in figures[1]["layout"]["title"]["text"]
    page = unpacked(render_html(records, {"suite": "s", "started_at": "2026"}, None, [], []))
    cell_1 = page.index('id="cell-1"')
    assert cell_1 < page.index('id="layer-snr-1"') < page.index('id="cell-2"') < page.index('id="recovery-2"')
    assert XSS not in page.split('<script type="application/json"')[0]


def test_summary_has_a_numerics_section() -> None:
    summary = render_summary(_records(), {"suite": "s"})
    section = plain(summary.split("## Numerics")[1])
    assert "litert_quantizer.validate, agrees" in section and "20.1 dB" in section and "<script>" in section
    assert "\\<script\\>" in summary and XSS not in summary
    assert "1 float layer(s), top1 bound met" in section
    assert "## Numerics" not in render_summary(_records()[:1], {"suite": "s"})
