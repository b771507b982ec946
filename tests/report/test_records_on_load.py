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
    # nested parts the reports read (issue 20, item 11)
    ("audit", {"ops_by_kind": "x"}, "audit.ops_by_kind"),
    ("audit", {"ops": [1, 2]}, "audit.ops"),
    ("audit", {"integer_only": "yes"}, "audit.integer_only"),
    ("delegates", {"delegation": "x"}, "delegates.delegation"),
    ("delegates", {"delegation": {"ratio": "all"}}, "delegates.delegation.ratio"),
    ("op_profile", [1, 2], "op_profile"),
    ("op_profile", {"summary_by_node_type": [{"node_type": "CONV_2D", "avg_ms": "slow"}]},
     "op_profile.summary_by_node_type.0.avg_ms"),
    ("recovery", {"float_layers": 5}, "recovery.float_layers"),
    ("recovery", {"steps": [{"float_layers": "two"}]}, "recovery.steps.0.float_layers"),
    # the parts typed for issue 22: latency statistics, setup, A/B re-timing, technique, outputs
    ("latency_ms", {"repeat_medians": ["fast"]}, "latency_ms.repeat_medians.0"),
    ("latency_ms", {"repeats": "three"}, "latency_ms.repeats"),
    ("latency_setup", {"benchmark_binary": {"sha256": 5}}, "latency_setup.benchmark_binary.sha256"),
    ("latency_setup", {"remote_calls": "adb shell"}, "latency_setup.remote_calls"),
    ("latency_ab", {"pairs": [["a", 1.0]]}, "latency_ab.pairs.0.0"),
    ("latency_ab", {"ci": "narrow"}, "latency_ab.ci"),
    ("technique", {"untouched": [{"layer": "dense", "reason": 7}]}, "technique.untouched.0.reason"),
    ("outputs", [{"name": "y", "snr_db": "good"}], "outputs.0.snr_db"),
    ("scheme_options", {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}, "scheme_options"),
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


@pytest.mark.parametrize("line", [
    '{"op_profile": [1, 2]}', '{"recovery": {"float_layers": 5}}', "[" * 100_000 + "]" * 100_000,
    '{"model": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}"])
def test_a_bad_nested_or_deep_line_is_one_line_exit_2(tmp_path: Path, line: str) -> None:
    run_dir = write_run(tmp_path, standard_cells())
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    record = json.loads(lines[1])
    lines[1] = json.dumps({**record, **json.loads(line)}) if line.startswith('{"op') or line.startswith('{"rec') else line
    (run_dir / "results.jsonl").write_text("\n".join(lines) + "\n")
    done = run_bench("report", str(run_dir), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout, done.stderr[-2000:]
    assert f"{run_dir / 'results.jsonl'}:2: " in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (run_dir / "summary.md").exists()


def test_a_deeply_nested_run_json_is_one_line_exit_2(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, standard_cells())
    (run_dir / "run.json").write_text('{"notes": ' + "[" * 100_000 + "]" * 100_000 + "}")
    done = run_bench("report", str(run_dir), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "run.json: nested too deeply to read" in done.stderr and len(done.stderr.strip().splitlines()) == 1


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
           "weights", "artifact", "error", "metrics_na", "memory", "timings_s", "model", "io_types",
           "audit", "delegates", "op_profile", "recovery", "diagnosis", "device_numerics", "device_state"]
_NESTED = {"audit": ["ops_by_kind", "ops", "integer_only", "bytes_by_dtype", "bytes_by_role", "stayed_float",
                     "integer_only_breakers", "op_count"],
           "delegates": ["delegation", "partitions", "failures"],
           "op_profile": ["summary_by_node_type", "top_by_computation_time", "run_total"],
           "recovery": ["float_layers", "steps", "metric", "met", "ranking"],
           "diagnosis": ["ranked", "snr_curve", "cross_check", "min_snr_db", "route"],
           "device_numerics": ["status", "outputs", "worst", "reason"]}


_PARTS = st.one_of(*(st.dictionaries(st.sampled_from(keys), _JSON, min_size=1, max_size=3).map(
    lambda part, field=field: {field: part}) for field, keys in _NESTED.items()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(_FIELDS), _JSON, min_size=1, max_size=3) | _PARTS)
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
