"""Training-time schemes change what they promise, measured from the produced .tflite.

A tiny tutorial CNN (Keras 3, 8x8 digits) is the source; every scheme fine-tunes it for one
epoch on 320 samples. Sparsity and distinct weight values are read back from the file with
`harness.tflite.weights.weight_stats`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness.cache import ArtifactCache
from harness.config.schema import FinetuneSpec
from harness.datasets import DATASETS, Dataset
from harness.errors import ConfigError, NotApplicable
from harness.models import BUILDERS
from harness.schemes import SCHEMES
from harness.schemes.training import FineTuning
from harness.schemes.training.keras2 import UnsupportedLayer, load_tf_keras
from harness.suite import load_suite
from harness.tflite.runtime import load_interpreter
from harness.tflite.weights import weight_stats
from tests.kit import Kit

FILTERS = 16  # conv kernel 3x3x1x16 = 144 weights; dense kernel 144x10 = 1,440


@pytest.fixture(scope="module")
def digits() -> Dataset:
    loader = DATASETS.get("digits")
    return loader.load("train", loader.Options(split="train"), Path("."))


@pytest.fixture(scope="module")
def source(kit: Kit) -> Path:
    """A trained Keras 3 model saved as .keras, as the harness caches builder sources (the session's)."""
    assert kit.filters == FILTERS
    return kit.keras_path


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> ArtifactCache:
    return ArtifactCache(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def finetune(digits: Dataset) -> FineTuning:
    return FineTuning(FinetuneSpec(dataset="train", limit=320, epochs=1, batch_size=32), digits)


@pytest.fixture(scope="module")
def produce(source: Path, cache: ArtifactCache, finetune: FineTuning, digits: Dataset, tmp_path_factory):
    """produce(scheme, **options) -> path of the .tflite the scheme makes from the source."""
    folder = tmp_path_factory.mktemp("tflite")

    def run(name: str, **options) -> Path:
        scheme = SCHEMES.get(name)
        calibration = digits.x[:32] if scheme.needs_calibration else None
        data = scheme.from_keras(source, scheme.Options(**options), finetune, calibration, cache)
        path = folder / f"{name}-{'-'.join(f'{k}{v}' for k, v in sorted(options.items()))}.tflite"
        path.write_bytes(data)
        return path

    return run


def kernels(stats: dict) -> dict[str, dict]:
    return {row["op"]: row for row in stats["layers"]}


# -- pruning -------------------------------------------------------------------------------------
@pytest.mark.slow  # fine-tunes, converts or runs a suite
@pytest.mark.parametrize("sparsity", [0.5, 0.8])
def test_prune_reaches_target_sparsity(produce, sparsity: float) -> None:
    stats = weight_stats(produce("prune", sparsity=sparsity))
    assert set(kernels(stats)) == {"CONV_2D", "FULLY_CONNECTED"}
    for row in stats["layers"]:
        assert row["dtype"] == "float32"
        assert row["sparsity"] >= sparsity - 0.02, row
    assert stats["sparsity"] >= sparsity - 0.02


@pytest.mark.slow  # fine-tunes, converts or runs a suite
def test_prune_constant_schedule(produce) -> None:
    assert weight_stats(produce("prune", sparsity=0.6, schedule="constant"))["sparsity"] >= 0.58


@pytest.mark.slow  # fine-tunes, converts or runs a suite
def test_prune_two_of_four(produce) -> None:
    """2:4 structured sparsity on the kernels whose input channels are a multiple of 4 (the dense
    layer's 144); the first conv has one input channel and keeps its weights."""
    path = produce("prune", sparsity_m_by_n=(2, 4))
    rows = kernels(weight_stats(path))
    assert rows["FULLY_CONNECTED"]["sparsity"] >= 0.5
    assert rows["CONV_2D"]["sparsity"] < 0.1
    interpreter = load_interpreter(path)
    dense = next(t for t in interpreter.get_tensor_details() if tuple(t["shape"]) == (10, 144))
    groups = interpreter.get_tensor(dense["index"]).reshape(10, 36, 4)
    assert np.all((groups == 0).sum(axis=2) >= 2)


@pytest.mark.slow  # fine-tunes, converts or runs a suite
def test_prune_then_int8_keeps_sparsity_in_int8_kernels(produce, cache: ArtifactCache) -> None:
    produce("prune", sparsity=0.8)
    finetuned = len(list((cache.root / "finetuned").rglob("*.json")))
    stats = weight_stats(produce("prune+int8", sparsity=0.8))
    assert len(list((cache.root / "finetuned").rglob("*.json"))) == finetuned, "prune+int8 fine-tuned again"
    assert {row["dtype"] for row in stats["layers"]} == {"int8"}
    assert stats["sparsity"] >= 0.78


# -- clustering ----------------------------------------------------------------------------------
@pytest.mark.slow  # fine-tunes, converts or runs a suite
def test_cluster_limits_distinct_values(produce) -> None:
    stats = weight_stats(produce("cluster", clusters=8, init="linear"))
    assert len(stats["layers"]) == 2
    for row in stats["layers"]:
        assert row["unique"] <= 8, row
        assert row["dtype"] == "float32"


# -- quantization-aware training -----------------------------------------------------------------
@pytest.mark.slow  # fine-tunes, converts or runs a suite
def test_qat_gives_an_integer_model(produce) -> None:
    path = produce("qat")
    stats = weight_stats(path)
    assert {row["dtype"] for row in stats["layers"]} == {"int8"}
    interpreter = load_interpreter(path)
    activations = [t for t in interpreter.get_tensor_details() if np.dtype(t["dtype"]) == np.int8
                   and t["quantization"][0] > 0 and len(t["shape"]) == 4]
    assert activations, "no int8 activations"
    assert np.dtype(interpreter.get_input_details()[0]["dtype"]) == np.float32


@pytest.mark.slow  # fine-tunes, converts or runs a suite
def test_qat_integer_io(produce) -> None:
    interpreter = load_interpreter(produce("qat", io="int8"))
    assert np.dtype(interpreter.get_input_details()[0]["dtype"]) == np.int8
    assert np.dtype(interpreter.get_output_details()[0]["dtype"]) == np.int8


@pytest.mark.slow  # fine-tunes, converts or runs a suite
def test_prune_qat_preserves_sparsity(produce) -> None:
    stats = weight_stats(produce("prune+qat", sparsity=0.8))
    for row in stats["layers"]:
        assert row["dtype"] == "int8"
        assert row["sparsity"] >= 0.78, row


@pytest.mark.slow  # fine-tunes, converts or runs a suite
def test_cluster_qat_preserves_clusters(produce) -> None:
    """int8 kernels have per-channel (conv) or per-tensor (dense) scales: at most 8 values each."""
    stats = weight_stats(produce("cluster+qat", clusters=8, init="linear"))
    for row in stats["layers"]:
        assert row["dtype"] == "int8"
        assert row["unique_per_channel_max"] <= 8, row
    assert kernels(stats)["FULLY_CONNECTED"]["unique"] <= 8


# -- sources and errors --------------------------------------------------------------------------
def test_tflite_source_is_not_applicable() -> None:
    for name in ("prune", "cluster+int8", "qat"):
        with pytest.raises(NotApplicable, match="need a Keras model"):
            SCHEMES.get(name).from_tflite(b"", SCHEMES.get(name).Options(), None)


def test_keras3_export_has_no_layers_to_wrap(tmp_path: Path) -> None:
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.export(str(tmp_path / "exported"), format="tf_saved_model", verbose=False)
    with pytest.raises(NotApplicable, match="no Keras layers"):
        load_tf_keras(tmp_path / "exported")


def _tf_keras_model_with(layer_factory):
    import tf_keras

    inputs = tf_keras.Input((8, 8, 1))
    x = tf_keras.layers.Conv2D(4, 3)(inputs)
    x = layer_factory(tf_keras)(x)
    outputs = tf_keras.layers.Dense(3)(tf_keras.layers.Flatten()(x))
    return tf_keras.Model(inputs, outputs, name="custom_model")


def _scale(tf_keras):
    class Scale(tf_keras.layers.Layer):
        def build(self, shape):
            self.factor = self.add_weight(name="factor", shape=(), initializer="ones")

        def call(self, x):
            return x * self.factor

    return Scale(name="my_scale")


@pytest.mark.parametrize(("technique", "reason"), [
    ("prune", "TFMOT has no pruning config for Scale"),
    ("cluster", "TFMOT has no clustering config for Scale"),
    ("qat", "TFMOT cannot quantize Scale layers without a QuantizeConfig"),
])
def test_a_layer_tfmot_cannot_wrap_is_left_untouched_and_named(technique: str, reason: str) -> None:
    from harness.schemes.training.cluster import CLUSTER
    from harness.schemes.training.prune import PRUNE
    from harness.schemes.training.qat import QAT

    implementation = {"prune": PRUNE, "cluster": CLUSTER, "qat": QAT}[technique]
    info: dict = {}
    try:
        implementation.wrap(_tf_keras_model_with(_scale), implementation.Options(), (), steps=10, info=info)
    except UnsupportedLayer as exc:  # quantize_apply cannot rebuild an unregistered class: named, n/a
        assert technique == "qat" and "'my_scale' (Scale) must be built-in or registered" in str(exc)
    assert {"layer": "my_scale", "class": "Scale", "reason": reason} in info["untouched"]
    assert {"conv2d", "dense"} <= {name.rsplit("_", 1)[0] if name[-1].isdigit() else name
                                   for name in info["wrapped"]}


def test_qat_names_a_lambda_layer() -> None:
    """Lambda is left out of the annotation, but quantize_apply cannot rebuild its Python code: n/a, named."""
    from harness.schemes.training.qat import QAT

    model = _tf_keras_model_with(lambda tf_keras: tf_keras.layers.Lambda(lambda x: x * 2, name="double"))
    with pytest.raises(UnsupportedLayer, match=r"'double' \(Lambda\) must be built-in or registered"):
        QAT.wrap(model, QAT.Options(), (), steps=10, info={})


def test_nothing_to_wrap_is_not_applicable() -> None:
    import tf_keras

    from harness.schemes.training.prune import PRUNE

    inputs = tf_keras.Input((8, 8, 1))
    model = tf_keras.Model(inputs, tf_keras.layers.Rescaling(2.0, name="scale")(inputs), name="weightless")
    with pytest.raises(NotApplicable, match=r"prune: no layer of model 'weightless' can be wrapped "
                                            r"\(Rescaling: TFMOT has no pruning config for Rescaling\)"):
        PRUNE.wrap(model, PRUNE.Options(), (), steps=10, info={})


def test_keras3_custom_layer_is_named(tmp_path: Path) -> None:
    import keras

    @keras.saving.register_keras_serializable(package="tests")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return x * 2

    model = keras.Sequential([keras.Input((4,)), Twice(name="twice"), keras.layers.Dense(2)])
    path = tmp_path / "custom.keras"
    model.save(path)
    with pytest.raises(UnsupportedLayer, match=r"layer 'twice' \(Twice"):
        load_tf_keras(path)


# -- Keras 3 sources reach tf_keras with identical outputs ----------------------------------------
def _randomised(model):
    """Non-trivial weights everywhere (batch-norm statistics included), seeded."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        weights = [w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in layer.get_weights()]
        if type(layer).__name__ == "BatchNormalization":
            weights[3] = np.abs(weights[3]) + 0.5
        layer.set_weights(weights)
    return model


@pytest.mark.parametrize(("builder", "options", "suffix"), [
    ("tutorial_cnn", {"input_shape": (8, 8, 1), "filters": FILTERS}, ".keras"),
    ("mobile_cnn", {"input_shape": (16, 16, 1), "width": 8}, ".keras"),
    ("mobile_cnn", {"input_shape": (16, 16, 1), "width": 8}, ".h5"),
])
def test_keras3_file_reaches_tf_keras_identically(tmp_path: Path, builder: str, options: dict, suffix: str) -> None:
    import keras

    spec = BUILDERS.get(builder)
    model = _randomised(spec.build(keras, spec.Options(**options)))
    path = tmp_path / f"model{suffix}"
    model.save(path)
    rebuilt = load_tf_keras(path)
    assert type(rebuilt).__module__.startswith("tf_keras")
    x = np.random.default_rng(2).uniform(0, 1, (16, *options["input_shape"])).astype(np.float32)
    np.testing.assert_allclose(rebuilt(x, training=False).numpy(), np.asarray(model(x, training=False)),
                               atol=1e-6, rtol=1e-5)


@pytest.mark.slow  # fine-tunes, converts or runs a suite
def test_keras3_functional_mobilenet_reaches_tf_keras_identically(tmp_path: Path) -> None:
    import keras

    spec = BUILDERS.get("mobilenet_v2")
    model = _randomised(spec.build(keras, spec.Options(input_size=32, num_classes=10)))
    model.save(tmp_path / "mnv2.keras")
    rebuilt = load_tf_keras(tmp_path / "mnv2.keras")
    x = np.random.default_rng(2).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(rebuilt(x, training=False).numpy(), np.asarray(model(x, training=False)),
                               atol=1e-6, rtol=1e-5)


def test_tf_keras_files_load_directly(tmp_path: Path) -> None:
    import tf_keras

    from harness.schemes.training.keras2 import saved_by_keras_version

    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(2, name="d")])
    model.save(tmp_path / "k2.keras")
    assert saved_by_keras_version(tmp_path / "k2.keras").startswith("2.")
    loaded = load_tf_keras(tmp_path / "k2.keras")
    np.testing.assert_array_equal(loaded.get_layer("d").get_weights()[0], model.get_layer("d").get_weights()[0])


def test_builders_build_in_tf_keras() -> None:
    import tf_keras

    spec = BUILDERS.get("mobile_cnn")
    assert isinstance(spec.build(tf_keras, spec.Options()), tf_keras.Model)


# -- fine-tuning data ----------------------------------------------------------------------------
def test_unlabelled_data_fit_the_float_models_top1(source: Path, digits: Dataset) -> None:
    from harness.schemes.training._tfmot import prepare

    float_model = load_tf_keras(source)
    unlabelled = Dataset("noise", digits.x[:64], None, None, "test")
    prepared = prepare(float_model, FineTuning(FinetuneSpec(batch_size=16), unlabelled))
    assert prepared.target == "float_argmax" and prepared.steps == 4
    np.testing.assert_array_equal(prepared.y, np.argmax(float_model.predict(digits.x[:64], verbose=0), axis=1))


def test_schedule_reaches_the_target_within_the_steps() -> None:
    from harness.schemes.training.prune import PruneOptions, schedule_steps

    for steps in (1, 2, 7, 10, 313, 5000):
        frequency, end = schedule_steps(PruneOptions(), steps)
        assert 1 <= frequency <= steps and end <= steps and end % frequency == 0


def test_options_are_the_union_of_technique_and_post_scheme() -> None:
    options = SCHEMES.get("prune+int8_only").Options(sparsity=0.8, io="uint8")
    assert (options.sparsity, options.io) == (0.8, "uint8")
    assert SCHEMES.get("prune+int8").needs_calibration and not SCHEMES.get("prune").needs_calibration
    with pytest.raises(ValueError, match="either `sparsity` or `sparsity_m_by_n`"):
        SCHEMES.get("prune").Options(sparsity=0.5, sparsity_m_by_n=(2, 4))


# -- suite files -----------------------------------------------------------------------------------
SUITE = """\
datasets:
  train: {kind: digits, split: train}
  test: {kind: digits, split: test}
models:
  - builder: tutorial_cnn
    input_shape: [8, 8, 1]
    train: {dataset: train, epochs: 1}
    finetune: {epochs: 2}
task: {kind: classification, dataset: test}
calibration: {dataset: train, samples: 8}
finetune: {limit: 100, learning_rate: 0.001}
schemes:
  - float32
  - {scheme: prune+int8, sparsity: 0.8, finetune: {batch_size: 16}}
  - {scheme: cluster, clusters: 16}
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text))
    return load_suite(path)


