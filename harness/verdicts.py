"""Threshold checks of a cell against its model's float baseline."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from typing import Any

from harness.claims import Claim, check_claims
from harness.config.schema import Bound, ClaimSetting, Thresholds
from harness.record import Acceleration, Audit, CellRecord, ClaimResult, Delegation, LatencyStats, Verdict
from harness.tasks import all_metrics

# Checks every suite has unless it bounds the metric itself: the deployed kernels must not be far better
# than LiteRT's other kernels (a device without the XNNPACK path would ship the worse numbers). They
# apply where the metric was produced, or where the check producing it failed.
IMPLICIT_BOUNDS: dict[str, Bound] = {"kernel_gap_db": Bound(max=10)}


def bounds_for(thresholds: Thresholds, model: str, scheme: str) -> dict[str, Bound]:
    """The implicit bounds, the suite's defaults, then every matching override in order (per metric)."""
    bounds = {**IMPLICIT_BOUNDS, **thresholds.defaults}
    for override in thresholds.overrides:
        if any(fnmatch.fnmatchcase(model, p) for p in override.models) and any(
            fnmatch.fnmatchcase(scheme, p) for p in override.schemes
        ):
            bounds.update(override.__pydantic_extra__ or {})
    return bounds


def claims_for(thresholds: Thresholds, model: str, scheme: str) -> dict[str, ClaimSetting]:
    """The suite's word on the cell's scheme claims: every matching override's `claims`, in order."""
    settings: dict[str, ClaimSetting] = {}
    for override in thresholds.overrides:
        if any(fnmatch.fnmatchcase(model, p) for p in override.models) and any(
            fnmatch.fnmatchcase(scheme, p) for p in override.schemes
        ):
            settings.update(override.claims)
    return settings


def judge(records: list[CellRecord], thresholds: Thresholds) -> list[CellRecord]:
    """Copies of `records`, every ok cell's `verdicts` recomputed against `thresholds` and its model's
    float32 record on the same device, exactly as the runner checks a cell (other cells: none)."""
    from harness.schemes import BASELINE

    baselines = {(r["model"], r["device"]): r for r in records if r["scheme"] == BASELINE}
    judged: list[CellRecord] = []
    for record in records:
        reference = record if record["scheme"] == BASELINE else baselines.get((record["model"], record["device"]))
        verdicts = check(record, reference, bounds_for(thresholds, record["model"], record["scheme"]),
                         claims=claims_for(thresholds, record["model"], record["scheme"])) \
            if record["status"] == "ok" else []
        judged.append({**record, "verdicts": verdicts})
    return judged


def latency_ratio(latency: LatencyStats | None, baseline: LatencyStats | None) -> float | None:
    """latency / baseline latency: medians when both have one, else means; None if either is missing."""
    latency, baseline = latency or {}, baseline or {}
    if latency.get("median") is not None and baseline.get("median") is not None:
        mine, theirs = latency.get("median"), baseline.get("median")
    else:
        mine, theirs = latency.get("mean"), baseline.get("mean")
    return mine / theirs if mine and theirs else None


def metric_number(value: Any) -> float:
    """A metric read from a record as a float: records write NaN and ±inf as "NaN", "Infinity", "-Infinity"
    (strict JSON), which compare as floats here: +inf passes any `min`, NaN fails every check."""
    return float(value)


def record_metrics(record: CellRecord) -> dict[str, float]:
    """The record's metrics as floats; a metric recorded as null (the schema allows it) is absent."""
    return {name: metric_number(value) for name, value in (record.get("metrics") or {}).items() if value is not None}


def audit_values(audit: Audit | None) -> dict[str, float]:
    """`float_ops`, `integer_only` (1/0) and `bytes_float32` from a cell's audit (none without one)."""
    audit = audit or {}
    values: dict[str, float | None] = {"float_ops": (audit.get("ops_by_kind") or {}).get("float"),
              "integer_only": float(audit["integer_only"]) if "integer_only" in audit else None,
              "bytes_float32": (audit.get("bytes_by_dtype") or {}).get("float32", 0) if "bytes_by_dtype" in audit else None}
    return {name: value for name, value in values.items() if value is not None}


def delegation_values(delegation: Delegation | None) -> dict[str, float]:
    """`fully_delegated` (1/0) and `delegated_nodes_ratio` from a device log's delegation summary."""
    ratio = delegation.get("ratio") if delegation else None
    if not delegation or ratio is None:
        return {}
    return {"fully_delegated": float(bool(delegation.get("fully_delegated"))), "delegated_nodes_ratio": ratio}


