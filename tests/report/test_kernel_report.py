"""The cross-kernel check and XNNPACK acceleration in report.html's cell details and summary.md's problems."""

from __future__ import annotations

from harness.report.html import render_html
from harness.report.summary import render_summary
from tests.report.runs import cell, unpacked, with_verdicts


def _records() -> list[dict]:
    base, int4 = cell("mlp", "float32"), cell("mlp", "int4")
    int4["metrics"]["kernel_gap_db"] = 22.5
    int4["kernel_paths"] = {"xnnpack": 23.5, "builtin": 1.0, "reference": 0.0}
    int4["evaluation"] = {"kernels": "xnnpack", "kernel_samples": 32}
    int4["acceleration"] = {"delegate": "XNNPACK", "nodes": 3, "delegated_nodes": 3, "partitions": 1,
                            "fully_accelerated": True, "ratio": 1.0, "fully_delegated": True}
    return with_verdicts([base, int4])


def test_failing_kernel_gap_is_shown_per_cell() -> None:
    records = _records()
    assert [v["pass"] for v in records[1]["verdicts"] if v["metric"] == "kernel_gap_db"] == [False]
    summary = render_summary(records, {"suite": "s"}).replace("\\", "")  # the escapes user strings get
    assert "kernel_gap_db.max" in summary
    assert "xnnpack 23.5 dB, builtin 1.0 dB, reference 0.0 dB" in summary
    page = unpacked(render_html(records, {"suite": "s", "started_at": "2026"}, None, [], []))
    assert "evaluated on xnnpack" in page and "kernel_gap_db 22.5" in page
    assert "XNNPACK took 3 of 3 nodes" in page
