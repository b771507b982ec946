"""TFLiteConverter plumbing shared by the schemes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np


def representative_dataset(samples: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Calibration samples, one at a time, as the converter expects."""

    def generate() -> Iterator[list[np.ndarray]]:
        for sample in samples:
            yield [sample[np.newaxis].astype(np.float32)]

    return generate


def convert(saved_model: Path, configure: Callable[[Any, Any], None]) -> bytes:
    """Convert `saved_model` after `configure(converter, tf)` has set the scheme's options."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    configure(converter, tf)
    return bytes(converter.convert())


def quantized_with_calibration(
    calibration: np.ndarray | None, extra: Callable[[Any, Any], None] | None = None
) -> Callable[[Any, Any], None]:
    """A `configure` for full-integer schemes: DEFAULT optimizations + representative data."""
    if calibration is None:
        raise ValueError("this scheme needs calibration samples")

    def configure(converter: Any, tf: Any) -> None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset(calibration)
        if extra is not None:
            extra(converter, tf)

    return configure
