"""Automatic selective quantization: keep the worst layers of a full-integer model in float until a task
metric's bound holds.

Layers are ranked once, by default by how far the accumulated SNR vs the float model falls across each
layer (`snr_drop_db`: the tensors `bench diagnose` compares, on 16 calibration samples of the full-integer
model), or by TF QuantizationDebugger's local error (each quantized op vs the float op on the same,
already-quantized inputs: `local_snr_db` against the float output's power, or `rmse_per_scale` in units
of its output's quantization step). The accumulated SNR itself would blame every layer after a bad one;
its drop across a layer, like the local error, points at the layer that makes the error, and unlike the
local error it weighs it in the model's own context. Then the k worst-ranked layers stay float (the
`float_layers` machinery), the model is re-evaluated on the task, and k grows (1, 2, 4, ... or one at a
time) until the bound holds or `max_float_layers` is spent.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.config.schema import RecoverSpec
from harness.errors import HarnessError, NotApplicable
from harness.fidelity import json_number
from harness.models.source import FLOAT_TFLITE_FORMATS
from harness.record import CellRecord
from harness.samples import FromSignature, Samples

Build = Callable[[list[str]], bytes]
Evaluate = Callable[[Path], dict[str, Any]]


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


def layer_of(tensor: str) -> str:
    """The Keras layer a converter tensor belongs to: `model/layer` of its first fused name
    (`tiny_vit_1/layer_normalization_1/moments/variance` → `tiny_vit_1/layer_normalization_1`); a name
    without a layer scope is its own layer."""
    parts = tensor.split(";")[0].split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else tensor


def _badness(stats: dict[str, float], rank_by: str) -> float:
    """Larger is worse: rmse_per_scale as is, local SNR negated; NaN when the debugger has no number."""
    value = stats.get(rank_by, math.nan)
    return -value if rank_by == "local_snr_db" else value


def rank_layers(layer_statistics: dict[str, dict[str, float]], unit: str = "layer",
                rank_by: str = "local_snr_db") -> list[dict[str, Any]]:
    """Worst local error first (NaN last), as {layer, <rank_by> (the worst of its ops), tensors}.
    `unit: op` ranks each quantized op alone; `layer` groups a Keras layer's ops, which stay float together:
    an op kept float alone hands its output to the next int8 op, which quantizes it again (a layer norm's
    variance feeding RSQRT loses the same small values either way)."""
    groups: dict[str, dict[str, Any]] = {}
    for name, stats in layer_statistics.items():
        group = groups.setdefault(layer_of(name) if unit == "layer" else name, {"badness": math.nan, "tensors": []})
        group["tensors"].append(name)
        value = _badness(stats, rank_by)
        if not math.isnan(value) and not value <= group["badness"]:
            group["badness"] = value

    def order(item: tuple[str, dict[str, Any]]) -> float:
        return -item[1]["badness"] if not math.isnan(item[1]["badness"]) else math.inf

    sign = -1.0 if rank_by == "local_snr_db" else 1.0
    return [{"layer": name, rank_by: sign * group["badness"], "tensors": group["tensors"]}
            for name, group in sorted(groups.items(), key=order)]


def host_latency_ms(model: Path, x: Samples, runs: int) -> float | None:
    """Median wall time (ms) of `runs` invokes on one sample, one thread, after 3 warm-ups: a cheap
    relative measure between steps (not the cell's device measurement)."""
    from harness.tflite.runtime import bind_inputs, load_interpreter, quantize_input

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
    for _ in range(runs + 3):
        started = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times[3:]), 4)


def metric_value(metrics: dict[str, Any], metric: str) -> float:
    if metric not in metrics:
        raise NotApplicable(f"recover: the task gives no {metric!r} (it gives {', '.join(sorted(metrics)) or 'none'})")
    return float(metrics[metric])


def _step(spec: RecoverSpec, tensors: list[str], layers: int, build: Build, evaluate: Evaluate, x: Samples,
          scratch: Path) -> dict[str, Any]:
    """Build with `tensors` float, evaluate, weigh and time: one row of `steps`."""
    data = build(tensors)
    path = scratch / f"float_{layers}.tflite"
    path.write_bytes(data)
    value = metric_value(evaluate(path), spec.metric)
    step: dict[str, Any] = {"float_layers": layers, "float_ops": len(tensors), "metric": json_number(value),
                            "size_bytes": len(data)}
    latency = host_latency_ms(path, x, spec.latency_runs)
    if latency is not None:
        step["latency_ms"] = latency
    return step


