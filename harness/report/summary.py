"""summary.md: a short Markdown report fit for a CI step summary or a pull-request comment."""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from harness.compare import Comparison
from harness.record import CellRecord
from harness.report._numerics_charts import summary_lines
from harness.report.markdown import escape_markdown
from harness.report.overview import Cell, classify
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


FULL_TABLE_CELLS = 200  # up to this many cells the table lists every one; beyond, an overview per model family
PROBLEMS_SHOWN = 100  # problem lines listed, worst first; beyond, a count and the pointer to report.html
FAMILIES_SHOWN = 30  # model families in the overview, those with the most problems first
ERROR_CHARS = 4000  # of one cell's error text (results.jsonl and report.html hold all of it)
POINTER = ("Every cell, with its checks, sizes, weights, audit and latency: report.html beside this file (its cells "
           "table filters by model, scheme, device and verdict); every record: results.jsonl.")
_ORDER = {"failed": 0, "fail": 1, "regressed": 2, "na": 3}  # worst first, as report.html's "needs attention"


def render_summary(records: list[CellRecord], run_info: dict[str, Any], verdict: str | None = None,
                   comparison: Comparison | None = None) -> str:
    """summary.md's cells part, bounded at any size: the verdict, counts, the failing and regressed cells first
    (all when few, else the worst PROBLEMS_SHOWN and a count), then every cell's row (up to FULL_TABLE_CELLS
    cells) or an overview per model family, and the pointer to report.html. `verdict` (Markdown) replaces
    the line built from the records alone (publishing passes the run's whole verdict:
    harness.compare.verdict_line); `comparison` adds the cells that regressed vs the earlier run."""
    rows = build_rows(records)
    cells = classify(rows, records, comparison)
    lines = [
        f"# quantbench: {escape_markdown(str(run_info.get('suite', '?')))}",
        "",
        verdict or verdict_line(rows, incompleteness(records, run_info)),
        "",
        f"Run started {escape_markdown(str(run_info.get('started_at', '?')))}; suite sha256 "
        f"{escape_markdown(str(run_info.get('suite_sha256', ''))[:12])}; "
        f"devices: {_devices(run_info)}.",
        "",
        counts_line(cells),
    ]
    lines += _problems(cells, records)
    lines += _table(rows) if len(rows) <= FULL_TABLE_CELLS else family_overview(cells)
    lines += ["", LATENCY_LEGEND]
    lines += _bounded(summary_lines(records, escape_markdown), "numerics line(s)")
    lines += ["", POINTER]
    return "\n".join(lines) + "\n"


def counts_line(cells: list[Cell]) -> str:
    """How many cells passed, violate a check, regressed, failed to run and had no metric (n/a)."""
    counts = Counter(cell.state for cell in cells)
    named = [("pass", counts["pass"] + counts["baseline"]), ("violate a check", counts["fail"]),
             ("regressed", counts["regressed"]), ("failed to run", counts["failed"]), ("n/a", counts["na"])]
    return f"{len(cells)} cells: " + ", ".join(f"{n} {name}" for name, n in named if n or name == "pass") + "."


def _problems(cells: list[Cell], records: list[CellRecord]) -> list[str]:
    """The problems list, worst first: failed, violating a check, regressed, n/a."""
    flagged = sorted((c for c in cells if c.state in _ORDER), key=lambda c: (_ORDER[c.state], c.index))
    if not flagged:
        return []
    lines = [_problem(c.row, c.reason if c.state == "regressed" else "")
             + _kernel_note(c.row, records[c.index].get("kernel_paths")) for c in flagged[:PROBLEMS_SHOWN]]
    more = len(flagged) - len(lines)
    tail = [f"- and {more} more cell(s) (the worst {len(lines)} of {len(flagged)} are listed): every one is in "
            "report.html (its needs-attention list and the cells table's verdict filter) and in results.jsonl"] if more else []
    return ["", "## Problems", "", *lines, *tail]


