"""Optimization schemes (one module per scheme, each registers itself in SCHEMES)."""

from harness.schemes._base import BASELINE, SCHEMES, Scheme, SchemeOptions

__all__ = ["BASELINE", "SCHEMES", "Scheme", "SchemeOptions"]