def acceleration_values(acceleration: Acceleration | None) -> dict[str, float]:
    """A local cell's `fully_delegated` (1/0) and `delegated_nodes_ratio` from its XNNPACK acceleration."""
    ratio = acceleration.get("ratio") if acceleration else None
    if not acceleration or "error" in acceleration or ratio is None:
        return {}
    return {"fully_delegated": float(bool(acceleration.get("fully_delegated"))), "delegated_nodes_ratio": float(ratio)}


def cell_values(record: CellRecord, baseline: CellRecord | None) -> dict[str, float]:
    """Task metrics, the weight statistics and audit read back from the model, and size and
    latency ratios vs the baseline."""
    values = record_metrics(record)
    weights = record.get("weights")
    sparsity = weights.get("sparsity") if weights else None
    unique = weights.get("max_unique_per_channel") if weights else None
    if sparsity is not None:
        values["weight_sparsity"] = sparsity
    if unique is not None:
        values["unique_weights"] = unique
    values.update(audit_values(record.get("audit")))
    coverage = (record.get("quantization") or {}).get("coverage")
    if coverage is not None:
        values["recipe_coverage"] = coverage
    values.update(delegation_values((record.get("delegates") or {}).get("delegation")))
    values.update(acceleration_values(record.get("acceleration")))
    if baseline and baseline is not record and baseline.get("status") == "ok":
        for name, mine, theirs in (("size_ratio", record.get("size_bytes"), baseline.get("size_bytes")),
                                   ("gzip_ratio", record.get("gzip_bytes"), baseline.get("gzip_bytes"))):
            if mine and theirs:
                values[name] = mine / theirs
        ratio = paired_latency_ratio(record) or latency_ratio(record.get("latency_ms"), baseline.get("latency_ms"))
        if ratio is not None:
            values["latency_ratio"] = ratio
    return values


def paired_latency_ratio(record: CellRecord) -> float | None:
    """The cell's latency over the float model's timed beside it in pairs (`latency_vs_float.ratio`), if measured."""
    paired = record.get("latency_vs_float")
    return paired.get("ratio") if paired else None


def latency_ratio_note(record: CellRecord) -> str:
    """How a cell's `latency_ratio` was measured, for its verdicts."""
    paired = record.get("latency_vs_float")
    if paired is None or paired.get("ratio") is None:
        unavailable = paired.get("unavailable") if paired else None
        why = f" ({unavailable})" if unavailable else ""
        return f"ratio of medians measured apart, not paired{why}"
    ci = paired.get("ci")
    interval = f", 95 % interval [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    return f"paired ratio over {paired.get('n_pairs')} pairs timed beside the float model{interval}"


def check(record: CellRecord, baseline: CellRecord | None, bounds: dict[str, Bound], *,
          claims: dict[str, ClaimSetting] | None = None, vs_earlier: bool = False) -> list[Verdict]:
    """Every configured check as {check, metric, threshold, value, observed, baseline, pass[, note]}.

    `min`/`max` apply to every cell (the baseline too, except for metrics measured against the
    float cell, such as size_ratio); drops need a baseline and apply to the other cells. A
    configured check whose metric (or baseline value) was not produced fails, with a note saying
    why. `vs_earlier` (compare: `baseline` is the same cell of an earlier run) checks drops only
    where both runs have the metric. The scheme's claims (harness.claims) come first, each as a check
    named after the claim, under the suite's `claims` settings; not vs an earlier run.
    """
    metrics = all_metrics()
    bounds = with_default_coverage(record, bounds)
    values = cell_values(record, baseline)
    is_baseline = baseline is record
    results: list[Verdict] = [] if vs_earlier else claim_verdicts(record, claims)
    for metric, bound in bounds.items():
        if is_baseline and metrics[metric].vs_float:
            continue
        if metric not in values:
            if _implicit_skipped(record, metric, bound):
                continue
            if not vs_earlier:
                results.extend(_not_produced(metric, bound, is_baseline, _missing(record, baseline, metric)))
            continue
        limits = _named(record, metric, _limits(metric, bound, values[metric]))
        for verdict in limits if metric == "latency_ratio" else []:
            verdict["note"] = latency_ratio_note(record)  # paired beside the float model, or medians measured apart
        results.extend(limits)
        if not is_baseline:
            results.extend(_drops(record, baseline, metric, bound, values[metric], vs_earlier))
    return results