def test_suite_finetune_blocks_merge(tmp_path: Path) -> None:
    loaded = _load(tmp_path, SUITE)
    model, schemes = loaded.suite.models[0], loaded.suite.schemes
    assert loaded.scheme_options["prune+int8"].sparsity == 0.8
    budget = loaded.finetune_for(model, schemes[1])
    assert (budget.dataset, budget.epochs, budget.limit, budget.learning_rate, budget.batch_size) == \
        ("train", 2, 100, 0.001, 16)
    assert loaded.finetune_for(model, schemes[2]).batch_size == 32


@pytest.mark.parametrize(("old", "new", "line", "field", "message"), [
    ("finetune: {limit: 100,", "finetune: {limt: 100,", 11, "finetune.limt", "unknown key"),
    ("    finetune: {epochs: 2}", "    finetune: {dataset: tarin}", 8, "models[0].finetune.dataset", "unknown dataset"),
    ("  - float32", "  - {scheme: int8, finetune: {epochs: 2}}", 13, "schemes[0].finetune", "post-training"),
    ("    train: {dataset: train, epochs: 1}\n", "", 13, "schemes[1]", "no fine-tuning data"),
])
def test_suite_finetune_mistakes(tmp_path: Path, old: str, new: str, line: int, field: str, message: str) -> None:
    assert old in SUITE
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, SUITE.replace(old, new))
    error = caught.value
    assert (error.line, error.field) == (line, field) and message in error.message, str(error)


