"""Optimization schemes (one module per scheme, each registers itself in SCHEMES)."""

from harness.schemes._base import BASELINE, FAMILIES, SCHEMES, Family, Scheme, SchemeOptions, debugged

__all__ = ["BASELINE", "FAMILIES", "SCHEMES", "Family", "Scheme", "SchemeOptions", "debugged"]
