"""Every latency statistic in one place: summaries, bounded samples, repeats, run-to-run tests,
paired A/B ratios and step detection.

The unit of the statistics is the repeat: one independent measurement (a fresh process on the
host, one `benchmark_model` invocation on a phone) summarised by its median. Iterations inside one
repeat share a process, a cache state and a CPU frequency, so they are not independent; repeats
are, and nights differ by more than either (another machine, another tenant), so a slowdown
across nights is only trusted when measured side by side in one run (`paired_ratio`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the record's types load pydantic, which the measurement process (answer()) does without
    from harness.record import PairedRatio

SAMPLE_LIMIT = 1000  # per-iteration values kept per cell: storage grows with cells, not with samples


def summarize(samples_ms: Sequence[float]) -> dict[str, float | int]:
    """median, mean, p90, std, min, max and count of latency samples (milliseconds)."""
    if not samples_ms:
        raise ValueError("no latency samples")
    values = np.asarray(samples_ms, dtype=np.float64)
    return {
        "median": float(np.median(values)),
        "mean": float(values.mean()),
        "p90": float(np.percentile(values, 90)),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "min": float(values.min()),
        "max": float(values.max()),
        "count": int(len(values)),
    }


def coefficient_of_variation(values: Sequence[float]) -> float:
    """std / mean (sample std); 0 for fewer than two values."""
    array = np.asarray(values, dtype=np.float64)
    if len(array) < 2 or array.mean() == 0:
        return 0.0
    return float(array.std(ddof=1) / array.mean())


def bounded_sample(samples_ms: Sequence[float], limit: int = SAMPLE_LIMIT) -> list[float]:
    """At most `limit` values that keep the distribution: all of them when there are few, else
    the order statistics at evenly spaced ranks (a quantile sketch that keeps min and max),
    rounded to 6 significant digits."""
    values = np.sort(np.asarray(samples_ms, dtype=np.float64))
    if len(values) > limit:
        values = values[np.round(np.linspace(0, len(values) - 1, limit)).astype(int)]
    return [float(f"{v:.6g}") for v in values]


def typical(stats: Mapping[str, Any] | None) -> float | None:
    """A measurement's representative latency: its median, else its mean (old benchmark_model logs
    print no percentiles); None when there is none."""
    stats = stats or {}
    return stats.get("median") if stats.get("median") is not None else stats.get("mean")


def combine_repeats(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell's statistics from its repeats (each {'stats': ..., 'samples': [...] or None}):
    pooled statistics where per-iteration samples exist, else count-weighted ones, plus the
    per-repeat medians (`repeat_medians`), the unit of the run-to-run statistics."""
    medians = [typical(r["stats"]) for r in repeats]
    pooled = [s for r in repeats for s in (r.get("samples") or [])]
    if pooled and all(r.get("samples") for r in repeats):
        stats: dict[str, Any] = summarize(pooled)
    else:
        stats = _weighted(repeats)
    stats["repeat_medians"] = [float(m) for m in medians if m is not None]
    stats["repeats"] = len(repeats)
    if len(stats["repeat_medians"]) > 1:
        if stats.get("median") is not None:
            stats["median"] = float(np.median(stats["repeat_medians"]))  # the median of the repeats' medians
        stats["repeat_cv"] = coefficient_of_variation(stats["repeat_medians"])
    return {key: significant(value) for key, value in stats.items()}


def significant(value: Any) -> Any:
    """Floats (and lists of them) to 6 significant digits, as the bounded sample keeps them: a part per
    million, far below any latency's run-to-run spread; every check reads the values so kept."""
    if isinstance(value, list):
        return [significant(v) for v in value]
    return float(f"{value:.6g}") if isinstance(value, float) and math.isfinite(value) else value


