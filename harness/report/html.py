"""report.html: one self-contained page (plotly's JS inlined, no network) for a run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import jinja2
from markupsafe import Markup

from harness.compare import Comparison, Verdict, verdict_line
from harness.config.schema import RegressionSpec
from harness.errors import HarnessError
from harness.record import CellRecord, DeviceState, latency_sample
from harness.report.charts import TrendRun, build_charts, quartiles
from harness.report.overview import DECISION_TREE, FAMILY_COLOURS, Rule, attention, classify, matrices, recommend
from harness.report.rows import build_rows, fmt, op_times
from harness.results import incompleteness
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
             f"{reading.get('runnable_on_core', '?')} other runnable on core {reading.get('core', '?')}",
             f"core {fmt(reading.get('core_busy_share'), '.0%')} busy"]
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


def render_html(records: list[CellRecord], run_info: dict[str, Any], comparison: Comparison | None,
                trend_runs: list[TrendRun], warnings: list[str], settings: SuiteSettings | None = None,
                verdict: Verdict | None = None) -> str:
    """The whole page; every string from records, run info or history is escaped by the template.
    Its banner (`#verdict`) is the run's one verdict line (harness.compare.verdict_line)."""
    settings = settings or suite_settings(run_info)
    rows = build_rows(records)
    cells = classify(rows, records, comparison)
    charts = build_charts(rows, records, trend_runs, settings.step_ratio)
    return _environment().get_template("report.html.j2").render(
        suite=str(run_info.get("suite", "?")), run_info=run_info,
        banner=verdict or verdict_line(records, comparison, incompleteness(records, run_info)),
        cells=[(cell, record, times, latency_summary(record), output_numbers(record))
               for cell, record, times in zip(cells, records, op_times(records), strict=True)],
        attention=attention(cells), matrices=matrices(cells), families=FAMILY_COLOURS,
        recommendations=recommend(cells, settings.recommend), rule=settings.recommend, tree=DECISION_TREE,
        comparison=comparison, charts=charts, chart_specs=[f for section in charts.values() for f in section],
        trend_runs=len(trend_runs), warnings=warnings, plotly_js=Markup(plotly_js()))
