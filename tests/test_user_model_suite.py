"""A user's own Keras 3 model, with its own `Rescaling(1/255)`, through every training-time scheme.

Rescaling → Conv/BatchNorm/ReLU6 → two depthwise-separable residual blocks → pooling → Dense,
trained here on the 8x8 digits served as 0–255 pixels (`range: [0, 255]`: the model scales them
itself), saved as `.keras` and listed in a suite with `qat`, `prune`, `cluster` and their
combinations. Every cell is ok; the records name the Rescaling layer left untouched and why.
"""

from __future__ import annotations

import pytest

from harness.results import read_results
from tests.conftest import latest, run_bench

pytestmark = pytest.mark.slow  # trains, fine-tunes and converts real models

TRAINING_SCHEMES = ["qat", "prune", "cluster", "prune+qat", "cluster+qat", "prune+cluster", "prune+cluster+qat",
                    "prune+int8", "cluster+int8"]


def user_model(keras):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = keras.layers.ReLU(6.0, name="stem_relu6")(x)
    for block in range(2):
        y = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"block{block}_dw")(x)
        y = keras.layers.BatchNormalization(momentum=0.9, name=f"block{block}_dw_bn")(y)
        y = keras.layers.ReLU(6.0, name=f"block{block}_relu6")(y)
        y = keras.layers.Conv2D(16, 1, use_bias=False, name=f"block{block}_pw")(y)
        y = keras.layers.BatchNormalization(momentum=0.9, name=f"block{block}_pw_bn")(y)
        x = keras.layers.Add(name=f"block{block}_add")([x, y])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="classifier")(x), name="user_model")


SUITE = """\
name: user_model
datasets:
  train: {{kind: digits, split: train, range: [0, 255]}}
  test: {{kind: digits, split: test, range: [0, 255]}}
models:
  - {{name: user_model, path: {model}}}
task: {{kind: classification, dataset: test}}
calibration: {{dataset: train, samples: 16}}
finetune: {{dataset: train, limit: 256, epochs: 1, batch_size: 64}}
schemes: [float32, {schemes}]
devices: [local]
latency: {{float_pairs: 0, warmup_runs: 1, num_runs: 3, min_secs: 0}}
thresholds:
  defaults:
    top1: {{max_abs_drop: 0.5}}
    size_ratio: {{max: 1.1}}
"""


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    import keras

    from harness.datasets import DATASETS

    folder = tmp_path_factory.mktemp("user")
    loader = DATASETS.get("digits")
    train = loader.load("train", loader.Options(split="train", range=(0, 255)), folder)
    keras.utils.set_random_seed(0)
    model = user_model(keras)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    model.fit(train.x, train.y, epochs=10, batch_size=64, verbose=0)
    model.save(folder / "user_model.keras")
    suite = folder / "suite.yaml"
    suite.write_text(SUITE.format(model="user_model.keras", schemes=", ".join(TRAINING_SCHEMES)))
    done = run_bench("run", str(suite), "--reports", str(folder / "reports"), "--cache", str(folder / "cache"))
    run_dir = latest(folder / "reports" / "user_model")
    by_scheme = {record["scheme"]: record for record in read_results(run_dir)}
    assert set(by_scheme) == {"float32", *TRAINING_SCHEMES}, done.stdout + done.stderr
    return by_scheme


@pytest.mark.parametrize("scheme", TRAINING_SCHEMES)
def test_every_training_scheme_runs_and_names_the_untouched_layer(records: dict[str, dict], scheme: str) -> None:
    record = records[scheme]
    assert record["status"] == "ok", record["error"]
    assert record["metrics"]["top1"] > 0.5
    technique = record["technique"]
    assert {"stem", "block0_pw", "block1_pw", "classifier"} <= set(technique["wrapped"])
    untouched = {row["layer"]: row for row in technique["untouched"]}
    if scheme.startswith("prune"):
        assert untouched["rescale"]["class"] == "Rescaling"
        assert "TFMOT has no pruning config for Rescaling" in untouched["rescale"]["reason"]
    if scheme.endswith("qat"):  # QAT gives the Rescaling an output quantizer (no weights to quantize)
        assert "rescale" in technique["wrapped"] and technique["output_quantized"] == ["rescale"]


def test_qat_quantizes_every_kernel_after_the_rescaling(records: dict[str, dict]) -> None:
    """Every kernel is int8, the stem's too: QAT learns the Rescaling's output range (an output-only
    QuantizeConfig), so the converter has an input range for the first convolution."""
    layers = records["qat"]["weights"]["layers"]
    assert [row["dtype"] for row in layers] == ["int8"] * len(layers)
    assert records["prune"]["weights"]["sparsity"] >= 0.3  # Conv2D/Dense at 0.5; depthwise kernels keep theirs
    assert records["cluster"]["weights"]["max_unique_per_channel"] <= 16
