"""PT2E int8 of a torch source: torchao's `prepare_pt2e` / `convert_pt2e` with litert-torch's PT2EQuantizer
(symmetric, per-channel weights), converted by litert-torch. Static (`pt2e_int8`: calibrated int8
activations, int8 inputs and outputs) or dynamic (`pt2e_int8_dynamic`: activations quantized at run time,
float I/O). Only a torch source has a torch model: for the others these schemes are n/a."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.claims import FULL_INTEGER_SHARE, quantized_ops_share, weights_quantized
from harness.errors import NotApplicable
from harness.samples import Samples
from harness.schemes._base import SCHEMES, Scheme, SchemeOptions

_NOT_TORCH = "PT2E quantizes a torch model (a `.pt2` or `torch:` source); this source is not one"


def _calibrated(prepared: Any, program: Any, path: Path, float_model: Path, calibration: Samples) -> None:
    """Run the calibration samples (bound to the float .tflite's inputs) through the prepared model."""
    import torch

    from harness.models.conversion import bound_samples
    from harness.models.torch_source import torch_batches

    with torch.no_grad():
        for _, args, kwargs in torch_batches(program, path, bound_samples(calibration, float_model)):
            prepared(*args, **kwargs)


def pt2e_quantized(program_path: Path, float_model: Path, calibration: Samples | None, dynamic: bool) -> bytes:
    """The program quantized with PT2E (calibrated unless `dynamic`) and converted by litert-torch."""
    from harness.models.torch_source import load_program, program_inputs, torch_modules

    _, litert_torch = torch_modules()
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    program = load_program(program_path)
    args, kwargs = program_inputs(program, program_path)
    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic))
    prepared = prepare_pt2e(program.module(), quantizer)
    if not dynamic:
        if calibration is None:
            raise ValueError("this scheme needs calibration samples")
        _calibrated(prepared, program, program_path, float_model, calibration)
    else:  # the weights' observers see the weights at convert time; the activations' need one pass
        prepared(*args, **kwargs)
    converted = move_exported_model_to_eval(convert_pt2e(prepared, fold_quantize=False))
    model = litert_torch.convert(converted, args, kwargs, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    return bytes(model.model_content())


class _Pt2e(Scheme):
    Options = SchemeOptions
    quantizes_torch = True
    dynamic = False

    def from_saved_model(self, saved_model: Path, options: SchemeOptions, calibration: Samples | None) -> bytes:
        raise NotApplicable(_NOT_TORCH)

    def from_tflite(self, model: bytes, options: SchemeOptions, calibration: Samples | None) -> bytes:
        raise NotApplicable(_NOT_TORCH)

    def from_torch(self, program: Path, float_model: Path, options: SchemeOptions, calibration: Samples | None) -> bytes:
        return pt2e_quantized(program, float_model, calibration, self.dynamic)


@SCHEMES.register("pt2e_int8", "torch sources: PT2E static int8 (per-channel weights, calibrated), int8 I/O")
class Pt2eInt8(_Pt2e):
    needs_calibration = True
    claims = (weights_quantized(), quantized_ops_share(FULL_INTEGER_SHARE))


@SCHEMES.register("pt2e_int8_dynamic", "torch sources: PT2E dynamic int8 (per-channel weights), float I/O")
class Pt2eInt8Dynamic(_Pt2e):
    needs_calibration = False
    dynamic = True
    claims = (weights_quantized(),)
