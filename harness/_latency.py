"""Timing a cell on its device: `repeats` independent measurements, and paired A/B re-timing of the
earlier run's model beside this run's (same device, same process pattern, alternating order)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness import _interrupt
from harness.cache import file_digest
from harness.config.schema import CooldownSpec, LatencySpec
from harness.devices import BinaryDevice, Device
from harness.devices.local.host_state import during
from harness.errors import HarnessError
from harness.record import (
    CellRecord,
    DeviceReading,
    DeviceState,
    HostDuring,
    LatencyAB,
    LatencyStats,
    LatencyVsFloat,
    benchmark_binary,
)
from harness.stats import bounded_sample, combine_repeats, paired_ratio, significant, summarize, typical
from harness.verdicts import latency_ratio


def repeat_of(raw: dict[str, Any]) -> dict[str, Any]:
    """One measurement's statistics: the device's own over every run it timed (`stats`: the local
    measurement process, benchmark_model), else computed from its per-run `samples` (a device kind
    that returns every run and no statistics). A device's `samples` beside its `stats` are a bounded
    sample of its runs (the local process sends at most stats.SAMPLE_LIMIT): never recomputed."""
    if raw.get("stats"):
        return {"stats": dict(raw["stats"]), "samples": None}
    if raw.get("samples"):
        return {"stats": summarize(raw["samples"]), "samples": raw["samples"]}
    raise HarnessError("the device returned neither latency samples nor statistics")


def latency_stats(raws: dict[str, Any] | list[dict[str, Any]]) -> LatencyStats:
    """Latency statistics (ms) of one measurement or of a cell's repeats, with the first repeat's
    init, first-run and warm-up figures."""
    raws = [raws] if isinstance(raws, dict) else raws
    stats = combine_repeats([repeat_of(raw) for raw in raws])
    first = raws[0]
    stats.update({key: significant(first.get(key)) for key in ("init", "first", "warmup_mean")})
    return cast(LatencyStats, stats)  # the device's statistics (untyped) under LatencyStats' names


def measure_repeats(device: Device, model: Path, settings: LatencySpec) -> tuple[list[dict[str, Any]], list[float]]:
    """`settings.repeats` independent measurements (raw device results) and a bounded sample of
    their pooled per-run samples (the repeats' own samples, themselves bounded by the local device;
    empty when the device reports statistics only)."""
    raws = []
    for _ in range(settings.repeats):
        _interrupt.check()
        raws.append(device.measure_latency(model, settings))
    pooled = [s for raw in raws for s in raw.get("samples") or []]
    return raws, bounded_sample(pooled)


def device_state(device: Device, settings: LatencySpec) -> DeviceState | None:
    """The device's state before a cell, after the suite's cool-down (None: the device kind cannot
    tell). A cell still above `max_temp_c` (or the platform's thermal status still above
    `max_thermal_status`) when the wait runs out is marked hot; a local cell whose core still has
    more than `max_runnable` other runnable tasks or `max_other_load` other work is marked busy."""
    state, waited, spec = device.device_state(settings.cooldown), 0.0, settings.cooldown
    if state is None:
        return None
    while spec is not None and (_hot(state, spec) or _crowded(state, spec)) and waited < spec.wait_s:
        _interrupt.check()
        time.sleep(min(spec.poll_s, spec.wait_s - waited))
        waited += min(spec.poll_s, spec.wait_s - waited)
        state = device.device_state(spec) or state
    crowded = _crowded(state, spec) if spec is not None else None
    result: DeviceState = {"before": state, "cooldown_s": round(waited, 3), "hot": spec is not None and _hot(state, spec)}
    if crowded:
        result["busy_reason"] = f"after the cool-down wait: {crowded}"
    return result


def with_after(state: DeviceState, after: DeviceReading, raws: list[dict[str, Any]] | None = None,
               settings: LatencySpec | None = None) -> DeviceState:
    """The cell's device state with the reading after it, and `throttled`: the platform reported
    moderate throttling or worse (thermal status >= 2) before or after the cell. With the local
    device's watches of its pinned core (`raws[i]["host"]`): `during` (other work's and steal's
    shares of the core while it measured) and `busy` with `busy_reason` when either share is above
    `settings.busy_share`, or the cool-down ran out with the core still crowded."""
    statuses = [s.get("thermal_status") for s in (state["before"], after)]
    result: DeviceState = {**state, "after": cast(DeviceReading, after),
                           "throttled": any(s is not None and s >= THROTTLED_STATUS for s in statuses)}
    watches = [raw["host"] for raw in raws or [] if isinstance(raw.get("host"), dict)]
    if watches and settings is not None:
        result["during"] = during(watches)
        result["busy"], result["busy_reason"] = _busy(result["during"], state.get("busy_reason"), settings.busy_share)
    return result


def _busy(watched: HostDuring, waited: str | None, limit: float) -> tuple[bool | None, str | None]:
    """(`busy`, `busy_reason`): True with the reasons, False, or None when the watch was too
    short to tell (and the cool-down did not already find the core crowded)."""
    reasons = [r for r in (waited, _busy_during(watched, limit)) if r]
    if reasons:
        return True, "; ".join(reasons)
    if watched.get("other_share") is None:
        return None, f"unknown: the pinned core was watched {watched['watched_s']} s only"
    return False, None


def _busy_during(watched: HostDuring, limit: float) -> str | None:
    """Why the core was busy while the cell was measured (None: it was not, or too short to tell)."""
    other, steal = watched.get("other_share"), watched.get("steal_share")
    if other is None or steal is None:
        return None
    parts = [f"{name} took {share:.0%} of the pinned core while it was measured (above {limit:.0%})"
             for name, share in (("other tasks", other), ("steal time", steal)) if share > limit]
    return "; ".join(parts) or None


THROTTLED_STATUS = 2  # PowerManager.THERMAL_STATUS_MODERATE


def _hot(state: DeviceReading, spec: CooldownSpec) -> bool:
    status, temp = state.get("thermal_status"), state.get("max_temp_c")
    return ((spec.max_temp_c is not None and temp is not None and temp > spec.max_temp_c)
            or (status is not None and status > spec.max_thermal_status))


def _crowded(state: DeviceReading, spec: CooldownSpec) -> str | None:
    """Why a local core is not quiet enough to time on under the cool-down's limits (None: it is)."""
    runnable, load = state.get("runnable_on_core"), state.get("core_busy_share")
    if spec.max_runnable is not None and runnable is not None and runnable > spec.max_runnable:
        return f"{runnable} other runnable task(s) on the pinned core (max_runnable {spec.max_runnable})"
    if spec.max_other_load is not None and load is not None and load > spec.max_other_load:
        return f"the pinned core {load:.0%} busy with other work (max_other_load {spec.max_other_load:g})"
    return None


