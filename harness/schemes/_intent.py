"""What each scheme asks of the model's ops, and the record's `quantization` from it.

The recipe scheme reads its targets from the float model (its `targets`, harness.schemes._recipes); the
classic post-training schemes ask the same of every op they can change (their `ask`), read on the
produced model: float16 16-bit float weights, dynamic_range int8 weights (float activations), int8 and
int8_only int8 weights and activations, int16x8 int8 weights and int16 activations. Ops a suite keeps
float (`float_layers`) are not targeted. Other schemes (float32, training-time) target nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.record import Quantization
from harness.schemes._base import Scheme
from harness.tflite.quantization import (
    Target,
    quantization_record,
    read_ops,
    targets_for,
)


def quantization_of(kind: str, scheme: Scheme, options: Any, produced: bytes,
                    float_model: Callable[[], bytes]) -> Quantization:
    """The record's `quantization` of a produced model (`float_model`: the float .tflite, read on demand)."""
    asked = scheme.targets(float_model, options)
    if asked is not None:
        targets, rules = asked
        return quantization_record(produced, targets, rules)
    ask = scheme.ask
    kept = set(getattr(options, "float_layers", None) or [])
    targets = [_with_reason(scheme, t) for t in targets_for(read_ops(produced), ask) if not kept & set(t.op.outputs)]
    return quantization_record(produced, targets, [f".* / * → {ask.describe()}"] if ask else [],
                               None if ask else f"scheme {kind} asks no quantization of single ops")


def _with_reason(scheme: Scheme, target: Target) -> Target:
    """A small kernel the scheme keeps float by design (a claim's `min_elements`: dynamic_range, whose
    TFLiteConverter quantizes kernels that large or larger only) says why."""
    smallest = max((claim.min_elements for claim in scheme.claims), default=0)
    if target.op.weights is not None and target.op.elements < smallest:
        return Target(target.op, target.ask, f"{target.op.elements} weights: TFLiteConverter quantizes kernels of "
                      f"{smallest} weights or more only")
    return target
