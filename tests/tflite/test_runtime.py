"""Batched host inference equals a per-image loop, with integer I/O (de)quantized correctly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.tflite.runtime import dequantize_output, fit_samples, load_interpreter, predict, quantize_input
from tests.kit import Kit


def test_quantize_round_trip() -> None:
    detail = {"name": "x", "dtype": np.int8, "quantization": (0.5, -3)}
    values = np.array([-10.0, 0.0, 1.2, 200.0], dtype=np.float32)
    q = quantize_input(values, detail)
    assert q.dtype == np.int8 and q.tolist() == [-23, -3, -1, 127]
    assert dequantize_output(q, detail).tolist() == [-10.0, 0.0, 1.0, 65.0]


def test_uint8_and_missing_params() -> None:
    detail = {"name": "x", "dtype": np.uint8, "quantization": (1 / 255, 0)}
    assert quantize_input(np.array([0.0, 1.0]), detail).tolist() == [0, 255]
    with pytest.raises(HarnessError, match="without quantization"):
        quantize_input(np.zeros(2), {"name": "x", "dtype": np.int8, "quantization": (0.0, 0)})


def test_fit_samples_reshapes_only_layout() -> None:
    assert fit_samples(np.zeros((2, 28, 28)), (28, 28, 1), "m").shape == (2, 28, 28, 1)
    with pytest.raises(HarnessError, match="takes"):
        fit_samples(np.zeros((2, 28, 28)), (32, 32, 1), "m")


@pytest.fixture(scope="module")
def models(kit: Kit) -> dict[str, Path]:
    return {name: kit.tflite(name) for name in ("float32", "int8_only")}


@pytest.mark.parametrize("name", ["float32", "int8_only"])
def test_batched_predict_equals_per_image_loop(models: dict[str, Path], name: str) -> None:
    x = np.random.default_rng(2).uniform(0, 1, (37, 8, 8, 1)).astype(np.float32)
    outputs = predict(models[name], x, batch_size=16)  # 37 = 2 full batches + a padded one
    assert len(outputs) == 1
    batched = outputs[0]
    interpreter = load_interpreter(models[name])
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    loop = []
    for sample in x:
        interpreter.set_tensor(inp["index"], quantize_input(sample[None], inp))
        interpreter.invoke()
        loop.append(dequantize_output(interpreter.get_tensor(out["index"]), out)[0])
    assert batched.shape == (37, 10)
    np.testing.assert_allclose(batched, np.stack(loop), atol=1e-5)
