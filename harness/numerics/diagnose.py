"""Where a scheme's error comes from: every intermediate tensor of the optimized model vs the float model.

Independent computation: both models run the same inputs with every tensor kept (`observed_interpreter`:
on the kernels the model is deployed on, XNNPACK where it takes an op, every activation made a model
output, the weights it folds left out), every op output is dequantized and
compared with the float model's tensor of the same name (accumulated error: what the tensor carries,
everything upstream included), in execution order. For TFLiteConverter sources of int8 schemes, TF's
QuantizationDebugger adds its `layer_statistics` (local error: each quantized op vs the float op on the
same dequantized inputs), joined by tensor name; `cross_check` compares the two where they must agree
(the debugger's tensors exist in the cell's model with the same scale; at the first
quantized op, whose input is the model input, local and accumulated error coincide).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.fidelity import json_number, nrmse, snr_db
from harness.samples import Samples
from harness.tflite.runtime import Kernels, bind_inputs, dequantize_output, kernels_used, quantize_input


def _tensor_scale(detail: dict) -> float | None:
    scales = detail.get("quantization_parameters", {}).get("scales")
    return float(scales[0]) if scales is not None and len(scales) == 1 and scales[0] > 0 else None


def _op_outputs(interpreter: Any) -> list[tuple[int, str, int]]:
    """(op position, op type, output tensor index) of the model's ops in execution order (the nodes a
    delegate adds for its partitions are not the model's)."""
    return [(op["index"], op["op_name"], int(t)) for op in interpreter._get_ops_details()  # noqa: SLF001
            if op["op_name"] != "DELEGATE" for t in op["outputs"] if t >= 0]


def _per_sample(values: list[np.ndarray]) -> np.ndarray:
    """One tensor's values over the samples, samples first (a scalar tensor, e.g. a reduction's, is stacked)."""
    return np.stack(values) if values and values[0].ndim == 0 else np.concatenate(values)


def observed_interpreter(model: Path, kernels: Kernels = "xnnpack") -> tuple[Any, set[int] | None]:
    """An interpreter whose op outputs can be read after `invoke`, and which ones (None: all).
    `xnnpack` (the default: the kernels the model is deployed on, as evaluation and the local device run
    it): the XNNPACK delegate where it takes an op, LiteRT's builtin kernels for the rest, every
    activation made a model output (the delegate writes those; `harness.tflite.observe`).
    `builtin`: LiteRT's builtin kernels op by op (what litert-quantizer's validate() and TF's
    QuantizationDebugger compute); a model with ops only the XNNPACK delegate implements (MediaPipe's
    custom ops) falls back to `xnnpack`. A model whose ops nothing resolves raises `UnresolvedOp`."""
    from harness.tflite.observe import every_activation_output
    from harness.tflite.runtime import UnresolvedOp, load_interpreter

    if kernels == "builtin":
        try:
            return load_interpreter(model, name=model.name, builtin_kernels_only=True), None
        except UnresolvedOp:
            pass
    interpreter = load_interpreter(every_activation_output(model.read_bytes()), name=model.name)
    return interpreter, {int(d["index"]) for d in interpreter.get_output_details()}


def on_builtin_kernels(model: Path, float_model: Path, x: Samples) -> tuple[list[dict], dict, dict]:
    """Rows, optimized and reference tensors computed op by op on LiteRT's builtin kernels: what the
    library routes (validate(), QuantizationDebugger) compute, so their cross-checks compare like with
    like while the diagnosis itself reports the deployed kernels."""
    optimized, reference = run_all_tensors(model, x, "builtin"), run_all_tensors(float_model, x, "builtin")
    return compare_tensors(optimized, reference), optimized, reference


def diagnosed_on(model: Path) -> str:
    """What `bench diagnose` and a cell's diagnosis say they ran on: the deployed kernels (`run_all_tensors`)."""
    return f"deployed: {kernels_used(model)}"


def needs_delegate(model: Path) -> bool:
    """Whether some op of the model runs only in the XNNPACK delegate (not in LiteRT's builtin kernels)."""
    from harness.tflite.runtime import UnresolvedOp, load_interpreter

    try:
        load_interpreter(model, name=model.name, builtin_kernels_only=True)
    except UnresolvedOp:
        return True
    return False


def run_all_tensors(model: Path, x: Samples, kernels: Kernels = "xnnpack") -> dict[str, dict[str, Any]]:
    """Every op output of `model` on every sample (batch 1), dequantized, by tensor name, with op
    position and type, dtype and scale; on the deployed kernels (`observed_interpreter`)."""
    interpreter, readable = observed_interpreter(model, kernels)
    arrays = bind_inputs(x, interpreter, model.name)
    inputs = interpreter.get_input_details()
    for array, detail in zip(arrays, inputs):
        interpreter.resize_tensor_input(detail["index"], [1, *array.shape[1:]], strict=False)
    interpreter.allocate_tensors()
    inputs = interpreter.get_input_details()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    produced = [op for op in _op_outputs(interpreter) if readable is None or op[2] in readable]
    collected: dict[int, list[np.ndarray]] = {t: [] for _, _, t in produced}
    for i in range(len(arrays[0])):
        for array, detail in zip(arrays, inputs):
            interpreter.set_tensor(detail["index"], quantize_input(array[i : i + 1], detail))
        interpreter.invoke()
        for t in collected:
            collected[t].append(dequantize_output(interpreter.get_tensor(t), details[t]))
    return {details[t]["name"]: {"position": position, "op": op, "dtype": np.dtype(details[t]["dtype"]).name,
                                 "scale": _tensor_scale(details[t]), "values": _per_sample(collected[t])}
            for position, op, t in produced}


