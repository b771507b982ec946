"""Train a freshly built Keras model on a labelled dataset (for the built-in small CNNs)."""

from __future__ import annotations

import math
from typing import Any

from harness.config.schema import TrainSpec
from harness.datasets import Dataset
from harness.errors import HarnessError
from harness.models.determinism import seed_everything


def train(model: Any, keras: Any, dataset: Dataset, spec: TrainSpec) -> dict[str, Any]:
    """Fit `model` in place with Adam and sparse cross-entropy; return the training summary."""
    if dataset.y is None:
        raise HarnessError(f"cannot train on dataset {dataset.name!r}: it has no labels")
    data = dataset.head(spec.limit)
    settings = seed_everything(spec.seed, keras)
    learning_rate: Any = spec.learning_rate
    if spec.schedule == "cosine":
        steps = spec.epochs * math.ceil(len(data) / spec.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(spec.learning_rate, steps)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(data.x, data.y, epochs=spec.epochs, batch_size=spec.batch_size, verbose=0, shuffle=True)
    return {
        "dataset": dataset.name,
        "samples": len(data),
        "epochs": spec.epochs,
        "final_loss": float(history.history["loss"][-1]),
        "final_train_accuracy": float(history.history["accuracy"][-1]),
        "determinism": settings,
    }
