"""The Keras model builder registry.

Builders take the Keras module to build with (`keras` — Keras 3 — or `tf_keras` — Keras 2,
which TensorFlow Model Optimization needs), so the same architecture reaches either.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from harness.registry import Registry


class BuilderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelBuilder(Protocol):
    """Builds a fresh model. A builder whose model needs its own training (a CTC loss, say)
    also defines `fit(model, keras, dataset, spec, options) -> summary dict`; the others are trained
    by `harness.models.training.train` (Adam, sparse cross-entropy)."""

    @property
    def Options(self) -> type[BuilderOptions]: ...

    def build(self, keras: ModuleType, options: Any) -> Any: ...


BUILDERS: Registry[ModelBuilder] = Registry("model builder", "harness.models")