def compare_tensors(optimized: dict[str, dict[str, Any]], reference: dict[str, dict[str, Any]]) -> list[dict]:
    """Per tensor of the optimized model that the float model also has (same name and shape): SNR, NRMSE,
    and RMSE in units of the tensor's quantization scale, in execution order."""
    rows = []
    for name, tensor in sorted(optimized.items(), key=lambda item: item[1]["position"]):
        float_tensor = reference.get(name)
        if float_tensor is None or float_tensor["values"].shape != tensor["values"].shape:
            continue
        a, b = tensor["values"].astype(np.float64), float_tensor["values"].astype(np.float64)
        with np.errstate(all="ignore"):
            rmse = math.sqrt(float(np.mean(np.square(a - b))))
            rows.append({"position": tensor["position"], "op": tensor["op"], "tensor": name,
                         "dtype": tensor["dtype"], "scale": tensor["scale"], "snr_db": json_number(snr_db(a, b)),
                         "nrmse": json_number(nrmse(a, b)),
                         "rmse_per_scale": json_number(rmse / tensor["scale"]) if tensor["scale"] else None})
    return rows


def _float_mean_square(float_values: np.ndarray, quantized: np.ndarray, scale: float, zero_point: int) -> float:
    """The float op's output power (a QuantizationDebugger direct-compare metric): local SNR's signal."""
    return float(np.mean(np.square(float_values.astype(np.float64))))


def debugger_statistics(saved_model: Path, calibration: Callable[[], Iterator[Any]],
                        data: Callable[[], Iterator[Any]]) -> dict[str, dict[str, float]]:
    """TF QuantizationDebugger's layer statistics of the converter's int8 model, by quantized tensor name,
    with `rmse_per_scale` = √MSE / scale and `local_snr_db` = 10·log10(float output power / MSE): the local
    error of each quantized op (vs the float op on the same dequantized inputs)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    options = tf.lite.experimental.QuantizationDebugOptions(
        layer_direct_compare_metrics={"float_mean_square": _float_mean_square})
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=data,
                                                         debug_options=options)
    debugger.run()
    statistics = {}
    for verify_name, metrics in debugger.layer_statistics.items():
        tensor, index = debugger._get_operand_name_and_index(verify_name)  # noqa: SLF001
        detail = debugger._quant_interpreter._get_tensor_details(index, subgraph_index=0)  # noqa: SLF001
        scale = _tensor_scale(detail)
        values = {k: float(v) for k, v in metrics.items()}
        values["scale"] = scale if scale is not None else math.nan  # NaN: not quantized per tensor
        values["rmse_per_scale"] = math.sqrt(values["mean_squared_error"]) / scale if scale else math.nan
        values["local_snr_db"] = local_snr_db(values.get("float_mean_square", math.nan), values["mean_squared_error"])
        statistics[tensor] = values
    return statistics


def local_snr_db(signal: float, mse: float) -> float:
    """10·log10(signal / mse): +inf with no error, NaN when either is not a number."""
    with np.errstate(all="ignore"):
        if math.isnan(signal) or math.isnan(mse):
            return math.nan
        return math.inf if mse == 0 else 10 * math.log10(signal / mse) if signal > 0 else -math.inf


def cross_check(rows: list[dict], statistics: dict[str, dict[str, float]], tolerance: float = 0.25) -> dict:
    """Where the debugger and the independent computation must agree."""
    by_name = {row["tensor"]: row for row in rows}
    shared = [name for name in statistics if name in by_name]
    same_scale = [n for n in shared if by_name[n]["scale"] and statistics[n]["scale"]
                  and math.isclose(by_name[n]["scale"], statistics[n]["scale"], rel_tol=1e-5)]
    first = min(shared, key=lambda n: by_name[n]["position"]) if shared else None
    result: dict[str, Any] = {"debugger_tensors": len(statistics), "found_in_cell_model": len(shared),
                              "same_scale": len(same_scale), "first_layer": first}
    if first is not None and by_name[first]["rmse_per_scale"] is not None:
        ours, theirs = float(by_name[first]["rmse_per_scale"]), statistics[first]["rmse_per_scale"]
        result.update(first_layer_rmse_per_scale={"independent": ours, "debugger": json_number(theirs)},
                      first_layer_agrees=bool(abs(ours - theirs) <= tolerance * max(ours, theirs, 1e-12)))
    return result


def join(rows: list[dict], statistics: dict[str, dict[str, float]]) -> list[dict]:
    """Each row with the debugger's local `debugger_rmse_per_scale` where it has the tensor."""
    for row in rows:
        if row["tensor"] in statistics:
            row["debugger_rmse_per_scale"] = json_number(statistics[row["tensor"]]["rmse_per_scale"])
    return rows


def check_names(rows: list[dict], optimized: dict[str, Any]) -> None:
    if not rows:
        raise HarnessError(f"none of the {len(optimized)} tensors of the optimized model has a float counterpart "
                           "with the same name and shape")
