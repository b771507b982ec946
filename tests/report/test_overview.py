"""The first screen: verdict matrices, the cells that need attention, the recommendation, and AA contrast."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.compare import compare_runs
from harness.report.html import SuiteSettings, render_html, suite_settings
from harness.report.overview import attention, classify, matrices, recommend, scheme_family
from harness.report.rows import build_rows
from tests.report.runs import XSS, cell, standard_cells, unpacked, with_verdicts

TEMPLATE = Path(__file__).resolve().parents[2] / "harness" / "report" / "templates" / "report.html.j2"


def cells_of(records: list[dict], comparison=None):
    return classify(build_rows(records), records, comparison)


def suite() -> list[dict]:
    """float32; int8 (smallest, slower than float16 here); float16 (fast, bigger); dynamic_range failing top1."""
    return with_verdicts([
        cell("m", "float32", top1=0.91, size_bytes=4_000_000, latency_ms=10.0),
        cell("m", "int8", top1=0.90, size_bytes=1_000_000, latency_ms=7.0, seed=1),
        cell("m", "float16", top1=0.91, size_bytes=2_000_000, latency_ms=5.0, seed=2),
        cell("m", "int16x8", top1=0.905, size_bytes=2_100_000, latency_ms=9.0, seed=3),  # dominated
        cell("m", "dynamic_range", top1=0.85, size_bytes=900_000, latency_ms=4.0, seed=4),  # fails top1
    ])


@pytest.mark.parametrize("kind, family", [("float32", "baseline"), ("int8", "post-training"), ("qat", "training-time"),
                                          ("prune+cluster", "training-time"), ("prune+int8", "combined"),
                                          ("cluster+qat", "training-time")])
def test_scheme_family(kind: str, family: str) -> None:
    assert scheme_family(kind) == family


def test_recommendation_is_on_the_passing_pareto_front_and_follows_the_rule() -> None:
    cells = cells_of(suite())
    smallest, = recommend(cells, "smallest")
    assert [c.row.scheme for c in smallest.front] == ["int8", "float16"] and smallest.candidates == 3
    assert smallest.pick.row.scheme == "int8" and smallest.branch == "data"
    fastest, = recommend(cells, "fastest")
    assert fastest.pick.row.scheme == "float16" and fastest.branch == "no-data"


def test_no_passing_cell_recommends_nothing() -> None:
    records = with_verdicts([cell("m", "float32"), cell("m", "int8", top1=0.5, size_bytes=1_000_000)])
    only, = recommend(cells_of(records), "smallest")
    assert only.pick is None and only.front == [] and only.branch == ""


def test_a_regressed_cell_needs_attention_and_is_not_recommended() -> None:
    previous, current = standard_cells(0), standard_cells(10, slowdown=1.3)
    cells = cells_of(current, compare_runs(current, previous, None))
    int8 = next(c for c in cells if c.row.scheme == "int8")
    assert int8.state == "regressed" and int8.reason.startswith("regressed: latency_ms vs previous run")
    assert [c.row.scheme for c in attention(cells)] == ["int8"]
    assert recommend(cells, "smallest")[0].pick.row.scheme == "dynamic_range"


def test_matrices_per_metric_and_device_and_failed_cells_join_their_model() -> None:
    records = standard_cells() + with_verdicts([
        cell("m", "float32", device="phone"), cell("m", "int8", device="phone", status="failed", error="boom\nlast")])
    found = matrices(cells_of(records))
    assert [(m.metric, m.device) for m in found] == [("top1", "local"), ("top1", "phone")]
    assert found[1].schemes == ["float32", "int8"] and found[1].cells[("m", "int8")].state == "failed"
    assert found[1].cells[("m", "int8")].reason == "last"
    assert [c.state for c in attention(cells_of(records))] == ["failed"]


def test_the_page_shows_overview_recommendation_and_escapes(tmp_path: Path) -> None:
    records = suite() + with_verdicts([cell(XSS, "float32"), cell(XSS, "int8", size_bytes=1_000_000)])
    page = unpacked(render_html(records, {"suite": "s", "started_at": "2026"}, None, [], [], SuiteSettings("fastest")))
    overview = page[page.index('<section id="overview"'):page.index('<section id="recommendation"')]
    assert overview.count("<table class=\"matrix\">") == 1 and overview.count('<a href="#cell-') == len(records)
    assert "✗ -0.060" in overview and "0.25×·0.70×" in overview  # dynamic_range's drop; int8's size × and latency ×
    recommendation = page[page.index('<section id="recommendation"'):page.index("<h2 id=\"cells-title\">")]
    assert "<code>recommend: fastest</code>" in recommendation and '<a href="#cell-2"><b>float16</b></a>' in recommendation
    assert "no representative data → dynamic range or float16" in recommendation  # the tree
    assert "<td>1. no representative data</td>" in recommendation  # float16's branch of it
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in recommendation


def test_the_rule_is_read_from_the_suite_file(tmp_path: Path) -> None:
    source = (Path(__file__).resolve().parents[2] / "suites" / "cnn.yaml").read_text()
    suite_file = tmp_path / "cnn.yaml"
    suite_file.write_text(source + "\nrecommend: fastest\n")
    assert suite_settings({"suite_path": str(suite_file)}) == SuiteSettings("fastest", 1.30)
    assert suite_settings({"suite_path": str(tmp_path / "gone.yaml")}) == SuiteSettings()
    assert suite_settings({}) == SuiteSettings("smallest", 1.05)


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_colours_meet_wcag_aa() -> None:
    """Every state's text on its background, and every coloured text on white, at least 4.5:1."""
    css = TEMPLATE.read_text()
    pairs = re.findall(r"\.s-[\w-]+ \{ background: (#[0-9a-f]{6}); color: (#[0-9a-f]{6}); \}", css)
    assert len(pairs) == 6
    on_white = re.findall(r"\.(?:pass|fail|na|meta) \{ color: (#[0-9a-f]{6})", css) + ["#0b4f9c", "#1a1a1a"]
    assert len(on_white) >= 6
    for background, text in pairs + [("#ffffff", c) for c in on_white] + [("#f2f2f2", "#1a1a1a")]:
        assert contrast(background, text) >= 4.5, (background, text, contrast(background, text))


