"""Dynamic-range quantization: int8 weights, activations quantized on the fly."""

from __future__ import annotations

from pathlib import Path

from harness.claims import weights_quantized
from harness.samples import Samples
from harness.schemes import _quantizer
from harness.schemes._base import SCHEMES, Scheme, SchemeOptions
from harness.schemes._converter import convert
from harness.tflite.quantization import Ask


@SCHEMES.register("dynamic_range", "int8 weights, float activations quantized dynamically at run time")
class DynamicRange(Scheme):
    Options = SchemeOptions
    needs_calibration = False
    ask = Ask(8, dynamic=True)
    claims = (weights_quantized(min_elements=1024),)  # TFLiteConverter leaves smaller kernels float

    def from_saved_model(self, saved_model: Path, options: SchemeOptions, calibration: Samples | None) -> bytes:
        def configure(converter, tf) -> None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]

        return convert(saved_model, configure)

    def from_tflite(self, model: bytes, options: SchemeOptions, calibration: Samples | None) -> bytes:
        from litert_quantizer import recipe

        return _quantizer.quantize(model, recipe.dynamic_wi8_afp32())
