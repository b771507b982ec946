"""One display row per cell: values and their change vs the model's float baseline."""

from __future__ import annotations

from dataclasses import dataclass

from harness.record import Audit, CellRecord, LatencyStats, WeightStats, cell_id
from harness.schemes import BASELINE
from harness.stats import typical
from harness.verdicts import latency_ratio, metric_number, paired_latency_ratio, record_metrics

# Preferred metric to show first, in order; the first one a record has is its headline.
HEADLINE_METRICS = ("top1", "wer", "cer", "map", "top1_agreement", "logit_snr_db", "snr_db")
# How often the optimized model says what the float model says, per task.
AGREEMENT_METRICS = ("top1_agreement", "transcript_agreement", "box_agreement", "next_token_agreement")


@dataclass(frozen=True)
class Row:
    model: str
    scheme: str
    device: str
    status: str
    headline: str | None
    value: float | None
    delta: float | None
    agreement: float | None
    size_mb: float | None
    size_ratio: float | None
    gzip_mb: float | None
    gzip_ratio: float | None
    sparsity: float | None
    unique_weights: int | None
    float_ops: int | None
    integer_only: bool | None
    latency_ms: float | None
    latency_p90_ms: float | None
    latency_ratio: float | None  # the paired ratio (latency_vs_float) when measured, else the ratio of medians
    thermal: str | None  # "hot" / "throttled" (a phone) or "busy" (a local host), comma-separated: measured so
    checks_failed: list[str]
    checks_total: int
    error: str | None
    latency_ci: tuple[float, float] | None = None  # the paired ratio's 95 % interval (None: not paired)

    @property
    def latency_ratio_text(self) -> str:
        """× float for tables: a paired ratio with its interval, "≈1 (n.s.)" when that interval holds 1."""
        if self.latency_ci is None:
            return fmt(self.latency_ratio, ".2f")
        low, high = self.latency_ci
        head = "≈1 (n.s.)" if low <= 1 <= high else fmt(self.latency_ratio, ".2f")
        return f"{head} [{low:.2f}–{high:.2f}]"
    check_notes: tuple[str, ...] = ()  # why failed checks failed, where a check says (e.g. the ops left float)

    @property
    def verdict(self) -> str:
        if self.status != "ok":
            return self.status
        return "FAIL" if self.checks_failed else "pass"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def thermal_marks(record: CellRecord) -> str | None:
    """How a cell's latency was measured, when not cool and quiet: hot (above the cool-down's limit
    when its wait ran out) and/or throttled (the platform's thermal status moderate or worse) on a
    phone; busy (other work on the pinned core) on a local host."""
    state = record.get("device_state")
    flags = {"hot": state.get("hot"), "throttled": state.get("throttled"), "busy": state.get("busy")} if state else {}
    marks = [name for name, flag in flags.items() if flag is True]
    return ", ".join(marks) or None


def paired_interval(record: CellRecord) -> tuple[float, float] | None:
    """The 95 % interval of the cell's paired × float (None: not measured in pairs)."""
    paired = record.get("latency_vs_float")
    ci = paired.get("ci") if paired else None
    return (float(ci[0]), float(ci[1])) if paired_latency_ratio(record) is not None and ci else None


def build_rows(records: list[CellRecord]) -> list[Row]:
    """Rows in record order, each compared with the float32 record of its model and device."""
    by_id = {cell_id(r["model"], r["scheme"], r["device"]): r for r in records}
    rows = []
    for record in records:
        base = by_id.get(cell_id(record["model"], BASELINE, record["device"]))
        base = base if base and base["status"] == "ok" and base is not record else None
        metrics = record_metrics(record)
        headline = next((m for m in HEADLINE_METRICS if m in metrics), None)
        value = metrics.get(headline) if headline else None
        base_value = record_metrics(base).get(headline) if base and headline else None
        latency: LatencyStats = record.get("latency_ms") or {}
        base_latency: LatencyStats = (base.get("latency_ms") if base else None) or {}
        verdicts = record.get("verdicts") or []
        weights: WeightStats = record.get("weights") or {}
        audit: Audit = record.get("audit") or {}
        rows.append(Row(
            model=record["model"], scheme=record["scheme"], device=record["device"], status=record["status"],
            headline=headline, value=value,
            delta=value - base_value if value is not None and base_value is not None else None,
            agreement=next((metrics[m] for m in AGREEMENT_METRICS if m in metrics), None),
            size_mb=_ratio(record.get("size_bytes"), 1e6),
            size_ratio=_ratio(record.get("size_bytes"), base.get("size_bytes") if base else None),
            gzip_mb=_ratio(record.get("gzip_bytes"), 1e6),
            gzip_ratio=_ratio(record.get("gzip_bytes"), base.get("gzip_bytes") if base else None),
            sparsity=weights.get("sparsity"), unique_weights=weights.get("max_unique_per_channel"),
            float_ops=(audit.get("ops_by_kind") or {}).get("float"), integer_only=audit.get("integer_only"),
            latency_ms=typical(latency), latency_p90_ms=latency.get("p90"),
            latency_ratio=paired_latency_ratio(record) or (latency_ratio(latency, base_latency) if base else None),
            latency_ci=paired_interval(record), thermal=thermal_marks(record),
            checks_failed=[v["check"] for v in verdicts if not v["pass"]], checks_total=len(verdicts),
            error=record.get("error"),
            check_notes=tuple(dict.fromkeys(v["note"] for v in verdicts if not v["pass"] and v.get("note"))),
        ))
    return rows


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    """Format a number, or an en dash when absent."""
    return "–" if value is None else f"{metric_number(value):{spec}}{suffix}"


def op_times(records: list[CellRecord], top: int = 5) -> list[list[tuple[str, float, float | None]]]:
    """Per record (same order): its device's slowest op types from benchmark_model's op profile,
    as (op type, avg ms, the float cell's avg ms for that op type or None); [] without a profile."""
    def by_type(record: CellRecord | None) -> dict[str, float]:
        profile = record.get("op_profile") if record else None
        rows = (profile.get("summary_by_node_type") if profile else None) or []
        return {str(r.get("node_type")): float(r.get("avg_ms") or 0.0) for r in rows}

    by_id = {cell_id(r["model"], r["scheme"], r["device"]): r for r in records}
    result = []
    for record in records:
        mine = by_type(record)
        base = by_type(by_id.get(cell_id(record["model"], BASELINE, record["device"])))
        slowest = sorted(mine.items(), key=lambda item: -item[1])[:top]
        result.append([(op, ms, base.get(op)) for op, ms in slowest])
    return result