# -- layers: restricts the techniques ------------------------------------------------------------
def _five_convs():
    import tf_keras

    inputs = tf_keras.Input((8, 8, 1))
    x = tf_keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    for index in range(5):
        x = tf_keras.layers.Conv2D(4, 3, padding="same", name=f"conv{index}")(x)
    x = tf_keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    outputs = tf_keras.layers.Dense(3, name="head")(tf_keras.layers.Flatten(name="flat")(x))
    return tf_keras.Model(inputs, outputs, name="five")


@pytest.mark.parametrize(("layers", "wrapped"), [
    ({"types": ["Conv2D"], "last": 3}, ["conv2", "conv3", "conv4"]),
    (["Conv2D"], ["conv0", "conv1", "conv2", "conv3", "conv4"]),
    ("conv[01]|head", ["conv0", "conv1", "head"]),
    ({"names": "conv", "types": ["Conv2D", "Dense"], "first": 2}, ["conv0", "conv1"]),
])
def test_layers_option_selects(layers, wrapped: list[str]) -> None:
    from harness.schemes.training.cluster import CLUSTER

    info: dict = {}
    options = SCHEMES.get("cluster").Options.model_validate({"clusters": 4, "layers": layers})
    CLUSTER.wrap(_five_convs(), CLUSTER.options(options), (), steps=4, info=info)
    assert info["wrapped"] == wrapped
    skipped = {row["layer"] for row in info["untouched"] if row["reason"].startswith("not selected by `layers:")}
    assert skipped == {"conv0", "conv1", "conv2", "conv3", "conv4", "head"} - set(wrapped)


