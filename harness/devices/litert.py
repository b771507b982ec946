"""Host-side LiteRT execution: batched inference with (de)quantized inputs and outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError


def load_interpreter(model: Path | bytes, num_threads: int = 1) -> Any:
    """A LiteRT interpreter for a .tflite path or its bytes."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model, bytes):
        return Interpreter(model_content=model, num_threads=num_threads)
    return Interpreter(model_path=str(model), num_threads=num_threads)


def quantize_input(values: np.ndarray, detail: dict) -> np.ndarray:
    """Float values → the tensor's dtype, using its scale and zero point when it is quantized."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return values.astype(dtype)
    scale, zero_point = detail["quantization"]
    if scale == 0:
        raise HarnessError(f"input {detail['name']!r} is {dtype} without quantization parameters")
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize_output(values: np.ndarray, detail: dict) -> np.ndarray:
    """A tensor's values as float32, dequantized with its scale and zero point when quantized."""
    if np.dtype(detail["dtype"]).kind == "f":
        return values.astype(np.float32)
    scale, zero_point = detail["quantization"]
    if scale == 0:
        return values.astype(np.float32)
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def fit_samples(x: np.ndarray, input_shape: tuple[int, ...], model_name: str) -> np.ndarray:
    """Reshape dataset samples to the model's per-sample input shape when only the layout differs."""
    target = tuple(int(d) for d in input_shape)
    if x.shape[1:] == target:
        return x
    if all(d > 0 for d in target) and int(np.prod(x.shape[1:])) == int(np.prod(target)):
        return x.reshape((len(x), *target))
    raise HarnessError(f"{model_name}: dataset samples have shape {x.shape[1:]}, the model takes {target}")


def predict(model: Path, x: np.ndarray, batch_size: int = 256, num_threads: int = 1) -> list[np.ndarray]:
    """Run the model on every sample of `x` in batches; return every output, dequantized, in order."""
    interpreter = load_interpreter(model, num_threads)
    inputs = interpreter.get_input_details()
    if len(inputs) != 1:
        raise HarnessError(f"{model.name}: {len(inputs)} inputs; batched evaluation supports one")
    signature = inputs[0]["shape_signature"]
    x = fit_samples(x, tuple(abs(int(d)) for d in signature[1:]), model.name)
    batch = min(batch_size, len(x))
    interpreter.resize_tensor_input(inputs[0]["index"], [batch, *x.shape[1:]], strict=False)
    interpreter.allocate_tensors()
    input_detail = interpreter.get_input_details()[0]
    output_details = interpreter.get_output_details()
    chunks: list[list[np.ndarray]] = [[] for _ in output_details]
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        real = len(chunk)
        if real < batch:  # pad the last batch instead of re-allocating
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - real, axis=0)])
        interpreter.set_tensor(input_detail["index"], quantize_input(chunk, input_detail))
        interpreter.invoke()
        for collected, detail in zip(chunks, output_details):
            collected.append(dequantize_output(interpreter.get_tensor(detail["index"])[:real], detail))
    return [np.concatenate(collected) for collected in chunks]


def tensor_types(model: Path) -> dict[str, list[str]]:
    """dtypes of the model's inputs and outputs (for the record: int8 I/O is visible)."""
    interpreter = load_interpreter(model)
    return {
        "inputs": [np.dtype(d["dtype"]).name for d in interpreter.get_input_details()],
        "outputs": [np.dtype(d["dtype"]).name for d in interpreter.get_output_details()],
    }
