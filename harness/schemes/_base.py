"""Scheme registry: each scheme turns a float model into an optimized .tflite.

A scheme knows two routes: TensorFlow's converter from a SavedModel (Keras and SavedModel
sources) and litert-quantizer recipes from a float .tflite. A route that does not exist
raises NotApplicable, which the runner records as `n/a` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict

from harness.claims import Claim
from harness.errors import NotApplicable
from harness.registry import Registry
from harness.samples import Samples

if TYPE_CHECKING:
    from harness.tflite.quantization import Ask, Target


class SchemeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The report's families (one colour each): the float baseline, post-training conversion, fine-tuning
# (training-time techniques, converted as trained) and fine-tuning followed by a post-training scheme.
Family = Literal["baseline", "post-training", "training-time", "combined"]
FAMILIES: tuple[Family, ...] = get_args(Family)


class Scheme:
    """What a scheme is: subclass it and register the subclass with `@SCHEMES.register(name, summary)`.

    Everything the runner, the report and `bench diagnose` need to know about a scheme is declared
    here, with the default a plain post-training scheme has; a scheme overrides what differs."""

    Options: ClassVar[type[SchemeOptions]] = SchemeOptions
    needs_calibration: ClassVar[bool] = False  # the runner passes calibration samples (else None)
    claims: ClassVar[tuple[Claim, ...]] = ()  # what its .tflite holds, checked on every cell (harness/claims.py)
    family: ClassVar[Family] = "post-training"
    needs_training: ClassVar[bool] = False  # fine-tunes the Keras model (`from_keras`; harness/schemes/training)
    # `bench diagnose` runs TF's QuantizationDebugger on its cells (TFLiteConverter sources): its
    # TFLiteConverter route is calibrated full-integer quantization, which the debugger re-creates
    debugged: ClassVar[bool] = False
    converter_float_layers: ClassVar[bool] = True  # `float_layers`/`recover:` work on TFLiteConverter sources too
    quantizes_torch: ClassVar[bool] = False  # a torch source's cells take `from_torch` (PT2E), not `from_tflite`
    ask: ClassVar[Ask | None] = None  # what it asks of every op it can change (the record's `quantization`)

    def calibrates(self, options: Any) -> bool:
        """Whether it needs calibration samples with these options (a recipe: only static or GPTQ ones)."""
        return self.needs_calibration

    def targets(self, float_model: Callable[[], bytes], options: Any) -> tuple[list[Target], list[str]] | None:
        """The ops it asks something of, read from the float model (`float_model()`: the float .tflite,
        read on demand), and its rules, one line each (None: it asks `ask` of every op it can change,
        read on the produced model)."""
        return None

    def from_saved_model(self, saved_model: Path, options: Any, calibration: Samples | None) -> bytes:
        """Convert a float SavedModel with TFLiteConverter."""
        raise NotApplicable(f"{type(self).__name__} has no TFLiteConverter route")

    def from_tflite(self, model: bytes, options: Any, calibration: Samples | None) -> bytes:
        """Quantize a float .tflite with litert-quantizer."""
        raise NotApplicable(f"{type(self).__name__} has no litert-quantizer route for a .tflite source")

    def from_torch(self, program: Path, float_model: Path, options: Any, calibration: Samples | None) -> bytes:
        """Quantize a torch source's program (`.pt2`) itself, for a scheme that `quantizes_torch` (PT2E); the
        others take `from_tflite` on litert-torch's float .tflite (`float_model`)."""
        raise NotApplicable(f"{type(self).__name__} does not quantize torch programs")


SCHEMES: Registry[Scheme] = Registry("scheme", "harness.schemes", base=Scheme)

BASELINE = "float32"


def debugged(kind: str) -> bool:
    """Whether the registered scheme `kind` is one TF's QuantizationDebugger re-creates (its `debugged`;
    a scheme no longer registered: no)."""
    return kind in SCHEMES and SCHEMES.get(kind).debugged
