"""Automatic selective quantization: keep the worst layers of a full-integer model in float until a task
metric's bound holds.

Layers are ranked once, by TF QuantizationDebugger's local error (`rmse_per_scale`: each quantized op vs
the float op on the same, already-quantized inputs, in units of its output's quantization step), on the
calibration samples. Accumulated error (what `bench diagnose` shows per tensor) ranks the layers *after* a
bad one as badly as the bad one itself; the local error points at the op that makes the error. Then the
k worst-ranked layers stay float (the `float_layers` machinery), the model is re-evaluated on the task,
and k grows (1, 2, 4, ... or one at a time) until the bound holds or `max_float_layers` is spent.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from harness.datasets import Samples
from harness.errors import HarnessError, NotApplicable
from harness.numerics.fidelity import json_number
from harness.suite.schema import Bound

Build = Callable[[list[str]], bytes]
Evaluate = Callable[[Path], dict[str, Any]]


class RecoverSpec(Bound):
    """`recover: {metric: top1, max_abs_drop: 0.005, max_float_layers: 10}` on a full-integer scheme."""

    metric: str = Field(description="the task metric the bound applies to (any metric a threshold may name)")
    max_float_layers: int = Field(10, ge=1, description="budget: at most this many layers kept in float")
    steps: Literal["doubling", "one_by_one"] = Field("doubling", description="1, 2, 4, ... or 1, 2, 3, ... layers")
    latency_runs: int = Field(30, ge=0, description="host invokes timed per step (1 thread, batch 1); 0: no latency")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        from harness.tasks import all_metrics

        if value not in all_metrics():
            raise ValueError(f"unknown metric {value!r} (known: {', '.join(sorted(all_metrics()))})")
        return value


def step_sizes(budget: int, available: int, steps: str) -> list[int]:
    """How many float layers each step keeps: 1, 2, 4, ... (or 1, 2, 3, ...), capped at the budget and at
    the number of ranked layers, the cap itself always the last step."""
    cap = min(budget, available)
    sizes = [2**i for i in range(cap.bit_length()) if 2**i <= cap] if steps == "doubling" else list(range(1, cap + 1))
    if sizes and sizes[-1] != cap:
        sizes.append(cap)
    return sizes


def higher_is_better(metric: str) -> bool:
    from harness.tasks import all_metrics

    return all_metrics()[metric].higher_is_better


def bound_holds(spec: RecoverSpec, value: float, reference: float | None) -> bool:
    """Whether `value` meets every limit of the spec; a NaN never does. Drops need the float `reference`."""
    if math.isnan(value):
        return False
    ok = (spec.min is None or value >= spec.min) and (spec.max is None or value <= spec.max)
    if spec.max_abs_drop is None and spec.max_rel_drop is None:
        return ok
    if reference is None or math.isnan(reference):
        raise HarnessError(f"recover: a drop bound on {spec.metric} needs the float baseline's {spec.metric}")
    drop = reference - value if higher_is_better(spec.metric) else value - reference
    if spec.max_abs_drop is not None:
        ok = ok and drop <= spec.max_abs_drop + 1e-12
    if spec.max_rel_drop is not None and reference:
        ok = ok and drop / abs(reference) <= spec.max_rel_drop + 1e-12
    return ok


def rank_layers(layer_statistics: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The debugger's quantized tensors, worst local error first (NaN last), as {tensor, rmse_per_scale}."""
    def badness(item: tuple[str, dict[str, float]]) -> float:
        value = item[1].get("rmse_per_scale", math.nan)
        return -value if not math.isnan(value) else math.inf

    return [{"tensor": name, "rmse_per_scale": stats.get("rmse_per_scale", math.nan)}
            for name, stats in sorted(layer_statistics.items(), key=badness)]


def host_latency_ms(model: Path, x: Samples, runs: int) -> float | None:
    """Median wall time (ms) of `runs` invokes on one sample, one thread, after 3 warm-ups: a cheap
    relative measure between steps (not the cell's device measurement)."""
    from harness.devices.litert import bind_inputs, load_interpreter, quantize_input

    if runs == 0:
        return None
    interpreter = load_interpreter(model, num_threads=1)
    arrays = bind_inputs(x, interpreter, model.name)
    for array, detail in zip(arrays, interpreter.get_input_details()):
        interpreter.resize_tensor_input(detail["index"], [1, *array.shape[1:]], strict=False)
    interpreter.allocate_tensors()
    for array, detail in zip(arrays, interpreter.get_input_details()):
        interpreter.set_tensor(detail["index"], quantize_input(array[:1], detail))
    times = []
    for i in range(runs + 3):
        started = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times[3:]), 4)


