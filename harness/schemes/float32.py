"""The float32 baseline: every other scheme is compared with it."""

from __future__ import annotations

from pathlib import Path

from harness.samples import Samples
from harness.schemes._base import SCHEMES, Scheme, SchemeOptions
from harness.schemes._converter import convert


@SCHEMES.register("float32", "float baseline, no optimization (what every other scheme is compared with)")
class Float32(Scheme):
    Options = SchemeOptions
    needs_calibration = False
    family = "baseline"
    claims = ()  # the float model as converted: nothing to claim

    def from_saved_model(self, saved_model: Path, options: SchemeOptions, calibration: Samples | None) -> bytes:
        return convert(saved_model, lambda converter, tf: None)

    def from_tflite(self, model: bytes, options: SchemeOptions, calibration: Samples | None) -> bytes:
        return model
