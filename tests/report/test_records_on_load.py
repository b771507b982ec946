"""Hand-edited or damaged results.jsonl: records are checked on load (file, line, field; exit 2),
and every record that passes the check renders and compares without a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.compare import compare_runs
from harness.record import RecordError, validate_record
from harness.report.html import SuiteSettings, render_html
from harness.report.junit import render_junit
from harness.report.summary import render_summary
from tests.conftest import run_bench
from tests.report.runs import XSS, standard_cells, write_run

BAD_FIELDS: list[tuple[str, Any, str]] = [
    ("status", 3, "status"),
    ("status", "great", "status"),
    ("model", None, "model"),
    ("metrics", "0.9", "metrics"),
    ("metrics", {"top1": "high"}, "metrics.top1"),
    ("verdicts", {"check": "x"}, "verdicts"),
    ("verdicts", [{"check": "top1.min"}], "verdicts.0.metric"),
    ("latency_ms", [1, 2], "latency_ms"),
    ("latency_ms", {"median": "fast"}, "latency_ms.median"),
    ("latency_samples_ms", ["a"], "latency_samples_ms.0"),
    ("size_bytes", "4 MB", "size_bytes"),
    ("artifact", "model.tflite", "artifact"),
]


@pytest.mark.parametrize("key, value, field", BAD_FIELDS)
def test_a_mistyped_field_names_file_line_and_field(key: str, value: Any, field: str) -> None:
    record = standard_cells()[1]
    with pytest.raises(RecordError) as caught:
        validate_record({**record, key: value})
    assert caught.value.field == field


@pytest.mark.parametrize("command", ["report", "compare"])
def test_bench_report_and_compare_refuse_a_mistyped_record_in_one_line(tmp_path: Path, command: str) -> None:
    first = write_run(tmp_path, standard_cells(), index=0)
    second = write_run(tmp_path, standard_cells(seed=1), index=1)
    lines = (second / "results.jsonl").read_text().splitlines()
    broken = json.loads(lines[1])
    broken["metrics"]["top1"] = "0.9!"
    lines[1] = json.dumps(broken)
    (second / "results.jsonl").write_text("\n".join(lines) + "\n")
    args = ["report", str(second)] if command == "report" else ["compare", str(first), str(second)]
    done = run_bench(*args, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{second / 'results.jsonl'}:2: metrics.top1: Input should be a valid number" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("key, value", [("started_at", 5), ("plan", "abc"), ("devices", ["x"]), ("suite", None)])
def test_bench_report_refuses_a_mistyped_run_json_in_one_line(tmp_path: Path, key: str, value: Any) -> None:
    run_dir = write_run(tmp_path, standard_cells(), info={key: value})
    done = run_bench("report", str(run_dir), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr and f"run.json: {key}" in done.stderr


def test_summary_escapes_the_devices_line_and_start_time(tmp_path: Path) -> None:
    info = {"suite": "s", "started_at": f"2026|{XSS}", "devices": {f"ph|{XSS}": {"core": f"<b>{XSS}"}}}
    text = render_summary(standard_cells(), info)
    assert XSS not in text and "<b>" not in text and "2026\\|" in text


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                     max_leaves=8)
_FIELDS = ["status", "metrics", "verdicts", "latency_ms", "latency_samples_ms", "size_bytes", "gzip_bytes",
           "weights", "artifact", "error", "metrics_na", "memory", "timings_s", "model", "io_types"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(_FIELDS), _JSON, min_size=1, max_size=3))
def test_fuzz_a_record_either_is_refused_or_renders(changes: dict[str, Any]) -> None:
    records = standard_cells()
    candidate = {**json.loads(json.dumps(records[1])), **changes}
    try:
        records[1] = validate_record(candidate)  # type: ignore[assignment]
    except RecordError:
        return
    info = {"suite": "fuzz", "started_at": "2026-01-01T00:00:00+00:00"}
    render_summary(records, info)
    comparison = compare_runs(records, standard_cells(seed=3), None)
    render_junit(records, info, comparison)
    render_html(records, info, comparison, [], [], SuiteSettings())
