"""The Keras model builder registry.

Builders take the Keras module to build with (`keras` — Keras 3 — or `tf_keras` — Keras 2,
which TensorFlow Model Optimization needs), so the same architecture reaches either.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from harness.registry import Registry

if TYPE_CHECKING:
    from harness.config.schema import TrainSpec
    from harness.datasets import Dataset


class BuilderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelBuilder:
    """Builds a fresh model: subclass it and register the subclass with `@BUILDERS.register(name, summary)`.

    `build` uses the Keras module it is given. A model that needs its own training (a CTC loss,
    say) overrides `fit`; the default trains with `harness.models.training.train` (Adam, sparse
    cross-entropy)."""

    Options: ClassVar[type[BuilderOptions]] = BuilderOptions

    def build(self, keras: ModuleType, options: Any) -> Any:
        raise NotImplementedError

    def fit(self, model: Any, keras: ModuleType, dataset: Dataset, spec: TrainSpec, options: Any) -> dict[str, Any]:
        """Train `model` on `dataset` with the model entry's `train:` budget; the training summary."""
        from harness.models.training import train

        return train(model, keras, dataset, spec)


BUILDERS: Registry[ModelBuilder] = Registry("model builder", "harness.models", base=ModelBuilder)
