"""Integer-only int8: every op int8 (conversion fails rather than fall back), int8 or uint8 I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from harness.claims import INTEGER_ONLY, weights_quantized
from harness.errors import NotApplicable
from harness.samples import Samples
from harness.schemes import _quantizer
from harness.schemes._base import SCHEMES, Scheme
from harness.schemes._converter import convert, quantized_with_calibration
from harness.schemes._quantizer import CalibratedOptions
from harness.tflite.quantization import Ask


class Int8OnlyOptions(CalibratedOptions):
    io: Literal["int8", "uint8"] = "int8"


@SCHEMES.register("int8_only", "integer-only int8 ops with int8 (or `io: uint8`) inputs and outputs")
class Int8Only(Scheme):
    Options = Int8OnlyOptions
    needs_calibration = True
    ask = Ask(8, activations="int8")
    debugged = True
    claims = (INTEGER_ONLY, weights_quantized())

    def from_saved_model(self, saved_model: Path, options: Int8OnlyOptions, calibration: Samples | None) -> bytes:
        _quantizer.converter_ranges(options)

        def integer_only(converter, tf) -> None:
            io_type = tf.uint8 if options.io == "uint8" else tf.int8
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = io_type
            converter.inference_output_type = io_type

        return convert(saved_model, quantized_with_calibration(calibration, integer_only))

    def from_tflite(self, model: bytes, options: Int8OnlyOptions, calibration: Samples | None) -> bytes:
        if options.io == "uint8":
            raise NotApplicable("litert-quantizer gives int8 inputs/outputs; uint8 I/O needs a Keras or SavedModel source")
        return _quantizer.quantize(model, _quantizer.static_recipe("int8", float_io=False), calibration, options.ranges)
