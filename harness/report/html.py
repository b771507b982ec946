"""report.html: one self-contained page (plotly's JS inlined, no network) for a run."""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, cast

import jinja2
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from harness.compare import Comparison, Verdict, verdict_line
from harness.config.schema import RegressionSpec
from harness.errors import HarnessError
from harness.record import CellRecord, DeviceState, latency_sample
from harness.report.charts import Figure, TrendRun, build_charts, quartiles
from harness.report.overview import (
    DECISION_TREE,
    FAMILY_COLOURS,
    Cell,
    Matrix,
    Rule,
    attention,
    classify,
    matrices,
    recommend,
)
from harness.report.rows import build_rows, fmt, op_times
from harness.results import incompleteness
from harness.schemes import Family
from harness.stats import typical

_TEMPLATES = Path(__file__).resolve().parent / "templates"


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
    env.globals["symbols"] = SYMBOLS
    env.filters["num"] = lambda value: f"{value:.4g}" if isinstance(value, float) else value
    return env


@dataclass(frozen=True)
class SuiteSettings:
    """What the page reads from the suite file: the recommendation rule and the latency step ratio."""

    recommend: Rule = "smallest"
    step_ratio: float = RegressionSpec().min_latency_ratio


def suite_settings(run_info: dict[str, Any]) -> SuiteSettings:
    """From the suite file named in run.json when it can still be read, else the defaults."""
    from harness.suite import load_suite

    if not run_info.get("suite_path"):
        return SuiteSettings()
    try:
        suite = load_suite(str(run_info["suite_path"])).suite
    except HarnessError:
        return SuiteSettings()
    return SuiteSettings(suite.recommend, suite.regression.min_latency_ratio)


def latency_summary(record: CellRecord) -> dict[str, Any] | None:
    """A cell's latency as its details show it: median, interquartile range, p90, repeats and their medians."""
    latency = record.get("latency_ms") or {}
    median = typical(latency)
    if median is None:
        return None
    return {"median": median, "iqr": quartiles(record), "p90": latency.get("p90"),
            "repeats": latency.get("repeats"), "repeat_medians": latency.get("repeat_medians") or [],
            "samples": len(latency_sample(record)), "ab": paired_ab(record),
            "vs_float": paired_vs_float(record), "thermal": thermal_note(record)}


def thermal_note(record: CellRecord) -> str | None:
    """A phone cell's thermal state in words: hottest temperature and thermal status before and
    after, the cool-down's wait, and whether it was measured hot or throttled (None off a phone)."""
    state = record.get("device_state")
    if not isinstance(state, dict) or not isinstance(state.get("before"), dict):
        return None
    parts = [f"{when} {_reading(cast(dict[str, Any], state[when]))}" for when in ("before", "after")
             if isinstance(state.get(when), dict)]
    if state.get("cooldown_s"):
        parts.append(f"cool-down waited {fmt(state['cooldown_s'], '.3g')} s")
    parts += _during(state)
    marks = [name for name in ("hot", "throttled", "busy") if state.get(name) is True]
    head = f"measured {' and '.join(marks).upper()}" if marks else "device state"
    return f"{head}: {'; '.join(parts)}"


def _during(state: DeviceState) -> list[str]:
    """A local cell's pinned core while it was measured, and why it counts as busy (or could not tell)."""
    during = state.get("during")
    if not isinstance(during, dict):
        return []
    other, steal = during.get("other_share"), during.get("steal_share")
    text = (f"while measured, other work {fmt(other, '.0%')} and steal {fmt(steal, '.0%')} of the pinned core "
            f"over {fmt(during.get('watched_s'), '.3g')} s" if other is not None and steal is not None
            else "while measured: too briefly watched to tell")
    return [text] + ([str(state["busy_reason"])] if state.get("busy_reason") else [])


def _reading(reading: dict[str, Any]) -> str:
    if "runnable_on_core" in reading:
        return _host_reading(reading)
    temp = reading.get("max_temp_c")
    text = f"{fmt(temp, '.1f')} °C" if isinstance(temp, (int, float)) else "temperature unread"
    if reading.get("thermal_status_name"):
        text += f", thermal status {reading['thermal_status_name']}"
    return text


