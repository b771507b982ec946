"""The session's shared real models, for tests that need "some real models" and not a particular one.

One tutorial CNN (16 filters, so its dense kernel passes the converter's 1,024-weight threshold for weight
quantization) trained briefly on the 8x8 digits, saved as `.keras` and exported as a SavedModel; each
scheme's .tflite is converted once, on first use. Training is short: accuracy is not what these tests check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FILTERS = 16
EPOCHS = 2


@dataclass
class Kit:
    """Paths of the shared tiny model in each form, and the digits it was trained on."""

    folder: Path
    filters: int
    keras_path: Path
    saved_model: Path
    x: np.ndarray
    y: np.ndarray
    _tflite: dict[str, Path] = field(default_factory=dict)

    def calibration(self, samples: int = 32) -> np.ndarray:
        return self.x[:samples]

    def tflite(self, scheme: str) -> Path:
        """The model converted with SCHEMES[scheme] (default options), converted once per session."""
        if scheme not in self._tflite:
            from harness.schemes import SCHEMES

            converter = SCHEMES.get(scheme)
            calibration = self.calibration() if converter.needs_calibration else None
            path = self.folder / f"{scheme}.tflite"
            path.write_bytes(converter.from_saved_model(self.saved_model, converter.Options(), calibration))
            self._tflite[scheme] = path
        return self._tflite[scheme]


def build_kit(folder: Path) -> Kit:
    """Train the tiny CNN (seeded) and save it as .keras and as a SavedModel under `folder`."""
    import keras

    from harness.datasets import DATASETS
    from harness.models import BUILDERS

    loader = DATASETS.get("digits")
    digits = loader.load("train", loader.Options(split="train"), folder)
    keras.utils.set_random_seed(0)
    builder = BUILDERS.get("tutorial_cnn")
    model = builder.build(keras, builder.Options(input_shape=(8, 8, 1), filters=FILTERS))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(digits.x, digits.y, epochs=EPOCHS, batch_size=64, verbose=0)
    model.save(folder / "digits_cnn.keras")
    model.export(str(folder / "saved"), format="tf_saved_model", verbose=False)
    return Kit(folder, FILTERS, folder / "digits_cnn.keras", folder / "saved", digits.x, digits.y)
