"""Timing a cell on its device: `repeats` independent measurements, and paired A/B re-timing of the
earlier run's model beside this run's (same device, same process pattern, alternating order)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness import _interrupt
from harness.cache import file_digest
from harness.devices import BinaryDevice, Device
from harness.errors import HarnessError
from harness.record import benchmark_binary
from harness.stats import bounded_sample, combine_repeats, paired_ratio, summarize, typical
from harness.suite.schema import CooldownSpec, LatencySpec


def repeat_of(raw: dict[str, Any]) -> dict[str, Any]:
    """One measurement's statistics: from its per-run `samples` (local) or ready `stats` (benchmark_model)."""
    if raw.get("samples"):
        return {"stats": summarize(raw["samples"]), "samples": raw["samples"]}
    if raw.get("stats"):
        return {"stats": dict(raw["stats"]), "samples": None}
    raise HarnessError("the device returned neither latency samples nor statistics")


def latency_stats(raws: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    """Latency statistics (ms) of one measurement or of a cell's repeats, with the first repeat's
    init, first-run and warm-up figures."""
    raws = [raws] if isinstance(raws, dict) else raws
    stats = combine_repeats([repeat_of(raw) for raw in raws])
    first = raws[0]
    stats.update(init=first.get("init"), first=first.get("first"), warmup_mean=first.get("warmup_mean"))
    return stats


def measure_repeats(device: Device, model: Path, settings: LatencySpec) -> tuple[list[dict[str, Any]], list[float]]:
    """`settings.repeats` independent measurements (raw device results) and a bounded sample of
    their pooled per-run samples (empty when the device reports statistics only)."""
    raws = []
    for _ in range(settings.repeats):
        _interrupt.check()
        raws.append(device.measure_latency(model, settings))
    pooled = [s for raw in raws for s in raw.get("samples") or []]
    return raws, bounded_sample(pooled)


def device_state(device: Device, settings: LatencySpec) -> dict[str, Any] | None:
    """The device's thermal state before a cell, after the suite's cool-down (None: the device
    kind cannot tell). A cell still above `max_temp_c` (or the platform's thermal status still
    above `max_thermal_status`) when the wait runs out is marked hot."""
    read = getattr(device, "device_state", None)
    if read is None:
        return None
    state, waited, spec = read(), 0.0, settings.cooldown
    while spec is not None and _hot(state, spec) and waited < spec.wait_s:
        _interrupt.check()
        time.sleep(min(spec.poll_s, spec.wait_s - waited))
        waited += min(spec.poll_s, spec.wait_s - waited)
        state = read()
    return {"before": state, "cooldown_s": round(waited, 3), "hot": spec is not None and _hot(state, spec)}


def with_after(state: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The cell's device state with the reading after it, and `throttled`: the platform reported
    moderate throttling or worse (thermal status >= 2) before or after the cell."""
    statuses = [s.get("thermal_status") for s in (state["before"], after)]
    return {**state, "after": after, "throttled": any(s is not None and s >= THROTTLED_STATUS for s in statuses)}


THROTTLED_STATUS = 2  # PowerManager.THERMAL_STATUS_MODERATE


def _hot(state: dict[str, Any], spec: CooldownSpec) -> bool:
    status = state.get("thermal_status")
    return ((state.get("max_temp_c") is not None and state["max_temp_c"] > spec.max_temp_c)
            or (status is not None and status > spec.max_thermal_status))


def earlier_model(before: dict[str, Any] | None, kept: Path | None) -> tuple[str | None, Path | None, str]:
    """(sha256, path, note) of the model the earlier run timed for this cell: the artifact store's
    copy (`kept`), else the path it was timed at, when its bytes still match."""
    artifact = (before or {}).get("artifact") or {}
    return _kept_file(artifact.get("sha256"), artifact.get("path"), kept,
                      "the earlier run's model file is gone or changed: compared across runs only")


def earlier_binary(before: dict[str, Any] | None, kept: Path | None) -> tuple[str | None, Path | None, str]:
    """(sha256, path, note) of the benchmark_model binary the earlier run timed this cell with
    (phones): the artifact store's copy, else the profile's path when its bytes still match."""
    binary = benchmark_binary(before)
    return _kept_file(binary.get("sha256"), binary.get("path"), kept,
                      "the earlier run's benchmark_model binary is gone or changed: compared across runs only")


def _kept_file(sha: str | None, path: str | None, kept: Path | None, note: str) -> tuple[str | None, Path | None, str]:
    for candidate in (kept, Path(path) if path else None):
        if sha and candidate is not None and candidate.is_file() and file_digest(candidate) == sha:
            return sha, candidate, ""
    return sha, None, note


def time_ab(device: Device, earlier: Path, current: Path, settings: LatencySpec,
            bound: float | None = None, earlier_binary: Path | None = None) -> dict[str, Any]:
    """`settings.ab_pairs` pairs (A = earlier model, B = this run's), each pair timed back to back
    with one measurement each, the order alternating (A B, B A, ...) so a drift within the run
    favours neither; the paired ratio B/A with its confidence interval. While that interval still
    straddles `bound` (the regression bound), two more pairs at a time (one of each order), up to
    `most_ab_pairs`. With `earlier_binary` (a phone's earlier benchmark_model), A runs on it."""
    pairs: list[tuple[float, float]] = []
    wanted = settings.ab_pairs
    a_side = _Side(earlier, earlier_binary)
    while len(pairs) < wanted:
        pairs.append(_one_pair(device, a_side, _Side(current, None), settings, len(pairs)))
        if len(pairs) == wanted and _undecided(pairs, bound) and wanted + 2 <= settings.most_ab_pairs:
            wanted += 2
    return {"pairs": [list(p) for p in pairs], **paired_ratio(pairs), "bound": bound,
            "extended": len(pairs) - settings.ab_pairs}


@dataclass(frozen=True)
class _Side:
    """One side of an A/B pair: a model, and the benchmark binary to time it with (None: the device's)."""

    model: Path
    binary: Path | None

    def time(self, device: Device, settings: LatencySpec) -> float:
        if self.binary is None:
            raw = device.measure_latency(self.model, settings)
        else:  # only a device whose profile names a benchmark binary (a phone) gets one
            raw = cast(BinaryDevice, device).measure_latency(self.model, settings, binary=self.binary)
        return float(typical(repeat_of(raw)["stats"]))


def _one_pair(device: Device, a: _Side, b: _Side, settings: LatencySpec, index: int) -> tuple[float, float]:
    """(A, B) typical latencies of one measurement each, A first on even indices."""
    _interrupt.check()
    one = settings.model_copy(update={"repeats": 1})
    if index % 2 == 0:
        first = a.time(device, one)
        return first, b.time(device, one)
    second = b.time(device, one)
    return a.time(device, one), second


def _undecided(pairs: list[tuple[float, float]], bound: float | None) -> bool:
    """The paired interval has `bound` inside it: the pairs so far cannot tell."""
    interval = paired_ratio(pairs)["ci"] if bound is not None else None
    return interval is not None and interval[0] <= bound < interval[1]
