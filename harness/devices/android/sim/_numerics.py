"""The simulated benchmark_model's input/output flags and how a simulated phone computes "something else".

`--input_layer=a,b --input_layer_shape=1,4:1,2 --input_layer_value_files=a:/p/a.raw,b:/p/b.raw` sets the
inputs from raw little-endian files (each exactly the tensor's bytes; a ':' inside a name is written
'::'), and `--output_filepath=PATH` writes every output tensor's raw bytes, in the interpreter's output
order, concatenated, after the last run — as TFLite's tool does.

`perturb_outputs` (DeviceSpec, `bench devices simulate --perturb-outputs`) changes what the phone
returns, as a delegate computing in other precision would:
- `noise:R` adds Gaussian noise with standard deviation R × the output's RMS (SNR ≈ −20·log10 R dB);
- `fp16` rounds float outputs to float16 and back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_NOISE = re.compile(r"noise:(\d+(?:\.\d*)?(?:[eE]-?\d+)?)")


@dataclass(frozen=True)
class NumericsSpec:
    """How one simulated phone's benchmark_model handles real inputs and outputs."""

    perturb_outputs: str | None = None  # None, "fp16" or "noise:R"
    old_benchmark: bool = False  # a binary without --input_layer_value_files / --output_filepath


def check_perturbation(spec: str | None) -> str | None:
    """`spec` if it is None, "fp16" or "noise:R" with R ≥ 0; else ValueError naming the forms."""
    if spec is None or spec == "fp16" or _NOISE.fullmatch(spec):
        return spec
    raise ValueError(f"perturb_outputs {spec!r}: use fp16 or noise:R (R = noise RMS / output RMS, e.g. noise:0.01)")


def perturb(values: np.ndarray, spec: str | None, rng: np.random.Generator) -> np.ndarray:
    """One output tensor as the perturbed phone returns it (same dtype and shape)."""
    if spec is None or values.size == 0:
        return values
    if spec == "fp16":
        return values.astype(np.float16).astype(values.dtype) if values.dtype.kind == "f" else values
    found = _NOISE.fullmatch(spec)
    assert found is not None, spec  # checked by check_perturbation
    data = values.astype(np.float64)
    rms = float(np.sqrt(np.mean(np.square(data))))
    noisy = data + rng.normal(0.0, float(found.group(1)) * rms, data.shape)
    if values.dtype.kind in "iu":
        info = np.iinfo(values.dtype)
        return np.clip(np.round(noisy), info.min, info.max).astype(values.dtype)
    return noisy.astype(values.dtype)


def split_names(text: str) -> list[str]:
    """--input_layer's comma-separated names."""
    return text.split(",") if text else []


def split_shapes(text: str) -> list[list[int]]:
    """--input_layer_shape's colon-separated, comma-separated shapes."""
    return [[int(d) for d in shape.split(",")] for shape in text.split(":")] if text else []


def split_value_file(item: str) -> tuple[str, str]:
    """One `name:path` of --input_layer_value_files; '::' stands for a ':' in either part."""
    delimiters = [m.start() for m in re.finditer(r"(?<!:):(?!:)", item)]
    if len(delimiters) != 1:
        raise ValueError(f"{item} {'contains more than one delimiter' if delimiters else 'has no delimiter'}.")
    cut = delimiters[0]
    return item[:cut].replace("::", ":"), item[cut + 1:].replace("::", ":")