def recover(spec: RecoverSpec, ranked: list[dict[str, Any]], build: Build, evaluate: Evaluate,
            reference: float | None, x: Samples) -> dict[str, Any]:
    """Run the loop: step 0 is the full-integer model, then the k worst-ranked layers in float for each k of
    `step_sizes`, stopping at the first step whose metric meets the bound. Returns the `recovery` record:
    {metric, reference, float_layers (of the last step), steps, met, ranking (the worst 2×budget layers)}."""
    steps: list[dict[str, Any]] = []
    k = 0
    with tempfile.TemporaryDirectory(prefix="recover-") as scratch:
        for k in [0, *step_sizes(spec.max_float_layers, len(ranked), spec.steps)]:
            steps.append(_step(spec, tensors_of(ranked[:k]), k, build, evaluate, x, Path(scratch)))
            if bound_holds(spec, float(steps[-1]["metric"]), reference):
                break
    ranking = [{**row, spec.rank_by: json_number(row[spec.rank_by])} for row in ranked[: 2 * spec.max_float_layers]]
    return {"metric": spec.metric, "reference": json_number(reference) if reference is not None else None,
            "float_layers": [row["layer"] for row in ranked[:k]], "float_tensors": tensors_of(ranked[:k]),
            "steps": steps, "met": bound_holds(spec, float(steps[-1]["metric"]), reference),
            "ranked_by": f"{spec.rank_by} per {spec.unit}" + ("" if spec.rank_by == "snr_drop_db" else " (QuantizationDebugger)"),
            "ranking": ranking, "latency": "host, 1 thread, batch 1, median" if spec.latency_runs else None}


def tensors_of(rows: list[dict[str, Any]]) -> list[str]:
    return [name for row in rows for name in row["tensors"]]


def debugger_ranking(saved_model: Path, calibration: Samples, float_model: Path, unit: str,
                     rank_by: str) -> list[dict[str, Any]]:
    """Rank the int8 model's layers by the debugger's local error on the calibration samples."""
    from harness.numerics.diagnose import debugger_statistics
    from harness.tflite.runtime import bind_inputs, load_interpreter

    arrays = bind_inputs(calibration, load_interpreter(float_model), float_model.name)
    batches = lambda: ([a[i : i + 1].astype(np.float32) for a in arrays] for i in range(len(arrays[0])))  # noqa: E731
    return rank_layers(debugger_statistics(saved_model, batches, batches), unit, rank_by)


def _first(samples: Samples, n: int) -> Samples:
    if isinstance(samples, FromSignature):
        return samples.select(slice(0, n))
    if isinstance(samples, dict):
        return {name: array[:n] for name, array in samples.items()}
    return samples[:n]


def _graph(model: Path) -> list[tuple[list[str], list[str]]]:
    """(input tensor names, output tensor names) of every op of the model, in execution order (not the
    nodes the XNNPACK delegate adds for its partitions: their inputs are not an op's)."""
    from harness.tflite.runtime import load_interpreter

    interpreter = load_interpreter(model)
    names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    return [([names[t] for t in op["inputs"] if t >= 0], [names[t] for t in op["outputs"] if t >= 0])
            for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]  # noqa: SLF001


def snr_drops(graph: list[tuple[list[str], list[str]]], snr: dict[str, float], unit: str) -> list[dict[str, Any]]:
    """Per layer (or op), worst first: the lowest accumulated SNR among the tensors entering it from outside
    minus the lowest among its own outputs. A tensor the float model has no counterpart for takes the lowest
    SNR of its op's inputs; with no known input (the model input), the best SNR in the model stands in."""
    groups: dict[str, dict[str, list[str]]] = {}
    known = dict(snr)
    for inputs, outputs in graph:
        estimate = min((known[i] for i in inputs if i in known), default=None)
        for name in outputs:
            if name not in known and estimate is not None:
                known[name] = estimate
        for name in (o for o in outputs if o in snr):
            group = groups.setdefault(layer_of(name) if unit == "layer" else name, {"tensors": [], "inputs": []})
            group["tensors"] += [name] if name not in group["tensors"] else []
            group["inputs"].extend(inputs)
    best = max((v for v in snr.values() if math.isfinite(v)), default=math.inf)
    rows = []
    for layer, group in groups.items():
        entering = [known[t] for t in group["inputs"] if t in known and t not in group["tensors"]]
        drop = min(entering, default=best) - min(snr[t] for t in group["tensors"])
        rows.append({"layer": layer, "snr_drop_db": drop, "tensors": group["tensors"]})
    return sorted(rows, key=lambda r: -r["snr_drop_db"] if not math.isnan(r["snr_drop_db"]) else math.inf)


