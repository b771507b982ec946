"""TFLiteConverter plumbing shared by the schemes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.samples import Arrays, FromSignature, Samples, sample_count
from harness.schemes._float_layers import check_tensor_names


def calibration_batches(samples: Arrays) -> Iterator[dict[str, np.ndarray] | list[np.ndarray]]:
    """One-sample float32 batches: a list of one array, or a dict keyed by input name for several inputs."""
    for i in range(sample_count(samples)):
        if isinstance(samples, dict):
            yield {name: array[i : i + 1].astype(np.float32) for name, array in samples.items()}
        else:
            yield [samples[i : i + 1].astype(np.float32)]


def representative_dataset(samples: Arrays) -> Callable[[], Iterator[dict[str, np.ndarray] | list[np.ndarray]]]:
    """Calibration samples, one at a time, as the converter expects (a dict: keyed by signature input name)."""
    return lambda: calibration_batches(samples)


def saved_model_inputs(saved_model: str, tf: Any) -> list[tuple[str, tuple[int, ...]]]:
    """(name, per-sample shape) of each input of the SavedModel's serving signature."""
    signature = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    inputs = [(name, tuple(spec.shape[1:])) for name, spec in sorted(specs.items())]
    dynamic = [name for name, shape in inputs if any(d is None for d in shape)]
    if dynamic:
        raise HarnessError(f"inputs {dynamic} have dynamic dimensions: declare their `shape` in the synthetic "
                           "dataset's `inputs`")
    return [(name, tuple(int(d) for d in shape)) for name, shape in inputs]


def convert(saved_model: Path, configure: Callable[[Any, Any], None]) -> bytes:
    """Convert `saved_model` after `configure(converter, tf)` has set the scheme's options."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    configure(converter, tf)
    return bytes(converter.convert())


def quantized_with_calibration(
    calibration: Samples | None, extra: Callable[[Any, Any], None] | None = None
) -> Callable[[Any, Any], None]:
    """A `configure` for full-integer schemes: DEFAULT optimizations + representative data."""
    if calibration is None:
        raise ValueError("this scheme needs calibration samples")

    def configure(converter: Any, tf: Any) -> None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        samples = calibration
        if isinstance(samples, FromSignature):
            samples = samples.generate(saved_model_inputs(converter.saved_model_dir, tf))
        converter.representative_dataset = representative_dataset(samples)
        if extra is not None:
            extra(converter, tf)

    return configure


def selectively_quantized(saved_model: Path, calibration: Samples, float_layers: list[str]) -> bytes:
    """int8 with float fallback, keeping the ops that produce `float_layers` (tensor names, as `bench
    diagnose` lists them) in float: TF's QuantizationDebugger with `denylisted_nodes`."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    quantized_with_calibration(calibration)(converter, tf)
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(float_layers))
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=converter.representative_dataset, debug_options=options)
    check_tensor_names(float_layers, debugger.calibrated_model)  # the model the denylist is matched in
    return bytes(debugger.get_nondebug_quantized_model())
