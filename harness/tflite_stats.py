"""Moved to `harness.tflite.weights` (kept so older imports keep working)."""

from harness.tflite.weights import WEIGHT_OPS, weight_stats

__all__ = ["WEIGHT_OPS", "weight_stats"]