def _weighted(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    parts = [r["stats"] for r in repeats]
    counts = [max(int(p.get("count") or 1), 1) for p in parts]
    combined: dict[str, Any] = {"count": sum(counts)}
    for key in ("mean", "std", "p5", "p90", "p95"):
        values = [p.get(key) for p in parts]
        if all(v is not None for v in values):
            combined[key] = float(np.average(values, weights=counts))
    for key, pick in (("min", min), ("max", max)):
        values = [p[key] for p in parts if p.get(key) is not None]
        if values:
            combined[key] = float(pick(values))
    medians = [p.get("median") for p in parts]
    if all(m is not None for m in medians):
        combined["median"] = float(np.median(medians))
    return combined


@dataclass(frozen=True)
class LatencyTest:
    """A run-to-run latency test: current vs previous, `ratio` of their typical latencies."""

    method: str  # "paired A/B", "repeat medians" or "per-iteration samples"
    p: float | None  # the test's p-value (one-sided: slower), None for the paired interval
    ratio: float  # current / previous
    previous_median: float
    current_median: float
    n_previous: int
    n_current: int
    u: float | None = None  # Mann–Whitney U, for the rank test on per-iteration samples
    t: float | None = None  # Welch's t on log latencies, for the repeat-median test
    ci: tuple[float, float] | None = None  # the paired ratio's confidence interval


def rank_test(previous: Sequence[float], current: Sequence[float], method: str, min_n: int,
              alternative: str = "greater") -> LatencyTest | None:
    """Mann–Whitney U of current vs previous values (one-sided: current slower, by default);
    None when either side has fewer than `min_n` values."""
    if min(len(previous), len(current)) < min_n:
        return None
    from scipy.stats import mannwhitneyu  # imported here: scipy.stats alone would double `bench` start-up time

    result = mannwhitneyu(current, previous, alternative=alternative)
    old, new = float(np.median(previous)), float(np.median(current))
    return LatencyTest(method=method, p=float(result.pvalue), ratio=new / old if old else math.inf,
                       previous_median=old, current_median=new, n_previous=len(previous), n_current=len(current),
                       u=float(result.statistic))


def log_t_test(previous: Sequence[float], current: Sequence[float], method: str, min_n: int) -> LatencyTest | None:
    """Welch's t-test of log(current) vs log(previous), one-sided (current slower); None when
    either side has fewer than `min_n` values. For a few repeat medians a side, where a rank test
    cannot reach significance (3 against 3: its smallest one-sided p is 1/20). Both sides without
    spread (a tool's whole-microsecond medians): p is 0 when they differ, 1 when they are equal."""
    if min(len(previous), len(current)) < min_n or min(min(previous), min(current)) <= 0:
        return None
    old, new = float(np.median(previous)), float(np.median(current))
    logs = [np.log(np.asarray(v, dtype=float)) for v in (previous, current)]
    t, p = _welch(logs[0], logs[1]) if max(float(np.ptp(v)) for v in logs) > 1e-9 else (math.nan, math.nan)
    if not math.isfinite(p):  # no spread on either side: the medians alone decide
        t, p = (math.inf if new > old else -math.inf if new < old else 0.0), (0.0 if new > old else 1.0)
    return LatencyTest(method=method, p=p, ratio=new / old, previous_median=old, current_median=new,
                       n_previous=len(previous), n_current=len(current), t=t)


def _welch(previous: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Welch's t and one-sided p (current greater); NaN where the spread is too small to compute."""
    import warnings

    from scipy.stats import ttest_ind

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-identical values: p comes out NaN, handled
        result = ttest_ind(current, previous, equal_var=False, alternative="greater")
    return float(result.statistic), float(result.pvalue)


def paired_ratio(pairs: Sequence[tuple[float, float]], confidence: float = 0.95) -> PairedRatio:
    """The ratio B/A of pairs (A, B) timed side by side: the geometric mean of the per-pair ratios
    and its Student-t confidence interval on the log scale (None with fewer than two pairs)."""
    logs = np.log([b / a for a, b in pairs if a > 0 and b > 0])
    if len(logs) == 0:
        return {"ratio": None, "ci": None, "n_pairs": 0}
    centre = float(np.mean(logs))
    interval = None
    if len(logs) > 1:
        from scipy.stats import t

        spread = float(np.std(logs, ddof=1)) / math.sqrt(len(logs))
        half = float(t.ppf(0.5 + confidence / 2, len(logs) - 1)) * spread
        interval = significant([math.exp(centre - half), math.exp(centre + half)])
    return {"ratio": significant(math.exp(centre)), "ci": interval, "confidence": confidence, "n_pairs": len(logs)}


def find_step(values: Sequence[float | None], ratio: float, persist: int = 2, window: int = 5) -> int | None:
    """The index where a lasting slowdown starts: the first value from which `persist` values in a
    row are at least `ratio` × the median of up to `window` values before it (None: no step).
    Two nights in a row, as PyTorch's regression tooling asks, so one noisy night is not a step."""
    for start in range(1, len(values) - persist + 1):
        before = [v for v in values[max(0, start - window):start] if v is not None]
        after = values[start:start + persist]
        if before and all(v is not None and v >= ratio * float(np.median(before)) for v in after):
            return start
    return None
