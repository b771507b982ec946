"""The rich table printed at the end of `bench run`."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from harness.report.rows import build_rows, fmt

_STYLE = {"pass": "green", "FAIL": "bold red", "failed": "red", "n/a": "yellow"}


def results_table(records: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=Text(title), header_style="bold",  # Text: user strings are never markup
                  caption=Text("latency ×: paired with float [95 % interval] where timed in pairs, "
                               "≈1 (n.s.) when it holds 1; (busy): other work on the pinned core"))
    for column, justify in [("model", "left"), ("scheme", "left"), ("device", "left"), ("metric", "right"),
                            ("Δ float", "right"), ("agree", "right"), ("size MB", "right"), ("×", "right"),
                            ("latency ms", "right"), ("×", "right"), ("verdict", "left")]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in build_rows(records):
        metric = f"{row.headline} {fmt(row.value, '.4f')}" if row.headline else "–"
        verdict = Text(row.verdict, style=_STYLE.get(row.verdict, ""))
        if row.checks_failed:
            verdict.append(" " + ", ".join(row.checks_failed), style="red")
        elif row.status != "ok" and row.error:
            verdict.append(" " + row.error[:80], style="dim")
        cells = [row.model, row.scheme, row.device, metric, fmt(row.delta, "+.4f"), fmt(row.agreement, ".4f"),
                 fmt(row.size_mb, ".3f"), fmt(row.size_ratio, ".2f"),
                 fmt(row.latency_ms, ".4g") + (f" ({row.thermal})" if row.thermal else ""),
                 row.latency_ratio_text]
        table.add_row(*(Text(str(c)) for c in cells), verdict)
    return table
