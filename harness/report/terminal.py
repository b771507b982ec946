"""The rich table printed at the end of `bench run`."""

from __future__ import annotations

from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from harness.record import CellRecord
from harness.report.rows import Row, build_rows, fmt

_STYLE = {"pass": "green", "FAIL": "bold red", "failed": "red", "n/a": "yellow"}
ERROR_CHARS = 240  # an error longer than this is cut at a word, saying where its full text is
FULL_TEXT_AT = "full text in summary.md"


def clip_words(text: str, limit: int, where: str = FULL_TEXT_AT) -> str:
    """`text` on one line; if longer than `limit` characters, cut at the last word that fits, then
    " … (`where`)". Only a single word longer than `limit` is cut inside itself."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else text[:limit]
    return f"{cut} … ({where})"


def results_table(records: list[CellRecord], title: str) -> Table:
    table = Table(title=Text(title), header_style="bold",  # Text: user strings are never markup
                  caption=Text("latency ×: paired with float [95 % interval] where timed in pairs, "
                               "≈1 (n.s.) when it holds 1; (busy): other work on the pinned core"))
    columns: list[tuple[str, JustifyMethod]] = [("model", "left"), ("scheme", "left"), ("device", "left"), ("metric", "right"),
                            ("Δ float", "right"), ("agree", "right"), ("size MB", "right"), ("×", "right"),
                            ("latency ms", "right"), ("×", "right"), ("verdict", "left")]
    for column, justify in columns:
        # wrapped at word boundaries; a word wider than its column folds onto the next line, never cut off
        table.add_column(column, justify=justify, overflow="fold")
    for row in build_rows(records):
        metric = f"{row.headline} {fmt(row.value, '.4f')}" if row.headline else "–"
        cells = [row.model, row.scheme, row.device, metric, fmt(row.delta, "+.4f"), fmt(row.agreement, ".4f"),
                 fmt(row.size_mb, ".3f"), fmt(row.size_ratio, ".2f"),
                 fmt(row.latency_ms, ".4g") + (f" ({row.thermal})" if row.thermal else ""),
                 row.latency_ratio_text]
        table.add_row(*(Text(str(c)) for c in cells), _verdict(row))
    return table


def _verdict(row: Row) -> Text:
    """The verdict, then the failed checks, or a failed/n/a cell's error (cut at a word past ERROR_CHARS)."""
    verdict = Text(row.verdict, style=_STYLE.get(row.verdict, ""))
    if row.checks_failed:
        verdict.append(" " + ", ".join(row.checks_failed), style="red")
    if row.status != "ok" and row.error:
        verdict.append(" " + clip_words(row.error, ERROR_CHARS), style="dim")
    return verdict
