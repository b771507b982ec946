"""The contract: training-time schemes on the Keras Applications users have.

Every application is built with Keras 3 (`weights=None`, 32x32 inputs, 10 classes), saved as
`.keras`, rebuilt in tf_keras by the bridge (the probe check compares outputs) and wrapped by
each technique: every cell wraps layers, and every layer left untouched has a reason from the
known list. CI rebuilds all six and wraps two (fine-tuning and converting 24 cells takes most
of an hour on a 2-core VM; `tests/test_user_model_suite.py` goes end to end on a small model).
`QUANTBENCH_FULL_SWEEP=1` runs every application through `qat`, `prune`, `cluster` and `prune+qat` end to end — fine-tuned
for one step on 8 samples, converted, run with LiteRT.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from harness.cache import ArtifactCache
from harness.config.schema import FinetuneSpec
from harness.datasets import Dataset
from harness.errors import NotApplicable
from harness.schemes import SCHEMES
from harness.schemes.training import FineTuning
from harness.schemes.training._tfmot import clone
from harness.schemes.training.cluster import CLUSTER
from harness.schemes.training.keras2 import load_tf_keras
from harness.schemes.training.prune import PRUNE
from harness.schemes.training.qat import QAT
from harness.tflite.runtime import predict

pytestmark = pytest.mark.slow  # builds six Keras Applications and wraps two with every technique

APPLICATIONS = {
    "MobileNetV2": {},
    "MobileNetV3Small": {"include_preprocessing": True},
    "MobileNetV3Large": {"include_preprocessing": True},
    "EfficientNetB0": {},
    "EfficientNetV2B0": {"include_preprocessing": True},
    "ResNet50": {},
}
FULL_SWEEP = os.environ.get("QUANTBENCH_FULL_SWEEP") == "1"
# Why a layer may stay as it is (prefixes of the reasons the techniques give).
KNOWN_REASONS = ("TFMOT has no pruning config for ", "TFMOT has no clustering config for ",
                 "TFMOT's Default8BitQuantizeScheme has no QuantizeConfig for ",
                 "TFMOT quantizes BatchNormalization only after", "TFMOT has no QuantizeConfig for TFOpLambda",
                 "TFMOT's pruning registry lists no weights for DepthwiseConv2D",
                 "TFMOT's clustering registry lists no weights for DepthwiseConv2D")


def save_application(name: str, folder: Path) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(32, 32, 3), classes=10,
                                              **APPLICATIONS[name])
    path = folder / f"{name}.keras"
    model.save(path)
    return path


_REBUILT: dict[str, tuple[Path, object]] = {}


def rebuilt(name: str, folder: Path) -> tuple[Path, object]:
    """(the .keras file, its tf_keras rebuild), once per application; the bridge's probe check has
    compared their outputs."""
    if name not in _REBUILT:
        path = save_application(name, folder)
        _REBUILT[name] = (path, load_tf_keras(path))
    return _REBUILT[name]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("applications")


@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_every_application_rebuilds_in_tf_keras(name: str, folder: Path) -> None:
    _, model = rebuilt(name, folder)
    assert type(model).__module__.startswith("tf_keras")


# CI wraps two applications (about 40 s); the full sweep wraps all six.
WRAPPED_IN_CI = ["MobileNetV3Small", "EfficientNetB0"]


@pytest.mark.parametrize("technique", [PRUNE, CLUSTER, QAT], ids=lambda t: t.name)
@pytest.mark.parametrize("name", [n if n in WRAPPED_IN_CI else pytest.param(n, marks=pytest.mark.skipif(
    not FULL_SWEEP, reason="QUANTBENCH_FULL_SWEEP=1 wraps every application")) for n in APPLICATIONS])
def test_every_application_is_wrapped(name: str, technique, folder: Path) -> None:
    _, model = rebuilt(name, folder)
    info: dict = {}
    wrapped = technique.wrap(clone(model), technique.Options(), (), steps=4, info=info)
    assert info["wrapped"], info
    for row in info["untouched"]:
        assert row["reason"].startswith(KNOWN_REASONS), row
    if technique is QAT:
        assert any(type(layer).__name__ == "QuantizeWrapperV2" for layer in wrapped.layers)


@pytest.fixture(scope="module")
def noise() -> FineTuning:
    rng = np.random.default_rng(0)
    data = Dataset("noise", rng.uniform(0, 255, (8, 32, 32, 3)).astype(np.float32), rng.integers(0, 10, 8), 10,
                   "uniform noise")
    return FineTuning(FinetuneSpec(dataset="noise", limit=8, epochs=1, batch_size=8), data)


def run_cell(path: Path, scheme_name: str, finetune: FineTuning, cache: ArtifactCache, folder: Path) -> dict:
    """One cell end to end: fine-tune, convert, run with LiteRT; what the record's technique says."""
    scheme = SCHEMES.get(scheme_name)
    options = scheme.Options()
    tflite = folder / f"{path.stem}-{scheme_name}.tflite"
    tflite.write_bytes(scheme.from_keras(path, options, finetune, None, cache))
    outputs = predict(tflite, finetune.data.x[:2], batch_size=2)
    assert outputs[0].shape == (2, 10) and np.all(np.isfinite(outputs[0]))
    return scheme.technique(path, options, finetune, cache)


@pytest.mark.parametrize("before", [(), ("prune",), ("cluster",)])
def test_qat_leaves_operations_untouched_in_every_scheme(before: tuple[str, ...]) -> None:
    """hard-swish becomes TFOpLambda layers: every QAT scheme leaves them float (TFMOT's preserving
    registries claim them, then have no config; the harness asks the default registry)."""
    import keras

    from harness.schemes.training.keras2 import from_keras3

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Activation("hard_silu", name="hard_swish")(keras.layers.Conv2D(4, 3, name="conv")(inputs))
    model = from_keras3(keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x))))
    info: dict = {}
    QAT.wrap(clone(model), QAT.Options(), before, steps=4, info=info)
    assert {"conv", "head"} <= set(info["wrapped"])
    assert {row["layer"] for row in info["untouched"] if row["class"] == "TFOpLambda"} == \
        {"hard_swish_plus3", "hard_swish_hard_sigmoid"}


@pytest.mark.slow
@pytest.mark.skipif(not FULL_SWEEP, reason="the full sweep takes most of an hour: QUANTBENCH_FULL_SWEEP=1")
@pytest.mark.parametrize("scheme", ["qat", "prune", "cluster", "prune+qat"])
@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_full_sweep(name: str, scheme: str, noise: FineTuning, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp(f"{name}-{scheme.replace('+', '_')}")
    try:
        record = run_cell(save_application(name, folder), scheme, noise, ArtifactCache(folder / "cache"), folder)
    except NotApplicable as exc:  # a named reason, reported; the sweep prints every cell's outcome
        print(f"SWEEP {name} {scheme} n/a {exc}")
        raise
    print(f"SWEEP {name} {scheme} ok wrapped {len(record['wrapped'])} untouched "
          f"{sorted({row['class'] for row in record['untouched']})}")
    assert record["wrapped"]
