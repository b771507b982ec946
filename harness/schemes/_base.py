"""Scheme registry: each scheme turns a float model into an optimized .tflite.

A scheme knows two routes: TensorFlow's converter from a SavedModel (Keras and SavedModel
sources) and litert-quantizer recipes from a float .tflite. A route that does not exist
raises NotApplicable, which the runner records as `n/a` with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from harness.claims import Claim
from harness.registry import Registry
from harness.samples import Samples


class SchemeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scheme(Protocol):
    @property
    def Options(self) -> type[SchemeOptions]: ...
    @property
    def needs_calibration(self) -> bool: ...
    @property
    def claims(self) -> tuple[Claim, ...]: ...  # what its .tflite holds, checked on every cell (harness/claims.py)

    def from_saved_model(self, saved_model: Path, options: Any, calibration: Samples | None) -> bytes:
        """Convert a float SavedModel with TFLiteConverter."""
        ...

    def from_tflite(self, model: bytes, options: Any, calibration: Samples | None) -> bytes:
        """Quantize a float .tflite with litert-quantizer."""
        ...


SCHEMES: Registry[Scheme] = Registry("scheme", "harness.schemes")

BASELINE = "float32"


def calibrates(scheme: Scheme, options: Any) -> bool:
    """Whether the scheme needs calibration samples with these options (a recipe only when it is
    static or GPTQ; other schemes: always or never)."""
    decide = getattr(scheme, "calibrates", None)
    return bool(decide(options)) if decide is not None else scheme.needs_calibration