DEFAULT_COVERAGE = Bound(min=1.0)


def _named(record: CellRecord, metric: str, verdicts: list[Verdict]) -> list[Verdict]:
    """A failing recipe_coverage check names the targeted ops not quantized as asked."""
    if metric != "recipe_coverage":
        return verdicts
    from harness.tflite.quantization import missed_ops

    missed = missed_ops(record.get("quantization") or {})
    return [{**v, "note": f"not quantized as asked: {missed}"} if not v["pass"] and missed else v for v in verdicts]


def with_default_coverage(record: CellRecord, bounds: dict[str, Bound]) -> dict[str, Bound]:
    """A recipe cell is checked `recipe_coverage: {min: 1.0}` unless the suite bounds it itself."""
    if record.get("scheme_kind") != "recipe" or "recipe_coverage" in bounds:
        return bounds
    return {**bounds, "recipe_coverage": DEFAULT_COVERAGE}


def _limits(metric: str, bound: Bound, observed: float) -> list[Verdict]:
    """The `min` and `max` checks of one metric's value."""
    results = []
    for limit in ("min", "max"):
        threshold = getattr(bound, limit)
        if threshold is not None:
            ok = observed >= threshold if limit == "min" else observed <= threshold
            results.append(_verdict(f"{metric}.{limit}", metric, threshold, observed, observed, None, ok))
    return results


def _drops(record: CellRecord, baseline: CellRecord | None, metric: str, bound: Bound, observed: float,
           vs_earlier: bool) -> list[Verdict]:
    """The drop checks vs the baseline's value; failing (with the reason) when there is no baseline value."""
    base_values = record_metrics(baseline) if baseline and baseline.get("status") == "ok" else {}
    if metric not in base_values:
        if vs_earlier:
            return []
        limits = {name: getattr(bound, name) for name in _DROPS}
        return _failed(metric, limits, observed, _no_baseline(baseline, metric))
    base = base_values[metric]
    drop = (base - observed) if all_metrics()[metric].higher_is_better else (observed - base)
    results = []
    if bound.max_abs_drop is not None:
        results.append(_verdict(f"{metric}.max_abs_drop", metric, bound.max_abs_drop, drop, observed, base,
                                drop <= bound.max_abs_drop + 1e-12))
    if bound.max_rel_drop is not None and base:
        relative = drop / abs(base)
        results.append(_verdict(f"{metric}.max_rel_drop", metric, bound.max_rel_drop, relative, observed, base,
                                relative <= bound.max_rel_drop + 1e-12))
    return results


_DROPS = ("max_abs_drop", "max_rel_drop")


def _not_produced(metric: str, bound: Bound, is_baseline: bool, why: str) -> list[Verdict]:
    """Every check of `bound` failing: its metric was not produced (drops do not apply to the baseline)."""
    names = ("min", "max") if is_baseline else ("min", "max", *_DROPS)
    return _failed(metric, {name: getattr(bound, name) for name in names}, math.nan, why)


def _failed(metric: str, limits: dict[str, float | None], observed: float, note: str) -> list[Verdict]:
    return [{**_verdict(f"{metric}.{name}", metric, threshold, math.nan, observed, None, False), "note": note}
            for name, threshold in limits.items() if threshold is not None]


def _missing(record: CellRecord, baseline: CellRecord | None, metric: str) -> str:
    """Why `metric` is not among the cell's values: the check fails with this note."""
    if all_metrics()[metric].vs_float and baseline is not record and not _usable(baseline):
        return _no_baseline(baseline, metric)
    if metric.startswith("device_"):
        numerics = record.get("device_numerics")
        if not numerics:
            return f"{metric} was not produced: no device numerics (latency.device_check on a phone)"
        return f"{metric} was not produced: device numerics {numerics.get('status')}: {numerics.get('reason')}"
    if metric in ("fully_delegated", "delegated_nodes_ratio"):
        return _no_delegation(record, metric)
    evaluation = record.get("evaluation") or {}
    if metric == "kernel_gap_db" and (evaluation.get("kernel_check_error") or evaluation.get("kernel_paths_na")):
        failed = evaluation.get("kernel_check_error") or "; ".join(evaluation["kernel_paths_na"].values())
        return f"{metric} was not produced: the cross-kernel check: {failed}"
    if metric == "recipe_coverage":
        note = (record.get("quantization") or {}).get("note")
        return f"{metric} was not produced: " + (note or "no quantization read back (a record of an older run)")
    why = record.get("metrics_na")
    return f"{metric} was not produced" + (f": {why.strip()}" if why else " by this cell")