def _host_reading(reading: dict[str, Any]) -> str:
    """A local host snapshot: load average, other runnable tasks and busy share of the pinned core, cpufreq."""
    load = reading.get("loadavg")
    parts = [f"load {' '.join(fmt(v, '.2f') for v in load)}" if isinstance(load, list) else "load unread",
             f"{reading.get('runnable_on_core', '?')} other runnable on core {reading.get('core', '?')}"]
    if "core_busy_share" in reading:  # read for a cool-down's max_other_load (None: too short to tell)
        parts.append(f"core {fmt(reading['core_busy_share'], '.0%')} busy")
    if reading.get("freq_khz"):
        parts.append(f"{fmt(reading['freq_khz'] / 1e6, '.2f')} GHz {reading.get('governor', '')}".rstrip())
    return ", ".join(parts)


def paired_vs_float(record: CellRecord) -> str | None:
    """The paired × float in words: pairs, ratio, interval and the unpaired ratio of medians beside it."""
    paired = record.get("latency_vs_float")
    if not isinstance(paired, dict):
        return None
    if paired.get("unavailable"):
        return f"× float not timed in pairs: {paired['unavailable']}"
    ci, ratio = paired.get("ci"), paired.get("ratio")
    if not (isinstance(ci, list) and len(ci) == 2 and isinstance(ratio, (int, float))):
        return None
    verdict = " (n.s.: the interval holds 1)" if ci[0] <= 1 <= ci[1] else ""
    busy = f"; the pairs were timed on a busy core: {paired['busy_reason']}" if paired.get("busy_reason") else ""
    return (f"× float paired over {paired.get('n_pairs')} pairs: ×{fmt(ratio, '.3f')} "
            f"[{fmt(ci[0], '.3f')}, {fmt(ci[1], '.3f')}]{verdict}; unpaired ratio of medians "
            f"×{fmt(paired.get('unpaired_ratio'), '.3f')}{busy}")


def paired_ab(record: CellRecord) -> str | None:
    """The paired A/B re-timing vs the earlier run's model, in words (None without one)."""
    ab = record.get("latency_ab")
    if not isinstance(ab, dict):
        return None
    if ab.get("unavailable"):
        return f"paired A/B vs {ab.get('baseline_run', 'the earlier run')} unavailable: {ab['unavailable']}"
    ci, ratio, pairs = ab.get("ci"), ab.get("ratio"), ab.get("pairs")
    if not (isinstance(ci, list) and len(ci) == 2 and isinstance(ratio, (int, float)) and isinstance(pairs, list)):
        return None
    return (f"paired A/B vs {ab.get('baseline_run', 'the earlier run')}: ×{fmt(ratio, '.3f')} "
            f"[{fmt(ci[0], '.3f')}, {fmt(ci[1], '.3f')}] over {len(pairs)} pairs")


def output_numbers(record: CellRecord) -> list[tuple[str, str, str, list[tuple[str, Any]]]]:
    """Per model output: name, dtype, shape and its numbers vs the float model (snr_db, ...); [] without them."""
    outputs = record.get("outputs")
    if not isinstance(outputs, list):
        return []
    return [(str(o.get("name", "?")), str(o.get("dtype", "?")), "×".join(str(d) for d in o.get("shape") or []),
             [(str(k), v) for k, v in o.items() if k not in ("name", "dtype", "shape")])
            for o in outputs if isinstance(o, dict)]


ATTENTION_SHOWN = 200  # cells listed under "needs attention"; the cells table's verdict filter has every one
OVERVIEW_MODELS = 40  # models per overview matrix; those with a cell that needs attention come first
CELLS_PER_CHUNK = 200  # cell details packed together (unpacked when one of them is opened)
_ATTENTION = frozenset({"failed", "fail", "regressed", "na"})  # the states "needs attention" lists
SYMBOLS = {"pass": "✓ pass", "baseline": "float", "fail": "✗ FAIL", "regressed": "▲ slower", "failed": "! failed",
           "na": "– n/a"}


def _json(value: Any) -> str:
    """JSON with <, >, & and ' as \\u escapes (as Jinja's tojson): no markup in it even once unpacked."""
    return str(htmlsafe_json_dumps(value, dumps=partial(json.dumps, allow_nan=False, ensure_ascii=False)))


def pack(text: str) -> str:
    """`text` gzip-compressed and base64-encoded, as the page's script unpacks it (DecompressionStream)."""
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)).decode("ascii")


@lru_cache(maxsize=1)
def _packed_plotly() -> str:
    return pack(plotly_js())


