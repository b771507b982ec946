"""16x8: int16 activations with int8 weights (accuracy close to float, integer kernels)."""

from __future__ import annotations

from pathlib import Path

from harness.errors import NotApplicable
from harness.samples import Samples
from harness.schemes import _quantizer
from harness.schemes._base import SCHEMES, Scheme
from harness.schemes._converter import convert, quantized_with_calibration
from harness.schemes._float_layers import check_scope_names
from harness.schemes.int8 import Int8, Int8Options
from harness.tflite.quantization import Ask


class Int16x8Options(Int8Options):
    """`float_layers` and `recover` as on int8, for `.tflite` sources (litert-quantizer `no_quantize` rules)."""

    fallback: bool = False


@SCHEMES.register("int16x8", "int16 activations, int8 weights (`fallback: true` keeps float ops it cannot quantize)")
class Int16x8(Scheme):
    Options = Int16x8Options
    needs_calibration = True
    ask = Ask(8, activations="int16")
    claims = Int8.claims  # int8 weights, int16 activations: the same claims as int8
    converter_float_layers = False  # float_layers / recover: .tflite sources only

    def from_saved_model(self, saved_model: Path, options: Int16x8Options, calibration: Samples | None) -> bytes:
        _quantizer.converter_ranges(options)
        if options.float_layers or options.recover is not None:
            raise NotApplicable("float_layers and recover on int16x8 need a .tflite source (litert-quantizer); "
                                "TFLiteConverter sources: not built yet")

        def sixteen_by_eight(converter, tf) -> None:
            ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            if options.fallback:
                ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
            converter.target_spec.supported_ops = ops

        return convert(saved_model, quantized_with_calibration(calibration, sixteen_by_eight))

    def from_tflite(self, model: bytes, options: Int16x8Options, calibration: Samples | None) -> bytes:
        check_scope_names(options.float_layers, model)
        recipe = _quantizer.static_recipe("int16", float_io=True, float_layers=options.float_layers)
        return _quantizer.quantize(model, recipe, calibration, options.ranges)
