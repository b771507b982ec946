"""summary.md: a short Markdown report fit for a CI step summary or a pull-request comment."""

from __future__ import annotations

from typing import Any

from harness.record import CellRecord
from harness.report._numerics_charts import summary_lines
from harness.report.markdown import escape_markdown
from harness.report.rows import Row, build_rows, fmt
from harness.results import incompleteness


def verdict_line(rows: list[Row], incomplete: str | None = None) -> str:
    failed_checks = sum(1 for r in rows if r.checks_failed)
    failed_cells = sum(1 for r in rows if r.status == "failed")
    if not failed_checks and not failed_cells and not incomplete:
        return f"**PASS**: {len(rows)} cells, every check passed"
    parts = [f"**INCOMPLETE** ({escape_markdown(incomplete)})"] if incomplete else []
    if failed_checks:
        parts.append(f"{failed_checks} cell(s) violate thresholds")
    if failed_cells:
        parts.append(f"{failed_cells} cell(s) failed to run")
    return "**FAIL**: " + ", ".join(parts)


def _devices(run_info: dict[str, Any]) -> str:
    devices = run_info.get("devices") or {}
    if not isinstance(devices, dict):
        return escape_markdown(str(devices))
    return ", ".join(escape_markdown(f"{name} (core {facts.get('core') if isinstance(facts, dict) else '?'})")
                     for name, facts in devices.items()) or "none"


LATENCY_LEGEND = (
    "Latency × float: with an interval, the paired ratio (the float model timed beside the cell in alternating "
    "pairs, latency.float_pairs; 95 % interval), \"≈1 (n.s.)\" when that interval holds 1; a bare number is "
    "the ratio of medians measured apart. \"(busy)\": other work on the pinned core while the cell was measured.")


def render_summary(records: list[CellRecord], run_info: dict[str, Any], verdict: str | None = None) -> str:
    """summary.md's table part; `verdict` (Markdown) replaces the line built from the records alone
    (publishing passes the run's whole verdict, comparison included: harness.compare.verdict_line)."""
    rows = build_rows(records)
    lines = [
        f"# quantbench: {escape_markdown(str(run_info.get('suite', '?')))}",
        "",
        verdict or verdict_line(rows, incompleteness(records, run_info)),
        "",
        f"Run started {escape_markdown(str(run_info.get('started_at', '?')))}; suite sha256 "
        f"{escape_markdown(str(run_info.get('suite_sha256', ''))[:12])}; "
        f"devices: {_devices(run_info)}.",
        "",
        "| model | scheme | device | metric | Δ vs float | agreement | size MB | × float | gzip MB | × float "
        "| sparsity | unique/ch | latency ms | × float | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        metric = f"{row.headline} {fmt(row.value, '.4f')}" if row.headline else "n/a"
        lines.append(
            f"| {escape_markdown(row.model)} | {escape_markdown(row.scheme)} | {escape_markdown(row.device)} | {metric} | "
            f"{fmt(row.delta, '+.4f')} | {fmt(row.agreement, '.4f')} | {fmt(row.size_mb, '.3f')} | "
            f"{fmt(row.size_ratio, '.2f')} | {fmt(row.gzip_mb, '.3f')} | {fmt(row.gzip_ratio, '.2f')} | "
            f"{fmt(row.sparsity, '.3f')} | {row.unique_weights if row.unique_weights is not None else '–'} | "
            f"{fmt(row.latency_ms, '.4g')}{f' ({row.thermal})' if row.thermal else ''} | "
            f"{row.latency_ratio_text} | {row.verdict} |"
        )
    lines += ["", LATENCY_LEGEND]
    lines += summary_lines(records, escape_markdown)
    paths = {(r["model"], r["scheme"], r["device"]): r.get("kernel_paths") for r in records}
    problems = [_problem(r) + _kernel_note(r, paths.get((r.model, r.scheme, r.device)))
                for r in rows if r.checks_failed or r.status != "ok"]
    lines += ["", "## Problems", "", *problems] if problems else []
    return "\n".join(lines) + "\n"


def _kernel_note(row: Row, kernel_paths: dict[str, Any] | None) -> str:
    """A failed kernel_gap_db check's SNR per kernel path (the deployed XNNPACK vs LiteRT's others)."""
    if not kernel_paths or not any(name.startswith("kernel_gap_db") for name in row.checks_failed):
        return ""
    return escape_markdown("; kernel paths (worst-output SNR vs float): " + ", ".join(
        f"{path} {float(db):.1f} dB" for path, db in kernel_paths.items()))


def _problem(row: Row) -> str:
    """One line of the problems list: the cell, its status, its failed checks and its full error text
    (the table's verdict cell stays one word)."""
    details = [f"checks failed: {', '.join(row.checks_failed)}"] if row.checks_failed else []
    details += list(row.check_notes)
    details += [row.error] if row.status != "ok" and row.error else []
    details += [] if details else ["no reason recorded"]
    return (f"- {escape_markdown(f'{row.model}/{row.scheme}@{row.device}')} ({row.status}): "
            + "; ".join(escape_markdown(d) for d in details))