@pytest.mark.parametrize("name", ["prune", "cluster"])
def test_depthwise_kernels_are_listed_as_kept(name: str) -> None:
    """TFMOT's pruning and clustering registries map DepthwiseConv2D to no weights: the record says so."""
    from harness.schemes.training.cluster import CLUSTER
    from harness.schemes.training.prune import PRUNE

    technique = {"prune": PRUNE, "cluster": CLUSTER}[name]
    info: dict = {}
    options = SCHEMES.get(name).Options.model_validate({"clusters": 4} if name == "cluster" else {})
    technique.wrap(_five_convs(), technique.options(options), (), steps=4, info=info)
    untouched = {row["layer"]: row for row in info["untouched"]}
    assert "dw" not in info["wrapped"] and untouched["dw"]["class"] == "DepthwiseConv2D"
    assert "registry lists no weights for DepthwiseConv2D" in untouched["dw"]["reason"]


@pytest.mark.parametrize("before", [(), ("prune",)])
def test_qat_gives_a_rescaling_an_output_quantizer(before: tuple[str, ...]) -> None:
    """The stem after a Rescaling gets a learnt input range: the Rescaling is wrapped, output only."""
    from harness.schemes.training.qat import QAT

    info: dict = {}
    wrapped = QAT.wrap(_five_convs(), QAT.Options(), before, steps=4, info=info)
    assert info["output_quantized"] == ["rescale"] and "rescale" in info["wrapped"]
    layer = wrapped.get_layer("quant_rescale")
    assert type(layer.quantize_config).__name__ == "Default8BitOutputQuantizeConfig"