def test_cell_details_show_per_output_numbers_escaped() -> None:
    records = suite()
    records[1]["outputs"] = [{"name": XSS, "dtype": "float32", "shape": [1, 10], "snr_db": 31.25, "max_abs": 0.5},
                             "not an output"]
    page = unpacked(render_html(records, {"suite": "s", "started_at": "2026"}, None, [], [], SuiteSettings()))
    details = page[page.index('id="cell-1"'):page.index('id="cell-2"')]
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td><td>float32</td><td>1×10</td>" in details
    assert "snr_db 31.25, max_abs 0.5" in details and XSS not in page


def test_cell_details_show_the_paired_ab_retiming() -> None:
    records = suite()
    records[1]["latency_ab"] = {"baseline_run": f"#3 {XSS}", "ratio": 1.081, "ci": [1.02, 1.14],
                                "pairs": [[1.0, 1.1]] * 8, "confidence": 0.95}
    records[2]["latency_ab"] = {"baseline_run": "#3", "unavailable": "model not kept"}
    page = unpacked(render_html(records, {"suite": "s", "started_at": "2026"}, None, [], [], SuiteSettings()))
    assert "paired A/B vs #3 &lt;script&gt;alert(1)&lt;/script&gt;: ×1.081 [1.020, 1.140] over 8 pairs." in page
    assert "paired A/B vs #3 unavailable: model not kept." in page


def test_many_problems_show_the_worst_ten_and_fold_the_rest() -> None:
    records = with_verdicts([cell("m", "float32")] + [
        cell("m", f"int8_{i}", top1=0.5, size_bytes=1_000_000) for i in range(11)] + [
        cell("m", "broken", status="failed", error="Traceback ...\nValueError: bad")])
    page = unpacked(render_html(records, {"suite": "s", "started_at": "2026"}, None, [], [], SuiteSettings()))
    problems = page[page.index('<div id="problems">'):page.index('<section id="overview"')]
    shown, folded = problems.split('<details class="more">')
    assert shown.count("<li>") == 10 and "! failed" in shown.split("<li>")[1]  # failed first
    assert "2 more (worst first" in folded and folded.count("<li>") == 2
    assert "broken@local</b></a>: ValueError: bad" in shown