def accumulated_ranking(quantized: Path, float_model: Path, x: Samples, unit: str) -> list[dict[str, Any]]:
    """Rank by `snr_drops` of the accumulated error (`bench diagnose`'s tensors) on the first 16 samples."""
    from harness.numerics.diagnose import compare_tensors, run_all_tensors

    few = _first(x, 16)
    rows = compare_tensors(run_all_tensors(quantized, few), run_all_tensors(float_model, few))
    snr = {r["tensor"]: float(r["snr_db"]) for r in rows if r["dtype"] not in ("int32", "int64", "bool")}
    return snr_drops(_graph(quantized), snr, unit)


def baseline_metric(spec: RecoverSpec, baseline: CellRecord | None) -> float | None:
    """The float baseline's value of the recovered metric (None when it has none)."""
    if baseline is None or baseline.get("status") != "ok":
        raise NotApplicable("recover: the float32 baseline of this model did not run, so there is nothing to "
                            "recover towards")
    value = (baseline.get("metrics") or {}).get(spec.metric)
    return float(value) if value is not None else None


def run(scheme: Any, options: Any, source: Any, saved_model_of: Callable[[], Path], calibration: Samples | None,
        float_model: Path, evaluate: Evaluate, reference: float | None, x: Samples) -> dict[str, Any]:
    """Rank the layers, then `recover` with `scheme` built with each step's `float_layers`: from the source's
    SavedModel (`saved_model_of()`, asked for once the source is known to have one), or for a `.tflite`
    source with litert-quantizer (`no_quantize` rules; ranked by the accumulated SNR drop only)."""
    spec = options.recover
    if source.format in FLOAT_TFLITE_FORMATS and spec.rank_by != "snr_drop_db":
        raise NotApplicable(f"recover: `rank_by: {spec.rank_by}` ranks with TF's QuantizationDebugger, which needs a "
                            "TFLiteConverter source; a .tflite source ranks by `snr_drop_db` (the default)")
    if calibration is None:
        raise NotApplicable("recover: no calibration samples")
    tflite = source.format in FLOAT_TFLITE_FORMATS
    if not tflite and not scheme.converter_float_layers:
        raise NotApplicable("recover: this scheme keeps layers float only for .tflite sources (litert-quantizer)")
    plain, saved_model = options.model_copy(update={"recover": None}), None if tflite else saved_model_of()
    built: dict[tuple[str, ...], bytes] = {}

    def build(layers: list[str]) -> bytes:  # .tflite sources: litert-quantizer with a no_quantize rule per layer
        if tuple(layers) not in built:
            options = plain.model_copy(update={"float_layers": layers})
            built[tuple(layers)] = (scheme.from_tflite(source.path.read_bytes(), options, calibration) if tflite
                                    else scheme.from_saved_model(saved_model, options, calibration))
        return built[tuple(layers)]

    ranked = _ranking(spec, build, saved_model, calibration, float_model)
    if not ranked:
        raise HarnessError("recover: found no quantized layer to keep in float")
    return recover(spec, ranked, build, evaluate, reference, x)


def _ranking(spec: RecoverSpec, build: Build, saved_model: Path | None, calibration: Samples,
             float_model: Path) -> list[dict[str, Any]]:
    if spec.rank_by != "snr_drop_db":
        assert saved_model is not None  # `run` refused the debugger's ranking for a .tflite source
        return debugger_ranking(saved_model, calibration, float_model, spec.unit, spec.rank_by)
    with tempfile.TemporaryDirectory(prefix="recover-rank-") as scratch:
        quantized = Path(scratch) / "int8.tflite"
        quantized.write_bytes(build([]))
        return accumulated_ranking(quantized, float_model, calibration, spec.unit)
