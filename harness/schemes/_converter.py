"""TFLiteConverter plumbing shared by the schemes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.datasets._base import Samples, sample_count


def calibration_batches(samples: Samples) -> Iterator[dict[str, np.ndarray] | list[np.ndarray]]:
    """One-sample float32 batches: a list of one array, or a dict keyed by input name for several inputs."""
    for i in range(sample_count(samples)):
        if isinstance(samples, dict):
            yield {name: array[i : i + 1].astype(np.float32) for name, array in samples.items()}
        else:
            yield [samples[i : i + 1].astype(np.float32)]


def representative_dataset(samples: Samples) -> Callable[[], Iterator[dict[str, np.ndarray] | list[np.ndarray]]]:
    """Calibration samples, one at a time, as the converter expects (a dict: keyed by signature input name)."""
    return lambda: calibration_batches(samples)


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
        converter.representative_dataset = representative_dataset(calibration)
        if extra is not None:
            extra(converter, tf)

    return configure