def test_layers_option_is_checked_and_kept_out_of_default_keys() -> None:
    options = SCHEMES.get("prune+qat").Options
    assert options(sparsity=0.8).model_dump() == {"sparsity": 0.8, "schedule": "polynomial", "initial_sparsity": 0.0,
                                                   "frequency": None, "sparsity_m_by_n": None, "io": "float32"}
    assert options.model_validate({"layers": "conv"}).layers.names == "conv"
    for bad, message in (({"first": 1, "last": 2}, "`first` or `last`"), ("conv(", "not a regular expression"),
                         ({"type": ["Conv2D"]}, "Extra inputs")):
        with pytest.raises(ValueError, match=message):
            options.model_validate({"layers": bad})


def test_a_selection_that_wraps_nothing_is_not_applicable() -> None:
    from harness.schemes.training.prune import PRUNE

    options = PRUNE.options(SCHEMES.get("prune").Options.model_validate({"layers": ["LSTM"]}))
    with pytest.raises(NotApplicable, match=r"with `layers: \{types: \['LSTM'\]\}`"):
        PRUNE.wrap(_five_convs(), options, (), steps=4, info={})


# -- the bridge carries real functional graphs ----------------------------------------------------
def _shared_and_multi_input(keras):
    a, b = keras.Input((8,)), keras.Input((8,))
    shared = keras.layers.Dense(4, name="shared")
    x, y = shared(a), shared(b)
    return keras.Model([a, b], keras.layers.Multiply()([x, y, keras.layers.Add()([x, y])]))


