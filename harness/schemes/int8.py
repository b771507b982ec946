"""Full-integer int8 with float fallback: calibrated int8 activations, float I/O kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.schemes import _quantizer
from harness.schemes._base import SCHEMES, SchemeOptions
from harness.schemes._converter import convert, quantized_with_calibration


@SCHEMES.register("int8", "full-integer int8 weights and activations, float fallback and float I/O")
class Int8:
    Options = SchemeOptions
    needs_calibration = True

    def from_saved_model(self, saved_model: Path, options: SchemeOptions, calibration: np.ndarray | None) -> bytes:
        return convert(saved_model, quantized_with_calibration(calibration))

    def from_tflite(self, model: bytes, options: SchemeOptions, calibration: np.ndarray | None) -> bytes:
        from litert_quantizer import recipe

        return _quantizer.quantize(model, recipe.static_wi8_ai8(), calibration)
