"""Threshold checks of a cell against its model's float baseline."""

from __future__ import annotations

import fnmatch
import math
from typing import Any

from harness.suite.schema import Bound, Thresholds
from harness.tasks import all_metrics


def bounds_for(thresholds: Thresholds, model: str, scheme: str) -> dict[str, Bound]:
    """Suite defaults, with every matching override applied in order (per metric)."""
    bounds = dict(thresholds.defaults)
    for override in thresholds.overrides:
        if any(fnmatch.fnmatchcase(model, p) for p in override.models) and any(
            fnmatch.fnmatchcase(scheme, p) for p in override.schemes
        ):
            bounds.update(override.__pydantic_extra__ or {})
    return bounds


def typical_latency(latency: dict[str, Any] | None) -> float | None:
    """A cell's representative latency (ms): the median when the device reported one, else the
    mean (benchmark_model logs of older releases print no percentiles)."""
    latency = latency or {}
    return latency.get("median") if latency.get("median") is not None else latency.get("mean")


def latency_ratio(latency: dict[str, Any] | None, baseline: dict[str, Any] | None) -> float | None:
    """latency / baseline latency: medians when both have one, else means; None if either is missing."""
    latency, baseline = latency or {}, baseline or {}
    key = "median" if latency.get("median") is not None and baseline.get("median") is not None else "mean"
    mine, theirs = latency.get(key), baseline.get(key)
    return mine / theirs if mine and theirs else None


def metric_number(value: Any) -> float:
    """A metric read from a record as a float: records write NaN and ±inf as "NaN", "Infinity", "-Infinity"
    (strict JSON), which compare as floats here: +inf passes any `min`, NaN fails every check."""
    return float(value)


def record_metrics(record: dict[str, Any]) -> dict[str, float]:
    """The record's metrics as floats; a metric recorded as null (the schema allows it) is absent."""
    return {name: metric_number(value) for name, value in (record.get("metrics") or {}).items() if value is not None}


def audit_values(audit: dict[str, Any] | None) -> dict[str, float]:
    """`float_ops`, `integer_only` (1/0) and `bytes_float32` from a cell's audit (none without one)."""
    if not audit:
        return {}
    return {"float_ops": audit["ops_by_kind"]["float"], "integer_only": float(audit["integer_only"]),
            "bytes_float32": audit["bytes_by_dtype"].get("float32", 0)}


def delegation_values(delegation: dict[str, Any] | None) -> dict[str, float]:
    """`fully_delegated` (1/0) and `delegated_nodes_ratio` from a device log's delegation summary."""
    if not delegation or delegation.get("ratio") is None:
        return {}
    return {"fully_delegated": float(bool(delegation["fully_delegated"])), "delegated_nodes_ratio": delegation["ratio"]}


def cell_values(record: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, float]:
    """Task metrics, the weight statistics and audit read back from the model, and size and
    latency ratios vs the baseline."""
    values = record_metrics(record)
    weights = record.get("weights") or {}
    if weights.get("sparsity") is not None:
        values["weight_sparsity"] = weights["sparsity"]
    if weights.get("max_unique_per_channel") is not None:
        values["unique_weights"] = weights["max_unique_per_channel"]
    values.update(audit_values(record.get("audit")))
    values.update(delegation_values((record.get("delegates") or {}).get("delegation")))
    if baseline and baseline is not record and baseline.get("status") == "ok":
        for name, key in (("size_ratio", "size_bytes"), ("gzip_ratio", "gzip_bytes")):
            if record.get(key) and baseline.get(key):
                values[name] = record[key] / baseline[key]
        ratio = paired_latency_ratio(record) or latency_ratio(record.get("latency_ms"), baseline.get("latency_ms"))
        if ratio is not None:
            values["latency_ratio"] = ratio
    return values


def paired_latency_ratio(record: dict[str, Any]) -> float | None:
    """The cell's latency over the float model's timed beside it in pairs (`latency_vs_float.ratio`), if measured."""
    return (record.get("latency_vs_float") or {}).get("ratio")


def latency_ratio_note(record: dict[str, Any]) -> str:
    """How a cell's `latency_ratio` was measured, for its verdicts."""
    paired = record.get("latency_vs_float") or {}
    if paired.get("ratio") is None:
        why = f" ({paired['unavailable']})" if paired.get("unavailable") else ""
        return f"ratio of medians measured apart, not paired{why}"
    ci = paired.get("ci")
    interval = f", 95 % interval [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    return f"paired ratio over {paired.get('n_pairs')} pairs timed beside the float model{interval}"


def check(record: dict[str, Any], baseline: dict[str, Any] | None, bounds: dict[str, Bound]) -> list[dict[str, Any]]:
    """Every applicable check as {check, metric, threshold, value, observed, baseline, pass}.

    `min`/`max` apply to every cell (the baseline too); drops need a baseline and apply to
    the other cells. A metric the cell does not have (e.g. top-1 without labels) is skipped.
    """
    metrics = all_metrics()
    values = cell_values(record, baseline)
    base_values = record_metrics(baseline) if baseline and baseline is not record else {}
    results = []
    for metric, bound in bounds.items():
        if metric not in values:
            results.extend(_unchecked_on_device(record, metric, bound))
            continue
        observed = values[metric]
        for limit in ("min", "max"):
            threshold = getattr(bound, limit)
            if threshold is not None:
                ok = observed >= threshold if limit == "min" else observed <= threshold
                results.append(_verdict(f"{metric}.{limit}", metric, threshold, observed, observed, None, ok))
                if metric == "latency_ratio":
                    results[-1]["note"] = latency_ratio_note(record)
        if metric not in base_values:
            continue
        base = base_values[metric]
        drop = (base - observed) if metrics[metric].higher_is_better else (observed - base)
        if bound.max_abs_drop is not None:
            results.append(_verdict(f"{metric}.max_abs_drop", metric, bound.max_abs_drop, drop, observed, base,
                                    drop <= bound.max_abs_drop + 1e-12))
        if bound.max_rel_drop is not None and base:
            relative = drop / abs(base)
            results.append(_verdict(f"{metric}.max_rel_drop", metric, bound.max_rel_drop, relative, observed, base,
                                    relative <= bound.max_rel_drop + 1e-12))
    return results


def _unchecked_on_device(record: dict[str, Any], metric: str, bound: Bound) -> list[dict[str, Any]]:
    """A device_* bound the phone could not be checked against (its device numerics were skipped,
    e.g. an old benchmark_model, or failed): failing verdicts with the reason, never a silent pass."""
    numerics = record.get("device_numerics")
    if not metric.startswith("device_") or not numerics or numerics.get("status") == "ok":
        return []
    note = f"device numerics {numerics.get('status')}: {numerics.get('reason')}"
    return [{**_verdict(f"{metric}.{limit}", metric, threshold, math.nan, math.nan, None, False), "note": note}
            for limit in ("min", "max") if (threshold := getattr(bound, limit)) is not None]


def _verdict(name: str, metric: str, threshold: float, value: float, observed: float, base: float | None,
             ok: bool) -> dict[str, Any]:
    verdict = {"check": name, "metric": metric, "threshold": threshold, "value": value,
               "observed": observed, "baseline": base, "pass": bool(ok)}
    if math.isnan(value):
        verdict.update({"pass": False, "note": f"{metric} is NaN (non-finite outputs or inputs): the check fails"})
    return verdict
