"""report.html: one self-contained page (plotly's JS inlined, no network) for a run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from harness.compare import Comparison
from harness.report.charts import TrendRun, build_charts
from harness.report.rows import Row, build_rows, fmt, op_times
from harness.results import incompleteness

_TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Banner:
    """The page's first line: pass, or what went wrong, counted."""

    ok: bool
    text: str


def banner(rows: list[Row], comparison: Comparison | None, incomplete: str | None = None) -> Banner:
    """Threshold violations, regressions vs the earlier run, failed cells and an incomplete run, in one line."""
    violating = sum(1 for r in rows if r.checks_failed)
    failed = sum(1 for r in rows if r.status == "failed")
    parts = [f"INCOMPLETE ({incomplete})"] if incomplete else []
    parts += [f"{violating} cell(s) violate thresholds"] if violating else []
    if comparison and comparison.regressions:
        parts.append(f"{len(comparison.regressions)} regression(s) vs {comparison.previous_label}")
    if failed:
        parts.append(f"{failed} failed cell(s)")
    if parts:
        return Banner(False, "FAIL: " + " · ".join(parts))
    against = f", no regression vs {comparison.previous_label}" if comparison else ""
    return Banner(True, f"PASS: {len(rows)} cells, every check passed{against}")


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The installed plotly package's JS bundle, safe to put inside a <script> element."""
    from plotly.offline import get_plotlyjs

    return re.sub(r"</(script)", r"<\\/\1", get_plotlyjs(), flags=re.IGNORECASE)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["fmt"] = fmt
    env.filters["num"] = lambda value: f"{value:.4g}" if isinstance(value, float) else value
    return env


def render_html(records: list[dict[str, Any]], run_info: dict[str, Any], comparison: Comparison | None,
                trend_runs: list[TrendRun], warnings: list[str]) -> str:
    """The whole page; every string from records, run info or history is escaped by the template."""
    rows = build_rows(records)
    charts = build_charts(rows, records, trend_runs)
    return _environment().get_template("report.html.j2").render(
        suite=str(run_info.get("suite", "?")), run_info=run_info,
        banner=banner(rows, comparison, incompleteness(records, run_info)),
        table=[(row, record.get("verdicts") or []) for row, record in zip(rows, records, strict=True)],
        table_records=list(zip(rows, records, strict=True)),
        audit_cells=list(zip(rows, records, op_times(records), strict=True)),
        problems=[(row, record) for row, record in zip(rows, records, strict=True)
                  if row.status != "ok" or row.checks_failed],
        comparison=comparison, charts=charts, chart_specs=[f for section in charts.values() for f in section],
        trend_runs=len(trend_runs), warnings=warnings, plotly_js=Markup(plotly_js()))
