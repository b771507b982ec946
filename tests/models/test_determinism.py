"""Training is reproducible: two cold trainings of the same model, in fresh caches, give bit-identical weights.

A tiny tutorial CNN on the 8x8 digits (a second of training) for the builder path — one training in
another process, one here after the random generators were used — and clustering (whose centroid
initialisation draws random numbers too) for the training-time schemes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.cache import ArtifactCache
from harness.config.schema import FinetuneSpec, ModelSpec
from harness.datasets import DATASETS, Dataset
from harness.models import determinism
from harness.models.source import resolve_source
from harness.schemes.training import FineTuning
from harness.schemes.training._tfmot import run_chain
from harness.schemes.training.cluster import CLUSTER

pytestmark = pytest.mark.slow  # trains models in fresh processes

ROOT = Path(__file__).resolve().parents[2]
MODEL = {"name": "tiny", "builder": "tutorial_cnn", "filters": 4, "input_shape": [8, 8, 1],
         "train": {"dataset": "digits", "epochs": 2, "batch_size": 32, "limit": 640, "seed": 3}}


def digits() -> Dataset:
    loader = DATASETS.get("digits")
    return loader.load("digits", loader.Options(split="train"), Path("."))


def train_tiny(cache_dir: Path) -> Path:
    """The cached .keras of MODEL, trained (cold) in `cache_dir`."""
    from harness.models import BUILDERS

    spec = ModelSpec(**MODEL)
    builder = BUILDERS.get("tutorial_cnn")
    options = builder.Options(**spec.options)
    return resolve_source(spec, options, Path("."), ArtifactCache(cache_dir), digits()).path


def weights(model: object) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]  # type: ignore[attr-defined]


def assert_bit_identical(first: list[np.ndarray], second: list[np.ndarray]) -> None:
    assert len(first) == len(second) > 0
    for a, b in zip(first, second):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


def disturb_random_state() -> None:
    """Use every generator a training draws from, as earlier work in the same process would."""
    import random

    import tensorflow as tf

    random.random()
    np.random.rand(7)
    tf.random.uniform((3,))


def test_builder_training_is_bit_identical_across_processes(tmp_path: Path) -> None:
    import keras

    script = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
              "from tests.models.test_determinism import train_tiny; print(train_tiny(Path(sys.argv[2])))")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script, str(ROOT), str(tmp_path / "a")], env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    disturb_random_state()
    here = train_tiny(tmp_path / "b")
    there = Path(done.stdout.strip().splitlines()[-1])
    assert there != here and there.is_relative_to(tmp_path / "a")
    assert_bit_identical(weights(keras.models.load_model(there, compile=False)),
                         weights(keras.models.load_model(here, compile=False)))


def test_training_summary_names_the_seed_and_what_was_pinned(tmp_path: Path) -> None:
    import json

    train_tiny(tmp_path)
    summary = next(json.loads(p.read_text()) for p in (tmp_path / "models").rglob("*.json"))["training"]
    assert summary["determinism"] == {"seed": 3, "op_determinism": "on", "intra_op_threads": "1",
                                      "onednn_max_cpu_isa": os.environ["ONEDNN_MAX_CPU_ISA"],
                                      "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")}


def test_the_seed_changes_the_weights(tmp_path: Path) -> None:
    import keras

    first = train_tiny(tmp_path / "a")
    MODEL["train"]["seed"] = 4  # type: ignore[index]
    try:
        second = train_tiny(tmp_path / "b")
    finally:
        MODEL["train"]["seed"] = 3  # type: ignore[index]
    a, b = (weights(keras.models.load_model(p, compile=False)) for p in (first, second))
    assert any(x.tobytes() != y.tobytes() for x, y in zip(a, b))


def test_clustering_is_bit_identical_in_fresh_caches(tmp_path: Path) -> None:
    import tf_keras

    source = train_tiny(tmp_path / "source")
    finetune = FineTuning(FinetuneSpec(dataset="digits", limit=320, epochs=1, seed=5), digits())
    options = CLUSTER.Options(clusters=4, init="random")
    first = run_chain(source, [CLUSTER], options, finetune, ArtifactCache(tmp_path / "a"))
    disturb_random_state()
    second = run_chain(source, [CLUSTER], options, finetune, ArtifactCache(tmp_path / "b"))
    assert first != second
    assert_bit_identical(weights(tf_keras.models.load_model(first, compile=False)),
                         weights(tf_keras.models.load_model(second, compile=False)))


@pytest.mark.parametrize("name", sorted(determinism.PINNED_ENVIRONMENT))
def test_the_environment_is_pinned_on_import_unless_the_user_set_it(name: str) -> None:
    assert os.environ.get(name)  # harness.models was imported above
    code = f"import os; import harness.models; print(os.environ[{name!r}])"
    for given, expected in ((None, determinism.PINNED_ENVIRONMENT[name]), ("2", "2")):
        env = {k: v for k, v in os.environ.items() if k != name} | ({name: given} if given else {})
        env["PYTHONPATH"] = str(ROOT)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                             check=True).stdout.strip()
        assert out == expected


def test_speech_ctc_training_is_bit_identical() -> None:
    """The CTC builder's own training loop (numpy shuffling and augmentation, a tf.function step)."""
    import keras

    from harness.config.schema import TrainSpec
    from harness.models import BUILDERS

    builder = BUILDERS.get("speech_ctc")
    options = builder.Options(frames=16, n_mels=8, width=8, dilations=[1], stride=2)
    x = np.random.default_rng(0).normal(size=(24, 16, 8)).astype(np.float32)
    data = Dataset("speech", x, np.array(["ab", "b a", "a"] * 8, dtype=object), None, "generated")
    trained = []
    for _ in range(2):
        determinism.seed_everything(0, keras)  # initial weights, as resolve_source seeds before building
        model = builder.build(keras, options)
        summary = builder.fit(model, keras, data, TrainSpec(dataset="speech", epochs=2, batch_size=8), options)
        assert summary["determinism"]["seed"] == 0
        trained.append(weights(model))
        disturb_random_state()
    assert_bit_identical(*trained)
