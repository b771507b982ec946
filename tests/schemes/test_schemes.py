"""Every scheme really converts: the produced .tflite has the tensor types the scheme promises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.errors import NotApplicable
from harness.schemes import SCHEMES
from harness.tflite.runtime import load_interpreter, predict
from tests.kit import Kit

rng = np.random.default_rng(0)
CALIBRATION = rng.uniform(0, 0.5, size=(16, 8, 8, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def saved_model(kit: Kit) -> Path:
    """The session's tiny CNN: 16 filters, so its dense kernel (1,440 weights) passes the converter's
    1,024-element threshold for weight quantization."""
    return kit.saved_model


@pytest.fixture(scope="module")
def float_tflite(kit: Kit) -> bytes:
    return kit.tflite("float32").read_bytes()


def convert(saved_model: Path, name: str, **options) -> object:
    scheme = SCHEMES.get(name)
    data = scheme.from_saved_model(saved_model, scheme.Options(**options), CALIBRATION if scheme.needs_calibration else None)
    return load_interpreter(data)


def dtypes(interpreter) -> set[str]:
    return {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}


def io_types(interpreter) -> tuple[str, str]:
    return (np.dtype(interpreter.get_input_details()[0]["dtype"]).name,
            np.dtype(interpreter.get_output_details()[0]["dtype"]).name)


def test_float32_has_only_float_tensors(saved_model: Path) -> None:
    assert dtypes(convert(saved_model, "float32")) <= {"float32", "int32"}


def test_float16_stores_half_precision_weights(saved_model: Path) -> None:
    interpreter = convert(saved_model, "float16")
    assert "float16" in dtypes(interpreter) and io_types(interpreter) == ("float32", "float32")


def test_dynamic_range_int8_weights_float_io(saved_model: Path) -> None:
    interpreter = convert(saved_model, "dynamic_range")
    assert "int8" in dtypes(interpreter) and io_types(interpreter) == ("float32", "float32")


def test_int8_keeps_float_io(saved_model: Path) -> None:
    interpreter = convert(saved_model, "int8")
    assert "int8" in dtypes(interpreter) and io_types(interpreter) == ("float32", "float32")


@pytest.mark.parametrize("io", ["int8", "uint8"])
def test_int8_only_has_integer_io(saved_model: Path, io: str) -> None:
    interpreter = convert(saved_model, "int8_only", io=io)
    assert io_types(interpreter) == (io, io)
    assert "float32" not in {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()
                             if t["name"] and "quantize" not in t["name"].lower()}


def test_int16x8_has_int16_activations(saved_model: Path) -> None:
    assert "int16" in dtypes(convert(saved_model, "int16x8"))


def test_int8_only_outputs_match_float_closely(saved_model: Path, float_tflite: bytes, tmp_path: Path) -> None:
    scheme = SCHEMES.get("int8_only")
    quantized = tmp_path / "q.tflite"
    quantized.write_bytes(scheme.from_saved_model(saved_model, scheme.Options(), CALIBRATION))
    reference = tmp_path / "f.tflite"
    reference.write_bytes(float_tflite)
    x = CALIBRATION[:8]
    assert np.abs(predict(quantized, x)[0] - predict(reference, x)[0]).max() < 0.1


@pytest.mark.parametrize(("name", "expected"), [("float16", "float16"), ("dynamic_range", "int8"),
                                                ("int8", "int8"), ("int16x8", "int16")])
def test_tflite_source_uses_litert_quantizer(float_tflite: bytes, name: str, expected: str) -> None:
    scheme = SCHEMES.get(name)
    data = scheme.from_tflite(float_tflite, scheme.Options(), CALIBRATION if scheme.needs_calibration else None)
    assert expected in dtypes(load_interpreter(data))


def io_dtypes(interpreter) -> tuple[list[str], list[str]]:
    return ([np.dtype(d["dtype"]).name for d in interpreter.get_input_details()],
            [np.dtype(d["dtype"]).name for d in interpreter.get_output_details()])


@pytest.mark.parametrize(("name", "options", "io"), [
    ("int8", {}, "float32"), ("int16x8", {}, "float32"), ("int8_only", {}, "int8")])
def test_tflite_source_io_types_follow_the_scheme(float_tflite: bytes, name: str, options: dict, io: str) -> None:
    """int8 and 16x8 keep float I/O (quantize/dequantize at the edges); int8_only takes int8 I/O."""
    scheme = SCHEMES.get(name)
    interpreter = load_interpreter(scheme.from_tflite(float_tflite, scheme.Options(**options), CALIBRATION))
    assert io_dtypes(interpreter) == ([io], [io])


def test_tflite_source_uint8_io_is_not_applicable(float_tflite: bytes) -> None:
    scheme = SCHEMES.get("int8_only")
    with pytest.raises(NotApplicable, match="uint8 I/O needs a Keras or SavedModel source"):
        scheme.from_tflite(float_tflite, scheme.Options(io="uint8"), CALIBRATION)


def test_moving_average_ranges_apply_to_tflite_sources_only(saved_model: Path) -> None:
    scheme = SCHEMES.get("int8")
    with pytest.raises(NotApplicable, match="applies to .tflite sources"):
        scheme.from_saved_model(saved_model, scheme.Options(ranges="moving_average"), CALIBRATION)


def test_quantizer_calibration_uses_global_min_max(float_tflite: bytes) -> None:
    """One outlier sample widens the input range; a moving average would shrink it."""
    calibration = CALIBRATION.copy()
    calibration[3, 0, 0, 0] = 4.0
    scheme = SCHEMES.get("int8")
    interpreter = load_interpreter(scheme.from_tflite(float_tflite, scheme.Options(), calibration))
    quantized_inputs = [t for t in interpreter.get_tensor_details()
                        if np.dtype(t["dtype"]).name == "int8" and tuple(t["shape"]) == (1, 8, 8, 1)]
    assert quantized_inputs, "no int8 copy of the input"
    scale, zero_point = quantized_inputs[0]["quantization"]
    assert scale * (127 - zero_point) >= 4.0 * 0.99
    averaged = load_interpreter(scheme.from_tflite(float_tflite, scheme.Options(ranges="moving_average"), calibration))
    averaged_input = next(t for t in averaged.get_tensor_details()
                          if np.dtype(t["dtype"]).name == "int8" and tuple(t["shape"]) == (1, 8, 8, 1))
    scale_averaged, zero_averaged = averaged_input["quantization"]
    assert scale_averaged * (127 - zero_averaged) < 4.0 * 0.9  # the rare outlier is averaged away