def _no_delegation(record: CellRecord, metric: str) -> str:
    """Why a cell has no delegation summary: a phone's log printed no partition line, a local probe failed."""
    acceleration = record.get("acceleration")
    if acceleration and acceleration.get("error"):
        return f"{metric} was not produced: {acceleration['error']}"
    if record.get("delegates") is None and acceleration is None:
        return f"{metric} was not produced: no delegation summary (a phone's benchmark_model log printed no " \
               "delegate partition line; a local cell was not measured)"
    return f"{metric} was not produced: the delegate's node count is unknown"


def _implicit_skipped(record: CellRecord, metric: str, bound: Bound) -> bool:
    """An implicit bound whose metric was not produced by design (no float cell to compare with,
    fewer than two kernel paths could run): no check. Its producer failing is a failed check."""
    return bound is IMPLICIT_BOUNDS.get(metric) and not (record.get("evaluation") or {}).get("kernel_check_error")


def _usable(baseline: CellRecord | None) -> bool:
    return baseline is not None and baseline.get("status") == "ok"


def _no_baseline(baseline: CellRecord | None, metric: str) -> str:
    """Why there is no float baseline value of `metric` to compare with."""
    if baseline is None:
        return f"no float baseline of {metric}: the float32 cell of this model and device did not finish"
    if baseline.get("status") != "ok":
        return f"no float baseline of {metric}: the float32 cell is {baseline.get('status')}"
    why = baseline.get("metrics_na")
    return f"no float baseline of {metric}: the float32 cell did not produce it" + (f" ({why.strip()})" if why else "")


def _verdict(name: str, metric: str, threshold: float, value: float, observed: float, base: float | None,
             ok: bool) -> Verdict:
    verdict: Verdict = {"check": name, "metric": metric, "threshold": threshold, "value": value,
               "observed": observed, "baseline": base, "pass": bool(ok)}
    if math.isnan(value):
        verdict.update({"pass": False, "note": f"{metric} is NaN (non-finite outputs or inputs): the check fails"})
    return verdict


# -- scheme claims (harness.claims) as verdicts: here, above the schemes whose registry states them --------
def scheme_claims(kind: str | None) -> tuple[Claim, ...]:
    """The claims the registered scheme `kind` states (none for an unknown scheme)."""
    from harness.schemes import SCHEMES

    if not kind or kind not in SCHEMES:
        return ()
    return SCHEMES.get(kind).claims


def record_claims(record: CellRecord) -> list[ClaimResult]:
    """The record's `claims` part; a record written before claims were checked: computed from its audit."""
    if "claims" in record:
        return list(record["claims"])
    return check_claims(scheme_claims(record.get("scheme_kind")), record.get("scheme_options") or {}, record)


def claim_verdicts(record: CellRecord, settings: Mapping[str, ClaimSetting] | None = None) -> list[Verdict]:
    """One verdict per checked claim of an ok cell, under the suite's settings (accepted, or another minimum)."""
    if record.get("status") != "ok":
        return []
    return [_claim_verdict(result, (settings or {}).get(result["claim"], True))
            for result in record_claims(record) if not result.get("waived")]


def _claim_verdict(result: ClaimResult, setting: ClaimSetting) -> Verdict:
    name, value = result["claim"], result.get("value")
    minimum = result["min"] if isinstance(setting, bool) else setting.min
    observed = math.nan if value is None else float(value)
    holds = value is not None and value >= minimum
    note = f"{name}: {result.get('found', '')}"
    if setting is False:
        holds, note = True, f"{note} (accepted by the suite: `claims: {{{name}: false}}`)"
    elif not holds:
        note = f"{note} (claimed: {result.get('statement')}" + (
            f"; the suite's minimum {minimum:g})" if not isinstance(setting, bool) else ")")
    return {"check": name, "metric": name, "threshold": minimum, "value": observed, "observed": observed,
            "baseline": None, "pass": bool(holds), "note": note, "claim": True}
