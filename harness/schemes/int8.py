"""Full-integer int8 with float fallback: calibrated int8 activations, float I/O kept."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from harness.claims import FULL_INTEGER_SHARE, quantized_ops_share, weights_quantized
from harness.config.schema import RecoverSpec
from harness.samples import Samples
from harness.schemes import _quantizer
from harness.schemes._base import SCHEMES, Scheme
from harness.schemes._converter import convert, quantized_with_calibration, selectively_quantized
from harness.schemes._float_layers import check_scope_names
from harness.schemes._quantizer import CalibratedOptions
from harness.tasks import all_metrics
from harness.tflite.quantization import Ask


class Recover(RecoverSpec):
    """`recover:` as the scheme takes it: its `metric` is one a threshold may name (the tasks' metrics)."""

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in all_metrics():
            raise ValueError(f"unknown metric {value!r} (known: {', '.join(sorted(all_metrics()))})")
        return value

FLOAT_ON_REQUEST = ("float_layers", "recover")  # options that keep layers float: they waive the claims


class Int8Options(CalibratedOptions):
    float_layers: list[str] = Field(default_factory=list, description=(
        "output tensor names of the ops that stay float (selective quantization), as the float model names them: "
        "`bench diagnose` lists the names both models share"))
    recover: Recover | None = Field(None, description=(
        "choose float_layers automatically: the worst layers (harness.numerics.recover) stay float until the "
        "bound on `metric` holds or `max_float_layers` is spent (TFLiteConverter sources)"))

    @model_validator(mode="after")
    def _one_choice(self) -> Int8Options:
        if self.recover is not None and self.float_layers:
            raise ValueError("give float_layers or recover, not both: recover chooses the float layers")
        return self


@SCHEMES.register("int8", "full-integer int8 weights and activations, float fallback and float I/O")
class Int8(Scheme):
    Options = Int8Options
    needs_calibration = True
    ask = Ask(8, activations="int8")
    debugged = True
    claims = (weights_quantized(waived_by=FLOAT_ON_REQUEST), quantized_ops_share(FULL_INTEGER_SHARE, FLOAT_ON_REQUEST))

    def from_saved_model(self, saved_model: Path, options: Int8Options, calibration: Samples | None) -> bytes:
        _quantizer.converter_ranges(options)
        if options.float_layers:
            if calibration is None:
                raise ValueError("this scheme needs calibration samples")
            return selectively_quantized(saved_model, calibration, options.float_layers)
        return convert(saved_model, quantized_with_calibration(calibration))

    def from_tflite(self, model: bytes, options: Int8Options, calibration: Samples | None) -> bytes:
        check_scope_names(options.float_layers, model)
        recipe = _quantizer.static_recipe("int8", float_io=True, float_layers=options.float_layers)
        return _quantizer.quantize(model, recipe, calibration, options.ranges)