def _table(rows: list[Row]) -> list[str]:
    lines = [
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
    return lines


def model_family(model: str) -> str:
    """A model's family: its name without a trailing `_N`, `-N` or `.N` number (`cnn_0007`, `cnn_12`: `cnn`)."""
    return re.sub(r"[_.-][0-9]+$", "", model) or model


def family_overview(cells: list[Cell]) -> list[str]:
    """Per model family (those with the most problems first) and scheme: cells, verdicts and the median
    Δ metric, size × and latency × float."""
    families: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells:
        families[model_family(cell.row.model)].append(cell)
    ranked = sorted(families, key=lambda f: -sum(1 for c in families[f] if c.state in _ORDER))
    lines = ["", f"## Overview per model family ({len(cells)} cells: too many to list one by one)", "",
             "| family | scheme | models | cells | pass | FAIL | regressed | failed | n/a | median Δ | median size × "
             "| median latency × |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for family in ranked[:FAMILIES_SHOWN]:
        lines += _family_rows(family, families[family])
    if len(ranked) > FAMILIES_SHOWN:
        lines += ["", f"{len(ranked) - FAMILIES_SHOWN} more model families: in report.html."]
    return lines


def _family_rows(family: str, cells: list[Cell]) -> list[str]:
    by_scheme: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells:
        by_scheme[cell.row.scheme].append(cell)
    lines = []
    for scheme, group in by_scheme.items():
        counts = Counter(c.state for c in group)
        lines.append(f"| {escape_markdown(family)} | {escape_markdown(scheme)} | {len({c.row.model for c in group})} | "
                     f"{len(group)} | {counts['pass'] + counts['baseline']} | {counts['fail']} | {counts['regressed']} | "
                     f"{counts['failed']} | {counts['na']} | {fmt(_median(c.row.delta for c in group), '+.4f')} | "
                     f"{fmt(_median(c.row.size_ratio for c in group), '.2f')} | "
                     f"{fmt(_median(c.row.latency_ratio for c in group), '.2f')} |")
    return lines


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None and math.isfinite(v)]
    return float(statistics.median(known)) if known else None


def _bounded(lines: list[str], what: str) -> list[str]:
    """A section's lines (a heading, a blank, then one line each) cut to PROBLEMS_SHOWN, with a count."""
    head, body = lines[:3], lines[3:]
    if len(body) <= PROBLEMS_SHOWN:
        return lines
    return [*head, *body[:PROBLEMS_SHOWN], f"- and {len(body) - PROBLEMS_SHOWN} more {what}: in report.html"]


def _kernel_note(row: Row, kernel_paths: dict[str, Any] | None) -> str:
    """A failed kernel_gap_db check's SNR per kernel path (the deployed XNNPACK vs LiteRT's others)."""
    if not kernel_paths or not any(name.startswith("kernel_gap_db") for name in row.checks_failed):
        return ""
    return escape_markdown("; kernel paths (worst-output SNR vs float): " + ", ".join(
        f"{path} {float(db):.1f} dB" for path, db in kernel_paths.items()))


def _problem(row: Row, regressed: str = "") -> str:
    """One line of the problems list: the cell, its status, its failed checks, how it regressed and its
    error text (up to ERROR_CHARS; the table's verdict cell stays one word)."""
    details = [f"checks failed: {', '.join(row.checks_failed)}"] if row.checks_failed else []
    details += list(row.check_notes) + ([regressed] if regressed else [])
    details += [_cut(row.error)] if row.status != "ok" and row.error else []
    details += [] if details else ["no reason recorded"]
    return (f"- {escape_markdown(f'{row.model}/{row.scheme}@{row.device}')} ({row.status}): "
            + "; ".join(escape_markdown(d) for d in details))


def _cut(error: str) -> str:
    if len(error) <= ERROR_CHARS:
        return error
    return f"{error[:ERROR_CHARS]}… ({len(error) - ERROR_CHARS} more characters in report.html and results.jsonl)"