def _nested_twice_with_operations(keras):
    inner_input = keras.Input((6,))
    inner = keras.Model(inner_input, keras.layers.Dense(6)(inner_input), name="inner")
    inputs = keras.Input((6,))
    x = inner(keras.layers.Rescaling(1 / 255)(inputs) * 2.0 + 1.0)
    x = keras.layers.Activation("hard_silu")(inner(3.0 - x))
    return keras.Model(inputs, keras.layers.Activation("hard_sigmoid")(x))


def _attention_with_two_positional_tensors(keras):
    query, value = keras.Input((4, 8)), keras.Input((5, 8))
    return keras.Model([query, value], keras.layers.MultiHeadAttention(2, 4)(query, value))


@pytest.mark.parametrize("build", [_shared_and_multi_input, _nested_twice_with_operations,
                                   _attention_with_two_positional_tensors], ids=lambda f: f.__name__.strip("_"))
def test_keras3_graphs_rebuild_with_the_same_outputs(build) -> None:
    """from_keras3 checks the outputs on a probe itself; a wrong translation raises."""
    import keras

    from harness.schemes.training.keras2 import from_keras3

    keras.utils.set_random_seed(0)
    assert type(from_keras3(build(keras))).__module__.startswith("tf_keras")


def test_an_unsupported_operation_is_named() -> None:
    import keras

    from harness.schemes.training.keras2 import from_keras3

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.ops.logsumexp(inputs, axis=-1, keepdims=True))
    with pytest.raises(UnsupportedLayer, match=r"operation 'logsumexp' \(keras.ops Logsumexp"):
        from_keras3(model)


def test_qat_wraps_separable_convolutions_and_the_batch_norms_after_them() -> None:
    """TFMOT's registry has no entry for SeparableConv2D, but its layout transform splits one into
    depthwise + pointwise convolutions: QAT annotates it and its batch norm (mobile_cnn converted
    half float before this, 0.98x the float size)."""
    import tf_keras

    from harness.models import BUILDERS
    from harness.schemes.training.qat import QAT

    builder = BUILDERS.get("mobile_cnn")
    model = builder.build(tf_keras, builder.Options())
    info: dict = {}
    QAT.wrap(model, QAT.Options(), (), steps=10, info=info)
    assert info["untouched"] == []
    separable = {layer.name for layer in model.layers if isinstance(layer, tf_keras.layers.SeparableConv2D)}
    norms = {layer.name for layer in model.layers if isinstance(layer, tf_keras.layers.BatchNormalization)}
    assert len(separable) == 3 and separable | norms <= set(info["wrapped"])

