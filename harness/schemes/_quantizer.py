"""litert-quantizer plumbing: recipes for float .tflite sources and their calibration.

Activation ranges are gathered over the calibration samples as the global min/max by default
(what TFLiteConverter does): the quantizer's own default, a moving average of per-sample
ranges, clips activations seen in only a few samples. Where rare extremes are outliers that
would waste the int8 range (e.g. the background logits of a detector), `ranges:
moving_average` chooses the quantizer's default instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from harness.errors import HarnessError, NotApplicable
from harness.samples import FromSignature, Samples, sample_count
from harness.schemes._base import SchemeOptions
from harness.schemes._float_layers import scope_pattern

Ranges = Literal["min_max", "moving_average"]


class CalibratedOptions(SchemeOptions):
    """Options of the schemes that calibrate activation ranges."""

    ranges: Ranges = Field("min_max", description=(
        "how a .tflite source's activation ranges are gathered over the samples: global min/max, or "
        "litert-quantizer's moving average of per-sample ranges (TFLiteConverter sources: min/max only)"))
    diagnose: bool = Field(False, description=(
        "after conversion, compare every intermediate tensor with the float model's on 8 calibration samples "
        "(litert-quantizer validate() or TF QuantizationDebugger cross-checked): the record's `diagnosis`"))


def converter_ranges(options: CalibratedOptions) -> None:
    """TFLiteConverter gathers global min/max ranges itself: another choice does not apply to it."""
    if options.ranges != "min_max":
        raise NotApplicable(f"`ranges: {options.ranges}` applies to .tflite sources (litert-quantizer); "
                            "TFLiteConverter calibrates with global min/max")


def static_recipe(activations: Literal["int8", "int16"], float_io: bool, float_layers: Sequence[str] = ()) -> Any:
    """int8 weights with int8 or int16 activations; with `float_io`, the model's inputs and outputs
    stay float (QUANTIZE/DEQUANTIZE at the edges) instead of taking the activation type."""
    from litert_quantizer import recipe, recipe_manager

    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(recipe.static_wi8_ai8() if activations == "int8" else recipe.static_wi8_ai16())
    if float_io:
        for edge in ("INPUT", "OUTPUT"):
            manager.add_quantization_config(regex=".*", operation_name=edge, algorithm_key="no_quantize")
    for name in float_layers:  # an op scope is its output names, each followed by ";"
        manager.add_quantization_config(regex=scope_pattern(name), operation_name="*", algorithm_key="no_quantize")
    return manager.get_quantization_recipe()


def _signature_inputs(model: bytes) -> tuple[str, dict[str, dict]]:
    """The first SignatureDef's key and its inputs' details by name."""
    from harness.tflite.runtime import load_interpreter

    interpreter = load_interpreter(model)
    signatures = interpreter.get_signature_list()
    if not signatures:
        raise NotApplicable("the .tflite model has no SignatureDef; litert-quantizer needs one")
    key = next(iter(signatures))
    details = interpreter.get_signature_runner(key).get_input_details()
    return key, dict(details)


def calibration_feeds(calibration: Samples, inputs: dict[str, dict]) -> list[dict[str, np.ndarray]]:
    """One {input name: (1, ...) float32} feed per sample; a single-input model takes a plain array."""
    from harness.tflite.runtime import sample_shape

    names = list(inputs)
    if isinstance(calibration, FromSignature):
        calibration = calibration.generate([(n, sample_shape(d, "the model", n)) for n, d in inputs.items()])
    if not isinstance(calibration, dict):
        if len(names) != 1:
            raise HarnessError(f"the model has {len(names)} inputs ({', '.join(names)}); the calibration "
                               "dataset gives one array: give one per input name")
        calibration = {names[0]: calibration}
    missing = sorted(set(names) - set(calibration))
    if missing:
        raise HarnessError(f"calibration samples have no input {missing} (they have {sorted(calibration)})")
    return [{name: calibration[name][i : i + 1].astype(np.float32) for name in names}
            for i in range(sample_count(calibration))]


def quantize(model: bytes, recipe: Any, calibration: Samples | None = None, ranges: Ranges = "min_max") -> bytes:
    """Apply a quantization `recipe`; calibrate when the recipe needs it, gathering `ranges`."""
    from litert_quantizer import calibrator, quantizer, recipe_manager
    from litert_quantizer.utils import qsv_utils

    engine = quantizer.Quantizer(bytearray(model), recipe)
    qsvs = None
    if engine.need_calibration:
        if calibration is None:
            raise ValueError("this recipe needs calibration samples")
        signature, inputs = _signature_inputs(model)
        manager = recipe_manager.RecipeManager()
        manager.load_quantization_recipe(recipe)
        update = qsv_utils.min_max_update if ranges == "min_max" else qsv_utils.moving_average_update
        calib = calibrator.Calibrator(bytes(model), num_threads=1, qsv_update_func=update)
        calib.calibrate({signature: calibration_feeds(calibration, inputs)}, manager)
        qsvs = calib.get_model_qsvs()
    result = engine.quantize(qsvs, enable_progress_report=False)
    return bytes(result.quantized_model)


def recipe_from(configure: str, **kwargs: Any) -> Any:
    """Build a recipe with one RecipeManager call, e.g. recipe_from('add_static_config', ...)."""
    from litert_quantizer import recipe_manager

    manager = recipe_manager.RecipeManager()
    getattr(manager, configure)(regex=".*", **kwargs)
    return manager.get_quantization_recipe()
