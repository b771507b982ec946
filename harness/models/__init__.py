"""Model sources: registered Keras builders, Keras files, SavedModels and float .tflite files."""

from harness.models.determinism import pin_environment

pin_environment()  # before TensorFlow starts: one thread per op, oneDNN capped at AVX2 (determinism.py)

from harness.models._base import BUILDERS, BuilderOptions, ModelBuilder  # noqa: E402 - after the environment is pinned

__all__ = ["BUILDERS", "BuilderOptions", "ModelBuilder"]