def earlier_model(before: CellRecord | None, kept: Path | None) -> tuple[str | None, Path | None, str]:
    """(sha256, path, note) of the model the earlier run timed for this cell: the artifact store's
    copy (`kept`), else the path it was timed at, when its bytes still match."""
    artifact = before.get("artifact") if before else None
    return _kept_file(artifact.get("sha256") if artifact else None, artifact.get("path") if artifact else None, kept,
                      "the earlier run's model file is gone or changed: compared across runs only")


def earlier_binary(before: CellRecord | None, kept: Path | None) -> tuple[str | None, Path | None, str]:
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


def time_ab(device: Device, earlier: Path, current: Path, settings: LatencySpec, bound: float | None = None,
            earlier_binary: Path | None = None, watches: list[dict[str, Any]] | None = None) -> LatencyAB:
    """`settings.ab_pairs` pairs (A = earlier model, B = this run's), each pair timed back to back
    with one measurement each, the order alternating (A B, B A, ...) so a drift within the run
    favours neither; the paired ratio B/A with its confidence interval. While that interval still
    straddles `bound` (the regression bound), two more pairs at a time (one of each order), up to
    `most_ab_pairs`. With `earlier_binary` (a phone's earlier benchmark_model), A runs on it.
    `watches` collects a local device's watch of its core over each measurement."""
    pairs: list[tuple[float, float]] = []
    wanted = settings.ab_pairs
    a_side, b_side = _Side(earlier, earlier_binary, watches), _Side(current, None, watches)
    while len(pairs) < wanted:
        pairs.append(_one_pair(device, a_side, b_side, settings, len(pairs)))
        if len(pairs) == wanted and _undecided(pairs, bound) and wanted + 2 <= settings.most_ab_pairs:
            wanted += 2
    return {"pairs": [list(p) for p in pairs], **paired_ratio(pairs), "bound": bound,
            "extended": len(pairs) - settings.ab_pairs}


