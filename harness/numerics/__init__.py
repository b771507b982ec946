"""Numerics: how far an optimized model's outputs drift from the float model's."""

from harness.numerics.fidelity import (
    FIDELITY_METRICS,
    OutputInfo,
    compare_outputs,
    json_number,
    output_fidelity,
    worst,
)

__all__ = ["FIDELITY_METRICS", "OutputInfo", "compare_outputs", "json_number", "output_fidelity", "worst"]
