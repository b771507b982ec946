"""litert-quantizer's `validate()` route of `bench diagnose`, for `.tflite` sources.

`validate()` runs the float model and the cell's model on the same inputs with every tensor kept and
compares each tensor both models name (dequantized), averaging a metric per sample. Its `error_metrics`
argument was one string (`"mse"`) before mid-2026 and is a list of `ValidationErrorMetric` since:
`call_validate` takes either form, detected from the signature. Its per-tensor MSE is cross-checked
against the independent computation (`diagnose.run_all_tensors`): the mean over samples of each
sample's MSE is the pooled MSE when every sample has the same shape, so the two must agree.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.fidelity import json_number
from harness.samples import Samples

METRICS = ("mse", "snr")


def takes_one_metric(validate: Callable[..., Any]) -> bool:
    """Whether `validate` is the pre-2026 form whose `error_metrics` is one metric name."""
    parameter = inspect.signature(validate).parameters["error_metrics"]
    return isinstance(parameter.default, str) or parameter.annotation in (str, "str")


def _tensor_values(result: Any, signature: str, metric: str | None) -> dict[str, dict[str, float]]:
    """Every compared tensor (inputs, intermediates, outputs) → {metric: value}; an old result holds one
    float per tensor (the metric asked for)."""
    compared = result.get_signature_comparison_result(signature)
    tensors: dict[str, dict[str, float]] = {}
    for group in (compared.input_tensors, compared.intermediate_tensors, compared.output_tensors):
        for name, value in group.items():
            tensors[name] = ({str(k): float(v) for k, v in value.items()} if isinstance(value, dict)
                             else {str(metric): float(value)})
    return tensors


def call_validate(validate: Callable[..., Any], test_data: dict[str, list[dict[str, np.ndarray]]],
                  metrics: Sequence[str] = METRICS, use_xnnpack: bool = False) -> dict[str, dict[str, float]]:
    """Per tensor name, each of `metrics` as `validate()` computes it (1 thread; no XNNPACK: op by op,
    unless the model has ops only XNNPACK runs), whichever form its `error_metrics` takes."""
    signature = next(iter(test_data))
    options: dict[str, Any] = {"use_xnnpack": use_xnnpack, "num_threads": 1}
    if takes_one_metric(validate):
        merged: dict[str, dict[str, float]] = {}
        for metric in metrics:
            for name, values in _tensor_values(validate(test_data, error_metrics=metric, **options),
                                               signature, metric).items():
                merged.setdefault(name, {}).update(values)
        return merged
    from litert_quantizer.utils.validation_utils import ValidationErrorMetric

    chosen = [ValidationErrorMetric(m) for m in metrics]
    return _tensor_values(validate(test_data, error_metrics=chosen, **options), signature, None)


def validation_feeds(model: bytes, x: Samples) -> dict[str, list[dict[str, np.ndarray]]]:
    """`validate()`'s test data: {signature key: one {input name: (1, ...)} feed per sample}."""
    from harness.schemes._quantizer import _signature_inputs, calibration_feeds

    signature, inputs = _signature_inputs(model)
    return {signature: calibration_feeds(x, inputs)}


def validate_statistics(float_model: Path, optimized_model: Path, x: Samples) -> dict[str, dict[str, float]]:
    """litert-quantizer's per-tensor numbers of the cell's model vs the float model on samples `x`:
    `mse`, and `snr_db` = 10·log10 of its mean per-sample SNR ratio."""
    from litert_quantizer import Quantizer

    from harness.numerics.diagnose import needs_delegate
    from harness.tflite.observe import every_activation_output

    reference, optimized = float_model.read_bytes(), optimized_model.read_bytes()
    delegate = needs_delegate(float_model) or needs_delegate(optimized_model)
    if delegate:  # validate() runs both under XNNPACK, which writes only model outputs: make every tensor one
        reference, optimized = every_activation_output(reference), every_activation_output(optimized)
    engine = Quantizer(bytearray(reference), previous_quantized_model=bytearray(optimized))
    statistics = call_validate(engine.validate, validation_feeds(reference, x), use_xnnpack=delegate)
    for values in statistics.values():
        ratio = values.get("snr", math.nan)
        values["snr_db"] = 10 * math.log10(ratio) if ratio > 0 else -math.inf
    return statistics


def _pooled_mse(optimized: dict[str, Any], reference: dict[str, Any], name: str) -> float:
    a = optimized[name]["values"].astype(np.float64)
    return float(np.mean(np.square(a - reference[name]["values"].astype(np.float64))))


def join_validate(rows: list[dict], statistics: dict[str, dict[str, float]]) -> list[dict]:
    """Each row with validate()'s `validate_mse` and `validate_snr_db` where it compared the tensor."""
    for row in rows:
        if row["tensor"] in statistics:
            row["validate_mse"] = json_number(statistics[row["tensor"]].get("mse", math.nan))
            row["validate_snr_db"] = json_number(statistics[row["tensor"]]["snr_db"])
    return rows


def cross_check_validate(rows: list[dict], optimized: dict[str, Any], reference: dict[str, Any],
                         statistics: dict[str, dict[str, float]], rel_tol: float = 1e-3) -> dict[str, Any]:
    """Where validate()'s MSE and the independent pooled MSE agree (relative `rel_tol`, or both below
    1e-12), and by how much at most."""
    shared = [row["tensor"] for row in rows if row["tensor"] in statistics and "mse" in statistics[row["tensor"]]]
    worst_rel, worst_abs, worst_tensor, agree = 0.0, 0.0, None, 0
    for name in shared:
        ours, theirs = _pooled_mse(optimized, reference, name), statistics[name]["mse"]
        difference = abs(ours - theirs)
        relative = difference / max(abs(ours), abs(theirs)) if max(abs(ours), abs(theirs)) > 1e-12 else 0.0
        agree += relative <= rel_tol
        if relative >= worst_rel:
            worst_rel, worst_abs, worst_tensor = relative, difference, name
    return {"route": "litert_quantizer.validate", "validate_tensors": len(statistics), "compared": len(shared),
            "mse_agree": agree, "rel_tol": rel_tol, "max_mse_rel_difference": json_number(worst_rel),
            "max_mse_abs_difference": json_number(worst_abs), "worst_tensor": worst_tensor,
            "agrees": bool(shared) and agree == len(shared)}
