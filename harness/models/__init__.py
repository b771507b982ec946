"""Model sources: registered Keras builders, Keras files, SavedModels and float .tflite files."""

from harness.models._base import BUILDERS, BuilderOptions

__all__ = ["BUILDERS", "BuilderOptions"]
