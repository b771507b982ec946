"""publish_run: the three report files, history, the comparison, escaping, and a broken history store."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from harness.errors import HarnessError
from harness.history import History, HistoryError
from harness.report.publish import publish_run
from tests.report.big import big_suite
from tests.report.runs import THRESHOLDS, XSS, cell, plain, standard_cells, unpacked, with_verdicts, write_run
from tests.suite.test_loader import VALID as VALID_SUITE

XSD = Path(__file__).with_name("junit.xsd")


def mixed_cells(seed: int = 0, **planted) -> list[dict]:
    """Standard cells plus a model named like an XSS payload with a failed and an n/a cell."""
    return standard_cells(seed, **planted) + with_verdicts([
        cell(XSS, "float32", top1=0.8, seed=seed + 7),
        cell(XSS, "int8", status="failed", error=f"RuntimeError: {XSS} \x1b[31mred\x1b[0m & more"),
        cell(XSS, "int16x8", status="n/a", error="no calibration dataset configured"),
    ])


def test_first_run_writes_reports_and_history(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, mixed_cells())
    result = publish_run(run_dir, tmp_path / "history.sqlite", thresholds=THRESHOLDS)
    assert [p.name for p in result.files] == ["summary.md", "report.html", "junit.xml"]
    assert all(p.stat().st_size for p in result.files)
    assert result.comparison is None and result.history_id == 1 and result.warnings == []
    assert "No earlier run of this suite" in (run_dir / "summary.md").read_text()


def test_second_run_reports_regressions_vs_the_first(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite"
    publish_run(write_run(tmp_path, mixed_cells(0)), history, thresholds=THRESHOLDS)
    run_dir = write_run(tmp_path, mixed_cells(50, slowdown=1.10, top1_drop=0.05), index=1)
    result = publish_run(run_dir, history, thresholds=THRESHOLDS)
    assert result.history_id == 2
    assert {(c.cell, c.quantity) for c in result.regressions} == {
        ("digits_cnn/int8@local", "latency_ms"), ("digits_cnn/dynamic_range@local", "top1")}
    summary = plain((run_dir / "summary.md").read_text())
    assert "## Compared with run #1 (2026-01-05T02:00:00+00:00): **2 regression(s)**" in summary
    assert re.search(r"\| digits_cnn/int8@local \| latency_ms \| .* ×1\.\d+, U=\d+, p=[\d.e-]+ \|.*\*\*REGRESSED\*\*",
                     summary)
    page = unpacked((run_dir / "report.html").read_text())
    assert "2 regression(s) vs run #1" in page and 'id="latency-tests"' in page
    junit = ET.parse(run_dir / "junit.xml").getroot()
    failures = [c.get("name") for c in junit.iter("testcase") if c.find("failure") is not None]
    assert "int8@local: vs previous: latency_ms" in failures and "dynamic_range@local: vs previous: top1" in failures


def test_junit_validates_against_the_schema_and_counts_outcomes(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, mixed_cells(0, top1_drop=0.05))  # dynamic_range breaks top1.max_abs_drop
    publish_run(run_dir, None, thresholds=THRESHOLDS)
    xmlschema.XMLSchema(XSD).validate(run_dir / "junit.xml")
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("1", "1", "1")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert cases[("nightly.digits_cnn", "dynamic_range@local: top1.max_abs_drop")].find("failure") is not None
    assert cases[(f"nightly.{XSS}", "int8@local: run")].find("error").text.startswith("RuntimeError: <script>")
    assert cases[(f"nightly.{XSS}", "int16x8@local: run")].find("skipped") is not None


def test_the_schema_rejects_malformed_junit(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text('<testsuites><testsuite name="s" tests="x"><testcase classname="c"/></testsuite></testsuites>')
    assert not xmlschema.XMLSchema(XSD).is_valid(bad)


def test_a_hostile_model_name_is_escaped_everywhere(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, mixed_cells())
    publish_run(run_dir, None, thresholds=THRESHOLDS)
    page = unpacked((run_dir / "report.html").read_text())
    assert XSS not in page and "alert(1)</" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text in tables
    charts = re.search(r'<script type="application/json" id="quantbench-charts">(.*?)</script>', page, re.S).group(1)
    assert "\\u003c" in charts and "<" not in charts  # inside the embedded JSON too
    # first-screen timing, the packed cells (one chunk), table rows, chart data and plotly, the renderer: nothing injected
    assert page.count("<script") == 6
    summary = (run_dir / "summary.md").read_text()
    assert XSS not in summary and not re.search(r"(?<!\\)<", summary) and XSS in plain(summary)  # every < escaped
    junit = (run_dir / "junit.xml").read_text()
    assert XSS not in junit and "&lt;script&gt;alert(1)&lt;/script&gt;" in junit and "\x1b" not in junit
    assert ET.parse(run_dir / "junit.xml").getroot().find(f"testsuite/testcase[@classname='nightly.{XSS}']") is not None


def test_the_page_references_nothing_outside_itself(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, mixed_cells())
    publish_run(run_dir, None, thresholds=THRESHOLDS)
    page = unpacked((run_dir / "report.html").read_text())
    assert not re.search(r"""<(script|link|img|iframe)[^>]*\b(src|href)\s*=""", page, re.I)
    assert "default-src 'none'" in page  # the browser refuses any request the page might try


def test_a_corrupt_history_store_fails_the_run_and_its_files_are_still_written(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite"
    history.write_bytes(b"\x00garbage" * 1000)
    write_run(tmp_path, mixed_cells(0))
    run_dir = write_run(tmp_path, mixed_cells(50, slowdown=1.10), index=1)
    result = publish_run(run_dir, history, thresholds=THRESHOLDS)
    assert len(result.warnings) == 1
    assert re.fullmatch(r"history store .*history\.sqlite cannot be used \(file is not a database\); move it aside "
                        r"to start a new one, or use another file\. The run's own files are written; it is not "
                        r"recorded in history\.", result.warnings[0])
    assert all(p.exists() for p in result.files) and result.history_id is None
    assert result.comparison.previous_label == "run 20260105T020000Z"  # the run directory stands in for history
    assert [c.quantity for c in result.regressions] == ["latency_ms"]
    assert "cannot be used (file is not a database)" in (run_dir / "report.html").read_text()
    assert "> warning: history store" in (run_dir / "summary.md").read_text()
    assert not result.verdict.ok and "HISTORY NOT USED (history store" in result.verdict.detail
    assert result.unrecorded is not None and "file is not a database" in result.unrecorded
    assert "HISTORY NOT USED \\(history store" in (run_dir / "summary.md").read_text()  # escaped Markdown


def test_a_history_write_that_fails_after_the_reports_fails_the_run_and_rewrites_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> int:
        raise HistoryError("history store h.sqlite cannot be used (disk I/O error)")

    run_dir = write_run(tmp_path, mixed_cells(0))
    monkeypatch.setattr(History, "record", refuse)
    result = publish_run(run_dir, tmp_path / "h.sqlite", thresholds=THRESHOLDS)
    assert result.history_id is None and result.unrecorded == "history store h.sqlite cannot be used (disk I/O error)"
    assert not result.verdict.ok and f"HISTORY NOT USED ({result.unrecorded})" in result.verdict.detail
    assert "HISTORY NOT USED \\(history store h\\.sqlite" in (run_dir / "summary.md").read_text()
    assert "HISTORY NOT USED" in (run_dir / "report.html").read_text()


def test_without_a_suite_file_metric_changes_are_not_judged(tmp_path: Path) -> None:
    write_run(tmp_path, mixed_cells(0))
    run_dir = write_run(tmp_path, mixed_cells(50, top1_drop=0.3), index=1)
    result = publish_run(run_dir, None)
    assert result.regressions == []
    assert any("listed but not judged" in w and "gone.yaml" in w for w in result.warnings)


@pytest.mark.parametrize(("regression", "flagged"), [("", ["latency_ms"]), ("regression: {min_latency_ratio: 1.2}\n", [])])
def test_the_suite_file_sets_how_slow_is_a_regression(tmp_path: Path, regression: str, flagged: list[str]) -> None:
    """A 10 % slowdown is a regression by default (ratio >= 1.05); a suite on noisy hosts may ask for 20 %."""
    suite = tmp_path / "nightly.yaml"
    suite.write_text(f"{VALID_SUITE}{regression}")
    write_run(tmp_path, mixed_cells(0), info={"suite_path": str(suite)})
    run_dir = write_run(tmp_path, mixed_cells(50, slowdown=1.10), index=1, info={"suite_path": str(suite)})
    result = publish_run(run_dir, None)
    assert [c.quantity for c in result.regressions] == flagged and result.warnings == []
    assert f"ratio ≥ {1.2 if regression else 1.05:g}" in (run_dir / "summary.md").read_text()


def test_an_empty_run_directory_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no records in results.jsonl"):
        publish_run(tmp_path, None)


def test_weight_statistics_are_shown_per_cell_and_per_kernel(tmp_path: Path) -> None:
    records = mixed_cells()
    layer = {"layer": XSS, "op": "CONV_2D", "dtype": "float32", "shape": [8, 3, 3, 1], "weights": 72, "zeros": 36,
             "sparsity": 0.5, "unique": 37, "unique_per_channel_max": 5, "sparse_encoded": False}
    records[1]["weights"] = {"layers": [layer], "weights": 72, "zeros": 36, "sparsity": 0.5, "max_unique": 37,
                             "max_unique_per_channel": 5}
    run_dir = write_run(tmp_path, records)
    publish_run(run_dir, None, thresholds=THRESHOLDS)
    page = unpacked((run_dir / "report.html").read_text())
    details = page[page.index('<div id="cells">'):page.index("<h2 id=\"comparison\">")]
    weights = details[details.index('<details class="cell" id="cell-1">'):details.index('id="cell-2"')]
    assert details.count('<details class="weights">') == 1 and '<details class="weights">' in weights
    assert "sparsity 0.500, at most 5 distinct values per channel" in weights
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</td><td>CONV_2D</td>" in weights and XSS not in weights
    row = next(line for line in plain((run_dir / "summary.md").read_text()).splitlines()
               if f"| {records[1]['scheme']} |" in line and line.startswith(f"| {records[1]['model']} "))
    assert "| 0.500 | 5 |" in row


def test_audit_is_shown_per_cell(tmp_path: Path) -> None:
    records = mixed_cells()
    records[1]["audit"] = {
        "op_count": 3, "ops_by_kind": {"float": 1, "int8": 2, "int16": 0, "other": 0}, "hybrid_ops": 0,
        "ops": {"CONV_2D": {"count": 2, "float": 0, "int8": 2, "int16": 0, "other": 0, "hybrid": 0},
                XSS: {"count": 1, "float": 1, "int8": 0, "int16": 0, "other": 0, "hybrid": 0}},
        "stayed_float": [{"op": XSS, "count": 1, "reason": None, "outputs": ["x"]}], "integer_only": False,
        "integer_only_breakers": [f"{XSS} ×1 runs in float"], "bytes_by_dtype": {"int8": 396, "int32": 28},
        "bytes_by_role": {"weights": 396, "biases": 28, "constants": 0, "metadata": 0, "structure": 2000},
        "file_bytes": 2424, "buffer_layout": "offset"}
    records[1]["delegates"] = {"delegation": {"delegate": "TfLiteGpuDelegateV2", "nodes": 9, "total": 11,
                                              "partitions": 2, "ratio": 9 / 11, "fully_delegated": False}}
    profile = [{"node_type": "CONV_2D", "avg_ms": 2.5}, {"node_type": "DEQUANTIZE", "avg_ms": 0.75}]
    records[1]["op_profile"] = {"summary_by_node_type": profile}
    base = next(r for r in records if r["model"] == records[1]["model"] and r["scheme"] == "float32")
    base["op_profile"] = {"summary_by_node_type": [{"node_type": "CONV_2D", "avg_ms": 1.25}]}
    run_dir = write_run(tmp_path, records)
    publish_run(run_dir, None, thresholds=THRESHOLDS)
    page = unpacked((run_dir / "report.html").read_text())
    cells = page[page.index('<div id="cells">'):page.index("<h2 id=\"comparison\">")]
    audit = " ".join(cells[cells.index('id="cell-1"'):cells.index('id="cell-2"')].split())
    assert cells.count('<details class="audit">') == 1 and "3 ops (1 float, 2 int8, 0 int16), integer only: no" in audit
    assert "TfLiteGpuDelegateV2 took 9 of 11 nodes in 2 partition(s)" in audit
    assert "parentheses): CONV_2D 2.5 (1.25), DEQUANTIZE 0.75</p>" in audit
    assert "int8 396 B, int32 28 B" in audit and "(offset buffers)" in audit and XSS not in audit
    assert "float ops 1; integer only no." in audit


def test_a_30_cell_report_embeds_summaries_not_samples(tmp_path: Path) -> None:
    """3 models × 10 schemes with 1,000 samples each: the page was 31 MB for 30 cells when it embedded them."""
    records = big_suite(3, 10)
    run_dir = write_run(tmp_path, records)
    publish_run(run_dir, None, thresholds=THRESHOLDS)
    page = unpacked((run_dir / "report.html").read_text())
    size = len(page.encode())
    print(f"\n30-cell report.html: {size / 1e6:.2f} MB")
    assert size < 5_500_000  # plotly's bundle is about 4.6 MB of it
    assert page.count(f"{records[1]['latency_samples_ms'][500]:.6g}") <= 1
    assert "1000 samples kept in results.jsonl (not embedded)" in page
