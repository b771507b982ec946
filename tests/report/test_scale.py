"""The reports at 10,000 cells (issue 25): the recorded real `suites/cnn.yaml` run repeated (tests/benchmarks/
scale.py), with a failed cell and a cell violating a check in every tenth copy. Sizes are asserted, times
are not (tests/benchmarks/report_scale.py measures them)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from harness.record import record_id
from harness.report.html import OVERVIEW_MODELS, SuiteSettings, render_html
from harness.report.publish import SUMMARY_BYTES, bounded_summary, comparison_markdown
from harness.report.summary import POINTER, PROBLEMS_SHOWN, render_summary
from tests.benchmarks.scale import scaled_records
from tests.report.big import big_suite
from tests.report.runs import plain, table_rows, unpacked, with_verdicts

CELLS = 10_000


@pytest.fixture(scope="module")
def records() -> list[Any]:
    return list(scaled_records(CELLS, failing_every=10))


def failing(records: list[Any]) -> list[str]:
    return [record_id(r) for r in records
            if r["status"] != "ok" or any(not v["pass"] for v in r.get("verdicts") or [])]


def test_summary_md_at_10000_cells_is_bounded_and_lists_the_worst_cells_first(records: list[Any]) -> None:
    text = bounded_summary(render_summary(records, {"suite": "cnn"}) + comparison_markdown(None, []))
    assert len(text.encode("utf-8")) <= SUMMARY_BYTES
    seen = plain(text)
    bad = failing(records)
    assert len(bad) == 132  # 33 copies × 2 models × (a failed cell, a violating one)
    assert f"{CELLS} cells: 9868 pass, 66 violate a check, 66 failed to run." in seen
    problems = re.findall(r"^- (\S+) \((\w+)\)", seen[seen.index("## Problems"):], re.M)
    assert len(problems) == PROBLEMS_SHOWN and [s for _, s in problems[:66]] == ["failed"] * 66  # failed first
    assert all(cell in bad for cell, _ in problems)
    assert f"and {len(bad) - PROBLEMS_SHOWN} more cell(s) (the worst {PROBLEMS_SHOWN} of {len(bad)} are listed)" in seen
    assert POINTER in seen  # the rest: report.html, checked below
    assert "| tutorial_cnn | prune80 | 334 | 334 | 301 | 33 | 0 | 0 | 0 |" in seen  # the overview per model family
    assert "| mobile_cnn | int8 | 333 | 333 | 300 | 0 | 0 | 33 | 0 |" in seen
    assert "tutorial_cnn_0000/float16" not in seen  # no row per cell at this size


def test_summary_md_lists_every_problem_when_they_are_few(records: list[Any]) -> None:
    few = records[:300]  # ten copies: one with problems
    seen = plain(render_summary(few, {"suite": "cnn"}))
    assert sorted(re.findall(r"^- (\S+) \(", seen, re.M)) == sorted(failing(few))
    assert "more cell(s)" not in seen


def test_bounded_summary_cuts_at_a_line_under_the_bound() -> None:
    text = "".join(f"line {i} {'é' * 50}\n" for i in range(40_000))
    cut = bounded_summary(text)
    assert len(cut.encode("utf-8")) <= SUMMARY_BYTES and cut.endswith("the whole report is report.html beside it)\n")
    assert text.startswith(cut[:cut.index("\n\n(summary.md cut")])


@pytest.mark.slow  # renders 10,000 cells' details (seconds)
def test_report_html_at_10000_cells_is_bounded_and_reaches_every_failing_cell(records: list[Any]) -> None:
    page = render_html(records, {"suite": "cnn", "started_at": "2026-12-06T21:48:57+00:00"}, None, [], [],
                       SuiteSettings())
    assert len(page.encode("utf-8")) <= 15_000_000, f"{len(page) / 1e6:.1f} MB"
    rows = table_rows(page)
    assert [r[0] for r in rows] == list(range(CELLS))
    bad = set(failing(records))
    flagged = {f"{r[1]}/{r[2]}@{r[3]}" for r in rows if r[5] in ("failed", "fail")}
    assert flagged == bad  # the cells table's verdict filter finds every one
    assert re.search(r'<h2 id="attention">Needs attention: 132 cell\(s\)</h2>', page)
    details = unpacked(page)
    for index, record in enumerate(records):
        if record_id(record) in bad:
            assert f'<details class="cell" id="cell-{index}">' in details
    assert details.count('<details class="cell" id="cell-') == CELLS


def test_the_overview_shows_40_models_those_that_need_attention_first() -> None:
    records = with_verdicts(big_suite(60, 3, samples=10))
    records[-1]["verdicts"][0]["pass"] = False  # model_59's last cell violates a check
    page = render_html(records, {"suite": "big", "started_at": "2026"}, None, [], [], SuiteSettings())
    overview = page[page.index('id="overview"'):page.index('id="recommendation"')]
    models = re.findall(r'<th scope="row" class="model">([^<]*)</th>', overview)
    flagged = list(dict.fromkeys(html.escape(r["model"], quote=False) for r in records
                                 if any(not v["pass"] for v in r["verdicts"])))
    assert "model_59" in flagged and 1 < len(flagged) < OVERVIEW_MODELS
    assert models[:len(flagged)] == flagged and len(models) == OVERVIEW_MODELS  # then the rest, in order
    assert "40 of 60 models shown" in " ".join(overview.split())
    assert len(table_rows(page)) == 180  # the cells table has every one
