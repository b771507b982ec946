"""Scheme option `diagnose: true`: the cell's `diagnosis` record, computed right after conversion.

The cell's model and its float baseline run the first `SAMPLES` calibration samples with every tensor
kept (`diagnose.run_all_tensors`), compared per tensor (`compare_tensors`); `.tflite` sources add
litert-quantizer's `validate()` (harness/numerics/_validate.py) and converter sources of int8 schemes TF's
QuantizationDebugger, each cross-checked against the independent computation. The record keeps the
`RANKED` worst layers and, for the report's chart, at most `CURVE_POINTS` points of SNR in graph order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

from harness.fidelity import json_number
from harness.record import CellRecord, DiagnosedTensor, Diagnosis
from harness.samples import Samples, sample_count, take
from harness.schemes import debugged

SAMPLES = 8
RANKED = 20
CURVE_POINTS = 200


def curve(rows: list[dict]) -> list[list[Any]]:
    """[position, snr_db] in graph order, at most CURVE_POINTS: a longer graph keeps each bin's lowest SNR
    (the jump stays visible). An infinite SNR (an exact tensor) is kept as the string "Infinity"."""
    points = [[row["position"], row["snr_db"]] for row in rows]
    if len(points) <= CURVE_POINTS:
        return points
    bins = np.array_split(np.arange(len(points)), CURVE_POINTS)
    return [min((points[i] for i in chunk), key=lambda p: float(p[1])) for chunk in bins]


def ranked(rows: list[dict]) -> list[DiagnosedTensor]:
    """The RANKED lowest finite SNRs, worst first (rows of harness.numerics.diagnose.compare_tensors)."""
    finite = [row for row in rows if math.isfinite(float(row["snr_db"]))]
    return cast(list[DiagnosedTensor], sorted(finite, key=lambda row: float(row["snr_db"]))[:RANKED])


def _lists(x: Samples, model: Path) -> Callable[[], Any]:
    from harness.tflite.runtime import bind_inputs, load_interpreter

    arrays = bind_inputs(x, load_interpreter(model), model.name)
    return lambda: ([a[i : i + 1].astype("float32") for a in arrays] for i in range(len(arrays[0])))


def _second_route(rows: list[dict], route: str, paths: tuple[Path, Path], x: Samples, tensors: tuple[dict, dict],
                  saved_model: Callable[[], Path], calibration: Samples) -> tuple[list[dict], dict[str, Any] | None]:
    """The library route's numbers joined to `rows`, with its cross-check (None when the route is none): the
    check compares the library with the independent computation on the same (builtin) kernels."""
    from harness.numerics import _validate, diagnose

    model, float_model = paths
    if route == "independent":
        return rows, None
    builtin_rows, optimized, reference = diagnose.on_builtin_kernels(model, float_model, x)  # the library's kernels
    if route == "litert_quantizer.validate":
        statistics = _validate.validate_statistics(float_model, model, x)
        check = _validate.cross_check_validate(builtin_rows, optimized, reference, statistics)
        return _validate.join_validate(rows, statistics), {**check, "kernels": "builtin"}
    debugged = diagnose.debugger_statistics(saved_model(), _lists(calibration, float_model), _lists(x, float_model))
    check = diagnose.cross_check(builtin_rows, debugged)
    return diagnose.join(rows, debugged), {"route": route, **check, "kernels": "builtin"}


def route_for(source_format: str, scheme_kind: str) -> str:
    if source_format == "tflite":
        return "litert_quantizer.validate"
    return "quantization_debugger" if debugged(scheme_kind) else "independent"


def cell_diagnosis(model: Path, baseline: CellRecord | None, calibration: Samples | None, source_format: str,
                   scheme_kind: str, saved_model: Callable[[], Path]) -> Diagnosis:
    """The `diagnosis` record; a failure is recorded in it (`error`) and does not fail the cell."""
    try:
        return _diagnosis(model, baseline, calibration, source_format, scheme_kind, saved_model)
    except Exception as exc:  # noqa: BLE001 - the cell's model is fine; only its diagnosis failed
        return {"error": f"{type(exc).__name__}: {exc}"}


def _diagnosis(model: Path, baseline: CellRecord | None, calibration: Samples | None, source_format: str,
               scheme_kind: str, saved_model: Callable[[], Path]) -> Diagnosis:
    """The `diagnosis` record of a converted cell (`na` with the reason when there is no float model)."""
    from harness.numerics.diagnose import check_names, compare_tensors, diagnosed_on, run_all_tensors

    artifact = baseline.get("artifact") if baseline else None
    if baseline is None or baseline.get("status") != "ok" or not artifact:
        return {"na": "no float32 cell to compare with"}
    if calibration is None:
        return {"na": "no calibration samples to run the tensors on"}
    float_model = Path(artifact["path"])
    x = take(calibration, slice(0, SAMPLES))
    optimized, reference = run_all_tensors(model, x), run_all_tensors(float_model, x)
    rows = compare_tensors(optimized, reference)
    check_names(rows, optimized)
    route = route_for(source_format, scheme_kind)
    rows, check = _second_route(rows, route, (model, float_model), x, (optimized, reference), saved_model, calibration)
    return {"route": route, "kernels": diagnosed_on(model), "samples": sample_count(x), "tensors": len(optimized),
            "compared": len(rows),
            "ranked": ranked(rows), "snr_curve": curve(rows), "cross_check": check,
            "min_snr_db": json_number(min((float(r["snr_db"]) for r in rows), default=math.nan))}
