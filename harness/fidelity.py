"""Per-output fidelity of an optimized model vs the float model on the same inputs.

Five numbers per output tensor, each over every element of every sample (float64):
- `snr_db`: 10·log10(Σ ref² / Σ (out − ref)²); +inf when the outputs are identical;
- `cosine`: cosine similarity of the flattened outputs (1 when both are all zeros, 0 when one is);
- `nrmse`: RMSE / standard deviation of the float output; for a constant float output, RMSE / its
  magnitude |mean|; for an all-zero one, 0 when the output is exact, else +inf;
- `max_abs_error`, `mean_abs_error`.

A record cannot hold NaN or ±inf (results are strict JSON): `json_number` writes them as the strings
"NaN", "Infinity", "-Infinity" (the spelling `harness.record` uses on main), which `float()` reads back
(thresholds do: +inf passes any `min`, NaN fails every check).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError
from harness.record import JsonFloat, OutputNumbers, jsonable_float

# name → (higher is better, description); the task registry turns these into Metrics.
FIDELITY_METRICS: dict[str, tuple[bool, str]] = {
    "snr_db": (True, "worst output's signal-to-noise ratio vs the float model, dB (+inf when identical)"),
    "cosine": (True, "worst output's cosine similarity with the float model's (flattened)"),
    "nrmse": (False, "worst output's RMSE / standard deviation of the float output"),
    "max_abs_error": (False, "largest absolute difference from the float model in any output"),
    "mean_abs_error": (False, "worst output's mean absolute difference from the float model"),
}

JsonNumber = JsonFloat  # NaN and ±inf as "NaN", "Infinity", "-Infinity"


@dataclass(frozen=True)
class OutputInfo:
    """What a record says about one output tensor besides the numbers."""

    name: str
    dtype: str


def json_number(value: float | str) -> JsonNumber:
    """A float as JSON allows it: finite values as they are, NaN and ±inf as "NaN", "Infinity", "-Infinity"."""
    return jsonable_float(float(value))


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator with 0/0 = 0 and x/0 = inf (NaN stays NaN)."""
    if math.isnan(numerator) or math.isnan(denominator):
        return math.nan
    if denominator == 0:
        return 0.0 if numerator == 0 else math.inf
    return numerator / denominator


def snr_db(output: np.ndarray, reference: np.ndarray) -> float:
    error = float(np.sum(np.square(output - reference)))
    signal = float(np.sum(np.square(reference)))
    if math.isnan(error) or math.isnan(signal):
        return math.nan
    if error == 0:
        return math.inf
    return -math.inf if signal == 0 else 10.0 * math.log10(signal / error)


def cosine(output: np.ndarray, reference: np.ndarray) -> float:
    a, b = output.ravel(), reference.ravel()
    norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    dot = float(np.dot(a, b))
    if math.isnan(norms) or math.isnan(dot):
        return math.nan
    if norms == 0:
        return 1.0 if not a.any() and not b.any() else 0.0
    return min(1.0, max(-1.0, dot / norms))  # rounding can step just outside [-1, 1]


def nrmse(output: np.ndarray, reference: np.ndarray) -> float:
    rmse = math.sqrt(float(np.mean(np.square(output - reference))))
    spread = float(np.std(reference))
    return _ratio(rmse, spread if spread > 0 else abs(float(np.mean(reference))))


_MEASURES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "snr_db": snr_db,
    "cosine": cosine,
    "nrmse": nrmse,
    "max_abs_error": lambda a, b: float(np.max(np.abs(a - b))) if a.size else 0.0,
    "mean_abs_error": lambda a, b: float(np.mean(np.abs(a - b))) if a.size else 0.0,
}


def compare_outputs(output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """The five numbers of one output vs the float model's (plain floats, possibly inf/NaN)."""
    if output.shape != reference.shape:
        raise HarnessError(f"output shape {output.shape} differs from the float model's {reference.shape}")
    a, b = output.astype(np.float64), reference.astype(np.float64)
    with np.errstate(all="ignore"):  # inf/NaN outputs give inf/NaN numbers, not warnings
        return {name: measure(a, b) for name, measure in _MEASURES.items()}


def worst(per_output: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per metric, the worst value over the outputs (NaN if any output's is NaN)."""
    result = {}
    for name, (higher_is_better, _) in FIDELITY_METRICS.items():
        values = [float(numbers[name]) for numbers in per_output]
        if any(math.isnan(v) for v in values):
            result[name] = math.nan
        elif values:
            result[name] = min(values) if higher_is_better else max(values)
    return result


def output_fidelity(outputs: Sequence[np.ndarray], reference: Sequence[np.ndarray],
                    infos: Sequence[OutputInfo]) -> tuple[dict[str, JsonNumber], list[OutputNumbers]]:
    """The worst output's numbers (for `metrics`) and every output's entry (for the record's `outputs`),
    all JSON-safe. `outputs`, `reference` and `infos` are in the same order."""
    if not len(outputs) == len(reference) == len(infos):
        raise HarnessError(f"the model has {len(outputs)} outputs, the float model {len(reference)}")
    numbers = [compare_outputs(a, b) for a, b in zip(outputs, reference)]
    entries: list[OutputNumbers] = [{**entry, **_json_numbers(n)} for entry, n in zip(describe_outputs(infos, outputs), numbers)]
    return {k: json_number(v) for k, v in worst(numbers).items()}, entries


def _json_numbers(numbers: Mapping[str, float]) -> OutputNumbers:
    """One output's five numbers, JSON-safe."""
    return {"snr_db": json_number(numbers["snr_db"]), "cosine": json_number(numbers["cosine"]),
            "nrmse": json_number(numbers["nrmse"]), "max_abs_error": json_number(numbers["max_abs_error"]),
            "mean_abs_error": json_number(numbers["mean_abs_error"])}


def describe_outputs(infos: Sequence[OutputInfo], outputs: Sequence[np.ndarray]) -> list[OutputNumbers]:
    """The record's `outputs` entries without numbers (the float baseline's)."""
    return [{"name": info.name, "shape": list(a.shape), "dtype": info.dtype} for info, a in zip(infos, outputs)]


def aligned(reference: Sequence[np.ndarray], reference_names: Sequence[str],
            names: Sequence[str]) -> list[np.ndarray]:
    """The float model's outputs in the optimized model's order: matched by name when both models name
    the same distinct outputs (a converter may order them differently), else by position."""
    if len(set(names)) == len(names) and sorted(names) == sorted(reference_names):
        by_name = dict(zip(reference_names, reference))
        return [by_name[name] for name in names]
    return list(reference)
