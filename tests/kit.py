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


# -- a float .tflite MLP and its suite ------------------------------------------------------------
def write_mlp(path: Path, width: int, inputs: int = 256) -> None:
    """A float .tflite MLP: inputs → width (ReLU) → 10; its cost grows with width."""
    import tempfile

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((inputs,), batch_size=1), keras.layers.Dense(width, activation="relu"),
                              keras.layers.Dense(10)])
    with tempfile.TemporaryDirectory() as folder:
        model.export(folder, format="tf_saved_model", verbose=False)
        path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(folder).convert())


def mlp_suite(name: str, latency: str, twice: bool = True) -> str:
    """A suite of the MLP `model.tflite` beside it (`write_mlp`) on synthetic noise, `latency` its latency block
    (flow style). `twice`: float32 and `float32_again`, a second scheme that yields the very same float model
    (whose × float is then 1 but for measurement), with a latency bound nothing trips; else float32 alone."""
    schemes = "[float32, {scheme: float32, id: float32_again}]" if twice else "[float32]"
    bound = "thresholds:\n  defaults:\n    latency_ratio: {max: 100}\n" if twice else ""
    return f"""\
name: {name}
datasets:
  noise: {{kind: synthetic, count: {8 if twice else 16}, low: -1, high: 1}}
models:
  - {{name: mlp, path: model.tflite}}
task: {{kind: fidelity, dataset: noise}}
schemes: {schemes}
latency: {latency}
{bound}"""


# -- a run whose every cell fails ----------------------------------------------------------------
def broken_model_suite(model: str, dataset: str, task: str) -> str:
    """float32 and dynamic_range of the model file `model` (a damaged one, say) on the dataset entry `dataset`."""
    return f"""\
name: broken
datasets:
  test: {dataset}
models:
  - {{name: bad, path: {model}}}
task: {{kind: {task}, dataset: test}}
schemes: [float32, dynamic_range]
latency: {{float_pairs: 0, warmup_runs: 1, num_runs: 3, min_secs: 0}}
"""


def failed_run(folder: Path, suite: str) -> list[dict]:
    """`bench run` of the suite text (written to folder/s.yaml) that must exit 1 without a traceback, and the
    records of its one run."""
    import yaml

    from harness.results import read_results
    from tests.conftest import run_bench

    (folder / "s.yaml").write_text(suite)
    done = run_bench("run", str(folder / "s.yaml"), "--reports", str(folder / "r"), "--cache", str(folder / "c"),
                     "--no-history")
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    [run_dir] = (folder / "r" / yaml.safe_load(suite)["name"]).iterdir()
    return list(read_results(run_dir))
