"""litert-quantizer plumbing: recipes for float .tflite sources, calibrated with global min/max.

The quantizer's default calibration keeps a moving average of per-sample ranges, which
clips activations seen in only a few samples; a global min/max over all samples does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.errors import NotApplicable


def _signature_input(model: bytes) -> tuple[str, str]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    signatures = interpreter.get_signature_list()
    if not signatures:
        raise NotApplicable("the .tflite model has no SignatureDef; litert-quantizer needs one")
    key = next(iter(signatures))
    inputs = signatures[key]["inputs"]
    if len(inputs) != 1:
        raise NotApplicable(f"signature {key!r} has {len(inputs)} inputs; only single-input models are calibrated")
    return key, inputs[0]


def quantize(model: bytes, recipe: Any, calibration: np.ndarray | None = None) -> bytes:
    """Apply a quantization `recipe`; calibrate with global min/max when the recipe needs it."""
    from litert_quantizer import calibrator, quantizer, recipe_manager
    from litert_quantizer.utils import qsv_utils

    engine = quantizer.Quantizer(bytearray(model), recipe)
    qsvs = None
    if engine.need_calibration:
        if calibration is None:
            raise ValueError("this recipe needs calibration samples")
        signature, input_name = _signature_input(model)
        manager = recipe_manager.RecipeManager()
        manager.load_quantization_recipe(recipe)
        calib = calibrator.Calibrator(bytes(model), num_threads=1, qsv_update_func=qsv_utils.min_max_update)
        samples = [{input_name: sample[np.newaxis].astype(np.float32)} for sample in calibration]
        calib.calibrate({signature: samples}, manager)
        qsvs = calib.get_model_qsvs()
    result = engine.quantize(qsvs, enable_progress_report=False)
    return bytes(result.quantized_model)


def recipe_from(configure: str, **kwargs: Any) -> Any:
    """Build a recipe with one RecipeManager call, e.g. recipe_from('add_static_config', ...)."""
    from litert_quantizer import recipe_manager

    manager = recipe_manager.RecipeManager()
    getattr(manager, configure)(regex=".*", **kwargs)
    return manager.get_quantization_recipe()