@lru_cache(maxsize=1)
def _script() -> Markup:
    """The page's script (templates/report.js), safe inside a <script> element."""
    text = (_TEMPLATES / "report.js").read_text(encoding="utf-8")
    if re.search(r"</script", text, re.IGNORECASE):
        raise ValueError("report.js must not contain a closing script tag")
    return Markup(text)


def bounded_matrix(matrix: Matrix) -> tuple[Matrix, dict[str, Family], int]:
    """The matrix with at most OVERVIEW_MODELS models (those with a cell that needs attention first, then
    in order), each scheme's family, and how many models were left out."""
    attention_models = {model for (model, _), cell in matrix.cells.items() if cell.state in _ATTENTION}
    ordered = sorted(matrix.models, key=lambda model: model not in attention_models)
    shown = ordered[:OVERVIEW_MODELS] if len(ordered) > OVERVIEW_MODELS else matrix.models
    kept = set(shown)
    families = {scheme: cell.family for (_, scheme), cell in reversed(matrix.cells.items())}
    cells = {key: cell for key, cell in matrix.cells.items() if key[0] in kept}
    return replace(matrix, models=shown, cells=cells), families, len(matrix.models) - len(shown)


def table_row(cell: Cell) -> list[Any]:
    """One row of the cells table as the page's script draws it (plain strings, shown as text)."""
    row = cell.row
    checks = f"{row.checks_total - len(row.checks_failed)}/{row.checks_total}" if row.checks_total else "–"
    return [cell.index, row.model, row.scheme, row.device, cell.family, cell.state,
            f"{row.headline} {fmt(row.value, '.4f')}" if row.headline else "–", fmt(row.delta, "+.4f"),
            fmt(row.size_ratio, ".2f"), row.latency_ratio_text, row.thermal or "", checks, ", ".join(row.checks_failed)]


def cell_chunks(cells: list[Cell], records: list[CellRecord], numerics: list[Figure]) -> list[dict[str, Any]]:
    """Every cell's details, rendered (escaped) one by one and packed CELLS_PER_CHUNK at a time."""
    template = _environment().get_template("cell.html.j2")
    charts: dict[int, list[Figure]] = defaultdict(list)
    for figure in numerics:
        charts[figure["cell"]].append(figure)
    times, chunks = op_times(records), []
    for first in range(0, len(cells), CELLS_PER_CHUNK):
        part = zip(cells[first:first + CELLS_PER_CHUNK], records[first:first + CELLS_PER_CHUNK], strict=True)
        html = "".join(template.render(c=cell, record=record, times=times[cell.index],
                                       lat=latency_summary(record), outs=output_numbers(record),
                                       numerics=charts.get(cell.index, [])) for cell, record in part)
        chunks.append({"first": first, "count": min(CELLS_PER_CHUNK, len(cells) - first), "data": pack(html)})
    return chunks


def render_html(records: list[CellRecord], run_info: dict[str, Any], comparison: Comparison | None,
                trend_runs: list[TrendRun], warnings: list[str], settings: SuiteSettings | None = None,
                verdict: Verdict | None = None) -> str:
    """The whole page; every string from records, run info or history is escaped by the template or drawn as
    text by the page's script. Its banner (`#verdict`) is the run's one verdict line (harness.compare.verdict_line).
    The first screen is plain HTML; the cells' table and details, the chart specs and plotly are packed."""
    settings = settings or suite_settings(run_info)
    rows = build_rows(records)
    cells = classify(rows, records, comparison)
    charts = build_charts(rows, records, trend_runs, settings.step_ratio)
    flagged = attention(cells)
    return _environment().get_template("report.html.j2").render(
        suite=str(run_info.get("suite", "?")), run_info=run_info,
        banner=verdict or verdict_line(records, comparison, incompleteness(records, run_info)),
        cells_total=len(cells), cell_chunks=cell_chunks(cells, records, charts["cells"]),
        rows_packed=pack(_json([table_row(c) for c in cells])),
        attention=flagged[:ATTENTION_SHOWN], attention_total=len(flagged),
        matrices=[bounded_matrix(m) for m in matrices(cells)], families=FAMILY_COLOURS,
        recommendations=recommend(cells, settings.recommend), rule=settings.recommend, tree=DECISION_TREE,
        comparison=comparison, charts=charts, trend_runs=len(trend_runs), warnings=warnings,
        charts_packed=pack(_json([f for section in charts.values() for f in section])),
        plotly_packed=_packed_plotly(), script=_script())
