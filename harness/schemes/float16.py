"""float16 weights (half the size; dequantized to float32 on CPU, run natively on GPUs)."""

from __future__ import annotations

from pathlib import Path

from harness.claims import WEIGHTS_FLOAT16
from harness.samples import Samples
from harness.schemes import _quantizer
from harness.schemes._base import SCHEMES, Scheme, SchemeOptions
from harness.schemes._converter import convert
from harness.tflite.quantization import Ask


@SCHEMES.register("float16", "float16 weights, float32 compute on CPU")
class Float16(Scheme):
    Options = SchemeOptions
    needs_calibration = False
    ask = Ask(16, weights_float=True)
    claims = (WEIGHTS_FLOAT16,)

    def from_saved_model(self, saved_model: Path, options: SchemeOptions, calibration: Samples | None) -> bytes:
        def configure(converter, tf) -> None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]

        return convert(saved_model, configure)

    def from_tflite(self, model: bytes, options: SchemeOptions, calibration: Samples | None) -> bytes:
        from litert_quantizer import algorithm_manager, qtyping

        recipe = _quantizer.recipe_from(
            "add_weight_only_config", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
            num_bits=16, algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING,
        )
        return _quantizer.quantize(model, recipe)