def metric_value(metrics: dict[str, Any], metric: str) -> float:
    if metric not in metrics:
        raise NotApplicable(f"recover: the task gives no {metric!r} (it gives {', '.join(sorted(metrics)) or 'none'})")
    return float(metrics[metric])


def _step(spec: RecoverSpec, layers: list[str], data: bytes, evaluate: Evaluate, x: Samples,
          scratch: Path) -> dict[str, Any]:
    path = scratch / f"float_{len(layers)}.tflite"
    path.write_bytes(data)
    value = metric_value(evaluate(path), spec.metric)
    step: dict[str, Any] = {"float_layers": len(layers), "metric": json_number(value), "size_bytes": len(data)}
    latency = host_latency_ms(path, x, spec.latency_runs)
    if latency is not None:
        step["latency_ms"] = latency
    return step


def recover(spec: RecoverSpec, ranked: list[dict[str, Any]], build: Build, evaluate: Evaluate,
            reference: float | None, x: Samples) -> dict[str, Any]:
    """Run the loop: step 0 is the full-integer model, then the k worst-ranked layers in float for each k of
    `step_sizes`, stopping at the first step whose metric meets the bound. Returns the `recovery` record:
    {metric, reference, float_layers (of the last step), steps, met, ranking (the worst 2×budget layers)}."""
    names = [row["tensor"] for row in ranked]
    steps, chosen = [], []
    with tempfile.TemporaryDirectory(prefix="recover-") as scratch:
        for k in [0, *step_sizes(spec.max_float_layers, len(names), spec.steps)]:
            chosen = names[:k]
            steps.append(_step(spec, chosen, build(chosen), evaluate, x, Path(scratch)))
            if bound_holds(spec, float(steps[-1]["metric"]), reference):
                break
    ranking = [{**row, "rmse_per_scale": json_number(row["rmse_per_scale"])} for row in ranked[: 2 * spec.max_float_layers]]
    return {"metric": spec.metric, "reference": json_number(reference) if reference is not None else None,
            "float_layers": chosen, "steps": steps, "met": bound_holds(spec, float(steps[-1]["metric"]), reference),
            "ranked_by": "QuantizationDebugger local rmse_per_scale on the calibration samples", "ranking": ranking,
            "latency": "host, 1 thread, batch 1, median" if spec.latency_runs else None}


def debugger_ranking(saved_model: Path, calibration: Samples, float_model: Path) -> list[dict[str, Any]]:
    """Rank the int8 model's layers by the debugger's local error on the calibration samples."""
    from harness.devices.litert import bind_inputs, load_interpreter
    from harness.numerics.diagnose import debugger_statistics

    arrays = bind_inputs(calibration, load_interpreter(float_model), float_model.name)
    batches = lambda: ([a[i : i + 1].astype(np.float32) for a in arrays] for i in range(len(arrays[0])))  # noqa: E731
    return rank_layers(debugger_statistics(saved_model, batches, batches))


def baseline_metric(spec: RecoverSpec, baseline: dict[str, Any] | None) -> float | None:
    """The float baseline's value of the recovered metric (None when it has none)."""
    if baseline is None or baseline.get("status") != "ok":
        raise NotApplicable("recover: the float32 baseline of this model did not run, so there is nothing to "
                            "recover towards")
    value = (baseline.get("metrics") or {}).get(spec.metric)
    return float(value) if value is not None else None


def run(scheme: Any, options: Any, source: Any, saved_model: Path, calibration: Samples | None, float_model: Path,
        evaluate: Evaluate, reference: float | None, x: Samples) -> dict[str, Any]:
    """Rank with the debugger, then `recover` with `scheme` built with each step's `float_layers`."""
    if source.format == "tflite":
        raise NotApplicable("recover: ranks layers with TF's QuantizationDebugger, which needs a TFLiteConverter "
                            "source; for a .tflite source give `float_layers` from `bench diagnose`")
    if calibration is None:
        raise NotApplicable("recover: no calibration samples")
    spec, plain = options.recover, options.model_copy(update={"recover": None})
    ranked = debugger_ranking(saved_model, calibration, float_model)
    if not ranked:
        raise HarnessError("recover: the debugger found no quantized layer to keep in float")

    def build(layers: list[str]) -> bytes:
        return scheme.from_saved_model(saved_model, plain.model_copy(update={"float_layers": layers}), calibration)

    return recover(spec, ranked, build, evaluate, reference, x)
