"""Full-integer int8 with float fallback: calibrated int8 activations, float I/O kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.schemes import _quantizer
from harness.schemes._base import SCHEMES
from harness.schemes._converter import convert, quantized_with_calibration
from harness.schemes._quantizer import CalibratedOptions


@SCHEMES.register("int8", "full-integer int8 weights and activations, float fallback and float I/O")
class Int8:
    Options = CalibratedOptions
    needs_calibration = True

    def from_saved_model(self, saved_model: Path, options: CalibratedOptions, calibration: np.ndarray | None) -> bytes:
        _quantizer.converter_ranges(options)
        return convert(saved_model, quantized_with_calibration(calibration))

    def from_tflite(self, model: bytes, options: CalibratedOptions, calibration: np.ndarray | None) -> bytes:
        return _quantizer.quantize(model, _quantizer.static_recipe("int8", float_io=True), calibration, options.ranges)