@dataclass(frozen=True)
class _Side:
    """One side of an A/B pair: a model, and the benchmark binary to time it with (None: the device's)."""

    model: Path
    binary: Path | None
    watches: list[dict[str, Any]] | None = None  # where to keep a local device's watch of its core

    def time(self, device: Device, settings: LatencySpec) -> float:
        if self.binary is None:
            raw = device.measure_latency(self.model, settings)
        elif isinstance(device, BinaryDevice):  # only a device whose profile names a benchmark binary gets one
            raw = device.measure_latency(self.model, settings, binary=self.binary)
        else:
            raise HarnessError(f"device {device.name!r} is not timed by a benchmark binary: it cannot time "
                               f"{self.model.name} with {self.binary}")
        if self.watches is not None and isinstance(raw.get("host"), dict):
            self.watches.append(raw["host"])
        value = typical(repeat_of(raw)["stats"])
        if value is None:
            raise HarnessError(f"{self.model.name}: the device reported neither a median nor a mean latency")
        return float(value)


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
    if bound is None:
        return False
    interval = paired_ratio(pairs).get("ci")
    return interval is not None and interval[0] <= bound < interval[1]


def float_reference(baseline: CellRecord | None, settings: LatencySpec) -> LatencyVsFloat | None:
    """What a cell's paired × float is timed against: its float cell's model file (None: pairs are
    off, or the float cell has no model)."""
    artifact = baseline.get("artifact") if baseline else None
    if settings.float_pairs == 0 or baseline is None or baseline.get("status") != "ok" or not artifact:
        return None
    return {"float_sha256": artifact["sha256"], "float_path": artifact["path"]}


def time_vs_float(device: Device, reference: LatencyVsFloat, model: Path, settings: LatencySpec) -> LatencyVsFloat:
    """The float model (A) and the cell's model (B) timed in `settings.float_pairs` alternating
    pairs (`time_ab`, never extended): the paired ratio B/A and its 95 % interval."""
    path = Path(reference["float_path"])
    if not path.is_file() or file_digest(path) != reference["float_sha256"]:
        return {**reference, "unavailable": "the float model file is gone or changed: no paired timing"}
    pairs = settings.float_pairs
    watches: list[dict[str, Any]] = []
    try:
        timed = time_ab(device, path, model, settings.model_copy(update={"ab_pairs": pairs, "ab_max_pairs": pairs}),
                        watches=watches)
    except HarnessError as exc:  # the cell's own timing stands; its × float is then the unpaired one
        return {**reference, "unavailable": f"timing the float model beside it failed: {exc}"}
    paired: LatencyVsFloat = {**reference, "pairs": timed["pairs"], "ratio": timed["ratio"], "ci": timed["ci"],
                              "n_pairs": timed["n_pairs"], "confidence": timed.get("confidence", 0.95)}
    if watches:  # a local device: was its core busy while the pairs were timed (both sides alike)?
        paired["during"] = during(watches)
        paired["busy_reason"] = _busy_during(paired["during"], settings.busy_share)
    return paired


def with_unpaired(record: CellRecord, baseline: CellRecord | None) -> None:
    """`latency_vs_float.unpaired_ratio`: the cell's median over the float cell's, measured apart."""
    paired = record.get("latency_vs_float")
    if paired is not None and baseline is not None and baseline is not record and baseline.get("status") == "ok":
        paired["unpaired_ratio"] = latency_ratio(record.get("latency_ms"), baseline.get("latency_ms"))
